// RUN: moe-opt %s -split-input-file | FileCheck %s
// RUN: moe-opt %s -split-input-file | moe-opt -split-input-file | FileCheck %s
// RUN: moe-opt %s -split-input-file -mlir-print-op-generic | moe-opt -split-input-file | FileCheck %s

// The ONNX-semantics ops of docs/onnx-import.md.

// CHECK-LABEL: func.func @elementwise
func.func @elementwise(%x: tensor<?x8xf32>, %i: tensor<?x8xi64>, %j: tensor<i64>, %m: tensor<?x1xi1>, %n: tensor<8xi1>, %k: tensor<4xi32>) {
  // CHECK: nn.cos %{{.*}} : tensor<?x8xf32>
  %0 = nn.cos %x : tensor<?x8xf32>
  // CHECK: nn.sin %{{.*}} : tensor<?x8xf32>
  %1 = nn.sin %x : tensor<?x8xf32>
  // CHECK: nn.neg %{{.*}} : tensor<?x8xi64>
  %2 = nn.neg %i : tensor<?x8xi64>
  // CHECK: nn.neg %{{.*}} : tensor<4xi32>
  %3 = nn.neg %k : tensor<4xi32>
  // CHECK: nn.add %{{.*}}, %{{.*}} : tensor<4xi32>, tensor<4xi32>
  %4 = nn.add %k, %k : tensor<4xi32>, tensor<4xi32>
  // CHECK: nn.equal %{{.*}}, %{{.*}} : tensor<?x8xi64>, tensor<i64>
  %5 = nn.equal %i, %j : tensor<?x8xi64>, tensor<i64>
  // CHECK: nn.equal %{{.*}}, %{{.*}} : tensor<?x1xi1>, tensor<8xi1>
  %6 = nn.equal %m, %n : tensor<?x1xi1>, tensor<8xi1>
  // CHECK: nn.greater %{{.*}}, %{{.*}} : tensor<?x8xf32>, tensor<?x8xf32>
  %7 = nn.greater %x, %x : tensor<?x8xf32>, tensor<?x8xf32>
  // CHECK: nn.greater_or_equal
  %8 = nn.greater_or_equal %i, %j : tensor<?x8xi64>, tensor<i64>
  // CHECK: nn.less
  %9 = nn.less %i, %j : tensor<?x8xi64>, tensor<i64>
  // CHECK: nn.less_or_equal
  %10 = nn.less_or_equal %i, %j : tensor<?x8xi64>, tensor<i64>
  // CHECK: nn.and %{{.*}}, %{{.*}} : tensor<?x1xi1>, tensor<8xi1>
  %11 = nn.and %m, %n : tensor<?x1xi1>, tensor<8xi1>
  // CHECK: nn.or
  %12 = nn.or %11, %7 : tensor<?x8xi1>, tensor<?x8xi1>
  // CHECK: nn.xor
  %13 = nn.xor %12, %n : tensor<?x8xi1>, tensor<8xi1>
  // CHECK: nn.not %{{.*}} : tensor<?x8xi1>
  %14 = nn.not %13 : tensor<?x8xi1>
  // CHECK: nn.where %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x1xi1>, tensor<?x8xi64>, tensor<i64>
  %15 = nn.where %m, %i, %j : tensor<?x1xi1>, tensor<?x8xi64>, tensor<i64>
  // CHECK: nn.clip %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x8xi64>, tensor<i64>, tensor<i64>
  %16 = nn.clip %i, %j, %j : tensor<?x8xi64>, tensor<i64>, tensor<i64>
  return
}

// -----

