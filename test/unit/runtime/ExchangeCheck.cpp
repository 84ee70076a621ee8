//===- ExchangeCheck.cpp - Randomised check of the expert exchange --------===//
//
// mpirun -np N moe-exchange-check [--trials T] [--seed S]
//
// Runs dist::exchangeExperts on random layouts: 1-12 experts, each held by
// 1-3 random ranks, 1-6 chunks (at most one per expert), direct or
// hierarchical over a random node size, or hybrid (experts on 1-3 nodes,
// exchanged among peers, each rank of a node a slice: slice 0 computes the
// image, the others zeros), and random rows per (rank, expert)
// including none and dropped rows past offsets[E]. The "expert" is an exact elementwise map (row * (e + 1) +
// e / 2), so every output row must equal its input's image bit for bit, and
// dropped rows must be zeros. It also checks that a rank computes only
// experts it holds and that every row is computed exactly once. Rank 0
// prints "moe-exchange-check: T trials on N ranks, R rows: ok" or the first
// failure, and the exit status says which.
//
//===----------------------------------------------------------------------===//

#include "runtime/Distributed.h"
#include "runtime/Exchange.h"

#include "runtime/MpiApi.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace dist = moe::rt::dist;

namespace {

float image(float v, int64_t expert) {
  return v * float(expert + 1) + 0.5f * float(expert);
}

} // namespace

