//===- LoaderTest.cpp - Plan loading and verification ---------------------===//

#include "test/unit/runtime/KernelTestUtil.h"
#include "test/unit/runtime/PlanBuilder.h"

#include "runtime/PlanLoader.h"

#include <random>
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
  PlanBuilder name = smallPlan();
  name.weights[0].name = "w\n\\";
  name.weights[0].size = 100;
  EXPECT_EQ(loadError(name), "t.moeplan: weight 0 `w\\x0a\\\\`: size is 100 "
                             "bytes, 8x8xf32 needs 256");
  PlanBuilder kernel = smallPlan();
  kernel.steps[1].kernel = "nn.\x01";
  EXPECT_EQ(loadError(kernel), "t.moeplan: step 1 `nn.\\x01`: unknown kernel");
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

/// x[?,64], offsets → moe.experts with packed w1 (int4 g32 f16), w2 (mixed:
/// int8 g64 f32 with zero points, plain, bf16) and plain w3.
PlanBuilder packedPlan() {
  using moe::kernels::cpu::QuantFormat;
  const int64_t E = 3, H = 64, F = 32;
  PlanBuilder pb;
  std::mt19937 rng(40);
  auto random = [&](int64_t n) {
    std::uniform_real_distribution<float> d(-1, 1);
    std::vector<float> v(size_t(n), 0);
    for (float &x : v)
      x = d(rng);
    return v;
  };
  uint32_t x = pb.input("x", DType::F32, {-1, H});
  uint32_t off = pb.input("offsets", DType::I64, {E + 1});
  QuantFormat q4{4, 32, true, false}, q8{8, 64, false, true}, plain{}, bf16{16};
  uint32_t w1 = pb.weightPacked("w1", {E, F, H}, random(E * F * H), {q4, q4, q4});
  uint32_t w2 =
      pb.weightPacked("w2", {E, H, F}, random(E * H * F), {q8, plain, bf16});
  uint32_t w3 = pb.weightF32("w3", {E, F, H}, random(E * F * H));
  uint32_t y = pb.call1("moe.experts", {x, off, w1, w2, w3}, DType::F32,
                        {-1, H},
                        Attrs().setInt("num_experts", E).setInt("has_w3", 1));
  pb.output(y);
  return pb;
}

TEST(Loader, PackedWeightsLoad) {
  PlanBuilder pb = packedPlan();
  std::vector<uint8_t> bytes = pb.fileBytes();
  auto r = loadPlanFromMemory(bytes.data(), bytes.size(), "t");
  ASSERT_TRUE(r.isOk()) << r.status().message();
  const moe::rt::LoadedPlan &plan = **r;
  const moe::rt::WeightInfo &w1 = plan.weights()[0], &w2 = plan.weights()[1];
  ASSERT_TRUE(w1.packed());
  ASSERT_EQ(w2.slices.size(), 3u);
  EXPECT_FALSE(plan.weights()[2].packed());
  // int4 g32: 32 rows of 32 code bytes, then 32x2 f16 scales.
  EXPECT_EQ(w1.slices[0].size, 32u * 32 + 32 * 2 * 2);
  EXPECT_EQ(w1.slices[1].offset, 1152u);
  EXPECT_EQ(w1.size, 2 * 1152u + 1152);
  EXPECT_EQ(w2.slices[0].format.bits, 8);
  EXPECT_FALSE(w2.slices[0].format.f16Scales);
  EXPECT_TRUE(w2.slices[0].format.zeroPoints);
  EXPECT_EQ(w2.slices[1].size, 64u * 32 * 4);
  EXPECT_EQ(w2.slices[2].size, 64u * 32 * 2);
  const moe::rt::PackedWeight *p = plan.weightTensor(1).packed();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->rows, 64);
  EXPECT_EQ(p->cols, 32);
  EXPECT_EQ(p->offsets, (std::vector<uint64_t>{0, w2.slices[1].offset,
                                               w2.slices[2].offset}));
  EXPECT_EQ(plan.weightTensor(1).dtype(), DType::F32);
  EXPECT_EQ(plan.weightTensor(1).shape(), (Shape{3, 64, 32}));
  EXPECT_EQ(plan.weightTensor(2).packed(), nullptr);
  EXPECT_FALSE(plan.weightTensor(0).clone().isOk());
  EXPECT_FALSE(plan.weightTensor(0).reshaped({3, 2048}).isOk());
}

