//===- FuzzTest.cpp - Replaying the fuzz targets on mutations -------------===//
//
// Runs the libFuzzer bodies of test/fuzz on a few thousand pseudo-random
// mutations (byte flips, insertions, deletions, truncations, splices of
// interesting values) of valid inputs, so CI exercises them without clang.
//
//===----------------------------------------------------------------------===//

#include "test/fuzz/FuzzTargets.h"
#include "test/unit/runtime/KernelTestUtil.h"
#include "test/unit/runtime/PlanBuilder.h"

using namespace moe::test;

namespace {

std::vector<uint8_t> mutate(std::vector<uint8_t> v, std::mt19937 &rng) {
  int edits = 1 + int(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    size_t n = v.size();
    size_t at = n ? rng() % n : 0;
    switch (rng() % 6) {
    case 0:
      if (n)
        v[at] ^= uint8_t(1u << (rng() % 8));
      break;
    case 1:
      if (n)
        v[at] = uint8_t(rng());
      break;
    case 2:
      v.insert(v.begin() + long(at), uint8_t(rng()));
      break;
    case 3:
      if (n)
        v.erase(v.begin() + long(at));
      break;
    case 4:
      v.resize(at);
      break;
    case 5: { // an interesting 8-byte value
      const uint64_t vals[] = {0, 1, 0x7F, 0xFF, 0xFFFFFFFFull, 0x7FFFFFFFFFFFFFFFull,
                               ~0ull, 64, 0x80000000ull};
      uint64_t x = vals[rng() % 9];
      for (int b = 0; b < 8 && at + size_t(b) < n; ++b)
        v[at + size_t(b)] = uint8_t(x >> (8 * b));
      break;
    }
    }
  }
  return v;
}

TEST(FuzzReplay, PlanLoader) {
  PlanBuilder pb;
  uint32_t x = pb.input("x", DType::F32, {-1, 4});
  uint32_t w = pb.weightF32("w", {4, 4}, std::vector<float>(16, 0.5f));
  uint32_t h = pb.call1("nn.linear", {x, w}, DType::F32, {-1, 4});
  uint32_t y = pb.call1("nn.softmax", {h}, DType::F32, {-1, 4}, Attrs().setInt("axis", -1));
  pb.free({h});
  pb.output(y);
  std::vector<uint8_t> valid = pb.fileBytes();
  ASSERT_EQ(moe::fuzz::fuzzPlanLoader(valid.data(), valid.size()), 0);
  // Mutate the flatbuffer directly (re-fixing the checksum) so that the
  // FlatBuffers verifier and the semantic checks, not only the checksum,
  // see the damage.
  std::vector<uint8_t> fb = pb.flatbuffer();
  std::mt19937 rng(99);
  int accepted = 0;
  for (int i = 0; i < 3000; ++i) {
    std::vector<uint8_t> m = mutate(valid, rng);
    moe::fuzz::fuzzPlanLoader(m.data(), m.size());
    std::vector<uint8_t> mfb = mutate(fb, rng);
    while (mfb.size() % 8)
      mfb.push_back(0);
    std::string path = tempPath("fuzz.moeplan");
    std::vector<moe::plan::BlobSource> blobs = {{64, 0}};
    uint64_t total = moe::plan::layoutBlobs(blobs);
    ASSERT_TRUE(moe::plan::PlanFileWriter::write(
                    path, mfb.data(), mfb.size(), blobs, total,
                    [&](size_t, uint8_t *dst) {
                      std::fill(dst, dst + 64, 0);
                      for (int k = 0; k < 16; ++k) {
                        float half = 0.5f;
                        std::memcpy(dst + 4 * k, &half, 4);
                      }
                      return moe::rt::Status::ok();
                    })
                    .isOk());
    std::vector<uint8_t> file = readFile(path);
    ::unlink(path.c_str());
    moe::fuzz::fuzzPlanLoader(file.data(), file.size());
    accepted += moe::rt::loadPlanFromMemory(file.data(), file.size(), "f").isOk();
  }
  // Some mutations (of names, say) leave a valid plan: the loop reached the
  // semantic checks, not only the checksum.
  EXPECT_GT(accepted, 0);
}

/// Mutations of a plan with packed expert weights, the weight bytes kept
/// (so the checksums hold and the slice rules are what rejects); a plan
/// that still loads must run without reading outside its weights.
TEST(FuzzReplay, PackedPlanLoader) {
  using moe::kernels::cpu::QuantFormat;
  const int64_t E = 2, H = 64, F = 32;
  PlanBuilder pb;
  uint32_t x = pb.input("x", DType::F32, {-1, H});
  uint32_t off = pb.input("offsets", DType::I64, {E + 1});
  std::vector<float> data(size_t(E * F * H), 0.25f);
  uint32_t w1 = pb.weightPacked("w1", {E, F, H}, data,
                                {QuantFormat{4, 32}, QuantFormat{}});
  uint32_t w2 = pb.weightPacked("w2", {E, H, F}, data,
                                {QuantFormat{3, 64, false, true}, QuantFormat{16}});
  pb.output(pb.call1("moe.experts", {x, off, w1, w2}, DType::F32, {-1, H},
                     Attrs().setInt("num_experts", E)));
  std::vector<uint8_t> fb = pb.flatbuffer();
  std::vector<moe::plan::BlobSource> blobs;
  for (const BWeight &w : pb.weights)
    blobs.push_back({w.bytes.size(), 0});
  uint64_t total = moe::plan::layoutBlobs(blobs);
  std::mt19937 rng(98);
  Tensor hx = randomF32({3, H}, rng);
  Tensor offsets = i64({E + 1}, {0, 1, 3});
  int accepted = 0;
  for (int i = 0; i < 1500; ++i) {
    std::vector<uint8_t> mfb = i == 0 ? fb : mutate(fb, rng);
    while (mfb.size() % 8)
      mfb.push_back(0);
    std::string path = tempPath("fuzz-packed.moeplan");
    ASSERT_TRUE(moe::plan::PlanFileWriter::write(
                    path, mfb.data(), mfb.size(), blobs, total,
                    [&](size_t w, uint8_t *dst) {
                      std::memcpy(dst, pb.weights[w].bytes.data(),
                                  pb.weights[w].bytes.size());
                      return moe::rt::Status::ok();
                    })
                    .isOk());
    std::vector<uint8_t> file = readFile(path);
    ::unlink(path.c_str());
    auto plan = moe::rt::loadPlanFromMemory(file.data(), file.size(), "f");
    moe::fuzz::fuzzPlanLoader(file.data(), file.size());
    if (!plan.isOk())
      continue;
    ++accepted;
    auto ex = moe::rt::Executor::create(**plan, {});
    if (ex.isOk())
      (void)(*ex)->run({hx, offsets});
  }
  EXPECT_GT(accepted, 1);
}

TEST(FuzzReplay, TensorProto) {
  std::mt19937 rng(98);
  std::vector<Tensor> seeds = {f32({2, 3}, {1, 2, 3, 4, 5, 6}), i64({4}, {-1, 0, 1, 1 << 20})};
  std::vector<std::vector<uint8_t>> inputs;
  for (const Tensor &t : seeds) {
    std::string s = moe::rt::serializeTensorProto(t, "seed");
    inputs.emplace_back(s.begin(), s.end());
  }
  // A typed-field message too: dims 2, FLOAT, float_data packed.
  inputs.push_back({0x08, 0x02, 0x10, 0x01, 0x22, 0x08, 0, 0, 0x80, 0x3F, 0, 0, 0, 0x40});
  for (int i = 0; i < 5000; ++i) {
    const auto &seed = inputs[size_t(i) % inputs.size()];
    std::vector<uint8_t> m = mutate(seed, rng);
    ASSERT_EQ(moe::fuzz::fuzzTensorProto(m.data(), m.size()), 0);
  }
}

} // namespace
