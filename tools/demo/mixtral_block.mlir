// The demo's built-in model: one Mixtral-style MoE block at a quarter of
// Mixtral's width (hidden 1024, 8 experts of width 3584, top-2, SwiGLU),
// computing x + MoE(RMSNorm(x)) for any number of tokens. Weights come from
// the documented deterministic generator (`seed`), so the model needs no
// file: the plan moe-opt writes holds 352 MiB of fp32 expert weights.
func.func @main(%x: tensor<?x1024xf32> {moe.name = "hidden_states"}) -> tensor<?x1024xf32> {
  %norm = nn.weight "post_attention_layernorm.weight" {seed = 1 : i64, scale = 0.1 : f64} : tensor<1024xf32>
  %gate = nn.weight "block_sparse_moe.gate.weight" {seed = 2 : i64, scale = 0.05 : f64} : tensor<8x1024xf32>
  %w1 = nn.weight "block_sparse_moe.experts.w1" {seed = 3 : i64, scale = 0.03 : f64} : tensor<8x3584x1024xf32>
  %w2 = nn.weight "block_sparse_moe.experts.w2" {seed = 4 : i64, scale = 0.03 : f64} : tensor<8x1024x3584xf32>
  %w3 = nn.weight "block_sparse_moe.experts.w3" {seed = 5 : i64, scale = 0.03 : f64} : tensor<8x3584x1024xf32>
  %h = nn.rms_norm %x, %norm {eps = 1.0e-5 : f64} : tensor<?x1024xf32>, tensor<1024xf32>
  %logits = nn.linear %h, %gate : tensor<?x1024xf32>, tensor<8x1024xf32>
  %ids, %wts = moe.route %logits {k = 2 : i64} : tensor<?x8xf32> -> tensor<?x2xi64>, tensor<?x2xf32>
  %rows, %offsets, %perm = moe.dispatch %h, %ids {num_experts = 8 : i64} : tensor<?x1024xf32>, tensor<?x2xi64> -> tensor<?x1024xf32>, tensor<9xi64>, tensor<?xi64>
  %y = moe.experts %rows, %offsets w1(%w1) w2(%w2) w3(%w3) {activation = #moe.activation<silu>} : (tensor<?x1024xf32>, tensor<9xi64>, tensor<8x3584x1024xf32>, tensor<8x1024x3584xf32>, tensor<8x3584x1024xf32>) -> tensor<?x1024xf32>
  %moe = moe.combine %y, %perm, %wts : tensor<?x1024xf32>, tensor<?xi64>, tensor<?x2xf32>
  %out = nn.add %x, %moe : tensor<?x1024xf32>, tensor<?x1024xf32>
  return %out : tensor<?x1024xf32>
}