TEST(Loader, PackedWeightRules) {
  const std::string w1 = "t.moeplan: weight 0 `w1`: ";
  PlanBuilder count = packedPlan();
  count.weights[0].slices.pop_back();
  EXPECT_EQ(loadError(count),
            w1 + "has 2 slices, expected 3 (one per index of dimension 0)");
  PlanBuilder rank = packedPlan();
  rank.weights[0].shape = {3};
  EXPECT_EQ(loadError(rank),
            w1 + "has 3 slices but a packed weight needs rank >= 2, not [3]");
  PlanBuilder dtype = packedPlan();
  dtype.weights[0].dtype = DType::F16;
  EXPECT_EQ(loadError(dtype),
            w1 + "is packed but has dtype f16 (packed weights are f32)");
  for (int bits : {5, 32, 255}) {
    PlanBuilder b = packedPlan();
    b.weights[0].slices[1].bits = uint8_t(bits);
    EXPECT_EQ(loadError(b), w1 + "slice 1: bits " + std::to_string(bits) +
                                " is not 0, 16, 8, 4, 3, 2 or 1 (absent)");
  }
  // bits 1: an absent slice (a pruned expert) stores nothing: no group
  // size, and a size of 0.
  PlanBuilder absentGroup = packedPlan();
  absentGroup.weights[0].slices[1].bits = 1;
  EXPECT_EQ(loadError(absentGroup),
            w1 + "slice 1: an absent slice has no group size or zero points");
  for (int g : {0, 16, 48, 256}) {
    PlanBuilder b = packedPlan();
    b.weights[0].slices[0].groupSize = uint16_t(g);
    EXPECT_EQ(loadError(b), w1 + "slice 0: group size " + std::to_string(g) +
                                " is not 32, 64 or 128");
  }
  PlanBuilder scale = packedPlan();
  scale.weights[0].slices[2].scaleDType = DType::I64;
  EXPECT_EQ(loadError(scale), w1 + "slice 2: scale dtype i64 is not f16 or f32");
  PlanBuilder align = packedPlan();
  align.weights[0].slices[1].offset = 1160;
  EXPECT_EQ(loadError(align), w1 + "slice 1: offset 1160 is not a multiple of 64");
  PlanBuilder overlap = packedPlan();
  overlap.weights[0].slices[2].offset = 1152;
  EXPECT_EQ(loadError(overlap), w1 + "slice 2: offset 1152 overlaps the previous "
                                     "slice, which ends at 2304");
  PlanBuilder order = packedPlan();
  std::swap(order.weights[0].slices[0], order.weights[0].slices[1]);
  EXPECT_EQ(loadError(order), w1 + "slice 1: offset 0 overlaps the previous "
                                   "slice, which ends at 2304");
  PlanBuilder size = packedPlan();
  size.weights[0].slices[0].size = 1100;
  EXPECT_EQ(loadError(size), w1 + "slice 0: size is 1100 bytes, a 32x64 matrix "
                                  "in int4 g32 f16 scales needs 1152");
  PlanBuilder size8 = packedPlan();
  size8.weights[1].slices[0].size += 1;
  EXPECT_EQ(loadError(size8), "t.moeplan: weight 1 `w2`: slice 0: size is 2369 "
                              "bytes, a 64x32 matrix in int8 g64 f32 scales with "
                              "zero points needs 2368");
  PlanBuilder plainSize = packedPlan();
  plainSize.weights[1].slices[1].size = 64 * 32 * 2;
  EXPECT_EQ(loadError(plainSize), "t.moeplan: weight 1 `w2`: slice 1: size is "
                                  "4096 bytes, a 64x32 matrix in plain f32 "
                                  "needs 8192");
  PlanBuilder far = packedPlan();
  far.weights[0].slices[2].offset = ~uint64_t(63);
  EXPECT_EQ(loadError(far), w1 + "slice 2: offset 18446744073709551552 overflows");
  PlanBuilder total = packedPlan();
  total.weights[0].size = 3456 + 64;
  EXPECT_EQ(loadError(total),
            w1 + "size is 3520 bytes but its last slice ends at 3456");
  // The slices describe the whole blob: a plain-sized blob is too short
  // for three (plain) slices at aligned offsets.
  PlanBuilder outside = packedPlan();
  outside.weights[2].slices = {BSlice{}, BSlice{}, BSlice{}};
  for (size_t i = 0; i < 3; ++i) {
    outside.weights[2].slices[i].offset = i * 8192;
    outside.weights[2].slices[i].size = 8192;
  }
  outside.weights[2].bytes.resize(8192);
  EXPECT_EQ(loadError(outside),
            "t.moeplan: weight 2 `w3`: size is 8192 bytes but its last slice "
            "ends at 24576");
}

