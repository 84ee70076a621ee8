// RUN: moe-opt %s -split-input-file -moe-lower-to-plan | FileCheck %s

// The ONNX-semantics nn ops (docs/onnx-import.md) become calls of the kernel
// of the same name whose parameters are the op's attributes, defaults
// included; discardable attributes are not parameters.

// CHECK-LABEL: func.func @elementwise
func.func @elementwise(%x: tensor<?x8xf32>, %i: tensor<?x8xi64>, %j: tensor<i64>) -> (tensor<?x8xf32>, tensor<?x8xi1>) {
  // CHECK: %[[C:.+]] = plan.call "nn.cos"(%{{.*}}) : (memref<?x8xf32>) -> memref<?x8xf32>
  %c = nn.cos %x : tensor<?x8xf32>
  // CHECK: %[[E:.+]] = plan.call "nn.equal"(%{{.*}}, %{{.*}}) : (memref<?x8xi64>, memref<i64>) -> memref<?x8xi1>
  %e = nn.equal %i, %j {moe.note = "not a parameter"} : tensor<?x8xi64>, tensor<i64>
  // CHECK: %[[L:.+]] = plan.call "nn.less"(%{{.*}}, %[[C]]) : (memref<?x8xf32>, memref<?x8xf32>) -> memref<?x8xi1>
  %l = nn.less %x, %c : tensor<?x8xf32>, tensor<?x8xf32>
  // CHECK: %[[O:.+]] = plan.call "nn.or"(%[[E]], %[[L]]) : (memref<?x8xi1>, memref<?x8xi1>) -> memref<?x8xi1>
  %o = nn.or %e, %l : tensor<?x8xi1>, tensor<?x8xi1>
  // CHECK: %[[N:.+]] = plan.call "nn.not"(%[[O]])
  %n = nn.not %o : tensor<?x8xi1>
  // CHECK: %[[W:.+]] = plan.call "nn.where"(%[[N]], %{{.*}}, %[[C]]) : (memref<?x8xi1>, memref<?x8xf32>, memref<?x8xf32>) -> memref<?x8xf32>
  %w = nn.where %n, %x, %c : tensor<?x8xi1>, tensor<?x8xf32>, tensor<?x8xf32>
  // CHECK: %[[LO:.+]] = plan.constant dense<-5.000000e-01> : tensor<f32> : memref<f32>
  %lo = arith.constant dense<-0.5> : tensor<f32>
  // CHECK: plan.call "nn.clip"(%[[W]], %[[LO]], %[[LO]]) : (memref<?x8xf32>, memref<f32>, memref<f32>) -> memref<?x8xf32>
  %r = nn.clip %w, %lo, %lo : tensor<?x8xf32>, tensor<f32>, tensor<f32>
  return %r, %n : tensor<?x8xf32>, tensor<?x8xi1>
}

// -----

// CHECK-LABEL: func.func @shapes
func.func @shapes(%x: tensor<?x8xf32>) -> (tensor<?x?xi32>, tensor<?x?xf32>, tensor<?x?xi1>, tensor<1xi64>, tensor<?xi64>) {
  // CHECK: %[[S:.+]] = plan.call "nn.shape"(%{{.*}}) {params = {start = 0 : i64}} : (memref<?x8xf32>) -> memref<2xi64>
  %s = nn.shape %x : tensor<?x8xf32> -> tensor<2xi64>
  // CHECK: plan.call "nn.shape"(%{{.*}}) {params = {end = 2 : i64, start = -1 : i64}}
  %s1 = nn.shape %x {start = -1 : i64, end = 2 : i64} : tensor<?x8xf32> -> tensor<1xi64>
  // CHECK: plan.call "nn.constant_of_shape"(%[[S]]) {params = {dtype = 5 : i64, value = 3.000000e+00 : f64}} : (memref<2xi64>) -> memref<?x?xi32>
  %a = nn.constant_of_shape %s {value = 3.0 : f64} : tensor<2xi64> -> tensor<?x?xi32>
  // CHECK: plan.call "nn.constant_of_shape"(%[[S]]) {params = {dtype = 0 : i64, value = 0.000000e+00 : f64}} : (memref<2xi64>) -> memref<?x?xf32>
  %b = nn.constant_of_shape %s : tensor<2xi64> -> tensor<?x?xf32>
  // CHECK: plan.call "nn.constant_of_shape"(%[[S]]) {params = {dtype = 8 : i64, value = 1.000000e+00 : f64}} : (memref<2xi64>) -> memref<?x?xi1>
  %c = nn.constant_of_shape %s {value = 1.0 : f64} : tensor<2xi64> -> tensor<?x?xi1>
  // CHECK: %[[Z:.+]] = plan.constant dense<0> : tensor<i64> : memref<i64>
  %zero = arith.constant dense<0> : tensor<i64>
  // CHECK: plan.call "nn.range"(%[[Z]], %[[Z]], %[[Z]]) : (memref<i64>, memref<i64>, memref<i64>) -> memref<?xi64>
  %r = nn.range %zero, %zero, %zero : tensor<i64> -> tensor<?xi64>
  return %a, %b, %c, %s1, %r : tensor<?x?xi32>, tensor<?x?xf32>, tensor<?x?xi1>, tensor<1xi64>, tensor<?xi64>
}

