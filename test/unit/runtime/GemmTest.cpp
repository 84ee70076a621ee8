//===- GemmTest.cpp - SIMD products against the scalar reference ----------===//
//
// Every dispatch level the CPU has (AVX-512, AVX2+FMA) against the scalar
// path, on odd sizes that exercise every block edge and the K tails.

#include "kernels/cpu/Gemm.h"
#include "kernels/cpu/Matmul.h"
#include "kernels/cpu/Quant.h"

#include <gtest/gtest.h>

#include <cmath>
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

} // namespace
