//===- MoeKernelsTest.cpp - moe.* kernels vs naive loops ------------------===//

#include "test/unit/runtime/KernelTestUtil.h"
#include "runtime/Distributed.h"
#include "runtime/Exchange.h"

#include <algorithm>
#include <numeric>

using namespace moe::test;

namespace {

TEST(MoeKernels, RouteTopKWithTiesAndNormalize) {
  // Token 0 ties experts 1 and 2 (the lower id wins); token 1 is ordinary.
  Tensor logits = f32({2, 4}, {0.0f, 2.0f, 2.0f, 1.0f, 3.0f, -1.0f, 0.5f, 4.0f});
  auto r = runKernel("moe.route", {logits},
                     Attrs().setInt("k", 2).setString("scoring", "softmax"));
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ((*r)[0].toVector<int64_t>(), (std::vector<int64_t>{1, 2, 3, 0}));
  auto softmax = [](std::vector<double> v) {
    double mx = *std::max_element(v.begin(), v.end()), sum = 0;
    for (double &x : v)
      sum += x = std::exp(x - mx);
    for (double &x : v)
      x /= sum;
    return v;
  };
  auto p0 = softmax({0, 2, 2, 1}), p1 = softmax({3, -1, 0.5, 4});
  expectClose((*r)[1], {float(p0[1]), float(p0[2]), float(p1[3]), float(p1[0])});

  auto n = runKernel("moe.route", {logits},
                     Attrs().setInt("k", 2).setInt("normalize", 1));
  ASSERT_TRUE(n.isOk());
  expectClose((*n)[1], {0.5f, 0.5f, float(p1[3] / (p1[3] + p1[0])),
                        float(p1[0] / (p1[3] + p1[0]))});

  auto sig = runKernel("moe.route", {logits},
                       Attrs().setInt("k", 1).setString("scoring", "sigmoid"));
  ASSERT_TRUE(sig.isOk());
  EXPECT_EQ((*sig)[0].toVector<int64_t>(), (std::vector<int64_t>{1, 3}));
  expectClose((*sig)[1], {float(1 / (1 + std::exp(-2.0))), float(1 / (1 + std::exp(-4.0)))});

  auto big = runKernel("moe.route", {logits}, Attrs().setInt("k", 5));
  ASSERT_FALSE(big.isOk());
  EXPECT_EQ(big.status().message(), "attribute `k` = 5 is outside [1, 4]");
  auto sc = runKernel("moe.route", {logits}, Attrs().setInt("k", 1).setString("scoring", "max"));
  ASSERT_FALSE(sc.isOk());
}

TEST(MoeKernels, RouteMatchesNaiveOnRandomLogits) {
  std::mt19937 rng(20);
  for (int64_t t : {1, 3, 17})
    for (int64_t e : {1, 3, 8}) {
      int64_t k = std::min<int64_t>(e, 2);
      Tensor logits = randomF32({t, e}, rng, -3, 3);
      auto r = runKernel("moe.route", {logits}, Attrs().setInt("k", k).setInt("normalize", 1));
      ASSERT_TRUE(r.isOk());
      for (int64_t i = 0; i < t; ++i) {
        std::vector<int64_t> order(static_cast<size_t>(e));
        std::iota(order.begin(), order.end(), 0);
        const float *row = logits.data<float>() + i * e;
        std::stable_sort(order.begin(), order.end(),
                         [&](int64_t a, int64_t b) { return row[a] > row[b]; });
        for (int64_t s = 0; s < k; ++s)
          ASSERT_EQ((*r)[0].data<int64_t>()[i * k + s], order[size_t(s)]);
        float sum = 0;
        for (int64_t s = 0; s < k; ++s)
          sum += (*r)[1].data<float>()[i * k + s];
        ASSERT_NEAR(sum, 1.0f, 1e-5f);
      }
    }
}

TEST(MoeKernels, DispatchIsAStableSortAndCombineInvertsIt) {
  std::mt19937 rng(21);
  const int64_t T = 5, H = 3, K = 2, E = 4;
  Tensor hidden = randomF32({T, H}, rng);
  std::vector<int64_t> ids = {2, 0, 0, 3, 2, 1, 0, 2, 3, 0};
  auto d = runKernel("moe.dispatch", {hidden, i64({T, K}, ids)},
                     Attrs().setInt("num_experts", E));
  ASSERT_TRUE(d.isOk()) << d.status().message();
  const Tensor &rows = (*d)[0], &offsets = (*d)[1], &perm = (*d)[2];
  EXPECT_EQ(rows.shape(), (Shape{T * K, H}));
  EXPECT_EQ(offsets.toVector<int64_t>(), (std::vector<int64_t>{0, 4, 5, 8, 10}));
  // Expert 0 gets pairs 1, 2, 6, 9 in that order (stable), expert 1 pair 5...
  EXPECT_EQ(perm.toVector<int64_t>(),
            (std::vector<int64_t>{1, 2, 6, 9, 5, 0, 4, 7, 3, 8}));
  for (int64_t r = 0; r < T * K; ++r)
    for (int64_t h = 0; h < H; ++h)
      ASSERT_EQ(rows.data<float>()[r * H + h],
                hidden.data<float>()[perm.data<int64_t>()[r] / K * H + h]);

  Tensor weights = randomF32({T, K}, rng, 0, 1);
  Tensor out = run1("moe.combine", {rows, perm, weights});
  ASSERT_EQ(out.shape(), (Shape{T, H}));
  std::vector<float> want;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h)
      want.push_back(hidden.data<float>()[t * H + h] *
                     (weights.data<float>()[t * K] + weights.data<float>()[t * K + 1]));
  expectClose(out, want);
}

