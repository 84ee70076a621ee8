//===- Distributed.h - Ranks of a multi-process run -------------*- C++ -*-===//
//
// A plan partitioned by `moe-partition` runs as one process per rank under
// `mpirun -np N moe-exec PLAN ...`. Each rank runs the whole program on its
// own inputs (its tokens). In an expert-parallel layer the rows travel to
// the ranks of their experts and back (runtime/Exchange.h), so every rank's
// outputs equal a single-rank run of its inputs. In a tensor-parallel layer
// the ranks gather every rank's tokens (allgatherRows), each computes its
// slice of every expert, and the partial outputs are summed back to their
// ranks (reduceScatterRows). Built without MPI (or run without mpirun) a
// process is rank 0 of 1.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_DISTRIBUTED_H
#define MOE_RUNTIME_DISTRIBUTED_H

#include "runtime/Status.h"

#include <cstdint>
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
/// Ends every rank of the run with `code` (MPI_Abort): for an error on one
/// rank, which the others would otherwise wait for forever. A plain exit
/// when MPI is not started.
[[noreturn]] void abortAll(int code);
int rank();
int size();
/// Sums `n` values over all ranks, in place (a no-op on one rank).
Status allreduceSum(float *data, int64_t n);
Status allreduceSum(double *data, int64_t n);
Status allreduceSum(int64_t *data, int64_t n);
/// Element-wise minimum into `low` and maximum into `high` over all ranks
/// (each rank passes its values in both).
Status allreduceMinMax(int64_t *low, int64_t *high, int64_t n);

/// The ranks a collective runs over, the run seen as nodes of `ranksPerNode`
/// consecutive ranks (0: one node of every rank). `All`: every rank;
/// `Node`: the ranks of this rank's node; `Peers`: one rank per node, those
/// with this rank's index in their node.
struct Group {
  enum class Kind { All, Node, Peers };
  Kind kind = Kind::All;
  int64_t ranksPerNode = 0;
  /// This rank's index in the group, and the group's size.
  int rank() const;
  int size() const;
  /// An error unless ranksPerNode (when set) divides the run's ranks.
  Status check() const;
};
/// Every group rank's `mine`, in group rank order (group.size() entries).
StatusOr<std::vector<int64_t>> allgatherCounts(int64_t mine,
                                               const Group &group = {});
/// Concatenates every group rank's rows (`rowBytes` bytes each; rank r
/// gives counts[r] of them) into `out`, rank 0's first.
Status allgatherRows(const void *mine, int64_t rowBytes,
                     const std::vector<int64_t> &counts, void *out,
                     const Group &group = {});
/// The inverse of allgatherRows for partial sums: `in` holds, in gathered
/// order, this rank's part of every group rank's rows (`rowFloats` floats
/// each); `out` gets the sum over the group of this rank's
/// counts[group.rank()] rows.
Status reduceScatterRows(const float *in, int64_t rowFloats,
                         const std::vector<int64_t> &counts, float *out,
                         const Group &group = {});
/// Whether a kernel communicates with the other ranks (moe.experts,
/// moe.all_gather, moe.reduce_scatter): every rank must run such steps in
/// the same order (ExecutorOptions::ordered).
bool communicates(const std::string &kernel);
/// Ranks on this node (1 without MPI or a launcher).
int localSize();

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
