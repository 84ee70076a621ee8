//===- ExpertInventoryTest.cpp - The expert inventory analysis ------------===//

#include "passes/Analysis/ExpertInventory.h"
#include "compiler/Registration.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

using namespace mlir;

namespace {

class ExpertInventoryTest : public ::testing::Test {
protected:
  ExpertInventoryTest() {
    DialectRegistry registry;
    ::moe::compiler::registerDialects(registry);
    context.appendDialectRegistry(registry);
    context.loadAllAvailableDialects();
  }
  OwningOpRef<ModuleOp> parse(StringRef source) {
    return parseSourceString<ModuleOp>(source, &context);
  }
  MLIRContext context;
};

// Two layers: 4 experts with w1/w2/w3 of 32x16 f32 each (3 * 512 elements =
// 6144 bytes per expert), and 2 bf16 experts of 8x4 w1/w2 with biases.
constexpr const char *kTwoLayers = R"mlir(
func.func @main(%rows: tensor<?x16xf32>, %off: tensor<5xi64>, %r2: tensor<?x4xbf16>, %o2: tensor<3xi64>) -> (tensor<?x16xf32>, tensor<?x4xbf16>) {
  %w1 = nn.weight "w1" {seed = 1 : i64} : tensor<4x32x16xf32>
  %w2 = nn.weight "w2" {seed = 2 : i64} : tensor<4x16x32xf32>
  %w3 = nn.weight "w3" {seed = 3 : i64} : tensor<4x32x16xf32>
  %y = moe.experts %rows, %off w1(%w1) w2(%w2) w3(%w3) {experts = [#moe.expert<>, #moe.expert<bits = 4, group_size = 32>, #moe.expert<bits = 8>, #moe.expert<bits = 16, pruned = true>]} : (tensor<?x16xf32>, tensor<5xi64>, tensor<4x32x16xf32>, tensor<4x16x32xf32>, tensor<4x32x16xf32>) -> tensor<?x16xf32>
  %v1 = nn.weight "v1" {seed = 4 : i64} : tensor<2x8x4xbf16>
  %v2 = nn.weight "v2" {seed = 5 : i64} : tensor<2x4x8xbf16>
  %b1 = nn.weight "b1" {seed = 6 : i64} : tensor<2x8xbf16>
  %z = moe.experts %r2, %o2 w1(%v1) w2(%v2) b1(%b1) : (tensor<?x4xbf16>, tensor<3xi64>, tensor<2x8x4xbf16>, tensor<2x4x8xbf16>, tensor<2x8xbf16>) -> tensor<?x4xbf16>
  return %y, %z : tensor<?x16xf32>, tensor<?x4xbf16>
}
)mlir";

TEST_F(ExpertInventoryTest, CountsLayersExpertsAndBytes) {
  OwningOpRef<ModuleOp> module = parse(kTwoLayers);
  ASSERT_TRUE(module);
  mlir::moe::ExpertInventory inventory(module->getOperation());
  ASSERT_EQ(inventory.layers().size(), 2u);

  const mlir::moe::ExpertLayer &first = inventory.layers()[0];
  EXPECT_EQ(first.index, 0u);
  EXPECT_EQ(first.numExperts, 4);
  ASSERT_EQ(first.expertBytes.size(), 4u);
  EXPECT_EQ(first.expertBytes[0], 1536 * 4);                 // as stored: f32
  EXPECT_EQ(first.expertBytes[1], 1536 / 2 + 1536 / 32 * 2); // int4 + scales
  EXPECT_EQ(first.expertBytes[2], 1536);                     // int8, no groups
  EXPECT_EQ(first.expertBytes[3], 0); // pruned: the plan stores nothing
  EXPECT_EQ(first.totalBytes(), 6144 + 864 + 1536);

  const mlir::moe::ExpertLayer &second = inventory.layers()[1];
  EXPECT_EQ(second.numExperts, 2);
  // w1 32 + w2 32 + b1 8 elements per expert, bf16.
  EXPECT_EQ(second.expertBytes[0], 72 * 2);
  EXPECT_EQ(second.expertBytes[1], 72 * 2);
  EXPECT_EQ(inventory.totalExpertBytes(), first.totalBytes() + 288);
}

TEST_F(ExpertInventoryTest, EmptyWithoutExperts) {
  OwningOpRef<ModuleOp> module = parse(R"mlir(
func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = nn.silu %x : tensor<4xf32>
  return %y : tensor<4xf32>
})mlir");
  ASSERT_TRUE(module);
  mlir::moe::ExpertInventory inventory(module->getOperation());
  EXPECT_TRUE(inventory.layers().empty());
  EXPECT_EQ(inventory.totalExpertBytes(), 0);
}

TEST(ExpertBytes, RoundsUpPartialBytesAndGroups) {
  EXPECT_EQ(mlir::moe::ExpertInventory::expertBytes(10, 3, 0), 4); // 30 bits
  EXPECT_EQ(mlir::moe::ExpertInventory::expertBytes(100, 2, 64), 25 + 2 * 2);
  EXPECT_EQ(mlir::moe::ExpertInventory::expertBytes(0, 4, 32), 0);
}

} // namespace