TEST(MoeKernels, DataDependentErrors) {
  std::mt19937 rng(22);
  Tensor hidden = randomF32({2, 3}, rng);
  auto d = runKernel("moe.dispatch", {hidden, i64({2, 1}, {0, 4})},
                     Attrs().setInt("num_experts", 4));
  ASSERT_FALSE(d.isOk());
  EXPECT_EQ(d.status().message(), "expert id 4 of token 1 slot 0 is outside [0, 4)");
  auto c = runKernel("moe.combine", {hidden, i64({2}, {0, 2}), randomF32({2, 1}, rng)});
  ASSERT_FALSE(c.isOk());
  EXPECT_EQ(c.status().message(), "perm[1] = 2 is outside [0, 2)");
  Tensor w1 = randomF32({2, 4, 3}, rng), w2 = randomF32({2, 3, 4}, rng);
  // Rows past offsets[E] are pairs skipped by pruning (zero outputs); more
  // rows than there are is an error.
  auto e = runKernel("moe.experts", {hidden, i64({3}, {0, 1, 3}), w1, w2},
                     Attrs().setInt("num_experts", 2));
  ASSERT_FALSE(e.isOk());
  EXPECT_EQ(e.status().message(),
            "offsets run from 0 to 3, expected 0 to at most 2");
  auto skipped = runKernel("moe.experts", {hidden, i64({3}, {0, 1, 1}), w1, w2},
                           Attrs().setInt("num_experts", 2));
  ASSERT_TRUE(skipped.isOk()) << skipped.status().message();
  for (int64_t c = 0; c < 3; ++c)
    EXPECT_EQ((*skipped)[0].data<float>()[3 + c], 0.0f);
  auto dec = runKernel("moe.experts", {hidden, i64({3}, {0, 3, 2}), w1, w2},
                       Attrs().setInt("num_experts", 2));
  ASSERT_FALSE(dec.isOk());
}

