//===- QuantTest.cpp - Group-wise quantisation of weight matrices ---------===//
//
// quantise -> dequantise error bounds for every format, the packed layout,
// and the packed linear product against the dense one on dequantised rows.
//
//===----------------------------------------------------------------------===//

#include "kernels/cpu/Quant.h"
#include "kernels/cpu/QuantFast.h"

#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace kc = moe::kernels::cpu;

namespace {

std::vector<float> randomMatrix(int64_t rows, int64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (float &v : w)
    v = dist(rng);
  return w;
}

struct Case {
  int bits, group;
  bool f16, zeros;
};

std::string name(const Case &c) {
  return "int" + std::to_string(c.bits) + " g" + std::to_string(c.group) +
         (c.f16 ? " f16" : " f32") + (c.zeros ? " zp" : "");
}

const Case kCases[] = {
    {8, 32, true, false}, {8, 128, false, true},  {4, 32, true, false},
    {4, 64, true, true},  {4, 128, false, false}, {3, 32, true, false},
    {3, 64, false, true}, {3, 128, true, true},   {2, 32, true, false},
    {2, 64, true, true},  {2, 128, false, false}};

TEST(Quant, ErrorIsWithinHalfAStepPerGroup) {
  // Odd sizes: a partial last group and, for 3 bits, a partial 8-code word.
  for (const Case &c : kCases)
    for (auto [rows, cols] :
         {std::pair<int64_t, int64_t>{3, 37}, {5, 128}, {2, 301}, {1, 8}}) {
      kc::QuantFormat f{c.bits, c.group, c.f16, c.zeros};
      ASSERT_TRUE(kc::isValidQuantFormat(f));
      std::vector<float> w =
          randomMatrix(rows, cols, unsigned(c.bits * 131 + cols));
      kc::QuantLayout l = kc::quantLayout(f, rows, cols);
      std::vector<uint8_t> packed(size_t(l.totalBytes), 0xAB);
      kc::quantizeMatrix(w.data(), rows, cols, f, packed.data());
      std::vector<float> back(static_cast<size_t>(cols));
      for (int64_t r = 0; r < rows; ++r) {
        kc::dequantizeRow(packed.data(), f, rows, cols, r, back.data());
        for (int64_t g = 0; g * c.group < cols; ++g) {
          int64_t c0 = g * c.group, c1 = std::min(cols, c0 + c.group);
          float lo = 0, hi = 0, amax = 0;
          for (int64_t i = c0; i < c1; ++i) {
            float v = w[size_t(r * cols + i)];
            lo = std::min(lo, v), hi = std::max(hi, v);
            amax = std::max(amax, std::fabs(v));
          }
          float step = c.zeros ? (hi - lo) / float((1 << c.bits) - 1)
                               : amax / float((1 << (c.bits - 1)) - 1);
          // Half a step, plus the f16 rounding of the scale.
          float bound =
              step * (0.5f + (c.f16 ? 0.002f * float(1 << c.bits) : 1e-5f)) +
              1e-6f;
          for (int64_t i = c0; i < c1; ++i)
            ASSERT_LE(std::fabs(back[size_t(i)] - w[size_t(r * cols + i)]),
                      bound)
                << name(c) << " rows=" << rows << " cols=" << cols << " r=" << r
                << " c=" << i;
        }
      }
    }
}

TEST(Quant, MoreBitsMeanLessError) {
  std::vector<float> w = randomMatrix(16, 256, 7);
  double previous = 0;
  for (int bits : {8, 4, 3, 2}) {
    kc::QuantFormat f{bits, 64, true, false};
    kc::QuantLayout l = kc::quantLayout(f, 16, 256);
    std::vector<uint8_t> packed(size_t(l.totalBytes));
    kc::quantizeMatrix(w.data(), 16, 256, f, packed.data());
    std::vector<float> back(256);
    double err = 0;
    for (int64_t r = 0; r < 16; ++r) {
      kc::dequantizeRow(packed.data(), f, 16, 256, r, back.data());
      for (int64_t i = 0; i < 256; ++i)
        err += std::pow(back[size_t(i)] - w[size_t(r * 256 + i)], 2);
    }
    EXPECT_GT(err, previous) << bits << " bits";
    previous = err;
  }
}

TEST(Quant, Bf16RoundsToNearestEvenAndRunsFast) {
  int64_t n = 5, k = 64, out = 7;
  std::vector<float> w = randomMatrix(out, k, 51), x = randomMatrix(n, k, 52);
  kc::QuantFormat f{16, 0, true, false};
  ASSERT_TRUE(kc::isValidQuantFormat(f));
  kc::QuantLayout l = kc::quantLayout(f, out, k);
  EXPECT_EQ(l.totalBytes, out * k * 2);
  std::vector<uint8_t> packed(size_t(l.totalBytes));
  kc::quantizeMatrix(w.data(), out, k, f, packed.data());
  std::vector<float> row(static_cast<size_t>(k));
  for (int64_t o = 0; o < out; ++o) {
    kc::dequantizeRow(packed.data(), f, out, k, o, row.data());
    for (int64_t i = 0; i < k; ++i)
      ASSERT_LE(std::fabs(row[size_t(i)] - w[size_t(o * k + i)]),
                std::fabs(w[size_t(o * k + i)]) / 256.0f);
  }
  std::vector<float> fast(size_t(n * out)), ref(size_t(n * out));
  kc::linearPackedSerial(x.data(), n, k, packed.data(), f, out, nullptr,
                         fast.data(), 0, out);
  bool was = kc::setQuantForceScalar(true);
  kc::linearPackedSerial(x.data(), n, k, packed.data(), f, out, nullptr,
                         ref.data(), 0, out);
  kc::setQuantForceScalar(was);
  for (size_t i = 0; i < fast.size(); ++i)
    ASSERT_NEAR(fast[i], ref[i], 1e-4f * (1 + std::fabs(ref[i])));
}

TEST(Quant, LayoutSectionsAreAlignedAndSized) {
  kc::QuantLayout l = kc::quantLayout({4, 128, true, true}, 10, 300);
  EXPECT_EQ(l.rowBytes, 150);
  EXPECT_EQ(l.groupsPerRow, 3);
  EXPECT_EQ(l.scalesOffset, 1536); // 1500 rounded up to 64
  EXPECT_EQ(l.zerosOffset, 1600);  // 1536 + 60 scale bytes, rounded up
  EXPECT_EQ(l.totalBytes, 1630);
  kc::QuantLayout three = kc::quantLayout({3, 32, false, false}, 2, 9);
  EXPECT_EQ(three.rowBytes, 6); // two 3-byte words
  EXPECT_EQ(three.totalBytes, 64 + 2 * 1 * 4);
  kc::QuantLayout plain = kc::quantLayout({}, 3, 5);
  EXPECT_EQ(plain.totalBytes, 60);
  EXPECT_FALSE(kc::isValidQuantFormat({5, 32, true, false}));
  EXPECT_FALSE(kc::isValidQuantFormat({4, 16, true, false}));
}

TEST(Quant, CodesArePackedAsDocumented) {
  // One row, symmetric 4-bit: w = (code - 8) * scale with scale = 1 when
  // max|w| = 7, so code = w + 8; low nibble first.
  std::vector<float> w = {-7, 7, 0, 1, -1, 2, 3, -3};
  kc::QuantFormat f{4, 32, false, false};
  std::vector<uint8_t> packed(size_t(kc::quantLayout(f, 1, 8).totalBytes));
  kc::quantizeMatrix(w.data(), 1, 8, f, packed.data());
  EXPECT_EQ(packed[0], 0xF1); // codes 1, 15
  EXPECT_EQ(packed[1], 0x98); // codes 8, 9
  EXPECT_EQ(packed[2], 0xA7); // codes 7, 10
  EXPECT_EQ(packed[3], 0x5B); // codes 11, 5
  // 3-bit: eight codes in a little-endian 24-bit word, code j at bits 3j.
  std::vector<float> w3 = {-3, -2, -1, 0, 1, 2, 3, 0};
  kc::QuantFormat f3{3, 32, false, false};
  std::vector<uint8_t> p3(size_t(kc::quantLayout(f3, 1, 8).totalBytes));
  kc::quantizeMatrix(w3.data(), 1, 8, f3, p3.data());
  uint32_t word = p3[0] | p3[1] << 8 | p3[2] << 16;
  for (int j = 0; j < 8; ++j)
    EXPECT_EQ((word >> (3 * j)) & 7, uint32_t(w3[size_t(j)] + 4)) << j;
}

TEST(Quant, PackedLinearMatchesDenseOnDequantisedWeights) {
  int64_t n = 3, k = 97, out = 33;
  std::vector<float> x = randomMatrix(n, k, 11),
                     bias = randomMatrix(1, out, 12);
  std::vector<float> w = randomMatrix(out, k, 13);
  for (const Case &c : kCases) {
    kc::QuantFormat f{c.bits, c.group, c.f16, c.zeros};
    std::vector<uint8_t> packed(size_t(kc::quantLayout(f, out, k).totalBytes));
    kc::quantizeMatrix(w.data(), out, k, f, packed.data());
    std::vector<float> y(size_t(n * out), -1.0f);
    kc::linearPackedSerial(x.data(), n, k, packed.data(), f, out, bias.data(),
                           y.data(), 0, out);
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t o = 0; o < out; ++o) {
      kc::dequantizeRow(packed.data(), f, out, k, o, row.data());
      for (int64_t r = 0; r < n; ++r) {
        double ref = bias[size_t(o)];
        for (int64_t i = 0; i < k; ++i)
          ref += double(x[size_t(r * k + i)]) * row[size_t(i)];
        ASSERT_NEAR(y[size_t(r * out + o)], ref, 1e-4 * (1 + std::fabs(ref)))
            << name(c);
      }
    }
  }
}

