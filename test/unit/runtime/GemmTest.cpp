//===- GemmTest.cpp - SIMD products against the scalar reference ----------===//
//
// Every dispatch level the CPU has (AVX-512, AVX2+FMA) against the scalar
// path, on odd sizes that exercise every block edge and the K tails.

#include "kernels/cpu/Gemm.h"
#include "kernels/cpu/Matmul.h"
#include "kernels/cpu/Half.h"
#include "kernels/cpu/Quant.h"
#include "kernels/cpu/QuantFast.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace kc = moe::kernels::cpu;

namespace {

std::vector<float> randomVector(size_t n, std::mt19937 &gen) {
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(n);
  for (float &x : v)
    x = d(gen);
  return v;
}

float tolerance(int64_t k) { return 1e-5f * float(k) + 1e-5f; }

class GemmLevels : public ::testing::TestWithParam<kc::GemmLevel> {
protected:
  void SetUp() override {
    if (int(kc::gemmLevel()) < int(GetParam()))
      GTEST_SKIP() << "CPU lacks " << kc::gemmLevelName(GetParam());
    kc::setGemmLevelLimit(GetParam());
  }
  void TearDown() override { kc::setGemmLevelLimit(std::nullopt); }
};

TEST_P(GemmLevels, LinearMatchesScalar) {
  std::mt19937 gen(3);
  for (int64_t rows : {1, 3, 4, 7, 9})
    for (int64_t k : {1, 5, 16, 17, 33, 100})
      for (int64_t n : {1, 3, 4, 6, 65, 130}) {
        auto x = randomVector(size_t(rows * k), gen);
        auto w = randomVector(size_t(n * k), gen);
        auto bias = randomVector(size_t(n), gen);
        std::vector<float> got(size_t(rows * n), -7.f), want(size_t(rows * n));
        int64_t c0 = n > 2 ? 1 : 0, c1 = n;
        kc::linearSerial(x.data(), rows, k, w.data(), n, bias.data(),
                         got.data(), c0, c1);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t j = 0; j < n; ++j) {
            double s = bias[size_t(j)];
            for (int64_t t = 0; t < k; ++t)
              s += double(x[size_t(r * k + t)]) * w[size_t(j * k + t)];
            want[size_t(r * n + j)] = j < c0 ? -7.f : float(s);
          }
        for (size_t i = 0; i < got.size(); ++i)
          ASSERT_NEAR(got[i], want[i], tolerance(k))
              << "rows " << rows << " k " << k << " n " << n << " at " << i;
      }
}

TEST_P(GemmLevels, MatmulMatchesScalar) {
  std::mt19937 gen(5);
  for (int64_t m : {1, 2, 4, 5, 17})
    for (int64_t k : {1, 7, 32, 45})
      for (int64_t n : {1, 2, 15, 16, 17, 33, 257, 300}) {
        auto a = randomVector(size_t(m * k), gen);
        auto b = randomVector(size_t(k * n), gen);
        std::vector<float> got(size_t(m * n));
        kc::matmul(a.data(), {m, k}, b.data(), {k, n}, got.data(), {m, n});
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            double s = 0;
            for (int64_t t = 0; t < k; ++t)
              s += double(a[size_t(i * k + t)]) * b[size_t(t * n + j)];
            ASSERT_NEAR(got[size_t(i * n + j)], float(s), tolerance(k))
                << "m " << m << " k " << k << " n " << n;
          }
      }
}

INSTANTIATE_TEST_SUITE_P(Levels, GemmLevels,
                         ::testing::Values(kc::GemmLevel::Scalar,
                                           kc::GemmLevel::Avx2,
                                           kc::GemmLevel::Avx512),
                         [](const auto &info) {
                           return std::string(kc::gemmLevelName(info.param));
                         });

} // namespace

