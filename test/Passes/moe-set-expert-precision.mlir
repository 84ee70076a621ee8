// RUN: moe-opt %s -split-input-file -moe-set-expert-precision='bits=4 group-size=64' | FileCheck %s
// RUN: moe-opt %s -split-input-file -moe-set-expert-precision='bits=0' | FileCheck %s --check-prefix=STORED
// RUN: not moe-opt %s -split-input-file -moe-set-expert-precision='bits=5' 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: moe-opt %s -split-input-file --moe-compile='expert-bits=8 expert-group-size=32' | FileCheck %s --check-prefix=PIPELINE

// Placement and pruning stay; every expert gets the precision.
// CHECK-LABEL: func.func @layer
// CHECK: experts = [#moe.expert<placement = gpu, bits = 4, group_size = 64>, #moe.expert<bits = 4, group_size = 64, pruned = true>]
// STORED: experts = [#moe.expert<placement = gpu>, #moe.expert<pruned = true>]
// BAD: error: moe-set-expert-precision: expert bits must be one of 0 (as stored), 16, 8, 4, 3, 2; got 5
// The pipeline quantises the expert weights when the plan is written; the
// pruned expert stores nothing (bits 1: an absent slice).
// PIPELINE: plan.weight "w1" {bits = array<i64: 8, 1>, group_sizes = array<i64: 32, 0>, seed = 1 : i64} : memref<2x32x16xf32>
// PIPELINE: plan.weight "w2" {bits = array<i64: 8, 1>, group_sizes = array<i64: 32, 0>, seed = 2 : i64} : memref<2x16x32xf32>
func.func @layer(%rows: tensor<?x16xf32>, %off: tensor<3xi64>) -> tensor<?x16xf32> {
  %w1 = nn.weight "w1" {seed = 1 : i64} : tensor<2x32x16xf32>
  %w2 = nn.weight "w2" {seed = 2 : i64} : tensor<2x16x32xf32>
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) {experts = [#moe.expert<placement = gpu, bits = 8, group_size = 32>, #moe.expert<pruned = true>]} : (tensor<?x16xf32>, tensor<3xi64>, tensor<2x32x16xf32>, tensor<2x16x32xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}
