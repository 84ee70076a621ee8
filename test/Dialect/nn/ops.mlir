// RUN: moe-opt %s -split-input-file | FileCheck %s
// RUN: moe-opt %s -split-input-file | moe-opt -split-input-file | FileCheck %s
// RUN: moe-opt %s -split-input-file -mlir-print-op-generic | moe-opt -split-input-file | FileCheck %s

// CHECK-LABEL: func.func @weights
func.func @weights() -> (tensor<8x64xf32>, tensor<4xbf16>) {
  // CHECK: nn.weight "layers.0.w1" {file = "weights.bin", offset = 4096 : i64} : tensor<8x64xf32>
  %0 = nn.weight "layers.0.w1" {file = "weights.bin", offset = 4096 : i64} : tensor<8x64xf32>
  // CHECK: nn.weight "gen" {scale = 5.000000e-02 : f64, seed = 7 : i64} : tensor<4xbf16>
  %1 = nn.weight "gen" {seed = 7 : i64, scale = 0.05 : f64} : tensor<4xbf16>
  return %0, %1 : tensor<8x64xf32>, tensor<4xbf16>
}

// -----

// CHECK-LABEL: func.func @products
func.func @products(%a: tensor<2x?x64xf32>, %b: tensor<64x32xf32>, %w: tensor<128x64xf32>, %bias: tensor<128xf32>) -> (tensor<2x?x32xf32>, tensor<2x?x128xf32>, tensor<2x?x128xf32>) {
  // CHECK: %[[MM:.+]] = nn.matmul %{{.*}}, %{{.*}} : tensor<2x?x64xf32>, tensor<64x32xf32>
  %0 = nn.matmul %a, %b : tensor<2x?x64xf32>, tensor<64x32xf32>
  // CHECK: nn.linear %{{.*}}, %{{.*}} : tensor<2x?x64xf32>, tensor<128x64xf32>
  %1 = nn.linear %a, %w : tensor<2x?x64xf32>, tensor<128x64xf32>
  // CHECK: nn.linear %{{.*}}, %{{.*}}, %{{.*}} : tensor<2x?x64xf32>, tensor<128x64xf32>, tensor<128xf32>
  %2 = nn.linear %a, %w, %bias : tensor<2x?x64xf32>, tensor<128x64xf32>, tensor<128xf32>
  // CHECK: return %[[MM]]
  return %0, %1, %2 : tensor<2x?x32xf32>, tensor<2x?x128xf32>, tensor<2x?x128xf32>
}

// -----

// CHECK-LABEL: func.func @elementwise
func.func @elementwise(%a: tensor<2x?x64xf32>, %b: tensor<64xf32>, %i: tensor<3xi64>) -> tensor<2x?x64xf32> {
  // CHECK: nn.add {{.*}} : tensor<2x?x64xf32>, tensor<64xf32>
  %0 = nn.add %a, %b : tensor<2x?x64xf32>, tensor<64xf32>
  // CHECK: nn.sub
  %1 = nn.sub %0, %b : tensor<2x?x64xf32>, tensor<64xf32>
  // CHECK: nn.mul
  %2 = nn.mul %1, %a : tensor<2x?x64xf32>, tensor<2x?x64xf32>
  // CHECK: nn.div
  %3 = nn.div %2, %b : tensor<2x?x64xf32>, tensor<64xf32>
  // CHECK: nn.max
  %4 = nn.max %3, %b : tensor<2x?x64xf32>, tensor<64xf32>
  // CHECK: nn.min
  %5 = nn.min %4, %b : tensor<2x?x64xf32>, tensor<64xf32>
  // CHECK: nn.pow
  %6 = nn.pow %5, %b : tensor<2x?x64xf32>, tensor<64xf32>
  // CHECK: nn.add {{.*}} : tensor<3xi64>, tensor<3xi64>
  %7 = nn.add %i, %i : tensor<3xi64>, tensor<3xi64>
  // CHECK: nn.silu
  %10 = nn.silu %6 : tensor<2x?x64xf32>
  // CHECK: nn.sigmoid
  %11 = nn.sigmoid %10 : tensor<2x?x64xf32>
  // CHECK: nn.relu
  %12 = nn.relu %11 : tensor<2x?x64xf32>
  // CHECK: nn.tanh
  %13 = nn.tanh %12 : tensor<2x?x64xf32>
  // CHECK: nn.exp
  %14 = nn.exp %13 : tensor<2x?x64xf32>
  // CHECK: nn.log
  %15 = nn.log %14 : tensor<2x?x64xf32>
  // CHECK: nn.neg
  %16 = nn.neg %15 : tensor<2x?x64xf32>
  // CHECK: nn.abs
  %17 = nn.abs %16 : tensor<2x?x64xf32>
  // CHECK: nn.sqrt
  %18 = nn.sqrt %17 : tensor<2x?x64xf32>
  // CHECK: nn.rsqrt
  %19 = nn.rsqrt %18 : tensor<2x?x64xf32>
  // CHECK: nn.reciprocal
  %20 = nn.reciprocal %19 : tensor<2x?x64xf32>
  // CHECK: nn.gelu %{{.*}} : tensor<2x?x64xf32>
  %21 = nn.gelu %20 : tensor<2x?x64xf32>
  // CHECK: nn.gelu %{{.*}} {approximate = "tanh"} : tensor<2x?x64xf32>
  %22 = nn.gelu %21 {approximate = "tanh"} : tensor<2x?x64xf32>
  return %22 : tensor<2x?x64xf32>
}

