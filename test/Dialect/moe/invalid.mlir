// RUN: moe-opt %s -split-input-file -verify-diagnostics -allow-unregistered-dialect

func.func @route_k(%logits: tensor<?x4xf32>) {
  // expected-error @+1 {{k = 6 exceeds the number of experts 4}}
  %ids, %wts = moe.route %logits {k = 6 : i64} : tensor<?x4xf32> -> tensor<?x6xi64>, tensor<?x6xf32>
  return
}

// -----

func.func @route_k_zero(%logits: tensor<?x4xf32>) {
  // expected-error @+1 {{whose value is positive}}
  %ids, %wts = moe.route %logits {k = 0 : i64} : tensor<?x4xf32> -> tensor<?x0xi64>, tensor<?x0xf32>
  return
}

// -----

func.func @route_types(%logits: tensor<?x4xf32>) {
  // expected-error @+2 {{inferred type(s)}}
  // expected-error @+1 {{failed to infer returned types}}
  %ids, %wts = moe.route %logits {k = 2 : i64} : tensor<?x4xf32> -> tensor<?x3xi64>, tensor<?x2xf32>
  return
}

// -----

func.func @dispatch_tokens(%x: tensor<3x16xf32>, %ids: tensor<4x2xi64>) {
  // expected-error @+2 {{hidden has 3 tokens but ids has 4}}
  // expected-error @+1 {{failed to infer returned types}}
  %r, %o, %p = moe.dispatch %x, %ids {num_experts = 4 : i64} : tensor<3x16xf32>, tensor<4x2xi64> -> tensor<6x16xf32>, tensor<5xi64>, tensor<6xi64>
  return
}

// -----

func.func @experts_w2(%rows: tensor<?x16xf32>, %off: tensor<3xi64>, %w1: tensor<2x32x16xf32>, %w2: tensor<2x32x16xf32>) {
  // expected-error @+1 {{w2 has type 'tensor<2x32x16xf32>' but dimension 1 must be 16}}
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x32x16xf32>, tensor<2x32x16xf32>) -> tensor<?x16xf32>
  return
}

// -----

func.func @experts_offsets(%rows: tensor<?x16xf32>, %off: tensor<4xi64>, %w1: tensor<2x32x16xf32>, %w2: tensor<2x16x32xf32>) {
  // expected-error @+1 {{offsets has type 'tensor<4xi64>' but dimension 0 must be 3}}
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) : (tensor<?x16xf32>, tensor<4xi64>, tensor<2x32x16xf32>, tensor<2x16x32xf32>) -> tensor<?x16xf32>
  return
}

// -----

func.func @experts_count(%rows: tensor<?x16xf32>, %off: tensor<3xi64>, %w1: tensor<2x32x16xf32>, %w2: tensor<2x16x32xf32>) {
  // expected-error @+1 {{has 1 #moe.expert entries for 2 experts}}
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) {experts = [#moe.expert<>]} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x32x16xf32>, tensor<2x16x32xf32>) -> tensor<?x16xf32>
  return
}

// -----

func.func @experts_b3(%rows: tensor<?x16xf32>, %off: tensor<3xi64>, %w1: tensor<2x32x16xf32>, %w2: tensor<2x16x32xf32>, %b3: tensor<2x32xf32>) {
  // expected-error @+1 {{b3 needs w3}}
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) b3(%b3) : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x32x16xf32>, tensor<2x16x32xf32>, tensor<2x32xf32>) -> tensor<?x16xf32>
  return
}

// -----

func.func @experts_fusion_needs_swiglu(%rows: tensor<?x16xf32>, %off: tensor<3xi64>, %w1: tensor<2x64x16xf32>, %w2: tensor<2x16x32xf32>) {
  // expected-error @+1 {{swiglu_fusion = 1 needs activation swiglu, not silu}}
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) {swiglu_fusion = 1 : i64} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x64x16xf32>, tensor<2x16x32xf32>) -> tensor<?x16xf32>
  return
}

// -----

func.func @experts_fusion_range(%rows: tensor<?x16xf32>, %off: tensor<3xi64>, %w1: tensor<2x64x16xf32>, %w2: tensor<2x16x32xf32>) {
  // expected-error @+1 {{attribute 'swiglu_fusion' failed to satisfy constraint: 64-bit signless integer attribute whose minimum value is 0 whose maximum value is 2}}
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) {activation = #moe.activation<swiglu>, swiglu_fusion = 3 : i64} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x64x16xf32>, tensor<2x16x32xf32>) -> tensor<?x16xf32>
  return
}

// -----

func.func @experts_swiglu_needs_w3(%rows: tensor<?x16xf32>, %off: tensor<3xi64>, %w1: tensor<2x32x16xf32>, %w2: tensor<2x16x32xf32>) {
  // expected-error @+1 {{swiglu with swiglu_fusion = 0 needs w3 (the linear part)}}
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) {activation = #moe.activation<swiglu>} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x32x16xf32>, tensor<2x16x32xf32>) -> tensor<?x16xf32>
  return
}

// -----

func.func @experts_fused_no_w3(%rows: tensor<?x16xf32>, %off: tensor<3xi64>, %w1: tensor<2x64x16xf32>, %w2: tensor<2x16x32xf32>, %w3: tensor<2x32x16xf32>) {
  // expected-error @+1 {{swiglu with swiglu_fusion = 2 takes gate and linear parts from w1; w3 and b3 must be absent}}
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) w3(%w3) {activation = #moe.activation<swiglu>, swiglu_fusion = 2 : i64} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x64x16xf32>, tensor<2x16x32xf32>, tensor<2x32x16xf32>) -> tensor<?x16xf32>
  return
}

