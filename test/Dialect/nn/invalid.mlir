// RUN: moe-opt %s -split-input-file -verify-diagnostics

func.func @weight_two_sources() -> tensor<4xf32> {
  // expected-error @+1 {{needs exactly one source: `file` or `seed`}}
  %0 = nn.weight "w" {file = "a.bin", seed = 1 : i64} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @weight_no_source() -> tensor<4xf32> {
  // expected-error @+1 {{needs exactly one source}}
  %0 = nn.weight "w" : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @weight_dynamic() -> tensor<?xf32> {
  // expected-error @+1 {{must be statically shaped tensor}}
  %0 = nn.weight "w" {seed = 1 : i64} : tensor<?xf32>
  return %0 : tensor<?xf32>
}

// -----

func.func @weight_negative_offset() -> tensor<4xf32> {
  // expected-error @+1 {{has negative offset -8}}
  %0 = nn.weight "w" {file = "a.bin", offset = -8 : i64} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @weight_int_generator() -> tensor<4xi32> {
  // expected-error @+1 {{the generator makes float weights}}
  %0 = nn.weight "w" {seed = 1 : i64} : tensor<4xi32>
  return %0 : tensor<4xi32>
}

// -----

func.func @matmul_k(%a: tensor<4x8xf32>, %b: tensor<7x2xf32>) {
  // expected-error @+1 {{contraction dimensions differ: 8 vs 7}}
  %0 = nn.matmul %a, %b : tensor<4x8xf32>, tensor<7x2xf32>
  return
}

// -----

func.func @matmul_rank(%a: tensor<8xf32>, %b: tensor<8x2xf32>) {
  // expected-error @+1 {{operands must have rank >= 2}}
  %0 = nn.matmul %a, %b : tensor<8xf32>, tensor<8x2xf32>
  return
}

// -----

func.func @linear_features(%x: tensor<?x64xf32>, %w: tensor<32x16xf32>) {
  // expected-error @+1 {{input features 64 do not match}}
  %0 = nn.linear %x, %w : tensor<?x64xf32>, tensor<32x16xf32>
  return
}

// -----

func.func @linear_bias(%x: tensor<?x16xf32>, %w: tensor<32x16xf32>, %b: tensor<16xf32>) {
  // expected-error @+1 {{must be a vector of the weight's out dimension}}
  %0 = nn.linear %x, %w, %b : tensor<?x16xf32>, tensor<32x16xf32>, tensor<16xf32>
  return
}

// -----

func.func @broadcast(%a: tensor<3x4xf32>, %b: tensor<5xf32>) {
  // expected-error @+1 {{do not broadcast}}
  %0 = nn.add %a, %b : tensor<3x4xf32>, tensor<5xf32>
  return
}

// -----

func.func @mixed_types(%a: tensor<4xf32>, %b: tensor<4xi64>) {
  // expected-error @+1 {{different element types}}
  %0 = nn.mul %a, %b : tensor<4xf32>, tensor<4xi64>
  return
}

// -----

func.func @gelu_mode(%a: tensor<4xf32>) {
  // expected-error @+1 {{approximate must be "none" or "tanh"}}
  %0 = nn.gelu %a {approximate = "fast"} : tensor<4xf32>
  return
}

// -----

func.func @silu_int(%a: tensor<4xi32>) {
  // expected-error @+1 {{must be ranked tensor of floating-point values}}
  %0 = nn.silu %a : tensor<4xi32>
  return
}

// -----

func.func @softmax_axis(%a: tensor<4x8xf32>) {
  // expected-error @+1 {{axis 2 is out of range for rank 2}}
  %0 = nn.softmax %a {axis = 2 : i64} : tensor<4x8xf32>
  return
}

// -----

func.func @reduce_axis(%a: tensor<4x8xf32>) {
  // expected-error @+2 {{axis -1 is listed twice}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = nn.reduce_sum %a {axes = array<i64: 1, -1>} : tensor<4x8xf32> -> tensor<4xf32>
  return
}

// -----

func.func @reduce_result(%a: tensor<4x8xf32>) {
  // expected-error @+2 {{inferred type(s) 'tensor<4xf32>' are incompatible with return type(s) of operation 'tensor<8xf32>'}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = nn.reduce_sum %a {axes = array<i64: 1>} : tensor<4x8xf32> -> tensor<8xf32>
  return
}

// -----

func.func @rms_weight(%x: tensor<?x64xf32>, %w: tensor<32xf32>) {
  // expected-error @+1 {{must be a vector of the last dimension}}
  %0 = nn.rms_norm %x, %w : tensor<?x64xf32>, tensor<32xf32>
  return
}

// -----

func.func @layer_norm_eps(%x: tensor<?x64xf32>, %w: tensor<64xf32>) {
  // expected-error @+1 {{eps must be >= 0}}
  %0 = nn.layer_norm %x, %w {eps = -1.0 : f64} : tensor<?x64xf32>, tensor<64xf32>
  return
}

// -----

func.func @reshape_count(%x: tensor<4x6xf32>) {
  // expected-error @+2 {{cannot reshape}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = nn.reshape %x {shape = array<i64: 5, 5>} : tensor<4x6xf32> -> tensor<5x5xf32>
  return
}

// -----

func.func @reshape_two_inferred(%x: tensor<4x6xf32>) {
  // expected-error @+2 {{more than one -1}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = nn.reshape %x {shape = array<i64: -1, -1>} : tensor<4x6xf32> -> tensor<?x?xf32>
  return
}

// -----

func.func @transpose_perm(%x: tensor<4x6xf32>) {
  // expected-error @+2 {{perm is not a permutation}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = nn.transpose %x {perm = array<i64: 0, 0>} : tensor<4x6xf32> -> tensor<4x4xf32>
  return
}

// -----

func.func @gather_indices(%x: tensor<4x6xf32>, %i: tensor<3xf32>) {
  // expected-error @+1 {{must be ranked tensor of 64-bit signless integer or 32-bit signless integer values}}
  %0 = nn.gather %x, %i : tensor<4x6xf32>, tensor<3xf32> -> tensor<3x6xf32>
  return
}

// -----

func.func @concat_dims(%a: tensor<4x6xf32>, %b: tensor<3x6xf32>) {
  // expected-error @+2 {{operands differ in dimension 0}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = nn.concat %a, %b {axis = 1 : i64} : tensor<4x6xf32>, tensor<3x6xf32> -> tensor<4x12xf32>
  return
}

// -----

func.func @slice_step(%a: tensor<4x6xf32>) {
  // expected-error @+2 {{step must not be 0}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = nn.slice %a {starts = array<i64: 0>, ends = array<i64: 2>, steps = array<i64: 0>} : tensor<4x6xf32> -> tensor<2x6xf32>
  return
}

// -----

func.func @cast_shape(%a: tensor<4x6xf32>) {
  // expected-error @+1 {{requires the same shape for all operands and results}}
  %0 = nn.cast %a : tensor<4x6xf32> to tensor<4x5xbf16>
  return
}
