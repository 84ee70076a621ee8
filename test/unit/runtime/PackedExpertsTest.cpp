//===- PackedExpertsTest.cpp - moe.experts with packed weights ------------===//
//
// A whole MoE layer (route → dispatch → experts → combine) whose w1, w2 and
// w3 are packed in every format, uniform and mixed per expert, run through
// the loader and the executor and compared with a naive reference on the
// dequantised weights (dequantizeRow() is the format's definition).
//
//===----------------------------------------------------------------------===//

#include "test/unit/runtime/KernelTestUtil.h"
#include "test/unit/runtime/PlanBuilder.h"

#include "runtime/Describe.h"
#include "runtime/Executor.h"
#include "runtime/PlanLoader.h"

#include "kernels/cpu/QuantFast.h"

#include <algorithm>
#include <unistd.h>

using namespace moe::test;
using moe::kernels::cpu::QuantFormat;
namespace kc = moe::kernels::cpu;

namespace {

/// Uniform in ±scale (weights use 1/sqrt(fan-in), as trained ones roughly
/// do, so that activations stay O(1) and f32 rounding stays near 1e-6).
std::vector<float> randomVec(size_t n, std::mt19937 &rng, float scale = 1) {
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> v(n);
  for (float &x : v)
    x = d(rng);
  return v;
}

/// The weights a packed [E, rows, cols] weight stands for.
std::vector<float> dequantised(const std::vector<float> &w, int64_t rows,
                               int64_t cols,
                               const std::vector<QuantFormat> &formats) {
  std::vector<float> out(w.size());
  for (size_t e = 0; e < formats.size(); ++e) {
    const QuantFormat &f = formats[e];
    std::vector<uint8_t> packed(size_t(kc::quantLayout(f, rows, cols).totalBytes));
    const float *src = w.data() + int64_t(e) * rows * cols;
    kc::quantizeMatrix(src, rows, cols, f, packed.data());
    for (int64_t r = 0; r < rows; ++r)
      kc::dequantizeRow(packed.data(), f, rows, cols, r,
                        out.data() + (int64_t(e) * rows + r) * cols);
  }
  return out;
}

struct Layer {
  int64_t H, F, E, K = 2;
  std::vector<float> wr, w1, w2, w3; // dequantised: what the plan computes
  std::unique_ptr<moe::rt::LoadedPlan> plan;
};

/// Builds and loads the layer with w1/w2/w3 packed in `formats` (one per
/// expert); `plainW3` keeps w3 dense.
Layer buildLayer(int64_t H, int64_t F, const std::vector<QuantFormat> &formats,
                 bool plainW3, std::mt19937 &rng) {
  Layer l;
  l.H = H, l.F = F, l.E = int64_t(formats.size());
  const int64_t E = l.E, K = l.K;
  const float sh = 1 / std::sqrt(float(H)), sf = 1 / std::sqrt(float(F));
  l.wr = randomVec(size_t(E * H), rng, sh);
  std::vector<float> w1 = randomVec(size_t(E * F * H), rng, 2 * sh),
                     w2 = randomVec(size_t(E * H * F), rng, 2 * sf),
                     w3 = randomVec(size_t(E * F * H), rng, 2 * sh);
  PlanBuilder pb;
  uint32_t x = pb.input("hidden", DType::F32, {-1, H});
  uint32_t router = pb.weightF32("router", {E, H}, l.wr);
  uint32_t vw1 = pb.weightPacked("w1", {E, F, H}, w1, formats);
  uint32_t vw2 = pb.weightPacked("w2", {E, H, F}, w2, formats);
  uint32_t vw3 = plainW3 ? pb.weightF32("w3", {E, F, H}, w3)
                         : pb.weightPacked("w3", {E, F, H}, w3, formats);
  l.w1 = dequantised(w1, F, H, formats);
  l.w2 = dequantised(w2, H, F, formats);
  l.w3 = plainW3 ? w3 : dequantised(w3, F, H, formats);
  uint32_t logits = pb.call1("nn.linear", {x, router}, DType::F32, {-1, E});
  auto routed = pb.call("moe.route", {logits},
                        {{DType::I64, {-1, K}}, {DType::F32, {-1, K}}},
                        Attrs().setInt("k", K).setInt("normalize", 1));
  auto disp = pb.call("moe.dispatch", {x, routed[0]},
                      {{DType::F32, {-1, H}}, {DType::I64, {E + 1}}, {DType::I64, {-1}}},
                      Attrs().setInt("num_experts", E));
  std::vector<int64_t> bits;
  for (const QuantFormat &f : formats)
    bits.push_back(f.bits);
  uint32_t y = pb.call1("moe.experts", {disp[0], disp[1], vw1, vw2, vw3},
                        DType::F32, {-1, H},
                        Attrs().setInt("num_experts", E).setInt("has_w3", 1)
                            .setInts("bits", bits));
  uint32_t out = pb.call1("moe.combine", {y, disp[2], routed[1]}, DType::F32, {-1, H});
  pb.output(out);
  std::vector<uint8_t> bytes = pb.fileBytes();
  auto plan = moe::rt::loadPlanFromMemory(bytes.data(), bytes.size(), "packed");
  EXPECT_TRUE(plan.isOk()) << plan.status().message();
  if (plan.isOk())
    l.plan = std::move(*plan);
  return l;
}

/// Per token: softmax router, top-2 normalised, Σ gate · w2·(silu(w1·x) ⊙ w3·x).
std::vector<float> reference(const Layer &l, const Tensor &hx) {
  const int64_t H = l.H, F = l.F, E = l.E;
  std::vector<float> want;
  for (int64_t t = 0; t < hx.dim(0); ++t) {
    const float *xt = hx.data<float>() + t * H;
    std::vector<double> p(static_cast<size_t>(E));
    for (int64_t e = 0; e < E; ++e) {
      // The router is computed in f32 as the kernel does, so that near-ties
      // pick the same experts.
      float acc = 0;
      for (int64_t i = 0; i < H; ++i)
        acc += xt[i] * l.wr[size_t(e * H + i)];
      p[size_t(e)] = acc;
    }
    double mx = *std::max_element(p.begin(), p.end()), sum = 0;
    for (double &v : p)
      sum += v = std::exp(v - mx);
    std::vector<int64_t> order(static_cast<size_t>(E));
    for (int64_t e = 0; e < E; ++e)
      order[size_t(e)] = e;
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return p[size_t(a)] > p[size_t(b)];
    });
    double norm = p[size_t(order[0])] + p[size_t(order[1])];
    std::vector<double> acc(size_t(H), 0);
    for (int s = 0; s < l.K; ++s) {
      int64_t e = order[size_t(s)];
      std::vector<double> h(static_cast<size_t>(F));
      for (int64_t f = 0; f < F; ++f) {
        double a = 0, g = 0;
        for (int64_t i = 0; i < H; ++i) {
          a += double(xt[i]) * l.w1[size_t((e * F + f) * H + i)];
          g += double(xt[i]) * l.w3[size_t((e * F + f) * H + i)];
        }
        h[size_t(f)] = a / (1 + std::exp(-a)) * g;
      }
      for (int64_t i = 0; i < H; ++i) {
        double o = 0;
        for (int64_t f = 0; f < F; ++f)
          o += h[size_t(f)] * l.w2[size_t((e * H + i) * F + f)];
        acc[size_t(i)] += p[size_t(e)] / norm * o;
      }
    }
    for (double v : acc)
      want.push_back(float(v));
  }
  return want;
}

