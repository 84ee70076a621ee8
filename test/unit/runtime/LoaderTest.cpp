//===- LoaderTest.cpp - Plan loading and verification ---------------------===//

#include "test/unit/runtime/KernelTestUtil.h"
#include "test/unit/runtime/PlanBuilder.h"

#include "runtime/PlanLoader.h"

#include <unistd.h>

using namespace moe::test;
using moe::rt::LoadOptions;
using moe::rt::loadPlan;
using moe::rt::loadPlanFromMemory;

namespace {

/// x[?,8] → linear(w[8,8], b[8]) → silu → (free) → output.
PlanBuilder smallPlan() {
  PlanBuilder pb;
  std::vector<float> w(64), b(8);
  for (size_t i = 0; i < w.size(); ++i)
    w[i] = float(i) * 0.01f - 0.3f;
  for (size_t i = 0; i < b.size(); ++i)
    b[i] = float(i) * 0.1f;
  uint32_t x = pb.input("x", DType::F32, {-1, 8});
  uint32_t wv = pb.weightF32("w", {8, 8}, w);
  uint32_t bv = pb.weightF32("b", {8}, b);
  uint32_t h = pb.call1("nn.linear", {x, wv, bv}, DType::F32, {-1, 8});
  uint32_t y = pb.call1("nn.silu", {h}, DType::F32, {-1, 8});
  pb.free({h});
  pb.output(y);
  pb.metadata.setInt("layers", 1).setString("arch", "tiny");
  return pb;
}

/// Loads the builder's plan and expects failure; returns the message.
std::string loadError(const PlanBuilder &pb, LoadOptions options = {}) {
  std::vector<uint8_t> bytes = pb.fileBytes();
  auto r = loadPlanFromMemory(bytes.data(), bytes.size(), "t.moeplan", options);
  EXPECT_FALSE(r.isOk());
  if (r.isOk())
    return "";
  const std::string &m = r.status().message();
  EXPECT_EQ(m.rfind("t.moeplan: ", 0), 0u) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  return m;
}

TEST(Loader, ValidPlanLoads) {
  PlanBuilder pb = smallPlan();
  std::string path = tempPath("ok.moeplan");
  ASSERT_TRUE(pb.write(path).isOk());
  auto r = loadPlan(path);
  ASSERT_TRUE(r.isOk()) << r.status().message();
  const moe::rt::LoadedPlan &plan = **r;
  EXPECT_EQ(plan.path(), path);
  EXPECT_EQ(plan.version(), moe::plan::kPlanFormatVersion);
  EXPECT_EQ(plan.producer(), "plan-builder");
  EXPECT_EQ(plan.values().size(), 5u);
  EXPECT_EQ(plan.weights().size(), 2u);
  EXPECT_EQ(plan.steps().size(), 3u);
  EXPECT_EQ(plan.weightBytes(), 64u * 4 + 8 * 4);
  EXPECT_EQ(plan.inputName(0), "x");
  EXPECT_EQ(plan.outputName(0), "output_0");
  EXPECT_EQ(*plan.metadata().getString("arch"), "tiny");
  EXPECT_EQ(plan.weights()[1].offset, 256u);
  const Tensor &w = plan.weightTensor(0);
  EXPECT_TRUE(w.isView());
  EXPECT_EQ(w.shape(), (Shape{8, 8}));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(w.data()) % 64, 0u);
  EXPECT_FLOAT_EQ(w.data<float>()[10], 10 * 0.01f - 0.3f);
  EXPECT_EQ(plan.steps()[0].kernel->name, "nn.linear");
  ::unlink(path.c_str());
}

TEST(Loader, MissingAndEmptyFiles) {
  auto r = loadPlan("/nonexistent/dir/x.moeplan");
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().message(),
            "/nonexistent/dir/x.moeplan: cannot open: No such file or directory");
  std::string empty = tempPath("empty.moeplan");
  writeFile(empty, {});
  auto e = loadPlan(empty);
  ASSERT_FALSE(e.isOk());
  EXPECT_NE(e.status().message().find("smaller than the 64-byte plan header"),
            std::string::npos);
  ::unlink(empty.c_str());
}

TEST(Loader, EveryTruncationIsRejected) {
  std::vector<uint8_t> bytes = smallPlan().fileBytes();
  ASSERT_GT(bytes.size(), 500u);
  for (size_t len = 0; len < bytes.size(); ++len) {
    auto r = loadPlanFromMemory(bytes.data(), len, "t");
    ASSERT_FALSE(r.isOk()) << len;
    ASSERT_FALSE(r.status().message().empty());
    ASSERT_EQ(r.status().message().find('\n'), std::string::npos);
  }
  EXPECT_TRUE(loadPlanFromMemory(bytes.data(), bytes.size(), "t").isOk());
}