// A result type more or less static than the inferred one is kept and
// printed after `->`; one equal to the inferred one is not printed.
// CHECK-LABEL: func.func @explicit_result_types
func.func @explicit_result_types(%x: tensor<?x16xf32>, %b: tensor<16xf32>, %w: tensor<32x16xf32>, %i: tensor<2x?xi64>, %c: tensor<?x16xi1>) -> tensor<2x16xf32> {
  // CHECK: nn.add %{{.*}}, %{{.*}} : tensor<?x16xf32>, tensor<16xf32> -> tensor<2x16xf32>
  %0 = nn.add %x, %b : tensor<?x16xf32>, tensor<16xf32> -> tensor<2x16xf32>
  // CHECK: nn.add %{{.*}}, %{{.*}} : tensor<?x16xf32>, tensor<16xf32>{{$}}
  %1 = nn.add %x, %b : tensor<?x16xf32>, tensor<16xf32> -> tensor<?x16xf32>
  // CHECK: nn.relu %{{.*}} : tensor<?x16xf32> -> tensor<2x16xf32>
  %2 = nn.relu %x : tensor<?x16xf32> -> tensor<2x16xf32>
  // CHECK: nn.silu %{{.*}} : tensor<2x16xf32> -> tensor<?x?xf32>
  %3 = nn.silu %2 : tensor<2x16xf32> -> tensor<?x?xf32>
  // CHECK: nn.linear %{{.*}}, %{{.*}} : tensor<?x16xf32>, tensor<32x16xf32> -> tensor<2x32xf32>
  %4 = nn.linear %x, %w : tensor<?x16xf32>, tensor<32x16xf32> -> tensor<2x32xf32>
  // CHECK: nn.softmax %{{.*}} {axis = -1 : i64} : tensor<?x16xf32> -> tensor<2x16xf32>
  %5 = nn.softmax %x {axis = -1 : i64} : tensor<?x16xf32> -> tensor<2x16xf32>
  // CHECK: nn.rms_norm %{{.*}}, %{{.*}} : tensor<?x16xf32>, tensor<16xf32> -> tensor<2x16xf32>
  %6 = nn.rms_norm %x, %b : tensor<?x16xf32>, tensor<16xf32> -> tensor<2x16xf32>
  // CHECK: nn.reshape %{{.*}} {shape = array<i64: -1, 4>} : tensor<?x16xf32> -> tensor<8x4xf32>
  %7 = nn.reshape %x {shape = array<i64: -1, 4>} : tensor<?x16xf32> -> tensor<8x4xf32>
  // CHECK: nn.gather %{{.*}}, %{{.*}} : tensor<?x16xf32>, tensor<2x?xi64> -> tensor<2x?x?xf32>
  %8 = nn.gather %x, %i {axis = 0 : i64} : tensor<?x16xf32>, tensor<2x?xi64> -> tensor<2x?x?xf32>
  // CHECK: nn.greater %{{.*}}, %{{.*}} : tensor<?x16xf32>, tensor<16xf32> -> tensor<2x16xi1>
  %9 = nn.greater %x, %b : tensor<?x16xf32>, tensor<16xf32> -> tensor<2x16xi1>
  // CHECK: nn.where %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x16xi1>, tensor<?x16xf32>, tensor<16xf32> -> tensor<2x16xf32>
  %10 = nn.where %c, %x, %b : tensor<?x16xi1>, tensor<?x16xf32>, tensor<16xf32> -> tensor<2x16xf32>
  // CHECK: nn.mul %{{.*}}, %{{.*}} : tensor<2x16xf32>, tensor<2x16xf32>{{$}}
  %11 = nn.mul %0, %2 : tensor<2x16xf32>, tensor<2x16xf32>
  return %11 : tensor<2x16xf32>
}

// -----