// -----

// CHECK-LABEL: func.func @norms
func.func @norms(%x: tensor<?x64xf32>, %w: tensor<64xf32>, %b: tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x1xf32>, tensor<?xf32>, tensor<f32>) {
  // CHECK: nn.softmax %{{.*}} {axis = -1 : i64} : tensor<?x64xf32>
  %0 = nn.softmax %x {axis = -1 : i64} : tensor<?x64xf32>
  // CHECK: nn.rms_norm %{{.*}}, %{{.*}} {eps = 1.000000e-05 : f64} : tensor<?x64xf32>, tensor<64xf32>
  %1 = nn.rms_norm %0, %w {eps = 1.0e-5 : f64} : tensor<?x64xf32>, tensor<64xf32>
  // CHECK: nn.layer_norm %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>
  %2 = nn.layer_norm %1, %w, %b : tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>
  // CHECK: nn.reduce_sum %{{.*}} {axes = array<i64: -1>, keepdims = true} : tensor<?x64xf32> -> tensor<?x1xf32>
  %3 = nn.reduce_sum %2 {axes = array<i64: -1>, keepdims = true} : tensor<?x64xf32> -> tensor<?x1xf32>
  // CHECK: nn.reduce_mean %{{.*}} {axes = array<i64: 1>} : tensor<?x64xf32> -> tensor<?xf32>
  %4 = nn.reduce_mean %2 {axes = array<i64: 1>} : tensor<?x64xf32> -> tensor<?xf32>
  // CHECK: nn.reduce_max %{{.*}} : tensor<?x64xf32> -> tensor<f32>
  %5 = nn.reduce_max %2 : tensor<?x64xf32> -> tensor<f32>
  return %1, %2, %3, %4, %5 : tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x1xf32>, tensor<?xf32>, tensor<f32>
}

// -----

// CHECK-LABEL: func.func @movement
func.func @movement(%x: tensor<2x?x64xf32>, %t: tensor<256x64xf32>, %ids: tensor<?x?xi64>, %s: tensor<4x6xf32>) -> (tensor<?x64xf32>, tensor<64x?x2xf32>, tensor<?x?x64xf32>, tensor<2x?x128xf32>, tensor<2x?x32xf32>, tensor<2x3xf32>, tensor<2x?x64xbf16>, tensor<8x3xf32>) {
  // CHECK: nn.reshape %{{.*}} {shape = array<i64: -1, 64>} : tensor<2x?x64xf32> -> tensor<?x64xf32>
  %0 = nn.reshape %x {shape = array<i64: -1, 64>} : tensor<2x?x64xf32> -> tensor<?x64xf32>
  // CHECK: nn.transpose %{{.*}} {perm = array<i64: 2, 1, 0>} : tensor<2x?x64xf32> -> tensor<64x?x2xf32>
  %1 = nn.transpose %x {perm = array<i64: 2, 1, 0>} : tensor<2x?x64xf32> -> tensor<64x?x2xf32>
  // CHECK: nn.gather %{{.*}}, %{{.*}} : tensor<256x64xf32>, tensor<?x?xi64> -> tensor<?x?x64xf32>
  %2 = nn.gather %t, %ids {axis = 0 : i64} : tensor<256x64xf32>, tensor<?x?xi64> -> tensor<?x?x64xf32>
  // CHECK: nn.concat %{{.*}}, %{{.*}} {axis = 2 : i64} : tensor<2x?x64xf32>, tensor<2x?x64xf32> -> tensor<2x?x128xf32>
  %3 = nn.concat %x, %x {axis = 2 : i64} : tensor<2x?x64xf32>, tensor<2x?x64xf32> -> tensor<2x?x128xf32>
  // CHECK: nn.slice %{{.*}} {axes = array<i64: 2>, ends = array<i64: 64>, starts = array<i64: 32>} : tensor<2x?x64xf32> -> tensor<2x?x32xf32>
  %4 = nn.slice %x {starts = array<i64: 32>, ends = array<i64: 64>, axes = array<i64: 2>} : tensor<2x?x64xf32> -> tensor<2x?x32xf32>
  // CHECK: nn.slice %{{.*}} {ends = array<i64: 0, -100>, starts = array<i64: 3, -1>, steps = array<i64: -2, -2>} : tensor<4x6xf32> -> tensor<2x3xf32>
  %5 = nn.slice %s {starts = array<i64: 3, -1>, ends = array<i64: 0, -100>, steps = array<i64: -2, -2>} : tensor<4x6xf32> -> tensor<2x3xf32>
  // CHECK: nn.cast %{{.*}} : tensor<2x?x64xf32> to tensor<2x?x64xbf16>
  %6 = nn.cast %x : tensor<2x?x64xf32> to tensor<2x?x64xbf16>
  // CHECK: nn.reshape %{{.*}} {shape = array<i64: 8, -1>} : tensor<4x6xf32> -> tensor<8x3xf32>
  %7 = nn.reshape %s {shape = array<i64: 8, -1>} : tensor<4x6xf32> -> tensor<8x3xf32>
  return %0, %1, %2, %3, %4, %5, %6, %7 : tensor<?x64xf32>, tensor<64x?x2xf32>, tensor<?x?x64xf32>, tensor<2x?x128xf32>, tensor<2x?x32xf32>, tensor<2x3xf32>, tensor<2x?x64xbf16>, tensor<8x3xf32>
}