TEST(Loader, EveryByteAndBitFlipIsRejected) {
  std::vector<uint8_t> bytes = smallPlan().fileBytes();
  for (size_t i = 0; i < bytes.size(); ++i)
    for (uint8_t mask : {uint8_t(0xFF), uint8_t(1u << (i % 8)), uint8_t(0x80)}) {
      std::vector<uint8_t> bad = bytes;
      bad[i] ^= mask;
      auto r = loadPlanFromMemory(bad.data(), bad.size(), "t");
      ASSERT_FALSE(r.isOk()) << "byte " << i << " mask " << int(mask);
      ASSERT_EQ(r.status().message().find('\n'), std::string::npos);
      ASSERT_GT(r.status().message().size(), 3u);
    }
}

TEST(Loader, VersionsAreChecked) {
  std::vector<uint8_t> bytes = smallPlan().fileBytes();
  bytes[8] = 99; // header version
  auto r = loadPlanFromMemory(bytes.data(), bytes.size(), "t");
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().message(),
            "t: plan format version 99 is not supported (this runtime reads "
            "version 2; recompile the model)");
  PlanBuilder pb = smallPlan();
  pb.version = 99; // Plan.version, with a consistent checksum
  EXPECT_EQ(loadError(pb), "t.moeplan: Plan.version is 99 but this runtime "
                           "reads version 2 (recompile the model)");
}

TEST(Loader, HeaderFlagsAndGarbage) {
  std::vector<uint8_t> bytes = smallPlan().fileBytes();
  bytes[12] = 1;
  auto r = loadPlanFromMemory(bytes.data(), bytes.size(), "t");
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().message(), "t: header: unknown flags 1 (this runtime defines none)");
  std::vector<uint8_t> garbage(200, 'x');
  auto g = loadPlanFromMemory(garbage.data(), garbage.size(), "g");
  ASSERT_FALSE(g.isOk());
  EXPECT_EQ(g.status().message(), "g: bad magic: not a moe plan file");
}

TEST(Loader, WeightRules) {
  PlanBuilder misaligned = smallPlan();
  misaligned.weights[1].offset = 260;
  EXPECT_EQ(loadError(misaligned),
            "t.moeplan: weight 1 `b`: offset 260 is not a multiple of 64");
  PlanBuilder outside = smallPlan();
  outside.weights[1].offset = 4096;
  EXPECT_EQ(loadError(outside), "t.moeplan: weight 1 `b`: bytes [4096, +32) lie "
                                "outside the 320-byte blob section");
  PlanBuilder size = smallPlan();
  size.weights[0].size = 100;
  EXPECT_EQ(loadError(size),
            "t.moeplan: weight 0 `w`: size is 100 bytes, 8x8xf32 needs 256");
  PlanBuilder sum = smallPlan();
  sum.weights[0].checksum = 1234;
  EXPECT_EQ(loadError(sum), "t.moeplan: weight 0 `w`: checksum mismatch (the "
                            "weight bytes are corrupted)");
  LoadOptions skip;
  skip.verifyWeights = false;
  std::vector<uint8_t> bytes = sum.fileBytes();
  EXPECT_TRUE(loadPlanFromMemory(bytes.data(), bytes.size(), "t", skip).isOk());
  PlanBuilder dims = smallPlan();
  dims.weights[1].shape = {-1};
  dims.values[2].shape = {-1};
  EXPECT_EQ(loadError(dims),
            "t.moeplan: weight 1 `b`: shape [?] has a dynamic or negative dim");
}

TEST(Loader, ValueRules) {
  PlanBuilder dtype = smallPlan();
  dtype.values[3].dtype = DType(42);
  EXPECT_EQ(loadError(dtype), "t.moeplan: value 3: unknown dtype(42)");
  PlanBuilder dim = smallPlan();
  dim.values[3].shape = {-2, 8};
  EXPECT_EQ(loadError(dim), "t.moeplan: value 3: shape has dim -2");
  PlanBuilder weight = smallPlan();
  weight.values[1].weight = 7;
  EXPECT_EQ(loadError(weight),
            "t.moeplan: value 1: refers to weight 7 but the plan has 2");
  PlanBuilder wtype = smallPlan();
  wtype.values[2].shape = {4, 2};
  EXPECT_EQ(loadError(wtype),
            "t.moeplan: value 2: has type 4x2xf32 but weight 1 is 8xf32");
  PlanBuilder input = smallPlan();
  input.values[3].kind = moe_plan::ValueKind::Input;
  input.values[3].input = 1;
  EXPECT_EQ(loadError(input), "t.moeplan: value 3: is input 1 but is not listed "
                              "there in the program inputs");
  PlanBuilder progIn = smallPlan();
  progIn.inputs = {3};
  EXPECT_NE(loadError(progIn).find("not listed there"), std::string::npos);
  PlanBuilder out = smallPlan();
  out.outputs = {77};
  EXPECT_EQ(loadError(out),
            "t.moeplan: program output 0 is value 77, out of range (5 values)");
  PlanBuilder undefinedOut = smallPlan();
  undefinedOut.temp(DType::F32, {1});
  undefinedOut.outputs = {5};
  EXPECT_EQ(loadError(undefinedOut),
            "t.moeplan: program output 0 (value 5) is never defined");
}