namespace {

// Prefill (8 or more rows) dequantises tiles of weight rows and runs the
// float GEMM: every format against dequantizeRow + a double-precision dot.
TEST(PackedPrefill, MatchesDequantisedReference) {
  std::mt19937 gen(11);
  for (kc::QuantFormat f :
       {kc::QuantFormat{8, 32, true, false}, kc::QuantFormat{4, 64, true, true},
        kc::QuantFormat{4, 128, false, false}, kc::QuantFormat{16, 0, true, false},
        kc::QuantFormat{3, 32, true, true}, kc::QuantFormat{2, 64, false, false}})
    for (int64_t n : {8, 13, 33})
      for (int64_t k : {128, 256}) {
        int64_t out = 37;
        auto w = randomVector(size_t(out * k), gen);
        auto x = randomVector(size_t(n * k), gen);
        auto bias = randomVector(size_t(out), gen);
        kc::QuantLayout l = kc::quantLayout(f, out, k);
        std::vector<uint8_t> packed(static_cast<size_t>(l.totalBytes));
        kc::quantizeMatrix(w.data(), out, k, f, packed.data());
        std::vector<float> y(size_t(n * out), -3.f);
        kc::linearPackedSerial(x.data(), n, k, packed.data(), f, out,
                               bias.data(), y.data(), 2, out);
        std::vector<float> row(static_cast<size_t>(k));
        for (int64_t c = 0; c < out; ++c) {
          kc::dequantizeRow(packed.data(), f, out, k, c, row.data());
          for (int64_t r = 0; r < n; ++r) {
            double s = bias[size_t(c)];
            for (int64_t t = 0; t < k; ++t)
              s += double(x[size_t(r * k + t)]) * row[size_t(t)];
            float want = c < 2 ? -3.f : float(s);
            ASSERT_NEAR(y[size_t(r * out + c)], want, tolerance(k))
                << "bits " << f.bits << " n " << n << " k " << k << " c " << c;
          }
        }
      }
}

/// Σ x·w over bf16 values in double: products of two bf16 numbers are exact
/// in f32, so the vdpbf16ps path differs only by its f32 summation order.
double bf16Dot(const std::vector<uint16_t> &x, int64_t r,
               const std::vector<uint16_t> &w, int64_t c, int64_t k,
               double *magnitude) {
  double s = 0, m = 0;
  for (int64_t t = 0; t < k; ++t) {
    double p = double(kc::bf16ToFloat(x[size_t(r * k + t)])) *
               double(kc::bf16ToFloat(w[size_t(c * k + t)]));
    s += p;
    m += std::fabs(p);
  }
  *magnitude = m;
  return s;
}

TEST(Bf16Dot, MatchesTheBf16ValuesProducts) {
  if (!kc::bf16DotAvailable())
    GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  std::mt19937 gen(21);
  // Rows: the 4-row blocks and their tails; k: odd, under one 32-element
  // step, exact steps and tails (pairs straddling the end); columns: blocks
  // of 4 and single columns inside [c0, c1).
  for (int64_t rows : {1, 3, 4, 5, 9})
    for (int64_t k : {1, 7, 31, 32, 33, 100, 257}) {
      const int64_t out = 11, c0 = 1, c1 = 10;
      std::vector<float> xf = randomVector(size_t(rows * k), gen),
                         wf = randomVector(size_t(out * k), gen),
                         bias = randomVector(size_t(out), gen);
      std::vector<uint16_t> x(xf.size()), w(wf.size());
      kc::roundToBf16(xf.data(), int64_t(xf.size()), x.data());
      kc::roundToBf16(wf.data(), int64_t(wf.size()), w.data());
      std::vector<float> y(size_t(rows * out), -7.f);
      ASSERT_TRUE(kc::linearBf16Fast(x.data(), rows, k, w.data(), out,
                                     bias.data(), y.data(), c0, c1));
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < out; ++c) {
          float got = y[size_t(r * out + c)];
          if (c < c0 || c >= c1) {
            ASSERT_EQ(got, -7.f) << "column " << c << " outside [c0, c1)";
            continue;
          }
          double mag;
          double want = bf16Dot(x, r, w, c, k, &mag) + bias[size_t(c)];
          ASSERT_NEAR(got, want, 1e-6 * (mag + 1))
              << "rows " << rows << " k " << k << " r " << r << " c " << c;
        }
    }
}

TEST(Bf16Dot, RoundsToNearestEven) {
  if (!kc::bf16DotAvailable())
    GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  // The vector conversion (with its masked tail) against the scalar one,
  // for every count up to two vectors and a half.
  std::mt19937 gen(5);
  for (int64_t n = 1; n <= 80; ++n) {
    std::vector<float> x = randomVector(size_t(n), gen);
    x[0] = 1.0f + 1.0f / 256.0f; // a tie: rounds to the even 1.0
    std::vector<uint16_t> got(size_t(n) + 1, 0xABCD);
    kc::roundToBf16(x.data(), n, got.data());
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(got[size_t(i)], kc::floatToBf16(x[size_t(i)])) << n << " " << i;
    ASSERT_EQ(got[size_t(n)], 0xABCD) << "wrote past the end, n " << n;
    EXPECT_EQ(got[0], 0x3F80);
  }
}

TEST(Bf16Dot, PackedPrefillWithBf16ActivationsRoundsOnlyTheActivations) {
  if (!kc::bf16DotAvailable())
    GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  // linearPackedSerial over bf16 weights, 8 rows or more: with bf16
  // activations on, the products of bf16(x) and the weights; off, x exact.
  std::mt19937 gen(8);
  const kc::QuantFormat f{16, 0, true, false};
  const int64_t n = 13, k = 300, out = 9;
  std::vector<float> wf = randomVector(size_t(out * k), gen),
                     xf = randomVector(size_t(n * k), gen);
  std::vector<uint8_t> packed(size_t(kc::quantLayout(f, out, k).totalBytes));
  kc::quantizeMatrix(wf.data(), out, k, f, packed.data());
  std::vector<uint16_t> w(size_t(out * k)), x(size_t(n * k));
  std::memcpy(w.data(), packed.data(), w.size() * 2);
  kc::roundToBf16(xf.data(), n * k, x.data());
  std::vector<float> on(size_t(n * out)), off(size_t(n * out));
  bool was = kc::setQuantBf16Activations(true);
  kc::linearPackedSerial(xf.data(), n, k, packed.data(), f, out, nullptr,
                         on.data(), 0, out);
  kc::setQuantBf16Activations(false);
  kc::linearPackedSerial(xf.data(), n, k, packed.data(), f, out, nullptr,
                         off.data(), 0, out);
  kc::setQuantBf16Activations(was);
  double differs = 0;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < out; ++c) {
      double mag;
      double want = bf16Dot(x, r, w, c, k, &mag);
      ASSERT_NEAR(on[size_t(r * out + c)], want, 1e-6 * (mag + 1));
      differs = std::max(differs, std::fabs(double(on[size_t(r * out + c)]) -
                                            off[size_t(r * out + c)]));
    }
  // Off keeps x exact: the two paths differ by the activations' rounding.
  EXPECT_GT(differs, 1e-5);
}

} // namespace
