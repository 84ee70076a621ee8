//===- TrafficModelTest.cpp - The AllToAll model on hand-computed cases ---===//

#include "passes/Analysis/TrafficModel.h"

#include <gtest/gtest.h>

namespace tr = moe::traffic;

namespace {

tr::Topology twoNodes() {
  tr::Topology t;
  t.ranks = 4;
  t.ranksPerNode = 2;
  t.intraBytesPerSecond = 1e11; // 1 MB: 10 us
  t.intraLatencySeconds = 1e-6;
  t.interBytesPerSecond = 1e10; // 1 MB: 100 us
  t.interLatencySeconds = 5e-6;
  return t;
}

tr::LayerShape layer() {
  tr::LayerShape l;
  l.tokensPerRank = 1000;
  l.hidden = 1000;
  l.ffn = 100;
  l.topK = 2;
  l.numExperts = 8;
  l.activationBytes = 2; // a row is 2000 bytes
  l.flopsPerSecond = 1e12;
  return l;
}

const tr::Prediction *find(const std::vector<tr::Prediction> &all,
                           tr::Layout l, tr::Schedule s, int64_t chunks) {
  for (const tr::Prediction &p : all)
    if (p.layout == l && p.schedule == s && p.chunks == chunks)
      return &p;
  return nullptr;
}

TEST(TrafficModel, ExpertParallelDirectAndHierarchical) {
  auto all = tr::predictAll(twoNodes(), layer());
  // EP: 2000 pairs of 2000 bytes; a quarter stays, a quarter goes to the
  // other rank of the node (1 MB), half to the other node (2 MB).
  const tr::Prediction *d = find(all, tr::Layout::ExpertParallel,
                                 tr::Schedule::Direct, 1);
  ASSERT_NE(d, nullptr);
  EXPECT_DOUBLE_EQ(d->intraBytes, 2e6);
  EXPECT_DOUBLE_EQ(d->interBytes, 4e6);
  // Per direction max(10 us, 200 us) + max(1 x 1 us, 2 x 5 us); twice.
  EXPECT_NEAR(d->commSeconds, 420e-6, 1e-12);
  // 2000 pairs x 2 x 3 x 1000 x 100 FLOPs at 1e12/s.
  EXPECT_NEAR(d->computeSeconds, 1200e-6, 1e-12);
  EXPECT_NEAR(d->seconds, 1620e-6, 1e-12);
  // Hierarchical: 2 MB inside the node first (20 us), then 200 us across;
  // latencies 1 us + 1 remote node x 5 us.
  const tr::Prediction *h = find(all, tr::Layout::ExpertParallel,
                                 tr::Schedule::Hierarchical, 1);
  ASSERT_NE(h, nullptr);
  EXPECT_NEAR(h->commSeconds, 2 * (220e-6 + 6e-6), 1e-12);
  // Four chunks: the latencies four times, the exchange hidden behind the
  // compute but for a quarter of it.
  const tr::Prediction *p = find(all, tr::Layout::ExpertParallel,
                                 tr::Schedule::Direct, 4);
  ASSERT_NE(p, nullptr);
  EXPECT_NEAR(p->commSeconds, 2 * (200e-6 + 4 * 10e-6), 1e-12);
  EXPECT_NEAR(p->seconds, 1200e-6 + 480e-6 / 4, 1e-12);
  // The list is fastest first.
  for (size_t i = 1; i < all.size(); ++i)
    EXPECT_LE(all[i - 1].seconds, all[i].seconds);
}

TEST(TrafficModel, TensorParallelMovesEveryToken) {
  auto all = tr::predictAll(twoNodes(), layer());
  const tr::Prediction *tp = find(all, tr::Layout::TensorParallel,
                                  tr::Schedule::Direct, 1);
  ASSERT_NE(tp, nullptr);
  // All-gather and reduce-scatter: 1000 rows to each of 3 peers, both ways.
  EXPECT_DOUBLE_EQ(tp->intraBytes, 2 * 2e6);
  EXPECT_DOUBLE_EQ(tp->interBytes, 2 * 4e6);
  // Not when the experts are narrower than the ranks; no hybrid on one node.
  tr::LayerShape narrow = layer();
  narrow.ffn = 2;
  EXPECT_EQ(find(tr::predictAll(twoNodes(), narrow),
                 tr::Layout::TensorParallel, tr::Schedule::Direct, 1),
            nullptr);
  tr::Topology one = twoNodes();
  one.ranksPerNode = 4;
  auto single = tr::predictAll(one, layer());
  EXPECT_EQ(find(single, tr::Layout::Hybrid, tr::Schedule::Direct, 1), nullptr);
  EXPECT_EQ(find(single, tr::Layout::ExpertParallel,
                 tr::Schedule::Hierarchical, 1),
            nullptr);
}

TEST(TrafficModel, HierarchicalWinsWhenLatencyDominates) {
  // 16 nodes of 8 ranks, few tokens: 120 remote messages per direct
  // exchange against 15 after the intra-node step.
  tr::Topology t;
  t.ranks = 128;
  t.ranksPerNode = 8;
  t.intraBytesPerSecond = 3e11;
  t.intraLatencySeconds = 2e-6;
  t.interBytesPerSecond = 2.5e10;
  t.interLatencySeconds = 1e-5;
  tr::LayerShape l = layer();
  l.tokensPerRank = 8;
  auto all = tr::predictAll(t, l);
  const tr::Prediction *d = find(all, tr::Layout::ExpertParallel,
                                 tr::Schedule::Direct, 1);
  const tr::Prediction *h = find(all, tr::Layout::ExpertParallel,
                                 tr::Schedule::Hierarchical, 1);
  ASSERT_TRUE(d && h);
  EXPECT_LT(h->commSeconds, 0.5 * d->commSeconds);
  double fewTokens = h->commSeconds / d->commSeconds;
  // With many tokens the bandwidth dominates: the gain of the hierarchical
  // exchange shrinks (its extra intra-node step costs bandwidth too).
  l.tokensPerRank = 16384;
  all = tr::predictAll(t, l);
  d = find(all, tr::Layout::ExpertParallel, tr::Schedule::Direct, 1);
  h = find(all, tr::Layout::ExpertParallel, tr::Schedule::Hierarchical, 1);
  EXPECT_GT(h->commSeconds / d->commSeconds, fewTokens);
}

TEST(TrafficModel, ReadsTopologies) {
  const char *good = R"({"format": "moe-topology", "version": 1, "ranks": 16,
    "ranks_per_node": 8, "intra_bytes_per_s": 3e11, "intra_latency_s": 2e-6,
    "inter_bytes_per_s": 2.5e10, "inter_latency_s": 1e-5})";
  auto t = tr::parseTopology(good, "t.json");
  ASSERT_TRUE(bool(t)) << llvm::toString(t.takeError());
  EXPECT_EQ(t->nodes(), 2);
  std::string bad = good;
  bad.replace(bad.find("\"ranks_per_node\": 8"), 19, "\"ranks_per_node\": 5");
  auto b = tr::parseTopology(bad, "t.json");
  ASSERT_FALSE(bool(b));
  EXPECT_NE(llvm::toString(b.takeError()).find("dividing ranks"),
            std::string::npos);
}