// -----

// CHECK-LABEL: func.func @movement
func.func @movement(%x: tensor<?x1x16xf32>, %y: tensor<?x?xf32>, %s: tensor<2xi64>, %i: tensor<1xi32>) -> (tensor<?x16xf32>, tensor<?x?xf32>, tensor<?x1x16x1xf32>, tensor<?x16xf32>, tensor<?x?xf32>, tensor<?x?x16xf32>, tensor<?x?x?xf32>, tensor<?x?xf32>) {
  // Without axes, the static 1s are squeezed when the result rank shows no
  // `?` dim is.
  // CHECK: plan.call "nn.squeeze"(%{{.*}}) {params = {axes = array<i64: 1>}} : (memref<?x1x16xf32>) -> memref<?x16xf32>
  %0 = nn.squeeze %x : tensor<?x1x16xf32> -> tensor<?x16xf32>
  // CHECK: plan.call "nn.squeeze"(%{{.*}}) {params = {axes = array<i64>}} : (memref<?x?xf32>) -> memref<?x?xf32>
  %1 = nn.squeeze %y : tensor<?x?xf32> -> tensor<?x?xf32>
  // CHECK: plan.call "nn.unsqueeze"(%{{.*}}) {params = {axes = array<i64: -1>}}
  %2 = nn.unsqueeze %x {axes = array<i64: -1>} : tensor<?x1x16xf32> -> tensor<?x1x16x1xf32>
  // CHECK: plan.call "nn.flatten"(%{{.*}}) {params = {axis = 1 : i64}} : (memref<?x1x16xf32>) -> memref<?x16xf32>
  %3 = nn.flatten %x : tensor<?x1x16xf32> -> tensor<?x16xf32>
  // CHECK: plan.call "nn.dynamic_reshape"(%{{.*}}, %{{.*}}) {params = {allowzero = 1 : i64}} : (memref<?x1x16xf32>, memref<2xi64>) -> memref<?x?xf32>
  %4 = nn.dynamic_reshape %x, %s {allowzero = 1 : i64} : tensor<?x1x16xf32>, tensor<2xi64> -> tensor<?x?xf32>
  // CHECK: plan.call "nn.expand"(%{{.*}}, %{{.*}}) : (memref<?x1x16xf32>, memref<2xi64>) -> memref<?x?x16xf32>
  %5 = nn.expand %x, %s : tensor<?x1x16xf32>, tensor<2xi64> -> tensor<?x?x16xf32>
  // CHECK: plan.call "nn.dynamic_slice"(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (memref<?x1x16xf32>, memref<1xi32>, memref<1xi32>, memref<1xi32>, memref<1xi32>) -> memref<?x?x?xf32>
  %6 = nn.dynamic_slice %x, %i, %i, %i, %i : tensor<?x1x16xf32>, tensor<1xi32>, tensor<1xi32>, tensor<1xi32>, tensor<1xi32> -> tensor<?x?x?xf32>
  // CHECK: plan.call "nn.tile"(%{{.*}}, %{{.*}}) : (memref<?x?xf32>, memref<2xi64>) -> memref<?x?xf32>
  %7 = nn.tile %y, %s : tensor<?x?xf32>, tensor<2xi64> -> tensor<?x?xf32>
  return %0, %1, %2, %3, %4, %5, %6, %7 : tensor<?x16xf32>, tensor<?x?xf32>, tensor<?x1x16x1xf32>, tensor<?x16xf32>, tensor<?x?xf32>, tensor<?x?x16xf32>, tensor<?x?x?xf32>, tensor<?x?xf32>
}