TEST(Loader, PackedWeightsOnlyWhereDeclared) {
  using moe::kernels::cpu::QuantFormat;
  // nn.linear takes plain tensors only.
  PlanBuilder linear;
  uint32_t x = linear.input("x", DType::F32, {-1, 64});
  uint32_t w = linear.weightPacked("w", {2, 64}, std::vector<float>(128, 0.5f),
                                   {QuantFormat{8, 32}, QuantFormat{}});
  linear.output(linear.call1("nn.linear", {x, w}, DType::F32, {-1, 2}));
  EXPECT_EQ(loadError(linear),
            "t.moeplan: step 0 `nn.linear`: input 1 is a packed (quantised) "
            "weight; `nn.linear` takes plain tensors");
  // moe.experts: not as a bias, nor as w3 without has_w3.
  PlanBuilder bias = packedPlan();
  uint32_t b1 = bias.weightPacked("b1", {3, 32}, std::vector<float>(96, 0.5f),
                                  {QuantFormat{}, QuantFormat{}, QuantFormat{}});
  bias.steps[0].inputs.push_back(b1);
  bias.steps[0].attrs.setInt("has_b1", 1);
  EXPECT_EQ(loadError(bias),
            "t.moeplan: step 0 `moe.experts`: input 5 is a packed (quantised) "
            "weight; `moe.experts` takes packed weights only as w1, w2 and w3 "
            "(inputs 2, 3 and 4 with has_w3)");
  PlanBuilder noW3 = packedPlan();
  noW3.steps[0].inputs[4] = 2; // the packed w1 in w3's place
  noW3.steps[0].attrs.setInt("has_w3", 0).setInt("has_b1", 1);
  EXPECT_NE(loadError(noW3).find("input 4 is a packed (quantised) weight"),
            std::string::npos);
  // Packed w3 with has_w3 is fine; so is any mix of plain and packed banks.
  PlanBuilder w3 = packedPlan();
  w3.steps[0].inputs[4] = 2;
  std::vector<uint8_t> bytes = w3.fileBytes();
  EXPECT_TRUE(loadPlanFromMemory(bytes.data(), bytes.size(), "t").isOk());
  // Neither copied nor returned.
  PlanBuilder copy = packedPlan();
  copy.output(copy.copy(2, moe_plan::Device::CUDA));
  EXPECT_EQ(loadError(copy),
            "t.moeplan: step 1 (copy): input 0 (value 2) is a packed "
            "(quantised) weight; a copy takes plain tensors");
  PlanBuilder out = packedPlan();
  out.output(3);
  EXPECT_EQ(loadError(out), "t.moeplan: program output 1 (value 3) is a packed "
                            "(quantised) weight");
}

} // namespace

namespace {

/// An expert-parallel moe.experts step over 2 ranks: expert 0 on rank 0,
/// expert 1 on rank 1, w1 [2, 4, 3] and w2 [2, 3, 4] with per-expert
/// checksums; `corrupt` flips a byte of expert 1's w1 after the checksums.
PlanBuilder expertParallelPlan(bool corrupt) {
  PlanBuilder pb;
  std::vector<float> w1(24), w2(24);
  for (size_t i = 0; i < 24; ++i) {
    w1[i] = float(i) * 0.1f;
    w2[i] = 1.0f - float(i) * 0.05f;
  }
  uint32_t x = pb.input("x", DType::F32, {-1, 3});
  uint32_t off = pb.input("offsets", DType::I64, {3});
  uint32_t a = pb.weightF32("w1", {2, 4, 3}, w1);
  uint32_t b = pb.weightF32("w2", {2, 3, 4}, w2);
  for (BWeight &w : pb.weights)
    w.sliceChecksums = sliceChecksums(w);
  if (corrupt) {
    BWeight &w = pb.weights[0];
    w.checksum = moe::plan::hashBytes(w.bytes.data(), w.bytes.size());
    w.bytes[12 * 4 + 1] ^= 0x40; // expert 1 starts at element 12
  }
  pb.output(pb.call1("moe.experts", {x, off, a, b}, DType::F32, {-1, 3},
                     moe::rt::Attrs()
                         .setInt("num_experts", 2)
                         .setInt("exchange_ranks", 2)
                         .setInts("replicas", {0, 1})
                         .setInts("replica_offsets", {0, 1, 2})));
  return pb;
}

} // namespace

