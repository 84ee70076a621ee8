// RUN: moe-opt %s -split-input-file -verify-diagnostics

// Explicit result types of ops with inferred types: same element type and
// rank, dimensions compatible.

func.func @add_result_dim(%a: tensor<2x16xf32>, %b: tensor<16xf32>) {
  // expected-error @+2 {{inferred type(s) 'tensor<2x16xf32>' are incompatible with return type(s) of operation 'tensor<3x16xf32>'}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = nn.add %a, %b : tensor<2x16xf32>, tensor<16xf32> -> tensor<3x16xf32>
  return
}

// -----

func.func @add_result_rank(%a: tensor<?x16xf32>, %b: tensor<16xf32>) {
  // expected-error @+2 {{incompatible with return type(s) of operation 'tensor<1x?x16xf32>'}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = nn.add %a, %b : tensor<?x16xf32>, tensor<16xf32> -> tensor<1x?x16xf32>
  return
}

// -----

func.func @matmul_result_type(%a: tensor<?x16xf32>, %b: tensor<16x8xf32>) {
  // expected-error @+2 {{incompatible with return type(s) of operation 'tensor<?x8xf16>'}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = nn.matmul %a, %b : tensor<?x16xf32>, tensor<16x8xf32> -> tensor<?x8xf16>
  return
}

// -----

func.func @relu_result(%a: tensor<?x16xf32>) {
  // expected-error @+2 {{inferred type(s) 'tensor<?x16xf32>' are incompatible with return type(s) of operation 'tensor<?x8xf32>'}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = nn.relu %a : tensor<?x16xf32> -> tensor<?x8xf32>
  return
}

// -----

func.func @neg_bool(%a: tensor<4xi1>) {
  // expected-error @+1 {{must be ranked tensor of floating-point or 64-bit signless integer or 32-bit signless integer values}}
  %0 = nn.neg %a : tensor<4xi1>
  return
}

// -----

func.func @cos_int(%a: tensor<4xi64>) {
  // expected-error @+1 {{must be ranked tensor of floating-point values}}
  %0 = nn.cos %a : tensor<4xi64>
  return
}

// -----

func.func @compare_types(%a: tensor<4xf32>, %b: tensor<4xi64>) {
  // expected-error @+1 {{different element types}}
  %0 = nn.less %a, %b : tensor<4xf32>, tensor<4xi64>
  return
}

// -----

func.func @greater_bool(%a: tensor<4xi1>) {
  // expected-error @+1 {{must be ranked tensor of 32-bit float or 64-bit signless integer or 32-bit signless integer values}}
  %0 = nn.greater %a, %a : tensor<4xi1>, tensor<4xi1>
  return
}

// -----

func.func @compare_result(%a: tensor<4xf32>) {
  // expected-error @+2 {{incompatible with return type(s) of operation 'tensor<4x1xi1>'}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = nn.equal %a, %a : tensor<4xf32>, tensor<4xf32> -> tensor<4x1xi1>
  return
}

// -----

func.func @and_float(%a: tensor<4xf32>) {
  // expected-error @+1 {{must be ranked tensor of 1-bit signless integer values}}
  %0 = nn.and %a, %a : tensor<4xf32>, tensor<4xf32>
  return
}

// -----

func.func @where_condition(%c: tensor<3xi1>, %x: tensor<4xf32>) {
  // expected-error @+1 {{condition 'tensor<3xi1>' does not broadcast with 'tensor<4xf32>'}}
  %0 = nn.where %c, %x, %x : tensor<3xi1>, tensor<4xf32>, tensor<4xf32>
  return
}

// -----

func.func @where_types(%c: tensor<4xi1>, %x: tensor<4xf32>, %y: tensor<4xi64>) {
  // expected-error @+1 {{different element types}}
  %0 = nn.where %c, %x, %y : tensor<4xi1>, tensor<4xf32>, tensor<4xi64>
  return
}

// -----

func.func @clip_bounds(%x: tensor<4xf32>, %b: tensor<1xf32>) {
  // expected-error @+1 {{min must be a rank-0 tensor of 'f32', got 'tensor<1xf32>'}}
  %0 = nn.clip %x, %b, %b : tensor<4xf32>, tensor<1xf32>, tensor<1xf32>
  return
}

// -----