int main(int argc, char **argv) {
  dist::Session session(&argc, &argv);
  if (!session.status().isOk()) {
    std::fprintf(stderr, "moe-exchange-check: error: %s\n",
                 session.status().message().c_str());
    return 1;
  }
  int trials = 200;
  unsigned seed = 1;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--trials") && i + 1 < argc)
      trials = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--seed") && i + 1 < argc)
      seed = unsigned(std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: mpirun -np N moe-exchange-check "
                           "[--trials T] [--seed S]\n");
      return 2;
    }
  }
  const int ranks = dist::size(), me = dist::rank();
  std::string failure;
  int64_t checkedRows = 0;
  for (int t = 0; t < trials && failure.empty(); ++t) {
    // The layout: the same on every rank.
    std::mt19937 shared(seed * 7919u + unsigned(t));
    auto pick = [&](int lo, int hi) {
      return std::uniform_int_distribution<int>(lo, hi)(shared);
    };
    dist::ExchangeLayout l;
    l.numExperts = pick(1, 12);
    l.chunks = pick(1, std::min<int>(6, int(l.numExperts)));
    l.hierarchical = pick(0, 1) == 1;
    std::vector<int> divisors;
    for (int p = 1; p <= ranks; ++p)
      if (ranks % p == 0)
        divisors.push_back(p);
    l.ranksPerNode = divisors[size_t(pick(0, int(divisors.size()) - 1))];
    // Hybrid, one trial in three where there are nodes of 2 or more ranks:
    // the exchange runs among peers (the experts' "ranks" are nodes) and
    // the node's ranks each compute a slice.
    if (l.ranksPerNode > 1 && pick(0, 2) == 0) {
      l.peersOfNodes = l.ranksPerNode;
      l.ranksPerNode = 0;
      l.hierarchical = false;
    }
    const int holders = l.peersOfNodes > 0 ? ranks / int(l.peersOfNodes)
                                           : ranks;
    const int64_t holder = l.peersOfNodes > 0 ? me / l.peersOfNodes : me;
    const int64_t slice = l.peersOfNodes > 0 ? me % l.peersOfNodes : 0;
    l.replicaOffsets.push_back(0);
    for (int64_t x = 0; x < l.numExperts; ++x) {
      std::vector<int64_t> all(static_cast<size_t>(holders));
      for (int r = 0; r < holders; ++r)
        all[size_t(r)] = r;
      std::shuffle(all.begin(), all.end(), shared);
      all.resize(size_t(pick(1, std::min(3, holders))));
      l.replicas.insert(l.replicas.end(), all.begin(), all.end());
      l.replicaOffsets.push_back(int64_t(l.replicas.size()));
    }
    const int64_t hidden = pick(1, 9);
    // This rank's rows.
    std::mt19937 own(seed * 104729u + unsigned(t) * 31u + unsigned(me));
    std::vector<int64_t> offsets{0};
    for (int64_t x = 0; x < l.numExperts; ++x)
      offsets.push_back(offsets.back() +
                        std::uniform_int_distribution<int>(0, 5)(own));
    const int64_t rows =
        offsets.back() + std::uniform_int_distribution<int>(0, 3)(own);
    std::vector<float> xs(static_cast<size_t>(rows * hidden)),
        ys(xs.size(), -1.0f);
    for (float &v : xs)
      v = std::uniform_real_distribution<float>(-4, 4)(own);
    std::vector<int64_t> computed(static_cast<size_t>(l.numExperts), 0);
    auto compute = [&](int64_t expert, const float *in, int64_t n,
                       float *out) -> moe::rt::Status {
      const bool held = l.holds(expert, holder);
      // Noted, not returned: the other ranks would wait for this one.
      if (!held && failure.empty())
        failure = "trial " + std::to_string(t) + ": rank " +
                  std::to_string(me) + " computed expert " +
                  std::to_string(expert) + ", which it does not hold";
      // A hybrid node's slices sum to the image: slice 0 gives it whole.
      if (slice == 0)
        computed[size_t(expert)] += n;
      for (int64_t i = 0; i < n * hidden; ++i)
        out[i] = slice == 0 ? image(in[i], expert) : 0.0f;
      return moe::rt::Status::ok();
    };
    moe::rt::Status st = dist::exchangeExperts(l, xs.data(), rows, hidden,
                                               offsets.data(), compute,
                                               ys.data());
    if (!st.isOk() && failure.empty())
      failure = "trial " + std::to_string(t) + ": " + st.message();
    for (int64_t x = 0; x < l.numExperts && failure.empty(); ++x)
      for (int64_t r = offsets[size_t(x)]; r < offsets[size_t(x) + 1]; ++r)
        for (int64_t h = 0; h < hidden; ++h)
          if (ys[size_t(r * hidden + h)] != image(xs[size_t(r * hidden + h)], x))
            failure = "trial " + std::to_string(t) + ": rank " +
                      std::to_string(me) + " row " + std::to_string(r) +
                      " (expert " + std::to_string(x) + ") is wrong";
    for (int64_t r = offsets.back(); r < rows && failure.empty(); ++r)
      for (int64_t h = 0; h < hidden; ++h)
        if (ys[size_t(r * hidden + h)] != 0.0f)
          failure = "trial " + std::to_string(t) + ": dropped row " +
                    std::to_string(r) + " is not zero";
    // Every row computed exactly once over the ranks.
    std::vector<int64_t> sent(static_cast<size_t>(l.numExperts)),
        total(sent.size()), done(sent.size());
    for (int64_t x = 0; x < l.numExperts; ++x)
      sent[size_t(x)] = offsets[size_t(x) + 1] - offsets[size_t(x)];
    MPI_Allreduce(sent.data(), total.data(), int(l.numExperts), MPI_INT64_T,
                  MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(computed.data(), done.data(), int(l.numExperts),
                  MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    if (failure.empty() && total != done)
      failure = "trial " + std::to_string(t) +
                ": the ranks computed another number of rows than they sent";
    checkedRows += offsets.back();
    // Stop together: any rank's failure ends every rank's loop.
    int bad = !failure.empty(), anyBad = 0;
    MPI_Allreduce(&bad, &anyBad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (anyBad && failure.empty())
      failure = "another rank failed";
  }
  int64_t allRows = 0;
  MPI_Reduce(&checkedRows, &allRows, 1, MPI_INT64_T, MPI_SUM, 0,
             MPI_COMM_WORLD);
  if (!failure.empty() && failure != "another rank failed")
    std::fprintf(stderr, "moe-exchange-check: error: %s\n", failure.c_str());
  if (me == 0 && failure.empty())
    std::printf("moe-exchange-check: %d trials on %d ranks, %lld rows: ok\n",
                trials, ranks, (long long)allRows);
  return failure.empty() ? 0 : 1;
}
