//===- PrecisionAnalysisTest.cpp - Error model and profile reader ---------===//

#include "passes/Analysis/ExpertInventory.h"
#include "passes/Analysis/QuantError.h"
#include "passes/Analysis/RoutingProfile.h"
#include "compiler/Registration.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace mlir;
namespace precision = ::moe::precision;

namespace {

std::vector<float> gaussian(int64_t n, uint64_t seed, float shift = 0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float &x : v)
    x = d(rng) + shift;
  return v;
}

double relError(const std::vector<float> &w, int64_t rows, int64_t cols,
                precision::Format f) {
  double norm = 0;
  for (float x : w)
    norm += double(x) * x;
  return precision::squaredError(w.data(), rows, cols, f, true) / norm;
}

TEST(QuantError, ParsesFormats) {
  struct Case {
    const char *text;
    int bits, group;
    bool zp;
  } cases[] = {{"f32", 0, 0, false},        {"bf16", 16, 0, false},
               {"16", 16, 0, false},        {"int4/g128", 4, 128, false},
               {"4/g64", 4, 64, false},     {"3g32", 3, 32, false},
               {"int2/g64/zp", 2, 64, true}, {"8/g128/zp", 8, 128, true}};
  for (const Case &c : cases) {
    auto f = precision::parseFormat(c.text);
    ASSERT_TRUE(f.isOk()) << c.text << ": " << f.status().message();
    EXPECT_EQ(f->bits, c.bits) << c.text;
    EXPECT_EQ(f->groupSize, c.group) << c.text;
    EXPECT_EQ(f->zeroPoints, c.zp) << c.text;
    // The name parses back to the same format.
    auto again = precision::parseFormat(precision::formatName(*f));
    ASSERT_TRUE(again.isOk());
    EXPECT_TRUE(*again == *f) << precision::formatName(*f);
  }
  for (const char *bad : {"", "int5/g32", "int4/g48", "int4", "g128",
                          "int4/g128/xx", "bf16/zp", "int4/g", "int/g128"}) {
    auto f = precision::parseFormat(bad);
    EXPECT_FALSE(f.isOk()) << "'" << bad << "' parsed";
    if (!f.isOk()) {
      EXPECT_NE(f.status().message().find("bad format"), std::string::npos);
    }
  }
}

TEST(QuantError, PackedBytesAreThePlanSliceSizes) {
  // int4/g128 of [512, 128]: 32768 bytes of codes, 512 f16 scales.
  EXPECT_EQ(precision::packedBytes({4, 128, false}, 512, 128, true),
            32768 + 1024);
  EXPECT_EQ(precision::packedBytes({4, 128, false}, 512, 128, false),
            32768 + 2048);
  // Zero points add one byte per group (64-byte aligned section).
  EXPECT_EQ(precision::packedBytes({4, 128, true}, 512, 128, true),
            32768 + 1024 + 512);
  EXPECT_EQ(precision::packedBytes({16, 0, false}, 7, 9, true), 7 * 9 * 2);
  EXPECT_EQ(precision::packedBytes({0, 0, false}, 7, 9, true), 7 * 9 * 4);
  // Fewer bits, fewer bytes; smaller groups, more bytes.
  EXPECT_LT(precision::packedBytes({2, 128, false}, 64, 256, true),
            precision::packedBytes({3, 128, false}, 64, 256, true));
  EXPECT_LT(precision::packedBytes({3, 128, false}, 64, 256, true),
            precision::packedBytes({3, 32, false}, 64, 256, true));
}

TEST(QuantError, ErrorFallsWithBitsAndGroupSize) {
  int64_t rows = 48, cols = 200; // a tail group of 200 % 64 = 8
  std::vector<float> w = gaussian(rows * cols, 7);
  EXPECT_EQ(relError(w, rows, cols, {0, 0, false}), 0.0);
  double bf16 = relError(w, rows, cols, {16, 0, false});
  EXPECT_GT(bf16, 0.0);
  EXPECT_LT(bf16, 1e-5); // 8 mantissa bits: <= 2^-9 relative per element
  double last = bf16;
  for (int bits : {8, 4, 3, 2}) {
    double e = relError(w, rows, cols, {bits, 64, false});
    EXPECT_GT(e, last) << bits << " bits";
    last = e;
    EXPECT_LT(relError(w, rows, cols, {bits, 32, false}),
              relError(w, rows, cols, {bits, 128, false}))
        << bits << " bits";
  }
  // Round to nearest: at most half a step per element, where the step of a
  // symmetric group is max|w| / (2^(bits-1) - 1).
  std::vector<float> back(w.size());
  precision::roundTrip(w.data(), rows, cols, {4, 64, false}, false,
                       back.data());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g0 = 0; g0 < cols; g0 += 64) {
      float m = 0;
      for (int64_t c = g0; c < std::min<int64_t>(cols, g0 + 64); ++c)
        m = std::max(m, std::fabs(w[size_t(r * cols + c)]));
      float step = m / 7;
      for (int64_t c = g0; c < std::min<int64_t>(cols, g0 + 64); ++c)
        EXPECT_LE(std::fabs(w[size_t(r * cols + c)] - back[size_t(r * cols + c)]),
                  0.5f * step * (1 + 1e-5f) + 1e-7f);
    }
}

