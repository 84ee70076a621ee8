// A Mixtral-style MoE block: x + MoE(RMSNorm(x)), hidden 32, 4 experts of
// width 48, top-2, SwiGLU experts. Weights are read from weights.bin, which
// mixtral_block.py writes (with the offsets used below) together with inputs
// and a numpy reference.
func.func @main(%x: tensor<?x32xf32> {moe.name = "x"}) -> tensor<?x32xf32> {
  %norm = nn.weight "norm.weight" {file = "weights.bin", offset = 0 : i64} : tensor<32xf32>
  %router = nn.weight "router.weight" {file = "weights.bin", offset = 128 : i64} : tensor<4x32xf32>
  %w1 = nn.weight "experts.w1" {file = "weights.bin", offset = 640 : i64} : tensor<4x48x32xf32>
  %w2 = nn.weight "experts.w2" {file = "weights.bin", offset = 25216 : i64} : tensor<4x32x48xf32>
  %w3 = nn.weight "experts.w3" {file = "weights.bin", offset = 49792 : i64} : tensor<4x48x32xf32>
  %h = nn.rms_norm %x, %norm {eps = 1.0e-5 : f64} : tensor<?x32xf32>, tensor<32xf32>
  %logits = nn.linear %h, %router : tensor<?x32xf32>, tensor<4x32xf32>
  %ids, %wts = moe.route %logits {k = 2 : i64, normalize = true} : tensor<?x4xf32> -> tensor<?x2xi64>, tensor<?x2xf32>
  %rows, %offsets, %perm = moe.dispatch %h, %ids {num_experts = 4 : i64} : tensor<?x32xf32>, tensor<?x2xi64> -> tensor<?x32xf32>, tensor<5xi64>, tensor<?xi64>
  %y = moe.experts %rows, %offsets w1(%w1) w2(%w2) w3(%w3) {activation = #moe.activation<silu>} : (tensor<?x32xf32>, tensor<5xi64>, tensor<4x48x32xf32>, tensor<4x32x48xf32>, tensor<4x48x32xf32>) -> tensor<?x32xf32>
  %moe = moe.combine %y, %perm, %wts : tensor<?x32xf32>, tensor<?xi64>, tensor<?x2xf32>
  %out = nn.add %x, %moe : tensor<?x32xf32>, tensor<?x32xf32>
  return %out : tensor<?x32xf32>
}
