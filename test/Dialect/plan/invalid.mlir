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
