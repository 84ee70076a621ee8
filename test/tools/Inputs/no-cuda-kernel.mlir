// A plan with ops that have no CUDA kernel (nn.scatter_nd, nn.scatter_elements):
// `moe-exec --device cuda` must name them before looking for a GPU.
func.func @main(%m: tensor<8x16xf32>, %i: tensor<3x1xi64>, %u: tensor<3x16xf32>, %i2: tensor<4x2xi64>, %u2: tensor<4x2xf32>, %d: tensor<4x8xf32>) -> (tensor<8x16xf32>, tensor<4x8xf32>) {
  %0 = nn.gelu %m {approximate = "tanh"} : tensor<8x16xf32>
  %1 = nn.scatter_nd %0, %i, %u : tensor<8x16xf32>, tensor<3x1xi64>, tensor<3x16xf32>
  %2 = nn.scatter_elements %d, %i2, %u2 {reduction = "add"} : tensor<4x8xf32>, tensor<4x2xi64>, tensor<4x2xf32>
  %3 = nn.scatter_nd %1, %i, %u : tensor<8x16xf32>, tensor<3x1xi64>, tensor<3x16xf32>
  return %3, %2 : tensor<8x16xf32>, tensor<4x8xf32>
}
