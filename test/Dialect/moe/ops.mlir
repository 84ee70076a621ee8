// RUN: moe-opt %s -split-input-file | FileCheck %s
// RUN: moe-opt %s -split-input-file | moe-opt -split-input-file | FileCheck %s
// RUN: moe-opt %s -split-input-file -mlir-print-op-generic | moe-opt -split-input-file | FileCheck %s

// CHECK-LABEL: func.func @layer
func.func @layer(%x: tensor<?x64xf32>, %logits: tensor<?x8xf32>, %w1: tensor<8x128x64xf32>, %w2: tensor<8x64x128xf32>, %w3: tensor<8x128x64xf32>) -> tensor<?x64xf32> {
  // CHECK: %[[IDS:.+]], %[[WTS:.+]] = moe.route %{{.*}} {k = 2 : i64} : tensor<?x8xf32> -> tensor<?x2xi64>, tensor<?x2xf32>
  %ids, %wts = moe.route %logits {k = 2 : i64} : tensor<?x8xf32> -> tensor<?x2xi64>, tensor<?x2xf32>
  // CHECK: %[[ROWS:.+]], %[[OFF:.+]], %[[PERM:.+]] = moe.dispatch %{{.*}}, %[[IDS]] {num_experts = 8 : i64} : tensor<?x64xf32>, tensor<?x2xi64> -> tensor<?x64xf32>, tensor<9xi64>, tensor<?xi64>
  %rows, %off, %perm = moe.dispatch %x, %ids {num_experts = 8 : i64} : tensor<?x64xf32>, tensor<?x2xi64> -> tensor<?x64xf32>, tensor<9xi64>, tensor<?xi64>
  // CHECK: %[[Y:.+]] = moe.experts %[[ROWS]], %[[OFF]] w1(%{{.*}}) w2(%{{.*}}) w3(%{{.*}}) :
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) w3(%w3) : (tensor<?x64xf32>, tensor<9xi64>, tensor<8x128x64xf32>, tensor<8x64x128xf32>, tensor<8x128x64xf32>) -> tensor<?x64xf32>
  // CHECK: moe.combine %[[Y]], %[[PERM]], %[[WTS]] : tensor<?x64xf32>, tensor<?xi64>, tensor<?x2xf32>
  %out = moe.combine %y, %perm, %wts : tensor<?x64xf32>, tensor<?xi64>, tensor<?x2xf32>
  return %out : tensor<?x64xf32>
}

// -----