/// The SIMD levels this CPU has (each is compared with the scalar one).
std::vector<kc::GemmLevel> simdLevels() {
  std::vector<kc::GemmLevel> levels;
  kc::setQuantLevelLimit(std::nullopt);
  for (kc::GemmLevel l : {kc::GemmLevel::Avx2, kc::GemmLevel::Avx512})
    if (int(l) <= int(kc::quantLevel()))
      levels.push_back(l);
  return levels;
}

/// Every format: 8/4/3/2 bits, each group size, f16 and f32 scales, with
/// and without zero points.
std::vector<kc::QuantFormat> allFormats() {
  std::vector<kc::QuantFormat> formats;
  for (int bits : {8, 4, 3, 2})
    for (int group : {32, 64, 128})
      for (bool f16 : {true, false})
        for (bool zeros : {false, true})
          formats.push_back({bits, group, f16, zeros});
  return formats;
}

std::string name(const kc::QuantFormat &f) {
  return name(Case{f.bits, f.groupSize, f.f16Scales, f.zeroPoints});
}

/// Bound on the rounding error of a float product of a dequantised row with
/// x: a few float ulps of Σ |code|·|scale|·|x| (the decode paths sum codes
/// times x and subtract zero·Σx per group).
double productBound(const std::vector<float> &row, const float *x, int64_t k,
                    int bits) {
  double amax = 0, sx = 0;
  for (int64_t i = 0; i < k; ++i) {
    amax = std::max(amax, double(std::fabs(row[size_t(i)])));
    sx += std::fabs(x[i]);
  }
  // |code|·scale ≤ 2^bits·scale ≤ 4·amax (symmetric 2-bit: scale = amax).
  return 1e-6 + 1e-7 * 4 * amax * sx;
}