TEST(Loader, RanksCheckTheExpertsTheyHold) {
  std::vector<uint8_t> good = expertParallelPlan(false).fileBytes();
  for (int rank : {-1, 0, 1}) {
    LoadOptions o;
    o.rank = rank;
    auto r = loadPlanFromMemory(good.data(), good.size(), "t.moeplan", o);
    ASSERT_TRUE(r.isOk()) << r.status().message();
    EXPECT_EQ((*r)->weights()[0].sliceChecksums.size(), 2u);
  }
  // Expert 1's bytes corrupted: a whole check and rank 1 see it; rank 0,
  // which never reads expert 1, loads.
  PlanBuilder bad = expertParallelPlan(true);
  EXPECT_EQ(loadError(bad), "t.moeplan: weight 0 `w1`: checksum mismatch (the "
                            "weight bytes are corrupted)");
  LoadOptions one;
  one.rank = 1;
  EXPECT_EQ(loadError(bad, one),
            "t.moeplan: weight 0 `w1`: the checksum of index 1 (an expert "
            "this rank holds) does not match (the weight bytes are "
            "corrupted)");
  std::vector<uint8_t> bytes = bad.fileBytes();
  LoadOptions zero;
  zero.rank = 0;
  auto r = loadPlanFromMemory(bytes.data(), bytes.size(), "t.moeplan", zero);
  EXPECT_TRUE(r.isOk()) << r.status().message();
  // A weight read whole somewhere else is checked whole.
  PlanBuilder shared = expertParallelPlan(true);
  shared.output(shared.call1("nn.relu", {2u /* w1 */},
                             DType::F32, {2, 4, 3}));
  EXPECT_NE(loadError(shared, zero).find("checksum mismatch"),
            std::string::npos);
  // The count of slice checksums must match dimension 0.
  PlanBuilder count = expertParallelPlan(false);
  count.weights[1].sliceChecksums.pop_back();
  EXPECT_EQ(loadError(count),
            "t.moeplan: weight 1 `w2`: 1 slice checksums for 2 indices of "
            "dimension 0");
}

TEST(Loader, ExpertSlicesEachRankReads) {
  using moe::rt::expertSlicesRead;
  using moe::rt::StepInfo;
  auto step = [](Attrs attrs) {
    StepInfo s;
    s.kind = moe::rt::StepKind::Call;
    s.kernelName = "moe.experts";
    s.attrs = std::move(attrs);
    return s;
  };
  using Bits = std::vector<bool>;
  // Expert parallel, 3 experts on 2 ranks: 0 on rank 1, 1 on both, 2 on 0.
  StepInfo ep = step(Attrs()
                         .setInt("num_experts", 3)
                         .setInt("exchange_ranks", 2)
                         .setInts("replicas", {1, 0, 1, 0})
                         .setInts("replica_offsets", {0, 1, 3, 4}));
  EXPECT_EQ(expertSlicesRead(ep, 2, 3, 0), Bits({false, true, true}));
  EXPECT_EQ(expertSlicesRead(ep, 3, 3, 1), Bits({true, true, false}));
  EXPECT_FALSE(expertSlicesRead(ep, 1, 3, 0)); // the offsets, not a weight
  EXPECT_FALSE(expertSlicesRead(ep, 4, 3, 0)); // no w3: input 4 is a bias
  EXPECT_FALSE(expertSlicesRead(ep, 2, 4, 0)); // does not fit the weight
  // Tensor parallel, 2 experts cut for 2 ranks: rank r reads r·2 + e.
  StepInfo tp = step(Attrs().setInt("num_experts", 2).setInt("tp_ranks", 2));
  EXPECT_EQ(expertSlicesRead(tp, 2, 4, 1), Bits({false, false, true, true}));
  EXPECT_FALSE(expertSlicesRead(tp, 2, 2, 1)); // a weight that is not cut
  EXPECT_FALSE(expertSlicesRead(tp, 2, 4, 2)); // a rank with no slice
  // Hybrid, nodes of 2: experts 0 and 1 on node 1, expert 2 on node 0;
  // rank 3 (node 1, index 1) reads slice 1 of experts 0 and 1.
  StepInfo hy = step(Attrs()
                         .setInt("num_experts", 3)
                         .setInt("tp_ranks", 2)
                         .setInt("exchange_peers_of", 2)
                         .setInt("exchange_ranks", 4)
                         .setInts("replicas", {1, 1, 0})
                         .setInts("replica_offsets", {0, 1, 2, 3}));
  EXPECT_EQ(expertSlicesRead(hy, 2, 6, 3),
            Bits({false, false, false, true, true, false}));
  EXPECT_EQ(expertSlicesRead(hy, 2, 6, 0),
            Bits({false, false, true, false, false, false}));
  // Tampered attributes read the weight whole instead of misreading it.
  EXPECT_FALSE(expertSlicesRead(
      step(Attrs().setInt("num_experts", int64_t(1) << 62).setInt("tp_ranks", 4)),
      2, 4, 0));
  EXPECT_FALSE(expertSlicesRead(
      step(Attrs(ep.attrs).setInts("replica_offsets", {0, 1, 3, 9})), 2, 3, 0));
  EXPECT_FALSE(expertSlicesRead(step(Attrs().setInt("num_experts", 3)), 2, 3,
                                0)); // neither exchange nor slices
}