TEST(TrafficModel, ComputeIsARooflineOfFlopsAndWeightBytes) {
  // 2 ranks, 4 experts, top-2, 1 token per rank: an expert stays unread
  // with probability (1 - 2/4)^2 = 1/4, so a rank reads 4 * 3/4 / 2 = 1.5
  // experts' bytes.
  tr::Topology t;
  t.ranks = 2;
  t.ranksPerNode = 2;
  t.intraBytesPerSecond = t.interBytesPerSecond = 1e10;
  tr::LayerShape l;
  l.tokensPerRank = 1;
  l.hidden = 10;
  l.ffn = 10;
  l.topK = 2;
  l.numExperts = 4;
  l.flopsPerSecond = 1e12;
  double flops = 1 * 2 * 2.0 * 3 * 10 * 10 / 1e12;
  EXPECT_DOUBLE_EQ(tr::computeSeconds(t, l), flops); // no bytes: FLOPs
  l.expertBytes = 1e9;
  l.memoryBytesPerSecond = 1e9;
  EXPECT_DOUBLE_EQ(tr::computeSeconds(t, l), 1.5);
  // Many tokens touch every expert: 4 / 2 experts' bytes.
  l.tokensPerRank = 100;
  EXPECT_NEAR(tr::computeSeconds(t, l), 2.0, 1e-12);
  // Every candidate carries that compute, chunked or not.
  for (const tr::Prediction &p : tr::predictAll(t, l))
    EXPECT_NEAR(p.computeSeconds, 2.0, 1e-12);
  // A kernel that does not overlap reads and FLOPs: their sum.
  l.serialCompute = true;
  EXPECT_NEAR(tr::computeSeconds(t, l), 2.0 + 100 * flops, 1e-12);
  l.serialCompute = false;
  // FLOP-bound (fast memory): the FLOPs again.
  l.memoryBytesPerSecond = 1e30;
  EXPECT_DOUBLE_EQ(tr::computeSeconds(t, l), 100 * flops);
}

TEST(TrafficModel, ChoosesPipeliningOnlyForAClearGain) {
  auto make = [](int64_t chunks, double ms) {
    tr::Prediction p;
    p.chunks = chunks;
    p.seconds = ms * 1e-3;
    return p;
  };
  // 1% faster pipelined: within the model's blind spots, keep it plain.
  std::vector<tr::Prediction> small = {make(4, 99), make(1, 100)};
  EXPECT_EQ(tr::choose(small, 0.05), 1u);
  EXPECT_EQ(tr::choose(small, 0.0), 0u);
  // 20% faster: pipeline.
  std::vector<tr::Prediction> big = {make(4, 80), make(2, 85), make(1, 100)};
  EXPECT_EQ(tr::choose(big, 0.05), 0u);
  // Only pipelined candidates (chunks=N asked for): the fastest.
  std::vector<tr::Prediction> only = {make(4, 99)};
  EXPECT_EQ(tr::choose(only, 0.05), 0u);
  EXPECT_EQ(tr::choose({}, 0.05), 0u);
}

} // namespace