func.func @clip_types(%x: tensor<4xf32>, %b: tensor<i64>, %c: tensor<f32>) {
  // expected-error @+1 {{max must be a rank-0 tensor of 'f32'}}
  %0 = nn.clip %x, %c, %b : tensor<4xf32>, tensor<f32>, tensor<i64>
  return
}

// -----

func.func @shape_size(%x: tensor<2x?x16xf32>) {
  // expected-error @+1 {{result dimension 0 is 3 but must be 2}}
  %0 = nn.shape %x {start = -2 : i64} : tensor<2x?x16xf32> -> tensor<3xi64>
  return
}

// -----

func.func @shape_int32(%x: tensor<2x?x16xf32>) {
  // expected-error @+1 {{must be ranked tensor of 64-bit signless integer values}}
  %0 = nn.shape %x : tensor<2x?x16xf32> -> tensor<3xi32>
  return
}

// -----

func.func @constant_of_shape_rank(%s: tensor<2xi64>) {
  // expected-error @+1 {{shape must have 3 elements, got 'tensor<2xi64>'}}
  %0 = nn.constant_of_shape %s : tensor<2xi64> -> tensor<?x?x?xf32>
  return
}

// -----

func.func @constant_of_shape_value(%s: tensor<2xi64>) {
  // expected-error @+1 {{is not an integer but the result is 'i32'}}
  %0 = nn.constant_of_shape %s {value = 1.5 : f64} : tensor<2xi64> -> tensor<?x?xi32>
  return
}

// -----

func.func @range_rank(%a: tensor<1xi64>) {
  // expected-error @+1 {{start, limit and delta must have rank 0}}
  %0 = nn.range %a, %a, %a : tensor<1xi64> -> tensor<?xi64>
  return
}

// -----

func.func @range_types(%a: tensor<i64>) {
  // expected-error @+1 {{failed to verify that all of {start, result} have same element type}}
  %0 = nn.range %a, %a, %a : tensor<i64> -> tensor<?xi32>
  return
}

// -----

func.func @expand_rank(%x: tensor<?x4xf32>, %s: tensor<3xi64>) {
  // expected-error @+1 {{result must have rank 3}}
  %0 = nn.expand %x, %s : tensor<?x4xf32>, tensor<3xi64> -> tensor<?x4xf32>
  return
}

// -----

func.func @expand_dim(%x: tensor<?x4xf32>, %s: tensor<?xi64>) {
  // expected-error @+1 {{result dimension 2 (5) does not broadcast from input dimension 1 (4)}}
  %0 = nn.expand %x, %s : tensor<?x4xf32>, tensor<?xi64> -> tensor<2x?x5xf32>
  return
}

// -----

func.func @tile_repeats(%x: tensor<2x3xf32>, %r: tensor<3xi64>) {
  // expected-error @+1 {{repeats must have 2 elements}}
  %0 = nn.tile %x, %r : tensor<2x3xf32>, tensor<3xi64> -> tensor<?x?xf32>
  return
}

// -----

func.func @tile_multiple(%x: tensor<2x3xf32>, %r: tensor<2xi64>) {
  // expected-error @+1 {{result dimension 1 (7) is not a multiple of the input's (3)}}
  %0 = nn.tile %x, %r : tensor<2x3xf32>, tensor<2xi64> -> tensor<?x7xf32>
  return
}

// -----

func.func @dynamic_reshape_count(%x: tensor<4x6xf32>, %s: tensor<2xi64>) {
  // expected-error @+1 {{cannot reshape 'tensor<4x6xf32>' (24 elements) into 'tensor<5x5xf32>'}}
  %0 = nn.dynamic_reshape %x, %s : tensor<4x6xf32>, tensor<2xi64> -> tensor<5x5xf32>
  return
}

// -----

func.func @dynamic_reshape_dtype(%x: tensor<4x6xf32>, %s: tensor<2xi64>) {
  // expected-error @+1 {{result element type 'i64' differs from the input's 'f32'}}
  %0 = nn.dynamic_reshape %x, %s : tensor<4x6xf32>, tensor<2xi64> -> tensor<?x?xi64>
  return
}

// -----