struct Product {
  int64_t n, k, out, c0, c1;
};

/// linearPackedSerial at `level` against the scalar reference.
void expectMatchesScalar(const kc::QuantFormat &f, const Product &p,
                         kc::GemmLevel level, unsigned seed,
                         const uint8_t *packed = nullptr) {
  std::vector<float> w = randomMatrix(p.out, p.k, seed),
                     x = randomMatrix(p.n, p.k, seed + 1),
                     bias = randomMatrix(1, p.out, seed + 2);
  std::vector<uint8_t> own;
  if (!packed) {
    own.resize(size_t(kc::quantLayout(f, p.out, p.k).totalBytes));
    kc::quantizeMatrix(w.data(), p.out, p.k, f, own.data());
    packed = own.data();
  }
  std::vector<float> fast(size_t(p.n * p.out), -1), ref(size_t(p.n * p.out),
                                                         -2);
  kc::setQuantLevelLimit(level);
  kc::linearPackedSerial(x.data(), p.n, p.k, packed, f, p.out, bias.data(),
                         fast.data(), p.c0, p.c1);
  kc::setQuantLevelLimit(kc::GemmLevel::Scalar);
  kc::linearPackedSerial(x.data(), p.n, p.k, packed, f, p.out, bias.data(),
                         ref.data(), p.c0, p.c1);
  kc::setQuantLevelLimit(std::nullopt);
  std::vector<float> row(size_t(p.k));
  for (int64_t o = 0; o < p.out; ++o) {
    bool inside = o >= p.c0 && o < p.c1;
    if (inside)
      kc::dequantizeRow(packed, f, p.out, p.k, o, row.data());
    for (int64_t r = 0; r < p.n; ++r) {
      float got = fast[size_t(r * p.out + o)];
      if (!inside) {
        // Columns outside [c0, c1) are not written.
        ASSERT_EQ(got, -1.0f) << name(f) << " o=" << o;
        continue;
      }
      ASSERT_NEAR(got, ref[size_t(r * p.out + o)],
                  productBound(row, x.data() + r * p.k, p.k, f.bits))
          << name(f) << " " << kc::gemmLevelName(level) << " n=" << p.n
          << " k=" << p.k << " o=" << o << " r=" << r;
    }
  }
}

