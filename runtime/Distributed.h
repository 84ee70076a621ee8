//===- Distributed.h - Ranks of a multi-process run -------------*- C++ -*-===//
//
// A plan partitioned by `moe-partition` runs as one process per rank under
// `mpirun -np N moe-exec PLAN ...`. Each rank runs the whole program on its
// own inputs (its tokens). In an expert-parallel layer the rows travel to
// the ranks of their experts and back (exchangeExperts: MPI_Ialltoallv,
// optionally chunked and overlapped with the compute), so every rank's
// outputs equal a single-rank run of its inputs. A layer without an
// exchange (tensor-parallel plans) assumes every rank holds the same
// tokens: each rank computes the experts it owns and the ranks sum their
// outputs (allreduceSum), which is exact. Built without MPI (or run without
// mpirun) a process is rank 0 of 1.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_DISTRIBUTED_H
#define MOE_RUNTIME_DISTRIBUTED_H

#include "runtime/Status.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace moe::rt::dist {

/// Whether this build can run on several ranks.
bool built();
/// Starts MPI when built with it and launched by mpirun (or another PMI
/// launcher); a no-op otherwise. Call once, first.
Status init(int *argc, char ***argv);
/// Ends MPI (if started).
void finalize();
int rank();
int size();
/// Sums `n` floats over all ranks, in place (a no-op on one rank).
Status allreduceSum(float *data, int64_t n);

/// Ranks on this node (1 without MPI or a launcher).
int localSize();

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
  /// The rank that computes the rows `sender` routes to `expert`.
  int64_t destination(int64_t sender, int64_t expert) const {
    int64_t first = replicaOffsets[size_t(expert)];
    int64_t n = replicaOffsets[size_t(expert) + 1] - first;
    return replicas[size_t(first + sender % n)];
  }
  /// Checks the layout against the run's ranks.
  Status check(int ranks) const;
};

/// Computes `n` rows of `expert`: in [n, H] -> out [n, H].
using ExpertCompute = std::function<Status(int64_t expert, const float *in,
                                           int64_t n, float *out)>;

/// What the exchanges of this process moved, for --bench.
struct ExchangeStats {
  int64_t calls = 0;
  int64_t rowsSent = 0, rowsReceived = 0; ///< dispatch direction, other ranks
  double waitSeconds = 0; ///< blocked on the exchanges (not overlapped)
};
/// The totals of every exchangeExperts call since the last reset.
ExchangeStats exchangeTotals();
void resetExchangeTotals();

/// Collective over the ranks: every rank calls it with its own tokens' rows
/// x [rows, H], sorted by expert with offsets [E + 1] (rows past
/// offsets[E] are dropped tokens: their outputs are zeros). Each row goes
/// to its expert's rank (MPI_Ialltoallv, chunk by chunk), is computed there
/// by `compute` and comes back; y [rows, H] gets every row's output in x's
/// order. Chunk i + 1's dispatch and chunk i - 1's return travel while
/// chunk i computes (the exchanges are polled between experts). With one
/// rank it only computes.
Status exchangeExperts(const ExchangeLayout &layout, const float *x,
                       int64_t rows, int64_t hidden, const int64_t *offsets,
                       const ExpertCompute &compute, float *y);

/// What `moe-exec --measure-network` measures between the ranks of this
/// run: the ranks per node (from shared memory); inside a node, the
/// bandwidth and per-message latency of a rank in all-to-alls of all the
/// node's ranks at once (8 MiB and 8 bytes per rank), as an expert
/// exchange loads the links; across nodes, rank 0's ping-pong with the
/// first rank of the next node (16 MiB messages; 8-byte round trips / 2).
struct NetworkProfile {
  int ranks = 1, ranksPerNode = 1;
  double intraBytesPerSecond = 0, intraLatencySeconds = 0;
  double interBytesPerSecond = 0, interLatencySeconds = 0;
  bool measuredInter = false; ///< false: one node, inter copied from intra
};
/// Collective: every rank must call it. Needs at least 2 ranks.
StatusOr<NetworkProfile> measureNetwork();
/// The profile as a topology JSON (docs/partitioning.md).
std::string topologyJson(const NetworkProfile &p);

/// init() and finalize() for a scope.
class Session {
public:
  Session(int *argc, char ***argv) : status_(init(argc, argv)) {}
  ~Session() { finalize(); }
  const Status &status() const { return status_; }

private:
  Status status_;
};

} // namespace moe::rt::dist

#endif // MOE_RUNTIME_DISTRIBUTED_H