// -----

// CHECK-LABEL: func.func @index
func.func @index(%d: tensor<4x16xf32>, %i: tensor<?x2xi64>, %u: tensor<?x2xf32>, %i1: tensor<?x1xi64>, %u1: tensor<?x16xf32>, %m: tensor<?x8xi1>, %ids: tensor<?xi64>, %depth: tensor<i64>, %v: tensor<2xf32>) -> (tensor<?xf32>, tensor<4x16xf32>, tensor<4x16xf32>, tensor<2x?xi64>, tensor<?x?xf32>) {
  // CHECK: plan.call "nn.gather_nd"(%{{.*}}, %{{.*}}) {params = {batch_dims = 0 : i64}} : (memref<4x16xf32>, memref<?x2xi64>) -> memref<?xf32>
  %0 = nn.gather_nd %d, %i : tensor<4x16xf32>, tensor<?x2xi64> -> tensor<?xf32>
  // CHECK: plan.call "nn.scatter_elements"(%{{.*}}, %{{.*}}, %{{.*}}) {params = {axis = 1 : i64, reduction = "max"}} : (memref<4x16xf32>, memref<?x2xi64>, memref<?x2xf32>) -> memref<4x16xf32>
  %1 = nn.scatter_elements %d, %i, %u {axis = 1 : i64, reduction = "max"} : tensor<4x16xf32>, tensor<?x2xi64>, tensor<?x2xf32>
  // CHECK: plan.call "nn.scatter_nd"(%{{.*}}, %{{.*}}, %{{.*}}) {params = {reduction = "none"}}
  %2 = nn.scatter_nd %d, %i1, %u1 : tensor<4x16xf32>, tensor<?x1xi64>, tensor<?x16xf32>
  // CHECK: plan.call "nn.nonzero"(%{{.*}}) : (memref<?x8xi1>) -> memref<2x?xi64>
  %3 = nn.nonzero %m : tensor<?x8xi1> -> tensor<2x?xi64>
  // CHECK: plan.call "nn.one_hot"(%{{.*}}, %{{.*}}, %{{.*}}) {params = {axis = -1 : i64}} : (memref<?xi64>, memref<i64>, memref<2xf32>) -> memref<?x?xf32>
  %4 = nn.one_hot %ids, %depth, %v : tensor<?xi64>, tensor<i64>, tensor<2xf32> -> tensor<?x?xf32>
  return %0, %1, %2, %3, %4 : tensor<?xf32>, tensor<4x16xf32>, tensor<4x16xf32>, tensor<2x?xi64>, tensor<?x?xf32>
}

// -----

// nn.split also gets `num_outputs`, the number of its results.
// CHECK-LABEL: func.func @topk_split
func.func @topk_split(%x: tensor<?x8xf32>, %k: tensor<1xi64>, %s: tensor<2xi64>) -> (tensor<?x?xf32>, tensor<?x?xi64>, tensor<?x3xf32>, tensor<?x?xf32>) {
  // CHECK: plan.call "nn.topk"(%{{.*}}, %{{.*}}) {params = {axis = -1 : i64, largest = 0 : i64, sorted = 1 : i64}} : (memref<?x8xf32>, memref<1xi64>) -> (memref<?x?xf32>, memref<?x?xi64>)
  %v, %i = nn.topk %x, %k {largest = 0 : i64} : tensor<?x8xf32>, tensor<1xi64> -> tensor<?x?xf32>, tensor<?x?xi64>
  // CHECK: plan.call "nn.split"(%{{.*}}) {params = {axis = 1 : i64, num_outputs = 3 : i64}} : (memref<?x8xf32>) -> (memref<?x3xf32>, memref<?x3xf32>, memref<?x2xf32>)
  %a:3 = nn.split %x {axis = 1 : i64} : tensor<?x8xf32> -> tensor<?x3xf32>, tensor<?x3xf32>, tensor<?x2xf32>
  // CHECK: plan.call "nn.split"(%{{.*}}, %{{.*}}) {params = {axis = -1 : i64, num_outputs = 2 : i64}} : (memref<?x8xf32>, memref<2xi64>) -> (memref<?x?xf32>, memref<?x?xf32>)
  %b:2 = nn.split %x, %s {axis = -1 : i64} : tensor<?x8xf32>, tensor<2xi64> -> tensor<?x?xf32>, tensor<?x?xf32>
  return %v, %i, %a#1, %b#0 : tensor<?x?xf32>, tensor<?x?xi64>, tensor<?x3xf32>, tensor<?x?xf32>
}

