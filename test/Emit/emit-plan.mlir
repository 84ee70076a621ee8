// The plan moe-opt writes, as moe-exec reads it back (--describe --json).
// RUN: rm -rf %t && mkdir -p %t
// RUN: moe-opt %s --emit-plan %t/p.moeplan | count 0
// RUN: moe-exec %t/p.moeplan --describe --json | FileCheck %s
// RUN: moe-exec %t/p.moeplan --describe | FileCheck %s --check-prefix=TEXT

// CHECK: "version": 2,
// CHECK: "producer": "moe-opt",
// CHECK: "inputs": [
// CHECK-NEXT: {"index": 0, "value": 0, "name": "x", "dtype": "f32", "shape": [-1, 16]}
// CHECK: "outputs": [
// CHECK-NEXT: {"index": 0, "value": [[OUT:[0-9]+]], "dtype": "f32", "shape": [-1, 16]}
// CHECK: "weights": [
// CHECK-NEXT: {"index": 0, "name": "norm", "dtype": "f32", "shape": [16], "offset": 0, "size": 64}
// CHECK-NEXT: {"index": 1, "name": "router", "dtype": "f32", "shape": [4, 16], "offset": 64, "size": 256}
// CHECK-NEXT: {"index": 2, "name": "w1", "dtype": "f32", "shape": [4, 32, 16], "offset": 320, "size": 8192}
// CHECK-NEXT: {"index": 3, "name": "w2", "dtype": "bf16", "shape": [4, 16, 32], "offset": 8512, "size": 4096}
// CHECK-NEXT: {"index": 4, "name": "constant_4", "dtype": "i64", "shape": [2], "offset": 12608, "size": 16}
// CHECK: "steps": [
// CHECK-NEXT: {"index": 0, "kind": "call", "kernel": "nn.rms_norm", "device": "cpu", "inputs": [0, 1], "outputs": [6], "attrs": {"eps": 1e-05}}
// CHECK-NEXT: {"index": 1, "kind": "call", "kernel": "nn.linear", "device": "cpu", "inputs": [6, 2], "outputs": [7], "attrs": {}}
// CHECK-NEXT: {"index": 2, "kind": "call", "kernel": "moe.route", "device": "cpu", "inputs": [7], "outputs": [8, 9], "attrs": {"k": 2, "normalize": 1, "scoring": "softmax"}}
// CHECK-NEXT: {"index": 3, "kind": "free", "inputs": [7]}
// CHECK-NEXT: {"index": 4, "kind": "call", "kernel": "moe.dispatch", "device": "cpu", "inputs": [6, 8], "outputs": [10, 11, 12], "attrs": {"num_experts": 4}}
// CHECK: "kernel": "moe.experts", {{.*}}"attrs": {"activation": "silu", "activation_alpha": 1.0, "activation_beta": 0.0, "bits": [0, 0, 0, 0], "has_b1": 0, "has_b2": 0, "has_b3": 0, "has_swiglu_limit": 0, "has_w3": 0, "num_experts": 4, "placement": [1, 2, 0, 0], "pruned": [0, 0, 0, 0], "swiglu_fusion": 0}}
// CHECK: "kernel": "moe.combine"
// CHECK: "kernel": "nn.add", "device": "cpu", "inputs": [0, {{[0-9]+}}], "outputs": [[[OUT]]]
// CHECK: "metadata": {
// CHECK-DAG: "moe_layers": 1
// CHECK-DAG: "experts_per_layer": [4]
// CHECK-DAG: "top_k": [2]
// CHECK-DAG: "source": "emit-plan.mlir"

// TEXT: moe.experts

func.func @main(%x: tensor<?x16xf32> {moe.name = "x"}) -> tensor<?x16xf32> {
  %nw = nn.weight "norm" {seed = 1 : i64} : tensor<16xf32>
  %rw = nn.weight "router" {seed = 2 : i64, scale = 0.5 : f64} : tensor<4x16xf32>
  %w1 = nn.weight "w1" {seed = 3 : i64, scale = 0.2 : f64} : tensor<4x32x16xf32>
  %w2b = nn.weight "w2" {seed = 4 : i64, scale = 0.2 : f64} : tensor<4x16x32xbf16>
  %c = arith.constant dense<[3, 7]> : tensor<2xi64>
  %h = nn.rms_norm %x, %nw {eps = 1.0e-5 : f64} : tensor<?x16xf32>, tensor<16xf32>
  %logits = nn.linear %h, %rw : tensor<?x16xf32>, tensor<4x16xf32>
  %ids, %wts = moe.route %logits {k = 2 : i64} : tensor<?x4xf32> -> tensor<?x2xi64>, tensor<?x2xf32>
  %rows, %off, %perm = moe.dispatch %h, %ids {num_experts = 4 : i64} : tensor<?x16xf32>, tensor<?x2xi64> -> tensor<?x16xf32>, tensor<5xi64>, tensor<?xi64>
  %w2 = nn.cast %w2b : tensor<4x16x32xbf16> to tensor<4x16x32xf32>
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) {experts = [#moe.expert<placement = gpu>, #moe.expert<placement = cpu>, #moe.expert<>, #moe.expert<>]} : (tensor<?x16xf32>, tensor<5xi64>, tensor<4x32x16xf32>, tensor<4x16x32xf32>) -> tensor<?x16xf32>
  %out0 = moe.combine %y, %perm, %wts : tensor<?x16xf32>, tensor<?xi64>, tensor<?x2xf32>
  %out = nn.add %x, %out0 : tensor<?x16xf32>, tensor<?x16xf32>
  return %out : tensor<?x16xf32>
}
