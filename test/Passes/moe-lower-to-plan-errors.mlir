// RUN: moe-opt %s -split-input-file -moe-lower-to-plan -verify-diagnostics

func.func @no_kernel(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'tensor.empty' op has no runtime kernel; cannot lower it to a plan}}
  %0 = tensor.empty() : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @scalar_constant(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{only tensor constants can be lowered to a plan}}
  %c = arith.constant 1.0 : f32
  return %x : tensor<4xf32>
}

// -----

func.func @sparsemixer(%l: tensor<?x4xf32>) -> tensor<?x2xi64> {
  // expected-error @+1 {{sparsemixer scoring has no runtime kernel yet}}
  %ids, %wts = moe.route %l {k = 2 : i64, scoring = #moe.scoring<sparsemixer>} : tensor<?x4xf32> -> tensor<?x2xi64>, tensor<?x2xf32>
  return %ids : tensor<?x2xi64>
}

// -----

func.func @quantised(%rows: tensor<?x16xf32>, %off: tensor<3xi64>) -> tensor<?x16xf32> {
  %w1 = nn.weight "w1" {seed = 1 : i64} : tensor<2x32x16xf32>
  %w2 = nn.weight "w2" {seed = 2 : i64} : tensor<2x16x32xf32>
  // expected-error @+1 {{expert 1 asks for 4-bit weights without a group_size}}
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) {experts = [#moe.expert<>, #moe.expert<bits = 4>]} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x32x16xf32>, tensor<2x16x32xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// expected-error @+1 {{arguments and results must all be ranked tensors to lower to a plan}}
func.func @unranked(%x: tensor<*xf32>) -> tensor<*xf32> {
  return %x : tensor<*xf32>
}

// -----

func.func @no_group(%rows: tensor<?x16xf32>, %off: tensor<3xi64>) -> tensor<?x16xf32> {
  %w1 = nn.weight "w1" {seed = 1 : i64} : tensor<2x32x16xf32>
  %w2 = nn.weight "w2" {seed = 2 : i64} : tensor<2x16x32xf32>
  // expected-error @+1 {{expert 1 asks for 4-bit weights without a group_size}}
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) {experts = [#moe.expert<>, #moe.expert<bits = 4>]} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x32x16xf32>, tensor<2x16x32xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

func.func @shared_weight(%rows: tensor<?x16xf32>, %off: tensor<3xi64>) -> (tensor<?x16xf32>, tensor<2x32x16xf32>) {
  %w1 = nn.weight "w1" {seed = 1 : i64} : tensor<2x32x16xf32>
  %w2 = nn.weight "w2" {seed = 2 : i64} : tensor<2x16x32xf32>
  // expected-error @+1 {{weight 'w1' is quantised for this op but also used by 'func.return'}}
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) {experts = [#moe.expert<bits = 8, group_size = 32>, #moe.expert<>]} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x32x16xf32>, tensor<2x16x32xf32>) -> tensor<?x16xf32>
  return %y, %w1 : tensor<?x16xf32>, tensor<2x32x16xf32>
}

// -----

func.func @computed_weight(%rows: tensor<?x16xf32>, %off: tensor<3xi64>, %w1: tensor<2x32x16xf32>) -> tensor<?x16xf32> {
  %w2 = nn.weight "w2" {seed = 2 : i64} : tensor<2x16x32xf32>
  // expected-error @+1 {{quantised experts need their weights as f32 nn.weight ops}}
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) {experts = [#moe.expert<bits = 8, group_size = 32>, #moe.expert<>]} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x32x16xf32>, tensor<2x16x32xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}