TEST(Loader, StepRules) {
  PlanBuilder range = smallPlan();
  range.steps[0].inputs[0] = 99;
  EXPECT_EQ(loadError(range), "t.moeplan: step 0 `nn.linear`: input 0 is value 99, "
                              "out of range (5 values)");
  PlanBuilder order = smallPlan();
  std::swap(order.steps[0], order.steps[1]);
  EXPECT_EQ(loadError(order), "t.moeplan: step 0 `nn.silu`: input 0 (value 3) is "
                              "used before it is defined");
  PlanBuilder twice = smallPlan();
  twice.steps[1].outputs[0] = 3;
  EXPECT_EQ(loadError(twice),
            "t.moeplan: step 1 `nn.silu`: output 0 (value 3) is defined twice");
  PlanBuilder notTemp = smallPlan();
  notTemp.steps[1].outputs[0] = 1;
  EXPECT_EQ(loadError(notTemp),
            "t.moeplan: step 1 `nn.silu`: output 0 (value 1) is not a temporary");
  PlanBuilder freeInput = smallPlan();
  freeInput.steps[2].inputs = {0};
  EXPECT_EQ(loadError(freeInput),
            "t.moeplan: step 2 (free): frees value 0, which is not a temporary");
  PlanBuilder freeOut = smallPlan();
  freeOut.steps[2].inputs = {4};
  EXPECT_EQ(loadError(freeOut),
            "t.moeplan: step 2 (free): frees value 4, which is a program output");
  PlanBuilder afterFree = smallPlan();
  std::swap(afterFree.steps[1], afterFree.steps[2]);
  EXPECT_EQ(loadError(afterFree), "t.moeplan: step 2 `nn.silu`: input 0 (value 3) is "
                                  "used after step 1 freed it");
  PlanBuilder doubleFree = smallPlan();
  doubleFree.free({3});
  EXPECT_EQ(loadError(doubleFree), "t.moeplan: step 3 (free): input 0 (value 3) is "
                                   "used after step 2 freed it");
  PlanBuilder unknown = smallPlan();
  unknown.steps[1].kernel = "nn.nope";
  EXPECT_EQ(loadError(unknown), "t.moeplan: step 1 `nn.nope`: unknown kernel");
  PlanBuilder arity = smallPlan();
  arity.steps[1].inputs = {3, 3};
  EXPECT_EQ(loadError(arity), "t.moeplan: step 1 `nn.silu`: expects 1 inputs, got 2");
  PlanBuilder dtype = smallPlan();
  dtype.values[1].dtype = DType::I64;
  dtype.weights[0].dtype = DType::I64;
  dtype.weights[0].bytes.resize(512);
  EXPECT_EQ(loadError(dtype),
            "t.moeplan: step 0 `nn.linear`: input 1 has dtype i64, expected f32");
  PlanBuilder shape = smallPlan();
  shape.values[4].shape = {-1, 9};
  EXPECT_EQ(loadError(shape), "t.moeplan: step 1 `nn.silu`: output 0 has shape "
                              "[?, 9], expected [?, 8]");
  PlanBuilder attr = smallPlan();
  attr.steps[1].kernel = "nn.softmax";
  attr.steps[1].attrs.setString("axis", "last");
  EXPECT_EQ(loadError(attr), "t.moeplan: step 1 `nn.softmax`: attribute `axis` is "
                             "string, expected int");
  PlanBuilder kind = smallPlan();
  kind.steps[1].kind = moe_plan::StepKind(9);
  EXPECT_EQ(loadError(kind), "t.moeplan: step 1: unknown step kind 9");
  PlanBuilder device = smallPlan();
  device.steps[1].device = moe_plan::Device(5);
  EXPECT_EQ(loadError(device), "t.moeplan: step 1 `nn.silu`: unknown device 5");
  PlanBuilder copy = smallPlan();
  copy.steps[1].kind = moe_plan::StepKind::Copy;
  copy.steps[1].inputs = {3, 0};
  EXPECT_EQ(loadError(copy), "t.moeplan: step 1 (copy): a copy has 2 inputs and 1 "
                             "outputs, expected 1 and 1");
}

} // namespace
