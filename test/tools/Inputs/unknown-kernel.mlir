func.func @main(%x: memref<4xf32>) -> memref<4xf32> {
  %0 = plan.call "nn.bogus"(%x) : (memref<4xf32>) -> memref<4xf32>
  return %0 : memref<4xf32>
}
