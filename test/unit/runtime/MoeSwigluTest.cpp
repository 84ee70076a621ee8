//===- MoeSwigluTest.cpp - moe.experts with ONNX Runtime's activations ----===//
//
// The expert FFN of com.microsoft.MoE / QMoE (contrib_ops/cpu/moe in ONNX
// Runtime): swiglu with fusion 0/1/2, alpha, beta and limit, fc1/fc2/fc3
// biases, gelu_tanh and identity, compared with a scalar reference written
// from the operator's documented formula; then fused w1 banks packed in the
// quantised formats, loaded from a plan.
//
//===----------------------------------------------------------------------===//

#include "test/unit/runtime/KernelTestUtil.h"
#include "test/unit/runtime/PlanBuilder.h"

#include "runtime/Executor.h"
#include "runtime/PlanLoader.h"

#include "kernels/cpu/Moe.h"

#include <optional>

using namespace moe::test;
using moe::kernels::cpu::QuantFormat;
namespace kc = moe::kernels::cpu;

namespace {

/// The activation and weights of one moe.experts configuration.
struct Config {
  std::string act = "swiglu";
  int fusion = 0;
  double alpha = 1.0, beta = 0.0;
  std::optional<double> limit;
  bool w3 = false, b1 = false, b2 = false, b3 = false;
};

/// ONNX Runtime's SwiGLU (ContribOperators, com.microsoft.MoE):
/// G = min(g, limit), L = clamp(l, -limit, limit),
/// out = G · sigmoid(alpha · G) · (L + beta).
double refSwiglu(double g, double l, const Config &c) {
  if (c.limit) {
    g = std::min(g, *c.limit);
    l = std::max(-*c.limit, std::min(l, *c.limit));
  }
  return g / (1 + std::exp(-c.alpha * g)) * (l + c.beta);
}

double refActivate(const std::string &act, double v) {
  if (act == "relu")
    return v > 0 ? v : 0;
  if (act == "gelu")
    return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
  if (act == "gelu_tanh") // ONNX Runtime's MoE "gelu"
    return 0.5 * v *
           (1 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
  if (act == "identity")
    return v;
  return v / (1 + std::exp(-v)); // silu
}

/// y for rows x [R, H] of experts split by `offsets`; w holds w1 [E, F1, H],
/// w2 [E, H, F], then w3, b1, b2, b3 as present (operand order). Every row
/// is computed on its own, straight from the formula.
std::vector<float> reference(const Tensor &x, const std::vector<int64_t> &offsets,
                             const std::vector<Tensor> &w, const Config &c,
                             int64_t F) {
  int64_t H = x.dim(1), E = int64_t(offsets.size()) - 1;
  bool fused = c.act == "swiglu" && c.fusion != 0;
  int64_t F1 = fused ? 2 * F : F;
  size_t next = 2;
  const float *w1 = w[0].data<float>(), *w2 = w[1].data<float>();
  const float *w3 = c.w3 ? w[next++].data<float>() : nullptr;
  const float *b1 = c.b1 ? w[next++].data<float>() : nullptr;
  const float *b2 = c.b2 ? w[next++].data<float>() : nullptr;
  const float *b3 = c.b3 ? w[next++].data<float>() : nullptr;
  std::vector<float> y(size_t(x.dim(0) * H));
  for (int64_t e = 0; e < E; ++e)
    for (int64_t r = offsets[size_t(e)]; r < offsets[size_t(e) + 1]; ++r) {
      const float *xr = x.data<float>() + r * H;
      auto fc = [&](const float *m, const float *bias, int64_t rowsPer,
                    int64_t row) {
        double acc = bias ? bias[e * rowsPer + row] : 0;
        for (int64_t i = 0; i < H; ++i)
          acc += double(xr[i]) * m[(e * rowsPer + row) * H + i];
        return acc;
      };
      std::vector<double> h(static_cast<size_t>(F));
      for (int64_t f = 0; f < F; ++f) {
        if (c.act == "swiglu") {
          double g, l;
          if (c.fusion == 1) { // interleaved, gate first
            g = fc(w1, b1, F1, 2 * f);
            l = fc(w1, b1, F1, 2 * f + 1);
          } else if (c.fusion == 2) { // concatenated, gate first
            g = fc(w1, b1, F1, f);
            l = fc(w1, b1, F1, F + f);
          } else {
            g = fc(w1, b1, F, f);
            l = fc(w3, b3, F, f);
          }
          h[size_t(f)] = refSwiglu(g, l, c);
        } else {
          double a = refActivate(c.act, fc(w1, b1, F, f));
          h[size_t(f)] = w3 ? a * fc(w3, b3, F, f) : a;
        }
      }
      for (int64_t i = 0; i < H; ++i) {
        double acc = b2 ? b2[e * H + i] : 0;
        for (int64_t f = 0; f < F; ++f)
          acc += h[size_t(f)] * w2[(e * H + i) * F + f];
        y[size_t(r * H + i)] = float(acc);
      }
    }
  return y;
}

Attrs attrsFor(const Config &c, int64_t E) {
  Attrs a;
  a.setInt("num_experts", E).setString("activation", c.act)
      .setFloat("activation_alpha", c.alpha).setFloat("activation_beta", c.beta)
      .setInt("swiglu_fusion", c.fusion).setInt("has_swiglu_limit", c.limit.has_value())
      .setInt("has_w3", c.w3).setInt("has_b1", c.b1).setInt("has_b2", c.b2)
      .setInt("has_b3", c.b3);
  if (c.limit)
    a.setFloat("swiglu_limit", *c.limit);
  return a;
}

/// Random weights for `c` with E experts.
std::vector<Tensor> weightsFor(const Config &c, int64_t E, int64_t F, int64_t H,
                               std::mt19937 &rng) {
  bool fused = c.act == "swiglu" && c.fusion != 0;
  int64_t F1 = fused ? 2 * F : F;
  std::vector<Tensor> w = {randomF32({E, F1, H}, rng), randomF32({E, H, F}, rng)};
  if (c.w3)
    w.push_back(randomF32({E, F, H}, rng));
  if (c.b1)
    w.push_back(randomF32({E, F1}, rng));
  if (c.b2)
    w.push_back(randomF32({E, H}, rng));
  if (c.b3)
    w.push_back(randomF32({E, F}, rng));
  return w;
}

void expectMatches(const Config &c, int64_t H, int64_t F,
                   const std::vector<int64_t> &offsets, std::mt19937 &rng,
                   float tol = 1e-4f) {
  int64_t E = int64_t(offsets.size()) - 1;
  Tensor x = randomF32({offsets.back(), H}, rng);
  std::vector<Tensor> w = weightsFor(c, E, F, H, rng);
  std::vector<Tensor> in = {x, i64({E + 1}, offsets)};
  in.insert(in.end(), w.begin(), w.end());
  Tensor y = run1("moe.experts", in, attrsFor(c, E));
  expectClose(y, reference(x, offsets, w, c, F), tol);
}

TEST(MoeSwiglu, PairOrderAndFormulaByHand) {
  // One expert, H = 1, F = 1, x = 1: fc1 rows are (gate, linear) = (2, 10)
  // interleaved or concatenated alike; w2 = 1. alpha 1.702, beta 1, limit 7:
  // G = 2, L = 7, h = 2 · sigmoid(3.404) · 8.
  Tensor x = f32({1, 1}, {1.0f}), off = i64({2}, {0, 1});
  Tensor w1 = f32({1, 2, 1}, {2.0f, 10.0f}), w2 = f32({1, 1, 1}, {1.0f});
  Config c;
  c.alpha = 1.702, c.beta = 1.0, c.limit = 7.0;
  float want = float(2.0 / (1 + std::exp(-3.404)) * 8.0);
  for (int fusion : {1, 2}) {
    c.fusion = fusion;
    Tensor y = run1("moe.experts", {x, off, w1, w2}, attrsFor(c, 1));
    expectClose(y, {want}, 1e-6f);
  }
  // Unfused: the gate from w1, the linear part from w3.
  c.fusion = 0, c.w3 = true;
  Tensor y = run1("moe.experts",
                  {x, off, f32({1, 1, 1}, {2.0f}), w2, f32({1, 1, 1}, {10.0f})},
                  attrsFor(c, 1));
  expectClose(y, {want}, 1e-6f);
  // The gate is clamped from above only: g = -10 stays -10.
  c.fusion = 1, c.w3 = false;
  Tensor neg = run1("moe.experts", {x, off, f32({1, 2, 1}, {-10.0f, -10.0f}), w2},
                    attrsFor(c, 1));
  expectClose(neg, {float(-10.0 / (1 + std::exp(17.02)) * -6.0)}, 1e-6f);
  // The kernel's scalar form, and NaN propagation as std::min/std::clamp do.
  kc::ExpertActivation act{kc::Activation::Swiglu, 1.702f, 1.0f, 7.0f, 1};
  EXPECT_NEAR(kc::swiglu(2.0f, 10.0f, act), want, 1e-6f * want);
  EXPECT_TRUE(std::isnan(kc::swiglu(NAN, 1.0f, act)));
  EXPECT_TRUE(std::isnan(kc::swiglu(1.0f, NAN, act)));
}

TEST(MoeSwiglu, SwigluMatchesReferenceInEveryFusion) {
  std::mt19937 rng(60);
  for (int fusion : {0, 1, 2})
    for (bool biases : {false, true})
      for (auto [alpha, beta] : {std::pair<double, double>{1.0, 0.0}, {1.702, 1.0}})
        for (std::optional<double> limit : {std::optional<double>{}, {0.25}, {7.0}})
          for (auto [H, F] : {std::pair<int64_t, int64_t>{1, 1}, {17, 3}, {9, 33}}) {
            SCOPED_TRACE("fusion " + std::to_string(fusion) + " biases " +
                         std::to_string(biases) + " alpha " + std::to_string(alpha) +
                         " limit " + (limit ? std::to_string(*limit) : "none") +
                         " H " + std::to_string(H) + " F " + std::to_string(F));
            Config c;
            c.fusion = fusion, c.alpha = alpha, c.beta = beta, c.limit = limit;
            c.w3 = fusion == 0;
            c.b1 = c.b2 = biases;
            c.b3 = biases && c.w3;
            expectMatches(c, H, F, {0, 5, 5, 12}, rng); // expert 1 empty
          }
}

TEST(MoeSwiglu, LimitActuallyClamps) {
  // With a limit of 0.05 nearly every gate and linear value is clamped, so a
  // kernel that ignored the limit (or clamped the gate from below) differs.
  std::mt19937 rng(61);
  Config c;
  c.fusion = 1, c.limit = 0.05, c.b1 = true;
  expectMatches(c, 16, 8, {0, 6, 9}, rng);
  const int64_t E = 1, H = 16, F = 8;
  Tensor x = randomF32({4, H}, rng);
  std::vector<Tensor> w = weightsFor(c, E, F, H, rng);
  std::vector<Tensor> in = {x, i64({2}, {0, 4}), w[0], w[1], w[2]};
  Config unclamped = c;
  unclamped.limit.reset();
  std::vector<float> a = run1("moe.experts", in, attrsFor(c, E)).toVector<float>(),
                     b = run1("moe.experts", in, attrsFor(unclamped, E)).toVector<float>();
  EXPECT_NE(a, b);
}

TEST(MoeSwiglu, OtherActivationsWithAndWithoutFc3) {
  std::mt19937 rng(62);
  for (const char *act : {"silu", "gelu", "gelu_tanh", "relu", "identity"})
    for (bool fc3 : {false, true})
      for (bool biases : {false, true}) {
        SCOPED_TRACE(std::string(act) + (fc3 ? " fc3" : "") + (biases ? " biases" : ""));
        Config c;
        c.act = act, c.w3 = fc3, c.b1 = c.b2 = biases, c.b3 = biases && fc3;
        // Alpha, beta and limit are ignored by these, as in ONNX Runtime.
        c.alpha = 1.702, c.beta = 1.0, c.limit = 0.01;
        Config plain = c;
        plain.alpha = 1.0, plain.beta = 0.0, plain.limit.reset();
        int64_t E = 2, H = 11, F = 7;
        std::vector<int64_t> offsets = {0, 3, 8};
        Tensor x = randomF32({8, H}, rng);
        std::vector<Tensor> w = weightsFor(c, E, F, H, rng);
        std::vector<Tensor> in = {x, i64({E + 1}, offsets)};
        in.insert(in.end(), w.begin(), w.end());
        Tensor y = run1("moe.experts", in, attrsFor(c, E));
        expectClose(y, reference(x, offsets, w, plain, F), 1e-4f);
      }
}

TEST(MoeSwiglu, AcrossTileBoundaries) {
  // Several 64-row blocks and 64-column tiles: the fused column ranges
  // [2c0, 2c1) and [c0, c1) ∪ [F + c0, F + c1) of every tile.
  std::mt19937 rng(63);
  for (int fusion : {1, 2}) {
    Config c;
    c.fusion = fusion, c.alpha = 1.702, c.beta = 1.0, c.limit = 7.0;
    c.b1 = c.b2 = true;
    expectMatches(c, 67, 130, {0, 129, 150}, rng);
  }
}

TEST(MoeSwiglu, ShapeAndAttributeChecks) {
  std::mt19937 rng(64);
  Tensor x = randomF32({4, 3}, rng), off = i64({3}, {0, 2, 4});
  Tensor w2 = randomF32({2, 3, 5}, rng);
  Config c;
  c.fusion = 1;
  auto ok = runKernel("moe.experts", {x, off, randomF32({2, 10, 3}, rng), w2},
                      attrsFor(c, 2));
  ASSERT_TRUE(ok.isOk()) << ok.status().message();
  // F is learnt from w1's 2F rows, then w2 must agree.
  auto rows = runKernel("moe.experts", {x, off, randomF32({2, 8, 3}, rng), w2},
                        attrsFor(c, 2));
  ASSERT_FALSE(rows.isOk());
  EXPECT_EQ(rows.status().message(),
            "input 3 dim 2 is 5, expected 4 (F of w2 [EHF])");
  auto odd = runKernel("moe.experts", {x, off, randomF32({2, 9, 3}, rng), w2},
                       attrsFor(c, 2));
  ASSERT_FALSE(odd.isOk());
  EXPECT_EQ(odd.status().message(),
            "input 2 dim 1 is 9, expected an even size (2F of w1 [E2FH])");
  c.b1 = true;
  auto b1 = runKernel("moe.experts",
                      {x, off, randomF32({2, 10, 3}, rng), w2, randomF32({2, 5}, rng)},
                      attrsFor(c, 2));
  ASSERT_FALSE(b1.isOk());
  EXPECT_EQ(b1.status().message(), "input 4 dim 1 is 5, expected 10 (2F of b1 [E2F])");
  Config unfused;
  auto noW3 = runKernel("moe.experts", {x, off, randomF32({2, 5, 3}, rng), w2},
                        attrsFor(unfused, 2));
  ASSERT_FALSE(noW3.isOk());
  EXPECT_EQ(noW3.status().message(),
            "activation 'swiglu' with `swiglu_fusion` = 0 needs w3 (`has_w3`)");
  Config relu;
  relu.act = "relu", relu.fusion = 2;
  auto notSwiglu = runKernel("moe.experts", {x, off, randomF32({2, 10, 3}, rng), w2},
                             attrsFor(relu, 2));
  ASSERT_FALSE(notSwiglu.isOk());
  EXPECT_EQ(notSwiglu.status().message(),
            "attribute `swiglu_fusion` = 2 needs activation 'swiglu', not 'relu'");
  Config bad = c;
  bad.fusion = 3;
  EXPECT_FALSE(runKernel("moe.experts", {x, off, randomF32({2, 10, 3}, rng), w2},
                         attrsFor(bad, 2))
                   .isOk());
  Config negative = c;
  negative.limit = -1.0;
  auto neg = runKernel("moe.experts",
                       {x, off, randomF32({2, 10, 3}, rng), w2, randomF32({2, 10}, rng)},
                       attrsFor(negative, 2));
  ASSERT_FALSE(neg.isOk());
  EXPECT_EQ(neg.status().message(),
            "attribute `swiglu_limit` = -1.000000 must be non-negative");
  auto missing = runKernel("moe.experts",
                           {x, off, randomF32({2, 10, 3}, rng), w2, randomF32({2, 10}, rng)},
                           Attrs(attrsFor(c, 2)).setInt("has_swiglu_limit", 1));
  ASSERT_FALSE(missing.isOk());
}

//===----------------------------------------------------------------------===//
// Packed fused w1 banks, through a plan
//===----------------------------------------------------------------------===//

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

std::vector<float> randomVec(size_t n, std::mt19937 &rng, float scale) {
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> v(n);
  for (float &x : v)
    x = d(rng);
  return v;
}

TEST(MoeSwiglu, PackedFusedW1MatchesTheDequantisedReference) {
  std::mt19937 rng(65);
  const QuantFormat kInt8G32{8, 32, true, false}, kInt4G64Zp{4, 64, false, true},
      kBf16{16}, kPlain{};
  const std::vector<QuantFormat> formats = {kInt8G32, kInt4G64Zp, kBf16, kPlain};
  const int64_t E = 4, H = 128, F = 64;
  for (int fusion : {1, 2}) {
    SCOPED_TRACE("fusion " + std::to_string(fusion));
    const float sh = 1 / std::sqrt(float(H)), sf = 1 / std::sqrt(float(F));
    std::vector<float> w1 = randomVec(size_t(E * 2 * F * H), rng, 2 * sh),
                       w2 = randomVec(size_t(E * H * F), rng, 2 * sf),
                       b1 = randomVec(size_t(E * 2 * F), rng, 0.5f);
    PlanBuilder pb;
    uint32_t x = pb.input("rows", DType::F32, {-1, H});
    uint32_t off = pb.input("offsets", DType::I64, {E + 1});
    uint32_t vw1 = pb.weightPacked("w1", {E, 2 * F, H}, w1, formats);
    uint32_t vw2 = pb.weightPacked("w2", {E, H, F}, w2, formats);
    uint32_t vb1 = pb.weightF32("b1", {E, 2 * F}, b1);
    Config c;
    c.fusion = fusion, c.alpha = 1.702, c.beta = 1.0, c.limit = 7.0, c.b1 = true;
    std::vector<int64_t> bits;
    for (const QuantFormat &f : formats)
      bits.push_back(f.bits);
    uint32_t y = pb.call1("moe.experts", {x, off, vw1, vw2, vb1}, DType::F32, {-1, H},
                          Attrs(attrsFor(c, E)).setInts("bits", bits));
    pb.output(y);
    std::vector<uint8_t> bytes = pb.fileBytes();
    auto plan = moe::rt::loadPlanFromMemory(bytes.data(), bytes.size(), "fused");
    ASSERT_TRUE(plan.isOk()) << plan.status().message();
    ASSERT_NE((*plan)->weightTensor(0).packed(), nullptr);
    auto ex = moe::rt::Executor::create(**plan, {});
    ASSERT_TRUE(ex.isOk()) << ex.status().message();
    std::vector<int64_t> offsets = {0, 3, 3, 40, 41};
    Tensor rows = randomF32({41, H}, rng);
    auto r = (*ex)->run({rows, i64({E + 1}, offsets)});
    ASSERT_TRUE(r.isOk()) << r.status().message();
    std::vector<Tensor> w = {
        f32({E, 2 * F, H}, dequantised(w1, 2 * F, H, formats)),
        f32({E, H, F}, dequantised(w2, H, F, formats)), f32({E, 2 * F}, b1)};
    expectClose((*r)[0], reference(rows, offsets, w, c, F), 1e-5f);
  }
}

} // namespace
