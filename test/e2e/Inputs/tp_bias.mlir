// A gated MoE layer with every optional weight (w3, b1, b2, b3), for the
// tensor-parallel cut of the biases (mpi.test): b1 and b3 are cut like w1
// and w3, b2 is added once.
func.func @main(%x: tensor<?x32xf32>, %logits: tensor<?x4xf32>) -> tensor<?x32xf32> {
  %ids, %weights = moe.route %logits {k = 2 : i64} : tensor<?x4xf32> -> tensor<?x2xi64>, tensor<?x2xf32>
  %rows, %offsets, %perm = moe.dispatch %x, %ids {num_experts = 4 : i64} : tensor<?x32xf32>, tensor<?x2xi64> -> tensor<?x32xf32>, tensor<5xi64>, tensor<?xi64>
  %w1 = nn.weight "w1" {seed = 1 : i64} : tensor<4x64x32xf32>
  %w2 = nn.weight "w2" {seed = 2 : i64} : tensor<4x32x64xf32>
  %w3 = nn.weight "w3" {seed = 3 : i64} : tensor<4x64x32xf32>
  %b1 = nn.weight "b1" {seed = 4 : i64} : tensor<4x64xf32>
  %b2 = nn.weight "b2" {seed = 5 : i64} : tensor<4x32xf32>
  %b3 = nn.weight "b3" {seed = 6 : i64} : tensor<4x64xf32>
  %y = moe.experts %rows, %offsets w1(%w1) w2(%w2) w3(%w3) b1(%b1) b2(%b2) b3(%b3) {activation = #moe.activation<gelu>} : (tensor<?x32xf32>, tensor<5xi64>, tensor<4x64x32xf32>, tensor<4x32x64xf32>, tensor<4x64x32xf32>, tensor<4x64xf32>, tensor<4x32xf32>, tensor<4x64xf32>) -> tensor<?x32xf32>
  %out = moe.combine %y, %perm, %weights : tensor<?x32xf32>, tensor<?xi64>, tensor<?x2xf32>
  return %out : tensor<?x32xf32>
}
