// The example dialect plugin, loaded into moe-opt at run time.
// REQUIRES: compiler
// RUN: moe-opt %s --load-dialect-plugin=%moe_libs/MoeExampleDialectPlugin.so | FileCheck %s
// RUN: moe-opt %s --load-dialect-plugin=%moe_libs/MoeExampleDialectPlugin.so | moe-opt --load-dialect-plugin=%moe_libs/MoeExampleDialectPlugin.so | FileCheck %s
// RUN: not moe-opt %s 2>&1 | FileCheck %s --check-prefix=NOPLUGIN

// CHECK-LABEL: func.func @tagged
// CHECK: %[[T:.+]] = moe_example.tag %{{.*}} {label = "hot"} : tensor<?x16xf32>
// CHECK: nn.silu %[[T]]
// NOPLUGIN: error: Dialect `moe_example' not found for custom op 'moe_example.tag'
func.func @tagged(%x: tensor<?x16xf32>) -> tensor<?x16xf32> {
  %t = moe_example.tag %x {label = "hot"} : tensor<?x16xf32>
  %y = nn.silu %t : tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}
