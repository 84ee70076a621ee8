func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  %w = nn.weight "w" {file = "w.bin", offset = 8 : i64} : tensor<4xf32>
  %0 = nn.add %x, %w : tensor<4xf32>, tensor<4xf32>
  return %0 : tensor<4xf32>
}