TEST(Quant, DecodePathsMatchScalarReferenceAtEveryLevel) {
  // Every format and SIMD level against the scalar reference: 1..7 rows of
  // x (the row tiles of 4 and their tails), odd numbers of weight rows and
  // column ranges (the blocks of 4, 2 and 1), and k with partial chunks,
  // partial groups and partial 3-bit words.
  std::vector<kc::GemmLevel> levels = simdLevels();
  if (levels.empty())
    GTEST_SKIP() << "no SIMD level for packed weights on this CPU";
  unsigned seed = 100;
  for (kc::GemmLevel level : levels)
    for (const kc::QuantFormat &f : allFormats()) {
      for (Product p : {Product{1, 256, 19, 2, 19}, Product{2, 1000, 9, 0, 9},
                        Product{3, 97, 11, 1, 10}, Product{4, 384, 7, 0, 7},
                        Product{5, 130, 6, 1, 6}, Product{7, 33, 5, 0, 5},
                        Product{6, 512, 10, 3, 8}, Product{1, 8, 3, 0, 3}})
        expectMatchesScalar(f, p, level, seed++);
      if (HasFatalFailure())
        return;
    }
}

TEST(Quant, DecodePathsReadNothingPastTheMatrix) {
  // The packed matrix ends at a page the process may not read: the last
  // chunk of the last row must not be read past its end.
  std::vector<kc::GemmLevel> levels = simdLevels();
  if (levels.empty())
    GTEST_SKIP() << "no SIMD level for packed weights on this CPU";
  long page = sysconf(_SC_PAGESIZE);
  for (kc::GemmLevel level : levels)
    for (const kc::QuantFormat &f : allFormats())
      for (int64_t k : {int64_t(40), int64_t(64), int64_t(130)}) {
        const int64_t out = 3;
        std::vector<float> w = randomMatrix(out, k, 7);
        int64_t bytes = kc::quantLayout(f, out, k).totalBytes;
        size_t span = size_t((bytes + page - 1) / page * page);
        void *mem = mmap(nullptr, span + size_t(page), PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ASSERT_NE(mem, MAP_FAILED);
        ASSERT_EQ(mprotect(static_cast<uint8_t *>(mem) + span, size_t(page),
                           PROT_NONE),
                  0);
        uint8_t *packed = static_cast<uint8_t *>(mem) + span - bytes;
        kc::quantizeMatrix(w.data(), out, k, f, packed);
        for (int64_t n : {1, 3})
          expectMatchesScalar(f, Product{n, k, out, 0, out}, level, 7, packed);
        munmap(mem, span + size_t(page));
        if (HasFatalFailure())
          return;
      }
}

TEST(Quant, Bf16DecodeMatchesScalarReferenceAtEveryLevel) {
  std::vector<kc::GemmLevel> levels = simdLevels();
  if (levels.empty())
    GTEST_SKIP() << "no SIMD level for packed weights on this CPU";
  kc::QuantFormat f{16, 0, true, false};
  for (kc::GemmLevel level : levels)
    for (Product p : {Product{1, 256, 19, 2, 19}, Product{3, 97, 11, 1, 10},
                      Product{5, 33, 6, 0, 6}, Product{7, 17, 5, 1, 4},
                      Product{12, 40, 5, 0, 5}})
      expectMatchesScalar(f, p, level, 77);
}

TEST(Quant, PreparedActivationsServeEveryColumnBlock) {
  // One preparation, products over disjoint column ranges (as the experts
  // kernel runs them on different threads) = one product over all columns.
  if (simdLevels().empty())
    GTEST_SKIP() << "no SIMD level for packed weights on this CPU";
  int64_t n = 2, k = 320, out = 37;
  std::vector<float> w = randomMatrix(out, k, 61), x = randomMatrix(n, k, 62);
  for (const kc::QuantFormat &f : allFormats()) {
    std::vector<uint8_t> packed(size_t(kc::quantLayout(f, out, k).totalBytes));
    kc::quantizeMatrix(w.data(), out, k, f, packed.data());
    kc::PackedActivations a;
    ASSERT_TRUE(a.prepare(x.data(), n, k, f)) << name(f);
    EXPECT_TRUE(a.matches(x.data(), n, k, f));
    EXPECT_FALSE(a.matches(x.data(), n, k + 1, f));
    std::vector<float> whole(size_t(n * out)), parts(size_t(n * out));
    kc::linearPackedPrepared(a, packed.data(), f, out, nullptr, whole.data(), 0,
                             out);
    for (int64_t c0 = 0; c0 < out; c0 += 5)
      kc::linearPackedPrepared(a, packed.data(), f, out, nullptr, parts.data(),
                               c0, std::min(out, c0 + 5));
    for (size_t i = 0; i < whole.size(); ++i)
      ASSERT_EQ(whole[i], parts[i]) << name(f) << " " << i;
  }
}

TEST(Quant, LevelsCanBeCappedForTests) {
  kc::setQuantLevelLimit(kc::GemmLevel::Scalar);
  EXPECT_EQ(kc::quantLevel(), kc::GemmLevel::Scalar);
  EXPECT_STREQ(kc::quantDispatchLevel(), "scalar");
  kc::setQuantLevelLimit(std::nullopt);
  if (kc::quantLevel() >= kc::GemmLevel::Avx2) {
    kc::setQuantLevelLimit(kc::GemmLevel::Avx2);
    EXPECT_STREQ(kc::quantDispatchLevel(), "avx2");
    kc::setQuantLevelLimit(std::nullopt);
  }
  bool was = kc::setQuantForceScalar(true);
  EXPECT_EQ(kc::quantLevel(), kc::GemmLevel::Scalar);
  kc::setQuantForceScalar(was);
}

TEST(Quant, VnniPathMatchesReferenceOnQuantisedActivations) {
  bool was = kc::setQuantInt8Activations(true);
  if (std::string(kc::quantDispatchLevel()) != "avx512-vnni-int8") {
    kc::setQuantInt8Activations(was);
    GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  }
  int64_t k = 256, out = 11;
  std::vector<float> w = randomMatrix(out, k, 31),
                     bias = randomMatrix(1, out, 32);
  for (const Case &c : kCases) {
    if (c.bits != 8 && c.bits != 4)
      continue;
    kc::QuantFormat f{c.bits, c.group, c.f16, c.zeros};
    std::vector<uint8_t> packed(size_t(kc::quantLayout(f, out, k).totalBytes));
    kc::quantizeMatrix(w.data(), out, k, f, packed.data());
    for (int64_t n : {1, 2, 3, 5, 7}) {
      std::vector<float> x = randomMatrix(n, k, unsigned(40 + n));
      std::vector<float> y(size_t(n * out), -1);
      kc::linearPackedSerial(x.data(), n, k, packed.data(), f, out,
                             bias.data(), y.data(), 0, out);
      // The documented activation rounding: per row and weight group,
      // q = round(x * 127 / max|x|), x' = q * max|x| / 127.
      std::vector<float> xq(x);
      for (int64_t r = 0; r < n; ++r)
        for (int64_t g = 0; g < k; g += c.group) {
          float amax = 0;
          for (int64_t i = g; i < g + c.group; ++i)
            amax = std::max(amax, std::fabs(x[size_t(r * k + i)]));
          for (int64_t i = g; i < g + c.group; ++i)
            xq[size_t(r * k + i)] =
                float(std::lround(x[size_t(r * k + i)] * (127.0f / amax))) *
                (amax / 127.0f);
        }
      std::vector<float> row(static_cast<size_t>(k));
      for (int64_t o = 0; o < out; ++o) {
        kc::dequantizeRow(packed.data(), f, out, k, o, row.data());
        for (int64_t r = 0; r < n; ++r) {
          double exact = bias[size_t(o)], onFloats = bias[size_t(o)];
          double bound = 1e-4; // the activation rounding, at most half a step
          for (int64_t i = 0; i < k; ++i) {
            exact += double(xq[size_t(r * k + i)]) * row[size_t(i)];
            onFloats += double(x[size_t(r * k + i)]) * row[size_t(i)];
            bound += std::fabs(row[size_t(i)]) *
                     std::fabs(x[size_t(r * k + i)] - xq[size_t(r * k + i)]);
          }
          float got = y[size_t(r * out + o)];
          ASSERT_NEAR(got, exact, 1e-4 * (1 + std::fabs(exact))) << name(c);
          // And close to the float path: within the activation rounding.
          ASSERT_NEAR(got, onFloats, bound) << name(c);
        }
      }
    }
  }
  kc::setQuantInt8Activations(was);
}

TEST(Quant, Int8ActivationsRoundHalvesAwayFromZero) {
  // The vector quantisation of the VNNI path rounds as std::lround: with a
  // group maximum of 127 the scale is exactly 1, so these are the codes.
  bool was = kc::setQuantInt8Activations(true);
  if (std::string(kc::quantDispatchLevel()) != "avx512-vnni-int8") {
    kc::setQuantInt8Activations(was);
    GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  }
  const int64_t k = 64;
  std::vector<float> x(size_t(k), 0.0f);
  const float tricky[] = {127.0f, 2.5f,  -2.5f, 0.5f,        -0.5f,
                          126.5f, -126.5f, 0.49999997f, -0.49999997f,
                          1.5f,   -1.5f, 3.4999998f, 64.5f, -0.0f};
  for (size_t i = 0; i < sizeof(tricky) / sizeof(float); ++i)
    x[i * 3] = tricky[i]; // spread over both 16-lane halves and vectors
  for (int64_t i = 0; i < k; ++i)
    if (x[size_t(i)] == 0.0f && i % 3 != 0)
      x[size_t(i)] = float(i % 7) - 3.25f; // non-ties, both signs
  for (int bits : {8, 4}) {
    kc::QuantFormat f{bits, 64, true, false};
    kc::PackedActivations a;
    if (bits == 4) {
      // 4 bits take whole 128-element chunks: the same values, twice.
      std::vector<float> x2(x);
      x2.insert(x2.end(), x.begin(), x.end());
      ASSERT_TRUE(a.prepare(x2.data(), 1, 128, f));
      for (int64_t i = 0; i < 128; ++i) {
        const int64_t at = (i % 2) * 64 + i / 2;
        ASSERT_EQ(int(a.q[at]), int(std::lround(x2[size_t(i)])))
            << "bits 4, element " << i << " = " << x2[size_t(i)];
      }
      continue;
    }
    ASSERT_TRUE(a.prepare(x.data(), 1, k, f));
    int sum = 0;
    for (int64_t i = 0; i < k; ++i) {
      ASSERT_EQ(int(a.q[i]), int(std::lround(x[size_t(i)])))
          << "bits 8, element " << i << " = " << x[size_t(i)];
      sum += int(std::lround(x[size_t(i)]));
    }
    EXPECT_FLOAT_EQ(a.sx[0], float(sum));
    EXPECT_FLOAT_EQ(a.xs[0], 1.0f);
  }
  kc::setQuantInt8Activations(was);
}

TEST(Quant, DecodePreparationDeclinesWhatItDoesNotHandle) {
  // Prefill rows, plain and bf16 weights, and the scalar level go to
  // linearPackedSerial's other paths.
  std::vector<float> x(8 * 64);
  kc::PackedActivations a;
  EXPECT_FALSE(a.prepare(x.data(), 8, 64, {4, 32, true, false}));
  EXPECT_FALSE(a.prepare(x.data(), 1, 64, {16, 0, true, false}));
  EXPECT_FALSE(a.prepare(x.data(), 1, 64, {}));
  EXPECT_FALSE(a.prepare(x.data(), 1, 64, {4, 16, true, false}));
  EXPECT_FALSE(a.ready());
  kc::setQuantLevelLimit(kc::GemmLevel::Scalar);
  EXPECT_FALSE(a.prepare(x.data(), 1, 64, {4, 32, true, false}));
  kc::setQuantLevelLimit(std::nullopt);
}

} // namespace
