// RUN: moe-opt %s -split-input-file -moe-lower-to-plan | FileCheck %s

// Each op becomes a kernel call with explicit parameters, buffers are freed
// after their last use, and results returned by the function are not freed.

// CHECK-LABEL: func.func @mlp
// CHECK-SAME: (%[[X:.+]]: memref<?x16xf32>) -> memref<?x16xf32>
func.func @mlp(%x: tensor<?x16xf32>) -> tensor<?x16xf32> {
  // CHECK: %[[W:.+]] = plan.weight "w" {file = "w.bin"} : memref<32x16xf32>
  %w = nn.weight "w" {file = "w.bin"} : tensor<32x16xf32>
  // CHECK: %[[C:.+]] = plan.constant dense<1.000000e+00> : tensor<16xf32> : memref<16xf32>
  %c = arith.constant dense<1.0> : tensor<16xf32>
  // CHECK: %[[H:.+]] = plan.call "nn.linear"(%[[X]], %[[W]]) : (memref<?x16xf32>, memref<32x16xf32>) -> memref<?x32xf32>
  %h = nn.linear %x, %w : tensor<?x16xf32>, tensor<32x16xf32>
  // CHECK: %[[A:.+]] = plan.call "nn.gelu"(%[[H]]) {params = {approximate = "none"}}
  %a = nn.gelu %h : tensor<?x32xf32>
  // CHECK-NEXT: plan.free %[[H]] : memref<?x32xf32>
  // CHECK: %[[R:.+]] = plan.call "nn.reduce_mean"(%[[A]]) {params = {axes = array<i64: -1>, keepdims = 1 : i64}}
  %r = nn.reduce_mean %a {axes = array<i64: -1>, keepdims = true} : tensor<?x32xf32> -> tensor<?x1xf32>
  // CHECK: %[[S:.+]] = plan.call "nn.slice"(%[[A]]) {params = {axes = array<i64: 0, 1>, ends = array<i64: 9223372036854775807, 16>, starts = array<i64: 0, 0>, steps = array<i64: 1, 1>}}
  %s = nn.slice %a {starts = array<i64: 0, 0>, ends = array<i64: 9223372036854775807, 16>} : tensor<?x32xf32> -> tensor<?x16xf32>
  // CHECK-NEXT: plan.free %[[A]] : memref<?x32xf32>
  // CHECK: %[[M:.+]] = plan.call "nn.mul"(%[[S]], %[[R]])
  %m = nn.mul %s, %r : tensor<?x16xf32>, tensor<?x1xf32>
  // CHECK-NEXT: plan.free %[[R]], %[[S]]
  // CHECK: %[[O:.+]] = plan.call "nn.add"(%[[M]], %[[C]])
  %o = nn.add %m, %c : tensor<?x16xf32>, tensor<16xf32>
  // CHECK-NEXT: plan.free %[[M]] : memref<?x16xf32>
  // CHECK-NEXT: return %[[O]] : memref<?x16xf32>
  return %o : tensor<?x16xf32>
}

// -----

// CHECK-LABEL: func.func @moe_layer
func.func @moe_layer(%x: tensor<?x16xf32>, %logits: tensor<?x4xf32>) -> tensor<?x16xf32> {
  %w1 = nn.weight "w1" {seed = 1 : i64} : tensor<4x32x16xf32>
  %w2 = nn.weight "w2" {seed = 2 : i64} : tensor<4x16x32xf32>
  // CHECK: %[[R:.+]]:2 = plan.call "moe.route"(%{{.*}}) {params = {k = 2 : i64, normalize = 0 : i64, scoring = "sigmoid"}} : (memref<?x4xf32>) -> (memref<?x2xi64>, memref<?x2xf32>)
  %ids, %wts = moe.route %logits {k = 2 : i64, scoring = #moe.scoring<sigmoid>, normalize = false} : tensor<?x4xf32> -> tensor<?x2xi64>, tensor<?x2xf32>
  // CHECK: %[[D:.+]]:3 = plan.call "moe.dispatch"(%{{.*}}, %[[R]]#0) {params = {num_experts = 4 : i64}}
  %rows, %off, %perm = moe.dispatch %x, %ids {num_experts = 4 : i64} : tensor<?x16xf32>, tensor<?x2xi64> -> tensor<?x16xf32>, tensor<5xi64>, tensor<?xi64>
  // CHECK: plan.call "moe.experts"(%[[D]]#0, %[[D]]#1, %{{.*}}, %{{.*}}) {params = {activation = "relu", activation_alpha = 1.000000e+00 : f64, activation_beta = 0.000000e+00 : f64, bits = array<i64: 0, 8, 0, 0>, has_b1 = 0 : i64, has_b2 = 0 : i64, has_b3 = 0 : i64, has_swiglu_limit = 0 : i64, has_w3 = 0 : i64, num_experts = 4 : i64, placement = array<i64: 1, 2, 3, 0>, pruned = array<i64: 0, 0, 1, 0>, swiglu_fusion = 0 : i64}}
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) {activation = #moe.activation<relu>, experts = [#moe.expert<placement = gpu>, #moe.expert<placement = cpu, bits = 8, group_size = 32>, #moe.expert<placement = on_demand, pruned = true>, #moe.expert<>]} : (tensor<?x16xf32>, tensor<5xi64>, tensor<4x32x16xf32>, tensor<4x16x32xf32>) -> tensor<?x16xf32>
  // CHECK: plan.call "moe.combine"
  %out = moe.combine %y, %perm, %wts : tensor<?x16xf32>, tensor<?xi64>, tensor<?x2xf32>
  return %out : tensor<?x16xf32>
}

// -----

// A -1 that the types resolve statically is resolved in the parameters.
// CHECK-LABEL: func.func @reshape
func.func @reshape(%x: tensor<4x6xf32>, %y: tensor<?x6xf32>) -> (tensor<8x3xf32>, tensor<?x3xf32>) {
  // CHECK: plan.call "nn.reshape"(%{{.*}}) {params = {shape = array<i64: 8, 3>}}
  %0 = nn.reshape %x {shape = array<i64: 8, -1>} : tensor<4x6xf32> -> tensor<8x3xf32>
  // CHECK: plan.call "nn.reshape"(%{{.*}}) {params = {shape = array<i64: -1, 3>}}
  %1 = nn.reshape %y {shape = array<i64: -1, 3>} : tensor<?x6xf32> -> tensor<?x3xf32>
  // CHECK: plan.call "nn.cast"(%{{.*}}) {params = {to = 2 : i64}} : (memref<8x3xf32>) -> memref<8x3xbf16>
  %2 = nn.cast %0 : tensor<8x3xf32> to tensor<8x3xbf16>
  return %0, %1 : tensor<8x3xf32>, tensor<?x3xf32>
}

// -----

// CHECK-LABEL: func.func @cuda
// CHECK: plan.call "nn.silu"(%{{.*}}) : (memref<4xf32>) -> memref<4xf32>
// RUN: moe-opt %s -split-input-file -moe-lower-to-plan=device=cuda | FileCheck %s --check-prefix=CUDA
// CUDA-LABEL: func.func @cuda
// CUDA: plan.call "nn.silu"(%{{.*}}) {device = #plan.device<cuda>}
func.func @cuda(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = nn.silu %x : tensor<4xf32>
  return %0 : tensor<4xf32>
}