/// Naive moe.experts for one configuration.
std::vector<float> naiveExperts(const Tensor &x, const std::vector<int64_t> &offsets,
                                const std::vector<Tensor> &w, bool hasW3, bool hasB,
                                const std::vector<int64_t> &pruned, int64_t F,
                                const std::string &act) {
  int64_t R = x.dim(0), H = x.dim(1), E = int64_t(offsets.size()) - 1;
  const float *w1 = w[0].data<float>(), *w2 = w[1].data<float>();
  const float *w3 = hasW3 ? w[2].data<float>() : nullptr;
  size_t bi = hasW3 ? 3 : 2;
  const float *b1 = hasB ? w[bi].data<float>() : nullptr;
  const float *b2 = hasB ? w[bi + 1].data<float>() : nullptr;
  const float *b3 = hasB && hasW3 ? w[bi + 2].data<float>() : nullptr;
  auto activate = [&](double v) {
    if (act == "relu")
      return v > 0 ? v : 0;
    if (act == "gelu")
      return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
    return v / (1 + std::exp(-v));
  };
  std::vector<float> y(size_t(R * H), 0);
  for (int64_t e = 0; e < E; ++e)
    for (int64_t r = offsets[size_t(e)]; r < offsets[size_t(e) + 1]; ++r) {
      if (!pruned.empty() && pruned[size_t(e)])
        continue;
      const float *xr = x.data<float>() + r * H;
      std::vector<double> h(static_cast<size_t>(F));
      for (int64_t f = 0; f < F; ++f) {
        double a = b1 ? b1[e * F + f] : 0, g = b3 ? b3[e * F + f] : 0;
        for (int64_t i = 0; i < H; ++i) {
          a += double(xr[i]) * w1[(e * F + f) * H + i];
          if (w3)
            g += double(xr[i]) * w3[(e * F + f) * H + i];
        }
        h[size_t(f)] = w3 ? activate(a) * g : activate(a);
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

TEST(MoeKernels, ExpertsMatchNaive) {
  std::mt19937 rng(23);
  const int64_t E = 3;
  for (int64_t H : {1, 17})
    for (int64_t F : {3, 33})
      for (bool hasW3 : {false, true})
        for (bool hasB : {false, true})
          for (const char *act : {"silu", "gelu", "relu"}) {
            std::vector<int64_t> offsets = {0, 17, 17, 20}; // expert 1 empty
            Tensor x = randomF32({20, H}, rng);
            std::vector<Tensor> w = {randomF32({E, F, H}, rng), randomF32({E, H, F}, rng)};
            if (hasW3)
              w.push_back(randomF32({E, F, H}, rng));
            if (hasB) {
              w.push_back(randomF32({E, F}, rng));
              w.push_back(randomF32({E, H}, rng));
              if (hasW3)
                w.push_back(randomF32({E, F}, rng));
            }
            std::vector<Tensor> in = {x, i64({E + 1}, offsets)};
            in.insert(in.end(), w.begin(), w.end());
            Attrs attrs;
            attrs.setInt("num_experts", E).setString("activation", act)
                .setInt("has_w3", hasW3).setInt("has_b1", hasB)
                .setInt("has_b2", hasB).setInt("has_b3", hasB && hasW3);
            Tensor y = run1("moe.experts", in, attrs);
            expectClose(y, naiveExperts(x, offsets, w, hasW3, hasB, {}, F, act), 1e-4f);
            // Pruning expert 0 zeroes its rows and leaves the others alone.
            attrs.setInts("pruned", {1, 0, 0});
            Tensor yp = run1("moe.experts", in, attrs);
            std::vector<float> want =
                naiveExperts(x, offsets, w, hasW3, hasB, {1, 0, 0}, F, act);
            for (int64_t i = 0; i < 17 * H; ++i)
              ASSERT_EQ(yp.data<float>()[i], 0.0f);
            expectClose(yp, want, 1e-4f);
          }
}

TEST(MoeKernels, ExpertsAcrossTileBoundaries) {
  // More than one 64-row block per expert and more than one 64-column tile,
  // so that the nested parallel loops and their tails are exercised.
  std::mt19937 rng(26);
  const int64_t E = 2, H = 67, F = 130;
  std::vector<int64_t> offsets = {0, 129, 150};
  Tensor x = randomF32({150, H}, rng);
  std::vector<Tensor> w = {randomF32({E, F, H}, rng), randomF32({E, H, F}, rng),
                           randomF32({E, F, H}, rng)};
  std::vector<Tensor> in = {x, i64({E + 1}, offsets), w[0], w[1], w[2]};
  Tensor y = run1("moe.experts", in,
                  Attrs().setInt("num_experts", E).setInt("has_w3", 1));
  expectClose(y, naiveExperts(x, offsets, w, true, false, {}, F, "silu"), 1e-4f);
}

TEST(MoeKernels, ExpertsVerifierChecksOperands) {
  std::mt19937 rng(24);
  Tensor x = randomF32({4, 3}, rng), off = i64({3}, {0, 2, 4});
  Tensor w1 = randomF32({2, 5, 3}, rng), w2 = randomF32({2, 3, 5}, rng);
  Attrs attrs = Attrs().setInt("num_experts", 2);
  auto missingW3 = runKernel("moe.experts", {x, off, w1, w2},
                             Attrs(attrs).setInt("has_w3", 1));
  ASSERT_FALSE(missingW3.isOk());
  EXPECT_EQ(missingW3.status().message(), "expects 5 inputs, got 4");
  auto badF = runKernel("moe.experts", {x, off, w1, randomF32({2, 3, 6}, rng)}, attrs);
  ASSERT_FALSE(badF.isOk());
  EXPECT_EQ(badF.status().message(), "input 3 dim 2 is 6, expected 5 (F of w2 [EHF])");
  auto badE = runKernel("moe.experts", {x, off, randomF32({3, 5, 3}, rng), w2}, attrs);
  ASSERT_FALSE(badE.isOk());
  EXPECT_EQ(badE.status().message(), "input 2 dim 0 is 3, expected 2 (E of w1 [EFH])");
  auto pruned = runKernel("moe.experts", {x, off, w1, w2}, Attrs(attrs).setInts("pruned", {1}));
  ASSERT_FALSE(pruned.isOk());
  EXPECT_EQ(pruned.status().message(), "attribute `pruned` has 1 entries, expected 2");
  auto act = runKernel("moe.experts", {x, off, w1, w2},
                       Attrs(attrs).setString("activation", "swish"));
  ASSERT_FALSE(act.isOk());
  auto kind = runKernel("moe.experts", {x, off, w1, w2},
                        Attrs(attrs).setFloat("has_w3", 1.0));
  ASSERT_FALSE(kind.isOk());
  EXPECT_EQ(kind.status().message(), "attribute `has_w3` is float, expected int");
}

TEST(MoeKernels, TensorParallelStepsOnOneRank) {
  // A tensor-parallel step's weights hold tp_ranks slices of F per expert
  // ([tp_ranks·E, F / tp_ranks, H]); on a run of another rank count it
  // says what to run, and weights that are not cut are refused by name.
  std::mt19937 rng(26);
  const int64_t E = 3, H = 8, F = 6;
  Tensor x = randomF32({5, H}, rng);
  Tensor off = i64({E + 1}, {0, 2, 2, 5});
  Attrs attrs;
  attrs.setInt("num_experts", E).setInt("tp_ranks", 2);
  auto cut = runKernel("moe.experts",
                       {x, off, randomF32({2 * E, F / 2, H}, rng),
                        randomF32({2 * E, H, F / 2}, rng)},
                       attrs);
  ASSERT_FALSE(cut.isOk());
  EXPECT_NE(cut.status().message().find(moe::rt::dist::built()
                                            ? "run it with mpirun -np 2"
                                            : "this build has no MPI runtime"),
            std::string::npos)
      << cut.status().message();
  auto whole = runKernel(
      "moe.experts",
      {x, off, randomF32({E, F, H}, rng), randomF32({E, H, F}, rng)}, attrs);
  ASSERT_FALSE(whole.isOk());
  EXPECT_NE(whole.status().message().find("tp_ranks·E of w1"),
            std::string::npos)
      << whole.status().message();
  auto both = runKernel("moe.experts",
                        {x, off, randomF32({2 * E, F / 2, H}, rng),
                         randomF32({2 * E, H, F / 2}, rng)},
                        Attrs(attrs).setInt("exchange_ranks", 2));
  ASSERT_FALSE(both.isOk());
  EXPECT_NE(both.status().message().find("must be `tp_ranks` with an "
                                         "exchange"),
            std::string::npos)
      << both.status().message();

  // The token collectives of a one-rank run are the identity, for one
  // input or several travelling together.
  Tensor ids = i64({5, 2}, {0, 1, 2, 0, 1, 2, 0, 2, 1, 1});
  Attrs one = Attrs().setInt("ranks", 1);
  EXPECT_EQ(run1("moe.all_gather", {ids}, one).toVector<int64_t>(),
            ids.toVector<int64_t>());
  auto together = runKernel("moe.all_gather", {x, ids}, one);
  ASSERT_TRUE(together.isOk()) << together.status().message();
  ASSERT_EQ(together->size(), 2u);
  EXPECT_EQ((*together)[0].toVector<float>(), x.toVector<float>());
  EXPECT_EQ((*together)[1].toVector<int64_t>(), ids.toVector<int64_t>());
  auto ragged = runKernel("moe.all_gather", {x, i64({2, 1}, {0, 1})}, one);
  ASSERT_FALSE(ragged.isOk());
  EXPECT_NE(ragged.status().message().find("travel together"),
            std::string::npos)
      << ragged.status().message();
  Tensor partial = randomF32({5, H}, rng);
  EXPECT_EQ(run1("moe.reduce_scatter", {partial, x}, one).toVector<float>(),
            partial.toVector<float>());
  auto two = runKernel("moe.all_gather", {ids}, Attrs().setInt("ranks", 2));
  ASSERT_FALSE(two.isOk());
  // reduce_scatter's rows are those of its second input.
  auto rows = runKernel("moe.reduce_scatter", {partial, i64({4}, {0, 0, 0, 0})},
                        one);
  ASSERT_FALSE(rows.isOk());
  EXPECT_NE(rows.status().message().find("the ranks hold 4"),
            std::string::npos)
      << rows.status().message();
}

TEST(MoeKernels, ExpertsExchangeOnOneRank) {
  // An expert-parallel step run as one rank: every row stays, chunked or
  // not; the outputs are the plain step's bit for bit, and the dropped
  // rows past offsets[E] give zeros.
  std::mt19937 rng(25);
  const int64_t E = 3, H = 19, F = 37;
  std::vector<int64_t> offsets = {0, 40, 40, 70}; // expert 1 empty
  Tensor x = randomF32({75, H}, rng);
  std::vector<Tensor> in = {x, i64({E + 1}, offsets), randomF32({E, F, H}, rng),
                            randomF32({E, H, F}, rng), randomF32({E, F, H}, rng)};
  Attrs attrs;
  attrs.setInt("num_experts", E).setInt("has_w3", 1);
  Tensor plain = run1("moe.experts", in, attrs);
  for (int64_t chunks : {1, 2, 3})
  for (const char *schedule : {"pipelined", "hierarchical"}) {
    Attrs ex = Attrs(attrs)
                   .setInt("exchange_ranks", 1)
                   .setInt("exchange_chunks", chunks)
                   .setString("exchange_schedule", schedule)
                   .setInts("replicas", {0, 0, 0})
                   .setInts("replica_offsets", {0, 1, 2, 3});
    Tensor y = run1("moe.experts", in, ex);
    std::vector<float> got = y.toVector<float>(), want = plain.toVector<float>();
    ASSERT_EQ(got.size(), want.size());
    // Chunks carry whole experts: the kernel sees the same rows per
    // expert, so the outputs are the same bit for bit.
    for (size_t i = 0; i < size_t(70 * H); ++i)
      ASSERT_EQ(got[i], want[i]) << "chunks " << chunks << " element " << i;
    for (size_t i = size_t(70 * H); i < got.size(); ++i)
      ASSERT_EQ(got[i], 0.0f);
  }
  // The plan's rank count must be the run's; the expert ranks must fit.
  Attrs two = Attrs(attrs)
                  .setInt("exchange_ranks", 2)
                  .setInts("replicas", {0, 1, 0})
                  .setInts("replica_offsets", {0, 1, 2, 3});
  auto r2 = runKernel("moe.experts", in, two);
  ASSERT_FALSE(r2.isOk());
  EXPECT_NE(r2.status().message().find(moe::rt::dist::built()
                                           ? "run it with mpirun -np 2"
                                           : "this build has no MPI runtime"),
            std::string::npos)
      << r2.status().message();
  auto bad = runKernel("moe.experts", in,
                       Attrs(attrs)
                           .setInt("exchange_ranks", 1)
                           .setInts("replicas", {0, 1, 0})
                           .setInts("replica_offsets", {0, 1, 2, 3}));
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().message(),
            "an expert is held by rank 1, but the run has 1 ranks");
  Attrs oneRank = Attrs(attrs)
                     .setInt("exchange_ranks", 1)
                     .setInts("replicas", {0, 0, 0})
                     .setInts("replica_offsets", {0, 1, 2, 3});
  auto perNode = runKernel("moe.experts", in,
                           Attrs(oneRank).setInt("exchange_ranks_per_node", 3));
  ASSERT_FALSE(perNode.isOk());
  EXPECT_EQ(perNode.status().message(),
            "exchange ranks per node = 3 must divide the 1 ranks");
  auto tooMany = runKernel("moe.experts", in,
                          Attrs(oneRank).setInt("exchange_chunks", 4));
  ASSERT_FALSE(tooMany.isOk());
  EXPECT_EQ(tooMany.status().message(),
            "exchange chunks = 4 must be between 1 and the 3 experts (a chunk "
            "carries whole experts)");
  auto schedule = runKernel(
      "moe.experts", in, Attrs(oneRank).setString("exchange_schedule", "ring"));
  ASSERT_FALSE(schedule.isOk());
  EXPECT_EQ(schedule.status().message(),
            "attribute `exchange_schedule` is 'ring', expected direct, "
            "hierarchical or pipelined");
  auto missing = runKernel("moe.experts", in,
                           Attrs(attrs).setInt("exchange_ranks", 1));
  ASSERT_FALSE(missing.isOk());
  EXPECT_NE(missing.status().message().find("replicas"), std::string::npos);
}

} // namespace#include "runtime/Distributed.h"