// CHECK-LABEL: func.func @shapes
func.func @shapes(%x: tensor<2x?x16xf32>, %s: tensor<2xi64>, %e: tensor<0xi64>, %a: tensor<i64>, %f: tensor<f32>) {
  // CHECK: nn.shape %{{.*}} : tensor<2x?x16xf32> -> tensor<3xi64>
  %0 = nn.shape %x : tensor<2x?x16xf32> -> tensor<3xi64>
  // CHECK: nn.shape %{{.*}} {end = -1 : i64, start = 1 : i64} : tensor<2x?x16xf32> -> tensor<1xi64>
  %1 = nn.shape %x {start = 1 : i64, end = -1 : i64} : tensor<2x?x16xf32> -> tensor<1xi64>
  // CHECK: nn.constant_of_shape %{{.*}} {value = 1.000000e+00 : f64} : tensor<2xi64> -> tensor<?x?xi64>
  %2 = nn.constant_of_shape %s {value = 1.0 : f64} : tensor<2xi64> -> tensor<?x?xi64>
  // CHECK: nn.constant_of_shape %{{.*}} : tensor<0xi64> -> tensor<f32>
  %3 = nn.constant_of_shape %e : tensor<0xi64> -> tensor<f32>
  // CHECK: nn.range %{{.*}}, %{{.*}}, %{{.*}} : tensor<i64> -> tensor<?xi64>
  %4 = nn.range %a, %a, %a : tensor<i64> -> tensor<?xi64>
  // CHECK: nn.range %{{.*}}, %{{.*}}, %{{.*}} : tensor<f32> -> tensor<?xf32>
  %5 = nn.range %f, %f, %f : tensor<f32> -> tensor<?xf32>
  return
}

// -----

// CHECK-LABEL: func.func @movement
func.func @movement(%x: tensor<?x1xf32>, %y: tensor<2x?x16xf32>, %s2: tensor<2xi64>, %s3: tensor<3xi64>, %st: tensor<1xi32>) {
  // CHECK: nn.expand %{{.*}}, %{{.*}} : tensor<?x1xf32>, tensor<3xi64> -> tensor<4x?x8xf32>
  %0 = nn.expand %x, %s3 : tensor<?x1xf32>, tensor<3xi64> -> tensor<4x?x8xf32>
  // CHECK: nn.tile %{{.*}}, %{{.*}} : tensor<?x1xf32>, tensor<2xi64> -> tensor<?x3xf32>
  %1 = nn.tile %x, %s2 : tensor<?x1xf32>, tensor<2xi64> -> tensor<?x3xf32>
  // CHECK: nn.dynamic_reshape %{{.*}}, %{{.*}} {allowzero = 1 : i64} : tensor<2x?x16xf32>, tensor<2xi64> -> tensor<?x16xf32>
  %2 = nn.dynamic_reshape %y, %s2 {allowzero = 1 : i64} : tensor<2x?x16xf32>, tensor<2xi64> -> tensor<?x16xf32>
  // CHECK: nn.dynamic_reshape %{{.*}}, %{{.*}} : tensor<2x?x16xf32>, tensor<3xi64> -> tensor<2x?x16xf32>
  %3 = nn.dynamic_reshape %y, %s3 : tensor<2x?x16xf32>, tensor<3xi64> -> tensor<2x?x16xf32>
  // CHECK: nn.squeeze %{{.*}} {axes = array<i64: -1>} : tensor<?x1xf32> -> tensor<?xf32>
  %4 = nn.squeeze %x {axes = array<i64: -1>} : tensor<?x1xf32> -> tensor<?xf32>
  // CHECK: nn.squeeze %{{.*}} : tensor<?x1xf32> -> tensor<?xf32>
  %5 = nn.squeeze %x : tensor<?x1xf32> -> tensor<?xf32>
  // CHECK: nn.unsqueeze %{{.*}} {axes = array<i64: 0, -1>} : tensor<2x?x16xf32> -> tensor<1x2x?x16x1xf32>
  %6 = nn.unsqueeze %y {axes = array<i64: 0, -1>} : tensor<2x?x16xf32> -> tensor<1x2x?x16x1xf32>
  // CHECK: nn.flatten %{{.*}} : tensor<2x?x16xf32> -> tensor<2x?xf32>
  %7 = nn.flatten %y : tensor<2x?x16xf32> -> tensor<2x?xf32>
  // CHECK: nn.flatten %{{.*}} {axis = 0 : i64} : tensor<2x?x16xf32> -> tensor<1x?xf32>
  %8 = nn.flatten %y {axis = 0 : i64} : tensor<2x?x16xf32> -> tensor<1x?xf32>
  // CHECK: nn.dynamic_slice %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<2x?x16xf32>, tensor<1xi32>, tensor<1xi32>, tensor<1xi32>, tensor<1xi32> -> tensor<2x?x?xf32>
  %9 = nn.dynamic_slice %y, %st, %st, %st, %st : tensor<2x?x16xf32>, tensor<1xi32>, tensor<1xi32>, tensor<1xi32>, tensor<1xi32> -> tensor<2x?x?xf32>
  return
}

