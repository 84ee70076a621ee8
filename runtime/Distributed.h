//===- Distributed.h - Ranks of a multi-process run -------------*- C++ -*-===//
//
// A plan partitioned by `moe-partition` runs as one process per rank under
// `mpirun -np N moe-exec PLAN ...`. Every rank runs the whole program on the
// same inputs; `moe.experts` computes only the experts its rank owns (the
// others' rows are zeros) and the ranks sum their outputs (MPI_Allreduce),
// which is exact: every row comes from one rank and zeros from the rest, so
// the outputs equal the single-rank run bit for bit. Built without MPI (or
// run without mpirun) a process is rank 0 of 1.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_DISTRIBUTED_H
#define MOE_RUNTIME_DISTRIBUTED_H

#include "runtime/Status.h"

#include <cstdint>
#include <string>

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

/// What `moe-exec --measure-network` measures between the ranks of this
/// run: the ranks per node (from shared memory), and per message kind the
/// bandwidth (16 MiB messages) and latency (8-byte round trips / 2) from
/// rank 0 to a rank of its node and to one of another node.
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