// CHECK-LABEL: func.func @route_options
func.func @route_options(%logits: tensor<5x8xf32>) -> (tensor<5x3xi64>, tensor<5x3xf32>) {
  // CHECK: moe.route %{{.*}} {k = 3 : i64, normalize = false, scoring = #moe.scoring<sigmoid>} : tensor<5x8xf32> -> tensor<5x3xi64>, tensor<5x3xf32>
  %ids, %wts = moe.route %logits {k = 3 : i64, scoring = #moe.scoring<sigmoid>, normalize = false} : tensor<5x8xf32> -> tensor<5x3xi64>, tensor<5x3xf32>
  return %ids, %wts : tensor<5x3xi64>, tensor<5x3xf32>
}

// -----

// CHECK-LABEL: func.func @experts_properties
func.func @experts_properties(%rows: tensor<?x16xf32>, %off: tensor<3xi64>, %w1: tensor<2x32x16xf32>, %w2: tensor<2x16x32xf32>, %b1: tensor<2x32xf32>, %b2: tensor<2x16xf32>) -> tensor<?x16xf32> {
  // CHECK: moe.experts %{{.*}}, %{{.*}} w1(%{{.*}}) w2(%{{.*}}) b1(%{{.*}}) b2(%{{.*}}) {activation = #moe.activation<gelu>, experts = [#moe.expert<placement = gpu, bits = 4, group_size = 128>, #moe.expert<placement = cpu, pruned = true>]}
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) b1(%b1) b2(%b2) {activation = #moe.activation<gelu>, experts = [#moe.expert<placement = gpu, bits = 4, group_size = 128>, #moe.expert<placement = cpu, pruned = true>]} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x32x16xf32>, tensor<2x16x32xf32>, tensor<2x32xf32>, tensor<2x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// ONNX Runtime's SwiGLU: a fused w1 has 2F rows (F = w2 dimension 2) and b1
// 2F entries; defaults (alpha 1, beta 0, fusion 0, no limit) are not printed.
// CHECK-LABEL: func.func @experts_swiglu
func.func @experts_swiglu(%rows: tensor<?x16xf32>, %off: tensor<3xi64>, %f1: tensor<2x64x16xf32>, %w1: tensor<2x32x16xf32>, %w2: tensor<2x16x32xf32>, %w3: tensor<2x32x16xf32>, %c1: tensor<2x64xf32>, %b1: tensor<2x32xf32>, %b3: tensor<2x32xf32>) -> (tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>) {
  // CHECK: moe.experts %{{.*}}, %{{.*}} w1(%{{.*}}) w2(%{{.*}}) b1(%{{.*}}) {activation = #moe.activation<swiglu>, activation_alpha = 1.702000e+00 : f64, activation_beta = 1.000000e+00 : f64, swiglu_fusion = 1 : i64, swiglu_limit = 7.000000e+00 : f64}
  %a = moe.experts %rows, %off w1(%f1) w2(%w2) b1(%c1) {activation = #moe.activation<swiglu>, swiglu_fusion = 1 : i64, activation_alpha = 1.702 : f64, activation_beta = 1.0 : f64, swiglu_limit = 7.0 : f64} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x64x16xf32>, tensor<2x16x32xf32>, tensor<2x64xf32>) -> tensor<?x16xf32>
  // CHECK: moe.experts %{{.*}}, %{{.*}} w1(%{{.*}}) w2(%{{.*}}) {activation = #moe.activation<swiglu>, swiglu_fusion = 2 : i64}
  %b = moe.experts %rows, %off w1(%f1) w2(%w2) {activation = #moe.activation<swiglu>, swiglu_fusion = 2 : i64, activation_alpha = 1.0 : f64} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x64x16xf32>, tensor<2x16x32xf32>) -> tensor<?x16xf32>
  // CHECK: moe.experts %{{.*}}, %{{.*}} w1(%{{.*}}) w2(%{{.*}}) w3(%{{.*}}) b1(%{{.*}}) b3(%{{.*}}) {activation = #moe.activation<swiglu>, swiglu_limit = 0.000000e+00 : f64}
  %c = moe.experts %rows, %off w1(%w1) w2(%w2) w3(%w3) b1(%b1) b3(%b3) {activation = #moe.activation<swiglu>, swiglu_limit = 0.0 : f64} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x32x16xf32>, tensor<2x16x32xf32>, tensor<2x32x16xf32>, tensor<2x32xf32>, tensor<2x32xf32>) -> tensor<?x16xf32>
  return %a, %b, %c : tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>
}

// -----

// The other activations ignore alpha, beta and the limit, as ONNX Runtime's do.
// CHECK-LABEL: func.func @experts_activations
func.func @experts_activations(%rows: tensor<?x16xf32>, %off: tensor<3xi64>, %w1: tensor<2x32x16xf32>, %w2: tensor<2x16x32xf32>) -> (tensor<?x16xf32>, tensor<?x16xf32>) {
  // CHECK: {activation = #moe.activation<gelu_tanh>}
  %a = moe.experts %rows, %off w1(%w1) w2(%w2) {activation = #moe.activation<gelu_tanh>} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x32x16xf32>, tensor<2x16x32xf32>) -> tensor<?x16xf32>
  // CHECK: {activation = #moe.activation<identity>, activation_alpha = 1.702000e+00 : f64, swiglu_limit = 7.000000e+00 : f64}
  %b = moe.experts %rows, %off w1(%w1) w2(%w2) {activation = #moe.activation<identity>, activation_alpha = 1.702 : f64, swiglu_limit = 7.0 : f64} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x32x16xf32>, tensor<2x16x32xf32>) -> tensor<?x16xf32>
  return %a, %b : tensor<?x16xf32>, tensor<?x16xf32>
}

// -----

// CHECK-LABEL: func.func @all_to_all
func.func @all_to_all(%rows: tensor<?x16xf32>, %off: tensor<9xi64>) -> (tensor<?x16xf32>, tensor<9xi64>) {
  // CHECK: moe.all_to_all %{{.*}}, %{{.*}} {chunks = 4 : i64, ranks = 4 : i64, schedule = #moe.schedule<pipelined>} : tensor<?x16xf32>, tensor<9xi64>
  %r, %o = moe.all_to_all %rows, %off {ranks = 4 : i64, schedule = #moe.schedule<pipelined>, chunks = 4 : i64} : tensor<?x16xf32>, tensor<9xi64>
  return %r, %o : tensor<?x16xf32>, tensor<9xi64>
}

// -----

// CHECK-LABEL: func.func @tensor_parallel_collectives
func.func @tensor_parallel_collectives(%x: tensor<4x16xf32>, %ids: tensor<4x2xi64>) -> tensor<4x16xf32> {
  // CHECK: %[[G:.*]]:2 = moe.all_gather %{{.*}}, %{{.*}} {ranks = 2 : i64} : tensor<4x16xf32>, tensor<4x2xi64> -> tensor<?x16xf32>, tensor<?x2xi64>
  %all:2 = moe.all_gather %x, %ids {ranks = 2 : i64} : tensor<4x16xf32>, tensor<4x2xi64> -> tensor<?x16xf32>, tensor<?x2xi64>
  // CHECK: moe.reduce_scatter %[[G]]#0, %{{.*}} {ranks = 2 : i64} : tensor<?x16xf32>, tensor<4x16xf32> -> tensor<4x16xf32>
  %mine = moe.reduce_scatter %all#0, %x {ranks = 2 : i64} : tensor<?x16xf32>, tensor<4x16xf32> -> tensor<4x16xf32>
  return %mine : tensor<4x16xf32>
}