// -----

// CHECK-LABEL: func.func @gathers
func.func @gathers(%d: tensor<4x5x6xf32>, %i2: tensor<?x2xi64>, %ie: tensor<4x2xi32>, %ue: tensor<4x2xf32>, %m: tensor<8x16xf32>, %i1: tensor<?x1xi64>, %u1: tensor<?x16xf32>, %b: tensor<?x8xi1>, %ids: tensor<?xi64>, %depth: tensor<1xi64>, %v: tensor<2xf32>) {
  // CHECK: nn.gather_nd %{{.*}}, %{{.*}} : tensor<4x5x6xf32>, tensor<?x2xi64> -> tensor<?x6xf32>
  %0 = nn.gather_nd %d, %i2 : tensor<4x5x6xf32>, tensor<?x2xi64> -> tensor<?x6xf32>
  // CHECK: nn.gather_nd %{{.*}}, %{{.*}} {batch_dims = 1 : i64} : tensor<4x5x6xf32>, tensor<4x2xi64> -> tensor<4xf32>
  %c = arith.constant dense<0> : tensor<4x2xi64>
  %1 = nn.gather_nd %d, %c {batch_dims = 1 : i64} : tensor<4x5x6xf32>, tensor<4x2xi64> -> tensor<4xf32>
  // CHECK: nn.scatter_elements %{{.*}}, %{{.*}}, %{{.*}} {axis = 1 : i64, reduction = "add"} : tensor<8x16xf32>, tensor<4x2xi32>, tensor<4x2xf32>{{$}}
  %2 = nn.scatter_elements %m, %ie, %ue {axis = 1 : i64, reduction = "add"} : tensor<8x16xf32>, tensor<4x2xi32>, tensor<4x2xf32>
  // CHECK: nn.scatter_nd %{{.*}}, %{{.*}}, %{{.*}} : tensor<8x16xf32>, tensor<?x1xi64>, tensor<?x16xf32>{{$}}
  %3 = nn.scatter_nd %m, %i1, %u1 : tensor<8x16xf32>, tensor<?x1xi64>, tensor<?x16xf32>
  // CHECK: nn.scatter_nd %{{.*}}, %{{.*}}, %{{.*}} {reduction = "max"} : tensor<8x16xf32>, tensor<?x1xi64>, tensor<?x16xf32> -> tensor<?x16xf32>
  %4 = nn.scatter_nd %m, %i1, %u1 {reduction = "max"} : tensor<8x16xf32>, tensor<?x1xi64>, tensor<?x16xf32> -> tensor<?x16xf32>
  // CHECK: nn.nonzero %{{.*}} : tensor<?x8xi1> -> tensor<2x?xi64>
  %5 = nn.nonzero %b : tensor<?x8xi1> -> tensor<2x?xi64>
  // CHECK: nn.one_hot %{{.*}}, %{{.*}}, %{{.*}} : tensor<?xi64>, tensor<1xi64>, tensor<2xf32> -> tensor<?x?xf32>
  %6 = nn.one_hot %ids, %depth, %v : tensor<?xi64>, tensor<1xi64>, tensor<2xf32> -> tensor<?x?xf32>
  // CHECK: nn.one_hot %{{.*}}, %{{.*}}, %{{.*}} {axis = 0 : i64} : tensor<?xi64>, tensor<1xi64>, tensor<2xf32> -> tensor<16x?xf32>
  %7 = nn.one_hot %ids, %depth, %v {axis = 0 : i64} : tensor<?xi64>, tensor<1xi64>, tensor<2xf32> -> tensor<16x?xf32>
  return
}

// -----