TEST(QuantError, ZeroPointsHelpSkewedWeightsAtTwoBits) {
  // Weights that are not centred on zero waste half the symmetric grid.
  std::vector<float> w = gaussian(32 * 128, 3, /*shift=*/1.5f);
  EXPECT_LT(relError(w, 32, 128, {2, 64, true}),
            0.5 * relError(w, 32, 128, {2, 64, false}));
}

TEST(QuantError, RoundTripMayWorkInPlace) {
  std::vector<float> w = gaussian(16 * 64, 11), copy = w, out(w.size());
  precision::roundTrip(w.data(), 16, 64, {3, 32, true}, true, out.data());
  precision::roundTrip(copy.data(), 16, 64, {3, 32, true}, true, copy.data());
  EXPECT_EQ(out, copy);
}

/// ||X (W - Q)ᵀ||² for a [rows, cols] W and its stand-in Q.
double outputError(const std::vector<float> &x, int64_t n,
                   const std::vector<float> &w, const std::vector<float> &q,
                   int64_t rows, int64_t cols) {
  double e = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t r = 0; r < rows; ++r) {
      double d = 0;
      for (int64_t c = 0; c < cols; ++c)
        d += double(x[size_t(i * cols + c)]) *
             (double(w[size_t(r * cols + c)]) - double(q[size_t(r * cols + c)]));
      e += d * d;
    }
  return e;
}

TEST(QuantError, GptqBeatsRoundToNearestOnCorrelatedInputs) {
  int64_t rows = 48, cols = 96, n = 512;
  std::vector<float> w = gaussian(rows * cols, 21);
  // Inputs with correlated features (a random mixing of a few factors) and
  // a few large-magnitude channels, as hidden states have.
  std::vector<float> z = gaussian(n * 16, 22), mix = gaussian(16 * cols, 23);
  std::vector<float> x(size_t(n * cols));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < cols; ++c) {
      double v = 0;
      for (int64_t k = 0; k < 16; ++k)
        v += z[size_t(i * 16 + k)] * mix[size_t(k * cols + c)];
      x[size_t(i * cols + c)] = float(v * (c % 17 == 0 ? 4 : 1));
    }
  for (precision::Format f : {precision::Format{4, 32, false},
                              precision::Format{3, 64, true},
                              precision::Format{2, 32, true}}) {
    std::vector<float> rtn(w.size()), cal(w.size()), back(w.size());
    precision::roundTrip(w.data(), rows, cols, f, true, rtn.data());
    // Calibrate on the first half, judge on the second.
    ASSERT_TRUE(precision::gptqCalibrate(w.data(), rows, cols, x.data(), n / 2,
                                         f, true, cal.data()));
    // The plan rounds the calibrated weights to nearest: that must give the
    // GPTQ values (the anchors keep the grid).
    precision::roundTrip(cal.data(), rows, cols, f, true, back.data());
    int64_t moved = 0;
    for (size_t i = 0; i < w.size(); ++i)
      moved += back[i] != cal[i] && back[i] != rtn[i];
    EXPECT_EQ(moved, 0) << precision::formatName(f);
    std::vector<float> held(x.begin() + (n / 2) * cols, x.end());
    double eRtn = outputError(held, n / 2, w, rtn, rows, cols);
    double eGptq = outputError(held, n / 2, w, back, rows, cols);
    EXPECT_LT(eGptq, 0.8 * eRtn) << precision::formatName(f) << ": GPTQ "
                                 << eGptq << " vs RTN " << eRtn;
  }
}

const char *kProfile = R"({"format": "moe-profile", "version": 1,
 "model_id": "abc", "runs": 2,
 "layers": [{"layer": 0, "num_experts": 3, "top_k": 2, "hidden": 2,
   "tokens": 10, "slot_weight_mean": [0.7, 0.3],
   "experts": [{"count": 10, "weight_sum": 7.0, "slot_counts": [7, 3]},
               {"count": 6, "weight_sum": 2.0},
               {"count": 4, "weight_sum": 1.0}],
   "samples": {"rows": 1, "hidden": 2, "ids": [0, 2],
               "data_f32le_base64": "AACAPwAAAMA="}}]})";