void runLayer(const Layer &l, std::mt19937 &rng) {
  ASSERT_TRUE(l.plan);
  auto ex = moe::rt::Executor::create(*l.plan, {});
  ASSERT_TRUE(ex.isOk()) << ex.status().message();
  for (int64_t T : {1, 7, 40}) {
    Tensor hx = randomF32({T, l.H}, rng);
    auto r = (*ex)->run({hx});
    ASSERT_TRUE(r.isOk()) << r.status().message();
    expectClose((*r)[0], reference(l, hx), 1e-5f);
  }
}

const QuantFormat kInt8G32{8, 32, true, false};
const QuantFormat kInt4G128Zp{4, 128, false, true};
const QuantFormat kInt3G64{3, 64, true, false};
const QuantFormat kInt2G32{2, 32, true, false};
const QuantFormat kBf16{16};
const QuantFormat kPlain{};

TEST(PackedExperts, EveryFormatMatchesTheDequantisedReference) {
  std::mt19937 rng(50);
  // Whole groups (the SIMD paths where the CPU has them) and ragged sizes
  // with partial last groups (the scalar reference).
  for (auto [H, F] : {std::pair<int64_t, int64_t>{256, 128}, {72, 40}})
    for (const QuantFormat &f :
         {kInt8G32, kInt4G128Zp, kInt3G64, kInt2G32, kBf16, kPlain}) {
      SCOPED_TRACE("H " + std::to_string(H) + " bits " + std::to_string(f.bits));
      Layer l = buildLayer(H, F, {f, f, f, f}, /*plainW3=*/false, rng);
      runLayer(l, rng);
    }
}