// CHECK-LABEL: func.func @topk_split
func.func @topk_split(%x: tensor<?x64xf32>, %k: tensor<1xi64>, %sizes: tensor<2xi64>, %s3: tensor<3xi64>) {
  // CHECK: nn.topk %{{.*}}, %{{.*}} : tensor<?x64xf32>, tensor<1xi64> -> tensor<?x?xf32>, tensor<?x?xi64>
  %v, %i = nn.topk %x, %k : tensor<?x64xf32>, tensor<1xi64> -> tensor<?x?xf32>, tensor<?x?xi64>
  // CHECK: nn.topk %{{.*}}, %{{.*}} {axis = 1 : i64, largest = 0 : i64, sorted = 0 : i64} : tensor<?x64xf32>, tensor<1xi64> -> tensor<?x4xf32>, tensor<?x4xi64>
  %v2, %i2 = nn.topk %x, %k {axis = 1 : i64, largest = 0 : i64, sorted = 0 : i64} : tensor<?x64xf32>, tensor<1xi64> -> tensor<?x4xf32>, tensor<?x4xi64>
  // CHECK: nn.split %{{.*}}, %{{.*}} {axis = 1 : i64} : tensor<?x64xf32>, tensor<2xi64> -> tensor<?x?xf32>, tensor<?x?xf32>
  %a, %b = nn.split %x, %sizes {axis = 1 : i64} : tensor<?x64xf32>, tensor<2xi64> -> tensor<?x?xf32>, tensor<?x?xf32>
  // CHECK: nn.split %{{.*}} {axis = 1 : i64} : tensor<?x64xf32> -> tensor<?x22xf32>, tensor<?x22xf32>, tensor<?x20xf32>
  %c:3 = nn.split %x {axis = 1 : i64} : tensor<?x64xf32> -> tensor<?x22xf32>, tensor<?x22xf32>, tensor<?x20xf32>
  // CHECK: nn.split %{{.*}} : tensor<?x64xf32> -> tensor<?x64xf32>
  %d = nn.split %x : tensor<?x64xf32> -> tensor<?x64xf32>
  // CHECK: nn.split %{{.*}}, %{{.*}} {axis = -1 : i64} : tensor<?x64xf32>, tensor<3xi64> -> tensor<?x16xf32>, tensor<?x?xf32>, tensor<?x32xf32>
  %e:3 = nn.split %x, %s3 {axis = -1 : i64} : tensor<?x64xf32>, tensor<3xi64> -> tensor<?x16xf32>, tensor<?x?xf32>, tensor<?x32xf32>
  return
}

// -----

// CHECK-LABEL: func.func @dequantize
func.func @dequantize(%q: tensor<8x128x32xui8>, %s: tensor<8x128x2xf16>, %zp: tensor<0xui8>, %q8: tensor<?x64xui8>, %sr: tensor<?xf32>, %zr: tensor<?xui8>, %zb: tensor<8x128x1xui8>) {
  // CHECK: nn.dequantize %{{.*}}, %{{.*}}, %{{.*}} {bits = 4 : i64} : tensor<8x128x32xui8>, tensor<8x128x2xf16>, tensor<0xui8> -> tensor<8x128x64xf32>
  %0 = nn.dequantize %q, %s, %zp {bits = 4 : i64} : tensor<8x128x32xui8>, tensor<8x128x2xf16>, tensor<0xui8> -> tensor<8x128x64xf32>
  // CHECK: nn.dequantize %{{.*}}, %{{.*}}, %{{.*}} {bits = 8 : i64} : tensor<?x64xui8>, tensor<?xf32>, tensor<?xui8> -> tensor<?x64xf32>
  %1 = nn.dequantize %q8, %sr, %zr {bits = 8 : i64} : tensor<?x64xui8>, tensor<?xf32>, tensor<?xui8> -> tensor<?x64xf32>
  // CHECK: nn.dequantize %{{.*}}, %{{.*}}, %{{.*}} {bits = 2 : i64} : tensor<8x128x32xui8>, tensor<8x128x2xf16>, tensor<8x128x1xui8> -> tensor<8x128x128xf32>
  %2 = nn.dequantize %q, %s, %zb {bits = 2 : i64} : tensor<8x128x32xui8>, tensor<8x128x2xf16>, tensor<8x128x1xui8> -> tensor<8x128x128xf32>
  return
}