TEST(RoutingProfile, ReadsAProfile) {
  auto p = mlir::moe::parseRoutingProfile(kProfile, "p.json");
  ASSERT_TRUE(bool(p)) << llvm::toString(p.takeError());
  EXPECT_EQ(p->modelId, "abc");
  EXPECT_EQ(p->runs, 2);
  ASSERT_EQ(p->layers.size(), 1u);
  const mlir::moe::LayerRouting &l = p->layers[0];
  EXPECT_EQ(l.numExperts, 3);
  EXPECT_EQ(l.topK, 2);
  EXPECT_DOUBLE_EQ(l.frequency(0), 0.5);
  EXPECT_DOUBLE_EQ(l.frequency(2), 0.2);
  EXPECT_DOUBLE_EQ(l.weightShare(0), 0.7);
  EXPECT_DOUBLE_EQ(l.experts[1].weightMean, 2.0 / 6.0);
  EXPECT_EQ(l.experts[0].slotCounts, (std::vector<int64_t>{7, 3}));
  ASSERT_EQ(l.sampleRows, 1);
  EXPECT_EQ(l.samples, (std::vector<float>{1.0f, -2.0f}));
  EXPECT_EQ(l.sampleIds, (std::vector<int64_t>{0, 2}));
  // A slot skipped by token-level pruning is recorded as -1.
  std::string skipped = kProfile;
  const std::string from = "\"ids\": [0, 2]";
  skipped.replace(skipped.find(from), from.size(), "\"ids\": [0, -1]");
  auto q = mlir::moe::parseRoutingProfile(skipped, "p.json");
  ASSERT_TRUE(bool(q)) << llvm::toString(q.takeError());
  EXPECT_EQ(q->layers[0].sampleIds, (std::vector<int64_t>{0, -1}));
}

TEST(RoutingProfile, RejectsBadProfiles) {
  struct Case {
    std::string from, to, message;
  } cases[] = {
      {"\"moe-profile\"", "\"other\"", "not a routing profile"},
      {"\"version\": 1", "\"version\": 2", "profile version 2 is not supported"},
      {"{\"count\": 6,", "{\"count\": -6,", "expert 1: `count` is -6"},
      {"\"weight_sum\": 2.0", "\"weight_sum\": -2.0", "`weight_sum` is negative"},
      {"\"num_experts\": 3", "\"num_experts\": 4", "`experts` must list all 4"},
      {"\"ids\": [0, 2]", "\"ids\": [0, 5]", "expert id 5 is out of range"},
      {"\"ids\": [0, 2]", "\"ids\": [0]", "`ids` must hold rows * top_k"},
      {"\"ids\": [0, 2]", "\"ids\": [0, -2]", "`ids` must hold integers >= -1"},
      {"AACAPwAAAMA=", "AACAPw==", "expected rows * hidden * 4"},
      {"AACAPwAAAMA=", "!!!", "bad base64"},
      {"\"layers\": [", "\"layerz\": [", "`layers` is missing"},
      {"\"runs\": 2,", "\"runs\": 2", "not valid JSON"},
  };
  for (const Case &c : cases) {
    std::string text = kProfile;
    size_t at = text.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from;
    text.replace(at, c.from.size(), c.to);
    auto p = mlir::moe::parseRoutingProfile(text, "p.json");
    ASSERT_FALSE(bool(p)) << "accepted: " << c.to;
    std::string message = llvm::toString(p.takeError());
    EXPECT_NE(message.find(c.message), std::string::npos)
        << "'" << message << "' lacks '" << c.message << "'";
    EXPECT_EQ(message.rfind("p.json: ", 0), 0u) << message;
  }
}

TEST(RoutingProfile, ImportanceKinds) {
  auto p = mlir::moe::parseRoutingProfile(kProfile, "p.json");
  ASSERT_TRUE(bool(p));
  const mlir::moe::LayerRouting &l = p->layers[0];
  using mlir::moe::ImportanceKind;
  // Picks 10/6/4, weights 7/2/1; no weight_sq_sum: weight_mean² · count.
  auto freq = mlir::moe::expertImportance(&l, 3, ImportanceKind::Frequency,
                                          0.5, 0.0);
  EXPECT_DOUBLE_EQ(freq[0], 0.5);
  EXPECT_DOUBLE_EQ(freq[1], 0.3);
  auto mixed = mlir::moe::expertImportance(&l, 3, ImportanceKind::Mixed, 0.25,
                                           0.0);
  EXPECT_DOUBLE_EQ(mixed[2], 0.25 * 0.2 + 0.75 * 0.1);
  auto energy = mlir::moe::expertImportance(&l, 3, ImportanceKind::Energy,
                                            0.5, 0.0);
  double sq0 = 4.9, sq1 = 4.0 / 6.0, sq2 = 0.25; // (w/c)² · c = w² / c
  EXPECT_NEAR(energy[0], sq0 / (sq0 + sq1 + sq2), 1e-12);
  // The floor lifts the rare expert to half the mean (1/3 · 0.5).
  auto floored = mlir::moe::expertImportance(&l, 3, ImportanceKind::Weight,
                                             0.5, 0.5);
  EXPECT_DOUBLE_EQ(floored[0], 0.7);
  EXPECT_DOUBLE_EQ(floored[2], 0.5 / 3.0);
  auto uniform = mlir::moe::expertImportance(nullptr, 3,
                                             ImportanceKind::Energy, 0.5, 0.5);
  EXPECT_EQ(uniform, (std::vector<double>{1.0, 1.0, 1.0}));
  EXPECT_FALSE(mlir::moe::parseImportanceKind("hot").has_value());
}

