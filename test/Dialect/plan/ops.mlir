// RUN: moe-opt %s -split-input-file | FileCheck %s
// RUN: moe-opt %s -split-input-file | moe-opt -split-input-file | FileCheck %s

// CHECK-LABEL: func.func @steps
func.func @steps(%x: memref<?x64xf32>) -> memref<?x64xf32> {
  // CHECK: %[[W:.+]] = plan.weight "norm" {file = "w.bin", offset = 64 : i64} : memref<64xf32>
  %w = plan.weight "norm" {file = "w.bin", offset = 64 : i64} : memref<64xf32>
  // CHECK: %[[C:.+]] = plan.constant dense<[1, 64]> : tensor<2xi64> : memref<2xi64>
  %c = plan.constant dense<[1, 64]> : tensor<2xi64> : memref<2xi64>
  // CHECK: %[[N:.+]] = plan.call "nn.rms_norm"(%{{.*}}, %[[W]]) {params = {eps = 1.000000e-05 : f64}} : (memref<?x64xf32>, memref<64xf32>) -> memref<?x64xf32>
  %n = plan.call "nn.rms_norm"(%x, %w) {params = {eps = 1.0e-5 : f64}} : (memref<?x64xf32>, memref<64xf32>) -> memref<?x64xf32>
  // CHECK: %[[D:.+]] = plan.copy %[[N]] {device = #plan.device<cuda>} : memref<?x64xf32> -> memref<?x64xf32>
  %d = plan.copy %n {device = #plan.device<cuda>} : memref<?x64xf32> -> memref<?x64xf32>
  // CHECK: %[[S:.+]] = plan.call "nn.silu"(%[[D]]) {device = #plan.device<cuda>} : (memref<?x64xf32>) -> memref<?x64xf32>
  %s = plan.call "nn.silu"(%d) {device = #plan.device<cuda>} : (memref<?x64xf32>) -> memref<?x64xf32>
  // CHECK: %[[R:.+]]:2 = plan.call "moe.route"(%[[S]]) {params = {k = 2 : i64, scoring = "softmax", w = array<i64: 1, 2>}}
  %r:2 = plan.call "moe.route"(%s) {params = {k = 2 : i64, scoring = "softmax", w = array<i64: 1, 2>}} : (memref<?x64xf32>) -> (memref<?x2xi64>, memref<?x2xf32>)
  // CHECK: plan.free %[[N]], %[[D]] : memref<?x64xf32>, memref<?x64xf32>
  plan.free %n, %d : memref<?x64xf32>, memref<?x64xf32>
  return %s : memref<?x64xf32>
}