// -----

// CHECK-LABEL: func.func @dequantize
func.func @dequantize(%q: tensor<8x64x32xui8>, %s: tensor<8x64x2xf16>) -> tensor<8x64x64xf32> {
  // CHECK: %[[Z:.+]] = plan.constant dense<> : tensor<0xui8> : memref<0xui8>
  %z = arith.constant dense<> : tensor<0xui8>
  // CHECK: plan.call "nn.dequantize"(%{{.*}}, %{{.*}}, %[[Z]]) {params = {bits = 4 : i64}} : (memref<8x64x32xui8>, memref<8x64x2xf16>, memref<0xui8>) -> memref<8x64x64xf32>
  %0 = nn.dequantize %q, %s, %z {bits = 4 : i64} : tensor<8x64x32xui8>, tensor<8x64x2xf16>, tensor<0xui8> -> tensor<8x64x64xf32>
  return %0 : tensor<8x64x64xf32>
}

// -----

// Tensor constants of every dtype the importer makes, rank 0 and splats
// included, become plan.constant.
// CHECK-LABEL: func.func @constants
func.func @constants(%x: tensor<4xi32>) -> (tensor<4xi32>, tensor<2xi1>, tensor<3xf32>, tensor<i64>) {
  // CHECK: plan.constant dense<7> : tensor<i32> : memref<i32>
  %a = arith.constant dense<7> : tensor<i32>
  // CHECK: plan.constant dense<[true, false]> : tensor<2xi1> : memref<2xi1>
  %b = arith.constant dense<[true, false]> : tensor<2xi1>
  // CHECK: plan.constant dense<2.500000e-01> : tensor<3xf32> : memref<3xf32>
  %c = arith.constant dense<0.25> : tensor<3xf32>
  // CHECK: plan.constant dense<-1> : tensor<i64> : memref<i64>
  %d = arith.constant dense<-1> : tensor<i64>
  // CHECK: plan.call "nn.add"(%{{.*}}, %{{.*}}) : (memref<4xi32>, memref<i32>) -> memref<4xi32>
  %0 = nn.add %x, %a : tensor<4xi32>, tensor<i32>
  // CHECK: plan.call "nn.neg"(%{{.*}}) : (memref<4xi32>) -> memref<4xi32>
  %1 = nn.neg %0 : tensor<4xi32>
  // CHECK: plan.call "nn.not"(%{{.*}}) : (memref<2xi1>) -> memref<2xi1>
  %2 = nn.not %b : tensor<2xi1>
  // CHECK: plan.call "nn.sin"(%{{.*}}) : (memref<3xf32>) -> memref<3xf32>
  %3 = nn.sin %c : tensor<3xf32>
  // CHECK: plan.call "nn.max"(%{{.*}}, %{{.*}}) : (memref<i64>, memref<i64>) -> memref<i64>
  %4 = nn.max %d, %d : tensor<i64>, tensor<i64>
  return %1, %2, %3, %4 : tensor<4xi32>, tensor<2xi1>, tensor<3xf32>, tensor<i64>
}

// -----

// Result types given more statically than inferred stay on the buffers.
// CHECK-LABEL: func.func @explicit_types
// CHECK: plan.call "nn.add"(%{{.*}}, %{{.*}}) : (memref<?x16xf32>, memref<16xf32>) -> memref<2x16xf32>
func.func @explicit_types(%x: tensor<?x16xf32>, %b: tensor<16xf32>) -> tensor<2x16xf32> {
  %0 = nn.add %x, %b : tensor<?x16xf32>, tensor<16xf32> -> tensor<2x16xf32>
  return %0 : tensor<2x16xf32>
}
