// RUN: moe-opt %s -split-input-file -verify-diagnostics

func.func @constant_type() {
  // expected-error @+1 {{value of type 'tensor<2xi64>' does not match the buffer type 'memref<3xi64>'}}
  %c = plan.constant dense<[1, 64]> : tensor<2xi64> : memref<3xi64>
  return
}

// -----

func.func @call_param(%x: memref<4xf32>) {
  // expected-error @+1 {{parameter 'bad' of kernel 'nn.silu' is unit, not an integer, float, string or array of them}}
  %y = plan.call "nn.silu"(%x) {params = {bad}} : (memref<4xf32>) -> memref<4xf32>
  return
}

// -----

func.func @call_empty(%x: memref<4xf32>) {
  // expected-error @+1 {{kernel name must not be empty}}
  %y = plan.call ""(%x) : (memref<4xf32>) -> memref<4xf32>
  return
}

// -----

func.func @copy_types(%x: memref<4xf32>) {
  // expected-error @+1 {{cannot copy 'memref<4xf32>' into 'memref<4xf16>'}}
  %y = plan.copy %x : memref<4xf32> -> memref<4xf16>
  return
}

// -----

func.func @free_argument(%x: memref<4xf32>) {
  // expected-error @+1 {{can only free buffers produced by plan.call or plan.copy}}
  plan.free %x : memref<4xf32>
  return
}

// -----

func.func @weight_dynamic() {
  // expected-error @+1 {{must be statically shaped memref}}
  %w = plan.weight "w" {seed = 1 : i64} : memref<?xf32>
  return
}

// -----

func.func @weight_bits_count() {
  // expected-error @+1 {{needs one `bits` and `group_sizes` entry per index of dimension 0 (2)}}
  %w = plan.weight "w" {seed = 1 : i64, bits = array<i64: 4>, group_sizes = array<i64: 32>} : memref<2x4x32xf32>
  return
}

// -----

func.func @weight_bits_value() {
  // expected-error @+1 {{slice 1: bits 5 is not 0, 16, 8, 4, 3, 2 or 1 (absent)}}
  %w = plan.weight "w" {seed = 1 : i64, bits = array<i64: 4, 5>, group_sizes = array<i64: 32, 32>} : memref<2x4x32xf32>
  return
}

// -----

func.func @weight_group() {
  // expected-error @+1 {{slice 0: group size 16 is not 32, 64 or 128}}
  %w = plan.weight "w" {seed = 1 : i64, bits = array<i64: 4, 0>, group_sizes = array<i64: 16, 0>} : memref<2x4x32xf32>
  return
}

// -----

func.func @weight_quant_type() {
  // expected-error @+1 {{only f32 weights of rank >= 2 can be quantised}}
  %w = plan.weight "w" {seed = 1 : i64, bits = array<i64: 4, 4, 4, 4>, group_sizes = array<i64: 32, 32, 32, 32>} : memref<4xf32>
  return
}

// -----

func.func @weight_scale() {
  // expected-error @+1 {{quant_scale must be "f16" or "f32", got "bf16"}}
  %w = plan.weight "w" {seed = 1 : i64, quant_scale = "bf16"} : memref<4xf32>
  return
}
