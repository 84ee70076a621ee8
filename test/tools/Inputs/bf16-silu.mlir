func.func @main(%x: tensor<4xbf16>) -> tensor<4xbf16> {
  %0 = nn.silu %x : tensor<4xbf16>
  return %0 : tensor<4xbf16>
}