// -----

func.func @experts_fused_w1_rows(%rows: tensor<?x16xf32>, %off: tensor<3xi64>, %w1: tensor<2x32x16xf32>, %w2: tensor<2x16x32xf32>) {
  // expected-error @+1 {{w1 has type 'tensor<2x32x16xf32>' but dimension 1 must be 64}}
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) {activation = #moe.activation<swiglu>, swiglu_fusion = 1 : i64} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x32x16xf32>, tensor<2x16x32xf32>) -> tensor<?x16xf32>
  return
}

// -----

func.func @experts_unfused_w1_rows(%rows: tensor<?x16xf32>, %off: tensor<3xi64>, %w1: tensor<2x64x16xf32>, %w2: tensor<2x16x32xf32>) {
  // expected-error @+1 {{w1 has type 'tensor<2x64x16xf32>' but dimension 1 must be 32}}
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x64x16xf32>, tensor<2x16x32xf32>) -> tensor<?x16xf32>
  return
}

// -----

func.func @experts_fused_b1(%rows: tensor<?x16xf32>, %off: tensor<3xi64>, %w1: tensor<2x64x16xf32>, %w2: tensor<2x16x32xf32>, %b1: tensor<2x32xf32>) {
  // expected-error @+1 {{b1 has type 'tensor<2x32xf32>' but dimension 1 must be 64}}
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) b1(%b1) {activation = #moe.activation<swiglu>, swiglu_fusion = 1 : i64} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x64x16xf32>, tensor<2x16x32xf32>, tensor<2x32xf32>) -> tensor<?x16xf32>
  return
}

// -----

func.func @experts_fused_odd(%rows: tensor<?x16xf32>, %off: tensor<3xi64>, %w1: tensor<2x63x16xf32>, %w2: tensor<2x16x?xf32>) {
  // expected-error @+1 {{w1 has type 'tensor<2x63x16xf32>' but a fused swiglu needs an even dimension 1 (2F)}}
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) {activation = #moe.activation<swiglu>, swiglu_fusion = 1 : i64} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x63x16xf32>, tensor<2x16x?xf32>) -> tensor<?x16xf32>
  return
}

// -----

func.func @experts_limit(%rows: tensor<?x16xf32>, %off: tensor<3xi64>, %w1: tensor<2x64x16xf32>, %w2: tensor<2x16x32xf32>) {
  // expected-error @+1 {{swiglu_limit must be non-negative, got -1}}
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) {activation = #moe.activation<swiglu>, swiglu_fusion = 1 : i64, swiglu_limit = -1.0 : f64} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x64x16xf32>, tensor<2x16x32xf32>) -> tensor<?x16xf32>
  return
}

// -----

func.func @expert_bits() {
  // expected-error @+1 {{expert bits must be one of 0 (as stored), 16, 8, 4, 3, 2; got 5}}
  "test.use"() {e = #moe.expert<bits = 5>} : () -> ()
  return
}

// -----

func.func @expert_group() {
  // expected-error @+1 {{group_size 64 needs a quantised precision}}
  "test.use"() {e = #moe.expert<group_size = 64>} : () -> ()
  return
}

// -----

func.func @expert_placement() {
  // expected-error @+2 {{invalid expert placement specification: tpu}}
  // expected-error @+1 {{failed to parse Moe_ExpertAttr parameter 'placement'}}
  "test.use"() {e = #moe.expert<placement = tpu>} : () -> ()
  return
}

// -----

func.func @combine_rows(%y: tensor<6x16xf32>, %perm: tensor<6xi64>, %w: tensor<4x2xf32>) {
  // expected-error @+1 {{expert output rows 6, perm 6 and tokens x k 8 must agree}}
  %out = moe.combine %y, %perm, %w : tensor<6x16xf32>, tensor<6xi64>, tensor<4x2xf32>
  return
}

// -----

func.func @all_to_all_ranks(%rows: tensor<?x16xf32>, %off: tensor<9xi64>) {
  // expected-error @+1 {{whose value is positive}}
  %r, %o = moe.all_to_all %rows, %off {ranks = 0 : i64} : tensor<?x16xf32>, tensor<9xi64>
  return
}

// -----

func.func @all_gather_rows(%x: tensor<4x16xf32>, %ids: tensor<3x2xi64>) {
  // expected-error @+1 {{inputs have 4 and 3 rows; they must travel together}}
  %all:2 = moe.all_gather %x, %ids {ranks = 2 : i64} : tensor<4x16xf32>, tensor<3x2xi64> -> tensor<?x16xf32>, tensor<?x2xi64>
  return
}

// -----

func.func @reduce_scatter_rows(%p: tensor<?x16xf32>, %x: tensor<4x16xf32>) {
  // The result has the rows of the second input (this rank's).
  // expected-error @+2 {{'moe.reduce_scatter' op inferred type(s) 'tensor<4x16xf32>' are incompatible with return type(s) of operation 'tensor<5x16xf32>'}}
  // expected-error @+1 {{failed to infer returned types}}
  %mine = moe.reduce_scatter %p, %x {ranks = 2 : i64} : tensor<?x16xf32>, tensor<4x16xf32> -> tensor<5x16xf32>
  return
}
