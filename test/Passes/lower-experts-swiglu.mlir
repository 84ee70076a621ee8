// RUN: moe-opt %s -split-input-file -moe-lower-to-plan | FileCheck %s

// moe.experts passes its activation to the kernel with ONNX Runtime's SwiGLU
// parameters materialised: alpha, beta, the fusion, and the limit when set.

// CHECK-LABEL: func.func @swiglu_interleaved
func.func @swiglu_interleaved(%rows: tensor<?x16xf32>, %off: tensor<3xi64>) -> tensor<?x16xf32> {
  %w1 = nn.weight "w1" {seed = 1 : i64} : tensor<2x64x16xf32>
  %w2 = nn.weight "w2" {seed = 2 : i64} : tensor<2x16x32xf32>
  %b1 = nn.weight "b1" {seed = 3 : i64} : tensor<2x64xf32>
  // CHECK: plan.call "moe.experts"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) {params = {activation = "swiglu", activation_alpha = 1.702000e+00 : f64, activation_beta = 1.000000e+00 : f64, bits = array<i64: 0, 0>, has_b1 = 1 : i64, has_b2 = 0 : i64, has_b3 = 0 : i64, has_swiglu_limit = 1 : i64, has_w3 = 0 : i64, num_experts = 2 : i64, placement = array<i64: 0, 0>, pruned = array<i64: 0, 0>, swiglu_fusion = 1 : i64, swiglu_limit = 7.000000e+00 : f64}}
  // CHECK-SAME: (memref<?x16xf32>, memref<3xi64>, memref<2x64x16xf32>, memref<2x16x32xf32>, memref<2x64xf32>) -> memref<?x16xf32>
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) b1(%b1) {activation = #moe.activation<swiglu>, swiglu_fusion = 1 : i64, activation_alpha = 1.702 : f64, activation_beta = 1.0 : f64, swiglu_limit = 7.0 : f64} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x64x16xf32>, tensor<2x16x32xf32>, tensor<2x64xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Defaults: alpha 1, beta 0, no limit (and no swiglu_limit parameter).
// CHECK-LABEL: func.func @swiglu_unfused_defaults
func.func @swiglu_unfused_defaults(%rows: tensor<?x16xf32>, %off: tensor<3xi64>) -> tensor<?x16xf32> {
  %w1 = nn.weight "w1" {seed = 1 : i64} : tensor<2x32x16xf32>
  %w2 = nn.weight "w2" {seed = 2 : i64} : tensor<2x16x32xf32>
  %w3 = nn.weight "w3" {seed = 3 : i64} : tensor<2x32x16xf32>
  // CHECK: plan.call "moe.experts"
  // CHECK-SAME: activation = "swiglu", activation_alpha = 1.000000e+00 : f64, activation_beta = 0.000000e+00 : f64,
  // CHECK-SAME: has_swiglu_limit = 0 : i64, has_w3 = 1 : i64,
  // CHECK-SAME: swiglu_fusion = 0 : i64}
  // CHECK-NOT: swiglu_limit =
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) w3(%w3) {activation = #moe.activation<swiglu>} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x32x16xf32>, tensor<2x16x32xf32>, tensor<2x32x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// CHECK-LABEL: func.func @other_activations
func.func @other_activations(%rows: tensor<?x16xf32>, %off: tensor<3xi64>) -> (tensor<?x16xf32>, tensor<?x16xf32>) {
  %w1 = nn.weight "w1" {seed = 1 : i64} : tensor<2x32x16xf32>
  %w2 = nn.weight "w2" {seed = 2 : i64} : tensor<2x16x32xf32>
  // CHECK: plan.call "moe.experts"{{.*}}activation = "gelu_tanh"
  %a = moe.experts %rows, %off w1(%w1) w2(%w2) {activation = #moe.activation<gelu_tanh>} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x32x16xf32>, tensor<2x16x32xf32>) -> tensor<?x16xf32>
  // CHECK: plan.call "moe.experts"{{.*}}activation = "identity"
  %b = moe.experts %rows, %off w1(%w1) w2(%w2) {activation = #moe.activation<identity>} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x32x16xf32>, tensor<2x16x32xf32>) -> tensor<?x16xf32>
  return %a, %b : tensor<?x16xf32>, tensor<?x16xf32>
}