TEST(RoutingProfile, MutatedProfilesParseOrFailOnOneLine) {
  // Byte flips, truncations, insertions and deletions: never a crash, and
  // every error is one line naming the file.
  std::mt19937_64 rng(5);
  const std::string base = kProfile;
  int accepted = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string text = base;
    int edits = 1 + int(rng() % 4);
    for (int k = 0; k < edits && !text.empty(); ++k) {
      size_t at = rng() % text.size();
      switch (rng() % 4) {
      case 0:
        text[at] = char(rng() % 256);
        break;
      case 1:
        text.resize(at);
        break;
      case 2:
        text.insert(at, 1, "{}[]\",:0-9e\\"[rng() % 11]);
        break;
      default:
        text.erase(at, 1 + rng() % 8);
        break;
      }
    }
    auto p = mlir::moe::parseRoutingProfile(text, "p.json");
    if (p) {
      ++accepted;
      for (const mlir::moe::LayerRouting &l : p->layers) {
        EXPECT_EQ(int64_t(l.experts.size()), l.numExperts);
        EXPECT_EQ(int64_t(l.sampleIds.size()), l.sampleRows * l.topK);
      }
      continue;
    }
    std::string message = llvm::toString(p.takeError());
    EXPECT_EQ(message.rfind("p.json: ", 0), 0u) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  EXPECT_LT(accepted, 3000); // the mutations do reach the checks
}

TEST(RoutingProfile, MatchesOnlyItsModel) {
  MLIRContext context;
  DialectRegistry registry;
  ::moe::compiler::registerDialects(registry);
  context.appendDialectRegistry(registry);
  context.loadAllAvailableDialects();
  auto parse = [&](int seed) {
    std::string src =
        "func.func @f(%x: tensor<?x2xf32>, %o: tensor<4xi64>) -> "
        "tensor<?x2xf32> {\n"
        "  %w1 = nn.weight \"w1\" {seed = " + std::to_string(seed) +
        " : i64} : tensor<3x4x2xf32>\n"
        "  %w2 = nn.weight \"w2\" {seed = 9 : i64} : tensor<3x2x4xf32>\n"
        "  %y = moe.experts %x, %o w1(%w1) w2(%w2) : (tensor<?x2xf32>, "
        "tensor<4xi64>, tensor<3x4x2xf32>, tensor<3x2x4xf32>) -> "
        "tensor<?x2xf32>\n"
        "  return %y : tensor<?x2xf32>\n}\n";
    return parseSourceString<ModuleOp>(src, &context);
  };
  OwningOpRef<ModuleOp> a = parse(1), b = parse(2);
  ASSERT_TRUE(a && b);
  std::string idA = mlir::moe::modelFingerprint(*a);
  EXPECT_EQ(idA.size(), 16u);
  EXPECT_NE(idA, mlir::moe::modelFingerprint(*b));

  auto p = mlir::moe::parseRoutingProfile(kProfile, "p.json");
  ASSERT_TRUE(bool(p));
  p->modelId = idA;
  EXPECT_FALSE(bool(mlir::moe::checkProfileMatches(*p, *a)));
  llvm::Error e = mlir::moe::checkProfileMatches(*p, *b);
  ASSERT_TRUE(bool(e));
  EXPECT_NE(llvm::toString(std::move(e)).find("a profile of a different model"),
            std::string::npos);
  // Same id but another layer shape (a hand-edited profile).
  p->layers[0].numExperts = 5;
  llvm::Error e2 = mlir::moe::checkProfileMatches(*p, *a);
  ASSERT_TRUE(bool(e2));
  EXPECT_NE(llvm::toString(std::move(e2)).find("layer 0 has 5 experts"),
            std::string::npos);
}

} // namespace
