// The example plugin, loaded into moe-opt at run time.
// REQUIRES: compiler
// RUN: moe-opt %s --load-pass-plugin=%moe_libs/MoePinExpertsPlugin.so --pass-pipeline='builtin.module(moe-pin-experts{experts=0,3 placement=gpu})' | FileCheck %s
// RUN: not moe-opt %s --load-pass-plugin=%moe_libs/MoePinExpertsPlugin.so --pass-pipeline='builtin.module(moe-pin-experts{experts=4})' 2>&1 | FileCheck %s --check-prefix=RANGE
// RUN: not moe-opt %s --load-pass-plugin=%moe_libs/MoePinExpertsPlugin.so --pass-pipeline='builtin.module(moe-pin-experts{experts=1 placement=tpu})' 2>&1 | FileCheck %s --check-prefix=PLACE
// RUN: not moe-opt %s --pass-pipeline='builtin.module(moe-pin-experts)' 2>&1 | FileCheck %s --check-prefix=NOPLUGIN
// The plugin uses our cost model (passes/Analysis/CostModel.h) too.
// RUN: moe-opt %s --load-pass-plugin=%moe_libs/MoePinExpertsPlugin.so --pass-pipeline='builtin.module(moe-pin-experts{gpu-budget=0 device-profile=%srcroot/bench/devices/h100-host.json})' 2>&1 | FileCheck %s --check-prefix=COST
// COST: note: moe-pin-experts: predicted {{[0-9]+\.[0-9]+}} us per step

// Experts 0 and 3 move to the GPU; expert 1 keeps its precision and expert 2
// stays pruned.
// CHECK-LABEL: func.func @layer
// CHECK: moe.experts {{.*}}experts = [#moe.expert<placement = gpu>, #moe.expert<placement = cpu, bits = 16>, #moe.expert<pruned = true>, #moe.expert<placement = gpu>]
// RANGE: error: 'moe.experts' op moe-pin-experts: expert 4 does not exist (4 experts)
// PLACE: error: moe-pin-experts: unknown placement 'tpu'
// NOPLUGIN: 'moe-pin-experts' does not refer to a registered pass or pass pipeline
func.func @layer(%rows: tensor<?x16xf32>, %off: tensor<5xi64>) -> tensor<?x16xf32> {
  %w1 = nn.weight "w1" {seed = 1 : i64} : tensor<4x32x16xf32>
  %w2 = nn.weight "w2" {seed = 2 : i64} : tensor<4x16x32xf32>
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) {experts = [#moe.expert<>, #moe.expert<placement = cpu, bits = 16>, #moe.expert<pruned = true>, #moe.expert<placement = cpu>]} : (tensor<?x16xf32>, tensor<5xi64>, tensor<4x32x16xf32>, tensor<4x16x32xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// The toy budget policy uses the ExpertInventory analysis: each expert here
// weighs (512 + 512) f32 = 4096 bytes, so 10000 bytes hold two experts; the
// pruned expert 2 is skipped, not placed.
// RUN: moe-opt %s --load-pass-plugin=%moe_libs/MoePinExpertsPlugin.so --pass-pipeline='builtin.module(moe-pin-experts{gpu-budget=10000})' | FileCheck %s --check-prefix=BUDGET
// BUDGET: experts = [#moe.expert<placement = gpu>, #moe.expert<placement = gpu, bits = 16>, #moe.expert<pruned = true>, #moe.expert<placement = cpu>]
// RUN: moe-opt %s --load-pass-plugin=%moe_libs/MoePinExpertsPlugin.so --pass-pipeline='builtin.module(moe-pin-experts{gpu-budget=0})' | FileCheck %s --check-prefix=ZERO
// ZERO: experts = [#moe.expert<placement = cpu>, #moe.expert<placement = cpu, bits = 16>, #moe.expert<pruned = true>, #moe.expert<placement = cpu>]