func.func @dynamic_reshape_allowzero(%x: tensor<4x6xf32>, %s: tensor<2xi64>) {
  // expected-error @+1 {{allowzero must be 0 or 1, got 2}}
  %0 = nn.dynamic_reshape %x, %s {allowzero = 2 : i64} : tensor<4x6xf32>, tensor<2xi64> -> tensor<?x?xf32>
  return
}

// -----

func.func @squeeze_not_one(%x: tensor<?x2xf32>) {
  // expected-error @+1 {{squeezed dimension 1 has size 2, not 1}}
  %0 = nn.squeeze %x {axes = array<i64: 1>} : tensor<?x2xf32> -> tensor<?xf32>
  return
}

// -----

func.func @squeeze_axis(%x: tensor<?x1xf32>) {
  // expected-error @+1 {{axis 2 is out of range for rank 2}}
  %0 = nn.squeeze %x {axes = array<i64: 2>} : tensor<?x1xf32> -> tensor<?xf32>
  return
}

// -----

func.func @squeeze_all(%x: tensor<1x4x1xf32>) {
  // expected-error @+1 {{result rank 2 does not fit squeezing 'tensor<1x4x1xf32>'}}
  %0 = nn.squeeze %x : tensor<1x4x1xf32> -> tensor<4x1xf32>
  return
}

// -----

func.func @unsqueeze_twice(%x: tensor<4xf32>) {
  // expected-error @+1 {{axis -3 is listed twice}}
  %0 = nn.unsqueeze %x {axes = array<i64: 0, -3>} : tensor<4xf32> -> tensor<1x1x4xf32>
  return
}

// -----

func.func @unsqueeze_dims(%x: tensor<4xf32>) {
  // expected-error @+1 {{result dimension 1 is 2 but must be 1}}
  %0 = nn.unsqueeze %x {axes = array<i64: 1>} : tensor<4xf32> -> tensor<4x2xf32>
  return
}

// -----

func.func @flatten_axis(%x: tensor<2x3xf32>) {
  // expected-error @+1 {{axis 3 is out of range [-2, 2]}}
  %0 = nn.flatten %x {axis = 3 : i64} : tensor<2x3xf32> -> tensor<6x1xf32>
  return
}

// -----

func.func @flatten_dims(%x: tensor<2x3x4xf32>) {
  // expected-error @+1 {{result dimension 1 is 4 but must be 12}}
  %0 = nn.flatten %x : tensor<2x3x4xf32> -> tensor<2x4xf32>
  return
}

// -----

func.func @dynamic_slice_lengths(%x: tensor<4x6xf32>, %a: tensor<1xi64>, %b: tensor<2xi64>) {
  // expected-error @+1 {{ends must have 1 elements, got 'tensor<2xi64>'}}
  %0 = nn.dynamic_slice %x, %a, %b, %a, %a : tensor<4x6xf32>, tensor<1xi64>, tensor<2xi64>, tensor<1xi64>, tensor<1xi64> -> tensor<?x?xf32>
  return
}

// -----

func.func @dynamic_slice_grows(%x: tensor<4x6xf32>, %a: tensor<1xi64>) {
  // expected-error @+1 {{result dimension 1 (7) exceeds the input's (6)}}
  %0 = nn.dynamic_slice %x, %a, %a, %a, %a : tensor<4x6xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64> -> tensor<?x7xf32>
  return
}

// -----

func.func @gather_nd_tuple(%d: tensor<4x5xf32>, %i: tensor<?x3xi64>) {
  // expected-error @+1 {{index tuples have 3 entries; expected 1 to 2}}
  %0 = nn.gather_nd %d, %i : tensor<4x5xf32>, tensor<?x3xi64> -> tensor<?xf32>
  return
}

// -----

func.func @gather_nd_result(%d: tensor<4x5x6xf32>, %i: tensor<?x2xi64>) {
  // expected-error @+1 {{result must have rank 2, got 'tensor<?xf32>'}}
  %0 = nn.gather_nd %d, %i : tensor<4x5x6xf32>, tensor<?x2xi64> -> tensor<?xf32>
  return
}

// -----

func.func @gather_nd_batch(%d: tensor<4x5xf32>, %i: tensor<4x1xi64>) {
  // expected-error @+1 {{batch_dims 2 must be in [0, 2)}}
  %0 = nn.gather_nd %d, %i {batch_dims = 2 : i64} : tensor<4x5xf32>, tensor<4x1xi64> -> tensor<4xf32>
  return
}

