//===- PruningTest.cpp - Expert pruning in the router ---------------------===//
//
// Static exclusion, token-level skipping (MC-MoE) and the batch-level cap
// (Lynx) of moe.route, on hand-made routing tables with known outcomes, and
// skipped pairs through dispatch and experts.

#include "kernels/cpu/Moe.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace kc = moe::kernels::cpu;

namespace {

/// Logits whose softmax over a row is exactly `probs` (up to rounding).
std::vector<float> logitsOf(const std::vector<std::vector<float>> &probs) {
  std::vector<float> out;
  for (const auto &row : probs)
    for (float p : row)
      out.push_back(std::log(p));
  return out;
}

struct Routed {
  std::vector<int64_t> ids;
  std::vector<float> weights;
};

Routed route(const std::vector<float> &logits, int64_t experts, int64_t k,
             const kc::RoutePruning &pruning, bool normalize = true) {
  int64_t tokens = int64_t(logits.size()) / experts;
  Routed r{std::vector<int64_t>(size_t(tokens * k)),
           std::vector<float>(size_t(tokens * k))};
  moe::rt::Status st =
      kc::routePruned(logits.data(), tokens, experts, k, kc::Scoring::Softmax,
                      normalize, pruning, r.ids.data(), r.weights.data());
  EXPECT_TRUE(st.isOk()) << st.message();
  return r;
}

TEST(RoutePruning, OffIsBitIdenticalToRoute) {
  std::mt19937 rng(3);
  std::normal_distribution<float> d(0, 2);
  std::vector<float> logits(37 * 8);
  for (float &x : logits)
    x = d(rng);
  for (bool normalize : {true, false}) {
    std::vector<int64_t> ids(37 * 3);
    std::vector<float> w(37 * 3);
    ASSERT_TRUE(kc::route(logits.data(), 37, 8, 3, kc::Scoring::Softmax,
                          normalize, ids.data(), w.data())
                    .isOk());
    // A pruning with nothing excluded and no policy gives the same choice
    // and, with normalize, the same weights.
    std::vector<uint8_t> none(8, 0);
    kc::RoutePruning p;
    p.excluded = none.data();
    Routed r = route(logits, 8, 3, p, normalize);
    EXPECT_EQ(r.ids, ids);
    for (size_t i = 0; i < w.size(); ++i)
      EXPECT_NEAR(r.weights[i], w[i], 1e-6f * std::fabs(w[i]) + 1e-7f);
  }
}

TEST(RoutePruning, ExcludedExpertsReRouteToTheNextBest) {
  // p = [0.4, 0.3, 0.2, 0.1]; expert 0 removed: top-2 of the rest is {1, 2}
  // with weights 0.3/0.5 and 0.2/0.5.
  std::vector<float> logits = logitsOf({{0.4f, 0.3f, 0.2f, 0.1f}});
  std::vector<uint8_t> excluded = {1, 0, 0, 0};
  kc::RoutePruning p;
  p.excluded = excluded.data();
  Routed r = route(logits, 4, 2, p);
  EXPECT_EQ(r.ids, (std::vector<int64_t>{1, 2}));
  EXPECT_NEAR(r.weights[0], 0.6f, 1e-6f);
  EXPECT_NEAR(r.weights[1], 0.4f, 1e-6f);
  // Without normalize the weights keep the unpruned top-2's sum (0.7).
  r = route(logits, 4, 2, p, /*normalize=*/false);
  EXPECT_NEAR(r.weights[0] + r.weights[1], 0.7f, 1e-6f);
  EXPECT_NEAR(r.weights[0] / r.weights[1], 1.5f, 1e-5f);
  // Fewer than k left is an error.
  std::vector<uint8_t> most = {1, 1, 1, 0};
  p.excluded = most.data();
  std::vector<int64_t> ids(2);
  std::vector<float> w(2);
  EXPECT_FALSE(kc::routePruned(logits.data(), 1, 4, 2, kc::Scoring::Softmax,
                               true, p, ids.data(), w.data())
                   .isOk());
}

TEST(RoutePruning, TokenLevelSkipsWeakSecondaryExperts) {
  // Top-2 of [0.45, 0.05, 0.25, 0.25] is {0, 2}; the second's share is
  // 0.25 / 0.7 = 0.36: kept at a threshold of 0.15.
  std::vector<float> logits = logitsOf({{0.45f, 0.05f, 0.25f, 0.25f}});
  kc::RoutePruning p;
  p.skipThreshold = 0.15f;
  Routed r = route(logits, 4, 2, p);
  EXPECT_EQ(r.ids, (std::vector<int64_t>{0, 2}));
  std::vector<float> sharp = logitsOf({{0.72f, 0.08f, 0.1f, 0.1f}});
  // Shares: 0.72/0.82 = 0.878, 0.1/0.82 = 0.122 (expert 2, lower id wins).
  r = route(sharp, 4, 2, p);
  EXPECT_EQ(r.ids, (std::vector<int64_t>{0, -1}));
  EXPECT_NEAR(r.weights[0], 1.0f, 1e-6f); // rescaled to the token's sum
  EXPECT_EQ(r.weights[1], 0.0f);
  // Below the threshold of 0.1 nothing is skipped.
  p.skipThreshold = 0.1f;
  r = route(sharp, 4, 2, p);
  EXPECT_EQ(r.ids, (std::vector<int64_t>{0, 2}));
  // An important token (first share 0.878 < protect 0.9) keeps both.
  p.skipThreshold = 0.15f;
  p.protectConfidence = 0.9f;
  r = route(sharp, 4, 2, p);
  EXPECT_EQ(r.ids, (std::vector<int64_t>{0, 2}));
  // The first expert is never skipped, whatever the threshold.
  p.protectConfidence = 0;
  p.skipThreshold = 0.99f;
  r = route(logitsOf({{0.3f, 0.3f, 0.2f, 0.2f}}), 4, 2, p);
  EXPECT_EQ(r.ids[0], 0);
  EXPECT_EQ(r.ids[1], -1);
}

TEST(RoutePruning, BatchCapKeepsTheExpertsWithMostMass) {
  // k = 1. Tokens pick 0 (0.7), 0 (0.6), 1 (0.5), 2 (0.9): masses 1.3, 0.5,
  // 0.9, 0. With at most 2 experts, {0, 2} stay; token 2 re-routes to its
  // best kept expert.
  std::vector<float> logits = logitsOf({{0.7f, 0.1f, 0.1f, 0.1f},
                                        {0.6f, 0.2f, 0.1f, 0.1f},
                                        {0.2f, 0.5f, 0.25f, 0.05f},
                                        {0.05f, 0.025f, 0.9f, 0.025f}});
  kc::RoutePruning p;
  p.maxExperts = 2;
  Routed r = route(logits, 4, 1, p);
  EXPECT_EQ(r.ids, (std::vector<int64_t>{0, 0, 2, 2}));
  for (float w : r.weights)
    EXPECT_NEAR(w, 1.0f, 1e-6f);
  // batch-mass 0.6 of 2.7: expert 0 (1.3) alone is not enough, 0 and 2 are.
  p.maxExperts = 0;
  p.batchMass = 0.6f;
  r = route(logits, 4, 1, p);
  EXPECT_EQ(r.ids, (std::vector<int64_t>{0, 0, 2, 2}));
  // batch-mass 0.4: expert 0 alone.
  p.batchMass = 0.4f;
  r = route(logits, 4, 1, p);
  EXPECT_EQ(r.ids, (std::vector<int64_t>{0, 0, 0, 0}));
  // At least k experts stay.
  p.batchMass = 0;
  p.maxExperts = 1;
  r = route(logits, 4, 2, p);
  for (int64_t id : r.ids)
    EXPECT_GE(id, 0);
}

TEST(RoutePruning, KeepFirstKeepsEveryFirstChoice) {
  // k = 2. First choices: expert 0 (tokens 0-2) and expert 3 (token 3);
  // masses: 0 ~2.1, 1 ~1.05, 3 ~0.5. A cap of 2 keeps {0, 1}: token 3
  // loses its first expert. With keep_first, {0, 3} and the cap grows to
  // hold both first choices and k: {0, 3}.
  std::vector<float> logits = logitsOf({{0.6f, 0.3f, 0.05f, 0.05f},
                                        {0.6f, 0.3f, 0.05f, 0.05f},
                                        {0.6f, 0.3f, 0.05f, 0.05f},
                                        {0.3f, 0.15f, 0.05f, 0.5f}});
  kc::RoutePruning p;
  p.maxExperts = 2;
  Routed r = route(logits, 4, 2, p);
  EXPECT_EQ(r.ids[6], 0);
  EXPECT_EQ(r.ids[7], 1);
  p.keepFirst = true;
  r = route(logits, 4, 2, p);
  EXPECT_EQ(r.ids[6], 3); // token 3 keeps its first expert
  EXPECT_EQ(r.ids[7], 0);
  EXPECT_EQ(r.ids[0], 0);
  EXPECT_EQ(r.ids[1], 3); // expert 1 is no longer run
}

TEST(RoutePruning, BatchStrideMakesEachPositionABatch) {
  // Tokens 0 and 2 (stride 2: one batch) prefer expert 0, tokens 1 and 3
  // prefer expert 3; a cap of 1 keeps a different expert per batch.
  std::vector<float> logits = logitsOf({{0.7f, 0.1f, 0.1f, 0.1f},
                                        {0.1f, 0.1f, 0.1f, 0.7f},
                                        {0.5f, 0.3f, 0.1f, 0.1f},
                                        {0.1f, 0.3f, 0.1f, 0.5f}});
  kc::RoutePruning p;
  p.maxExperts = 1;
  p.batchStride = 2;
  Routed r = route(logits, 4, 1, p);
  EXPECT_EQ(r.ids, (std::vector<int64_t>{0, 3, 0, 3}));
  // One batch of all four: expert 0 (1.2) beats expert 3 (1.2)? Equal mass:
  // the lower id stays.
  p.batchStride = 0;
  r = route(logits, 4, 1, p);
  EXPECT_EQ(r.ids, (std::vector<int64_t>{0, 0, 0, 0}));
}

TEST(RoutePruning, SkippedPairsGiveZeroRows) {
  // Two tokens, k = 2; token 0's second slot skipped.
  std::vector<int64_t> ids = {1, -1, 0, 1};
  std::vector<float> hidden = {1, 2, 3, 4};
  std::vector<float> rows(4 * 2, -7.0f);
  std::vector<int64_t> offsets(3), perm(4);
  ASSERT_TRUE(kc::dispatch(hidden.data(), 2, 2, ids.data(), 2, 2, rows.data(),
                           offsets.data(), perm.data())
                  .isOk());
  EXPECT_EQ(offsets, (std::vector<int64_t>{0, 1, 3}));
  // Expert 0: token 1 slot 0; expert 1: token 0 slot 0, token 1 slot 1;
  // then the skipped pair (token 0 slot 1) with a zero row.
  EXPECT_EQ(perm, (std::vector<int64_t>{2, 0, 3, 1}));
  EXPECT_EQ(rows, (std::vector<float>{3, 4, 1, 2, 3, 4, 0, 0}));
  std::vector<int64_t> bad = {1, -2, 0, 1};
  EXPECT_FALSE(kc::dispatch(hidden.data(), 2, 2, bad.data(), 2, 2, rows.data(),
                            offsets.data(), perm.data())
                   .isOk());
}

} // namespace
