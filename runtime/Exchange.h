//===- Exchange.h - Expert-parallel row exchange between ranks --*- C++ -*-===//
//
// The runtime of an expert-parallel layer on several ranks (moe-partition's
// EP layout, lowered into a moe.experts step with `exchange_ranks`): each
// rank holds its own tokens' rows; every row travels to the rank that holds
// its expert, is computed there, and comes back (MPI_Ialltoallv both ways).
// The exchange is direct (one message per peer) or hierarchical (inside the
// node first, to the rank that talks to the destination's node, then one
// message per remote node), and may be split into chunks pipelined with the
// compute. Without MPI, or on one rank, it only computes.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_EXCHANGE_H
#define MOE_RUNTIME_EXCHANGE_H

#include "runtime/Distributed.h"
#include "runtime/Status.h"

#include <cstdint>
#include <functional>
#include <vector>

namespace moe::rt {
class LoadedPlan;
} // namespace moe::rt

namespace moe::rt::dist {

/// How the rows of an expert-parallel layer travel between ranks: expert x
/// is held by ranks replicas[replicaOffsets[x] .. replicaOffsets[x + 1]);
/// rank s sends its rows of x to the (s mod n)-th of those n ranks. Each
/// rank's experts are split into `chunks` runs; chunk i moves the rows of
/// every rank's i-th run (so an expert is computed once, on all its rows,
/// and its weights are read once, whatever the chunk count).
struct ExchangeLayout {
  int64_t numExperts = 0;
  std::vector<int64_t> replicas, replicaOffsets;
  int64_t chunks = 1;
  /// Hierarchical: rows leave a node only from the rank whose index in the
  /// node is the destination's (ranks r·P .. r·P + P − 1 form a node).
  bool hierarchical = false;
  int64_t ranksPerNode = 0; ///< P; 0: every rank on one node
  /// The hybrid layout (expert parallel across nodes, tensor parallel
  /// inside them), for nodes of this many ranks; 0: plain expert parallel.
  /// The exchange runs among peers (Group::Kind::Peers: a rank and those
  /// with its index in the other nodes), numbered by node in replicas and
  /// as senders, so a node's experts are held by all its ranks, a slice
  /// each. The ranks of a node then gather the rows they received,
  /// `compute` computes this rank's slice of each expert on all of them,
  /// and the node sums the slices' partial rows back to the rank that
  /// received each row, which returns it.
  int64_t peersOfNodes = 0;

  /// The ranks the exchange runs over.
  Group group() const {
    return peersOfNodes > 0 ? Group{Group::Kind::Peers, peersOfNodes}
                            : Group{};
  }

  /// The rank that computes the rows `sender` routes to `expert`.
  int64_t destination(int64_t sender, int64_t expert) const {
    int64_t first = replicaOffsets[size_t(expert)];
    int64_t n = replicaOffsets[size_t(expert) + 1] - first;
    return replicas[size_t(first + sender % n)];
  }
  /// Whether `rank` (of the group) holds `expert`.
  bool holds(int64_t expert, int64_t rank) const {
    for (int64_t i = replicaOffsets[size_t(expert)];
         i < replicaOffsets[size_t(expert) + 1]; ++i)
      if (replicas[size_t(i)] == rank)
        return true;
    return false;
  }
  /// Checks the layout against the ranks of its group.
  Status check(int ranks) const;
};

/// Computes `n` rows of `expert`: in [n, H] -> out [n, H].
using ExpertCompute = std::function<Status(int64_t expert, const float *in,
                                           int64_t n, float *out)>;

/// Collective over the ranks: every rank calls it with its own tokens' rows
/// x [rows, H], sorted by expert with offsets [E + 1] (rows past
/// offsets[E] are dropped tokens: their outputs are zeros). Each row goes
/// to its expert's rank, is computed there by `compute` and comes back; y
/// [rows, H] gets every row's output in x's order. Chunk i + 1's dispatch
/// and chunk i − 1's return travel while chunk i computes (the exchanges
/// are polled between experts). With one rank it only computes.
Status exchangeExperts(const ExchangeLayout &layout, const float *x,
                       int64_t rows, int64_t hidden, const int64_t *offsets,
                       const ExpertCompute &compute, float *y);

/// Expert weight bytes of a plan's expert- and tensor-parallel steps: those
/// of the experts (or slices) this rank holds, and in all.
struct HeldExperts {
  uint64_t heldBytes = 0, totalBytes = 0;
};
/// Drops from this process the mapped pages of the expert weights that
/// `rank` does not hold in the plan's expert- and tensor-parallel steps
/// (PlanLoader.h, expertSlicesRead; madvise
/// MADV_DONTNEED; they are never read again, and would be read back from
/// the file if they were), so that each rank keeps only its experts in
/// memory. Pages that a held expert shares stay.
StatusOr<HeldExperts> releaseOtherExperts(const LoadedPlan &plan, int rank);

/// What the exchanges of this process moved, for --bench.
struct ExchangeStats {
  int64_t calls = 0;
  /// Rows this rank sent to, and received from, other ranks (dispatch
  /// direction; a relayed row counts at every hop; in a tensor-parallel
  /// layer, the token rows it gathers).
  int64_t rowsSent = 0, rowsReceived = 0;
  double waitSeconds = 0; ///< blocked on the exchanges (not overlapped)
  /// calls counts exchangeExperts and the tensor-parallel layers' sums.
};
/// The totals of every exchangeExperts call, and of the tensor-parallel
/// collectives (addExchange), since the last reset.
ExchangeStats exchangeTotals();
/// Counts a tensor-parallel collective: `calls` layers (1 for the sum that
/// ends a layer), rows sent and received in the gathering direction, and
/// the time spent in it.
void addExchange(int64_t calls, int64_t rowsSent, int64_t rowsReceived,
                 double seconds);
void resetExchangeTotals();

} // namespace moe::rt::dist

#endif // MOE_RUNTIME_EXCHANGE_H