// -----

func.func @scatter_elements_reduction(%d: tensor<4x8xf32>, %i: tensor<4x2xi64>, %u: tensor<4x2xf32>) {
  // expected-error @+1 {{reduction must be none, add, mul, max or min, got "sum"}}
  %0 = nn.scatter_elements %d, %i, %u {reduction = "sum"} : tensor<4x8xf32>, tensor<4x2xi64>, tensor<4x2xf32>
  return
}

// -----

func.func @scatter_elements_updates(%d: tensor<4x8xf32>, %i: tensor<4x2xi64>, %u: tensor<4x3xf32>) {
  // expected-error @+1 {{updates 'tensor<4x3xf32>' must have the shape of indices and the element type of data}}
  %0 = nn.scatter_elements %d, %i, %u : tensor<4x8xf32>, tensor<4x2xi64>, tensor<4x3xf32>
  return
}

// -----

func.func @scatter_elements_axis(%d: tensor<4x8xf32>, %i: tensor<4x2xi64>, %u: tensor<4x2xf32>) {
  // expected-error @+1 {{axis -3 is out of range for rank 2}}
  %0 = nn.scatter_elements %d, %i, %u {axis = -3 : i64} : tensor<4x8xf32>, tensor<4x2xi64>, tensor<4x2xf32>
  return
}

// -----

func.func @scatter_nd_updates(%d: tensor<8x16xf32>, %i: tensor<?x1xi64>, %u: tensor<?x8xf32>) {
  // expected-error @+1 {{updates 'tensor<?x8xf32>' must have shape indices[:-1] + data[1:]}}
  %0 = nn.scatter_nd %d, %i, %u : tensor<8x16xf32>, tensor<?x1xi64>, tensor<?x8xf32>
  return
}

// -----

func.func @scatter_nd_result(%d: tensor<8x16xf32>, %i: tensor<?x1xi64>, %u: tensor<?x16xf32>) {
  // expected-error @+2 {{incompatible with return type(s) of operation 'tensor<8x8xf32>'}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = nn.scatter_nd %d, %i, %u : tensor<8x16xf32>, tensor<?x1xi64>, tensor<?x16xf32> -> tensor<8x8xf32>
  return
}

// -----

func.func @nonzero_rows(%x: tensor<?x8xi1>) {
  // expected-error @+1 {{result dimension 0 is 3 but must be 2}}
  %0 = nn.nonzero %x : tensor<?x8xi1> -> tensor<3x?xi64>
  return
}

// -----

func.func @one_hot_values(%i: tensor<?xi64>, %d: tensor<i64>, %v: tensor<3xf32>) {
  // expected-error @+1 {{values must have 2 elements, got 'tensor<3xf32>'}}
  %0 = nn.one_hot %i, %d, %v : tensor<?xi64>, tensor<i64>, tensor<3xf32> -> tensor<?x?xf32>
  return
}

// -----

func.func @one_hot_depth(%i: tensor<?xi64>, %d: tensor<2xi64>, %v: tensor<2xf32>) {
  // expected-error @+1 {{depth must have rank 0 or shape [1], got 'tensor<2xi64>'}}
  %0 = nn.one_hot %i, %d, %v : tensor<?xi64>, tensor<2xi64>, tensor<2xf32> -> tensor<?x?xf32>
  return
}

// -----

func.func @one_hot_axis(%i: tensor<?xi64>, %d: tensor<i64>, %v: tensor<2xf32>) {
  // expected-error @+1 {{axis 2 is out of range for the result rank 2}}
  %0 = nn.one_hot %i, %d, %v {axis = 2 : i64} : tensor<?xi64>, tensor<i64>, tensor<2xf32> -> tensor<?x?xf32>
  return
}

// -----

func.func @topk_dims(%x: tensor<?x64xf32>, %k: tensor<1xi64>) {
  // expected-error @+1 {{values has 65 elements along the axis; the input only 64}}
  %v, %i = nn.topk %x, %k : tensor<?x64xf32>, tensor<1xi64> -> tensor<?x65xf32>, tensor<?x?xi64>
  return
}

// -----