TEST(PackedExperts, MixedBanksAndPlainW3) {
  std::mt19937 rng(51);
  std::vector<QuantFormat> mixed = {kInt8G32, kPlain, kInt4G128Zp, kInt3G64,
                                    kInt2G32, kBf16};
  for (bool plainW3 : {false, true}) {
    SCOPED_TRACE(plainW3 ? "plain w3" : "packed w3");
    Layer l = buildLayer(128, 96, mixed, plainW3, rng);
    runLayer(l, rng);
  }
}

TEST(PackedExperts, ScalarAndSimdPathsAgree) {
  std::mt19937 rng(52);
  Layer l = buildLayer(256, 128, {kInt8G32, kInt4G128Zp, kInt8G32, kPlain},
                       false, rng);
  ASSERT_TRUE(l.plan);
  auto ex = moe::rt::Executor::create(*l.plan, {});
  ASSERT_TRUE(ex.isOk());
  Tensor hx = randomF32({9, 256}, rng);
  auto fast = (*ex)->run({hx});
  bool old = kc::setQuantForceScalar(true);
  auto scalar = (*ex)->run({hx});
  kc::setQuantForceScalar(old);
  ASSERT_TRUE(fast.isOk() && scalar.isOk());
  expectClose((*fast)[0], (*scalar)[0].toVector<float>(), 1e-5f);
}

TEST(PackedExperts, KernelChecksTheBankAgainstTheExperts) {
  // A packed tensor handed to the kernel directly is checked like a plan.
  std::mt19937 rng(53);
  Layer l = buildLayer(64, 32, {kInt8G32, kInt8G32}, false, rng);
  ASSERT_TRUE(l.plan);
  const Tensor &w1 = l.plan->weightTensor(1);
  ASSERT_NE(w1.packed(), nullptr);
  Tensor x = randomF32({3, 64}, rng);
  auto bad = runKernel("nn.linear", {x, l.plan->weightTensor(1)});
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().message(), "input 1 is a packed (quantised) weight; "
                                    "`nn.linear` takes plain tensors");
  Tensor offsets = i64({3}, {0, 2, 3});
  auto ok = runKernel("moe.experts",
                      {x, offsets, w1, l.plan->weightTensor(2), l.plan->weightTensor(3)},
                      Attrs().setInt("num_experts", 2).setInt("has_w3", 1));
  ASSERT_TRUE(ok.isOk()) << ok.status().message();
}

TEST(PackedExperts, Describe) {
  std::mt19937 rng(54);
  Layer l = buildLayer(128, 64, {kInt4G128Zp, kInt4G128Zp, kPlain, kBf16}, true, rng);
  ASSERT_TRUE(l.plan);
  std::string text = moe::rt::describeText(*l.plan);
  EXPECT_NE(text.find("  1: w1 : 4x64x128xf32 (" + std::to_string(l.plan->weights()[1].size) +
                      " bytes at +" + std::to_string(l.plan->weights()[1].offset) +
                      ") packed: int4/g128/f32/zp x2, f32, bf16\n"),
            std::string::npos)
      << text;
  std::string json = moe::rt::describeJson(*l.plan);
  const moe::rt::WeightInfo &w = l.plan->weights()[1];
  std::string line = "    {\"index\": 1, \"name\": \"w1\", \"dtype\": \"f32\", \"shape\": "
                     "[4, 64, 128], \"offset\": " + std::to_string(w.offset) +
                     ", \"size\": " + std::to_string(w.size) + ", \"slices\": ["
                     "{\"bits\": 4, \"group_size\": 128, \"scale\": \"f32\", "
                     "\"zero_points\": true, \"offset\": 0, \"size\": " +
                     std::to_string(w.slices[0].size) + "}, "
                     "{\"bits\": 4, \"group_size\": 128, \"scale\": \"f32\", "
                     "\"zero_points\": true, \"offset\": " +
                     std::to_string(w.slices[1].offset) + ", \"size\": " +
                     std::to_string(w.slices[1].size) + "}, "
                     "{\"bits\": 0, \"group_size\": 0, \"scale\": \"f16\", "
                     "\"zero_points\": false, \"offset\": " +
                     std::to_string(w.slices[2].offset) + ", \"size\": 32768}, "
                     "{\"bits\": 16, \"group_size\": 0, \"scale\": \"f16\", "
                     "\"zero_points\": false, \"offset\": " +
                     std::to_string(w.slices[3].offset) + ", \"size\": 16384}]},";
  EXPECT_NE(json.find(line + "\n"), std::string::npos) << json;
  // Plain weights keep their line.
  EXPECT_NE(json.find("{\"index\": 0, \"name\": \"router\", \"dtype\": \"f32\", "
                      "\"shape\": [4, 128], \"offset\": 0, \"size\": 2048},\n"),
            std::string::npos);
}

} // namespace