func.func @topk_k(%x: tensor<?x64xf32>, %k: tensor<i64>) {
  // expected-error @+1 {{k must be a vector, got 'tensor<i64>'}}
  %v, %i = nn.topk %x, %k : tensor<?x64xf32>, tensor<i64> -> tensor<?x?xf32>, tensor<?x?xi64>
  return
}

// -----

func.func @topk_largest(%x: tensor<?x64xf32>, %k: tensor<1xi64>) {
  // expected-error @+1 {{largest must be 0 or 1, got 2}}
  %v, %i = nn.topk %x, %k {largest = 2 : i64} : tensor<?x64xf32>, tensor<1xi64> -> tensor<?x?xf32>, tensor<?x?xi64>
  return
}

// -----

func.func @topk_shapes(%x: tensor<?x64xf32>, %k: tensor<1xi64>) {
  // expected-error @+1 {{values and indices differ in shape}}
  %v, %i = nn.topk %x, %k : tensor<?x64xf32>, tensor<1xi64> -> tensor<?x4xf32>, tensor<?x5xi64>
  return
}

// -----

func.func @split_sum(%x: tensor<?x64xf32>, %s: tensor<2xi64>) {
  // expected-error @+1 {{parts sum to 60 elements along the axis, not 64}}
  %a, %b = nn.split %x, %s {axis = 1 : i64} : tensor<?x64xf32>, tensor<2xi64> -> tensor<?x30xf32>, tensor<?x30xf32>
  return
}

// -----

func.func @split_equal(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{part 0 has 16 elements along the axis; splitting 64 into 2 gives 32}}
  %a, %b = nn.split %x {axis = 1 : i64} : tensor<?x64xf32> -> tensor<?x16xf32>, tensor<?x48xf32>
  return
}

// -----

func.func @split_count(%x: tensor<?x64xf32>, %s: tensor<3xi64>) {
  // expected-error @+1 {{split must have 2 elements, got 'tensor<3xi64>'}}
  %a, %b = nn.split %x, %s {axis = 1 : i64} : tensor<?x64xf32>, tensor<3xi64> -> tensor<?x?xf32>, tensor<?x?xf32>
  return
}

// -----

func.func @dequantize_bits(%q: tensor<4x8xui8>, %s: tensor<4xf32>, %z: tensor<0xui8>) {
  // expected-error @+1 {{bits must be 2, 4 or 8, got 3}}
  %0 = nn.dequantize %q, %s, %z {bits = 3 : i64} : tensor<4x8xui8>, tensor<4xf32>, tensor<0xui8> -> tensor<4x?xf32>
  return
}

// -----

func.func @dequantize_cols(%q: tensor<4x8xui8>, %s: tensor<4xf32>, %z: tensor<0xui8>) {
  // expected-error @+1 {{input dimension 1 is 8 but must be 4}}
  %0 = nn.dequantize %q, %s, %z {bits = 4 : i64} : tensor<4x8xui8>, tensor<4xf32>, tensor<0xui8> -> tensor<4x8xf32>
  return
}

// -----

func.func @dequantize_blocks(%q: tensor<4x8xui8>, %s: tensor<4x3xf32>, %z: tensor<0xui8>) {
  // expected-error @+1 {{scales have 3 blocks per row, which do not divide 16 columns}}
  %0 = nn.dequantize %q, %s, %z {bits = 4 : i64} : tensor<4x8xui8>, tensor<4x3xf32>, tensor<0xui8> -> tensor<4x16xf32>
  return
}

// -----

func.func @dequantize_zero_points(%q: tensor<4x8xui8>, %s: tensor<4x2xf32>, %z: tensor<2xui8>) {
  // expected-error @+1 {{zero_points must be empty ([0]) or shaped like the scales packed along the last axis}}
  %0 = nn.dequantize %q, %s, %z {bits = 4 : i64} : tensor<4x8xui8>, tensor<4x2xf32>, tensor<2xui8> -> tensor<4x16xf32>
  return
}

// -----

func.func @dequantize_signless(%q: tensor<4x8xi8>, %s: tensor<4xf32>, %z: tensor<0xui8>) {
  // expected-error @+1 {{must be ranked tensor of 8-bit unsigned integer values}}
  %0 = nn.dequantize %q, %s, %z {bits = 8 : i64} : tensor<4x8xi8>, tensor<4xf32>, tensor<0xui8> -> tensor<4x8xf32>
  return
}
