//===- Distributed.cpp - Ranks of a multi-process run ---------------------===//

#include "runtime/Distributed.h"

#ifdef MOE_HAVE_MPI
#include "runtime/DistributedMpi.h"
#endif

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <cstdio>
#include <vector>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <tuple>

namespace moe::rt::dist {

namespace {
int rank_ = 0, size_ = 1, localSize_ = 1;
[[maybe_unused]] bool started_ = false; // MPI_Init was ours (MPI builds)
} // namespace

bool built() {
#ifdef MOE_HAVE_MPI
  return true;
#else
  return false;
#endif
}

Status init(int *argc, char ***argv) {
#ifdef MOE_HAVE_MPI
  // Only under a launcher (mpirun sets these): a plain run skips MPI_Init,
  // whose singleton start costs a third of a second, and is rank 0 of 1.
  if (!std::getenv("OMPI_COMM_WORLD_SIZE") && !std::getenv("PMI_SIZE") &&
      !std::getenv("PMIX_RANK"))
    return Status::ok();
  int already = 0;
  MPI_Initialized(&already);
  if (!already) {
    // More ranks on this node than cores: a rank waiting in MPI should give
    // its core to the others rather than spin on it (OpenMPI's
    // mpi_yield_when_idle; a value the user set wins). Measured on 4 ranks
    // over 2 cores, hybrid layer: 189 -> 170 ms.
    if (const char *local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE")) {
      unsigned cores = std::thread::hardware_concurrency();
      if (cores > 0 && std::strtol(local, nullptr, 10) > long(cores))
        ::setenv("OMPI_MCA_mpi_yield_when_idle", "1", /*overwrite=*/0);
    }
    // Kernels call MPI from the executor's worker threads, one at a time.
    int provided = MPI_THREAD_SINGLE;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) !=
        MPI_SUCCESS)
      return Status::error("MPI_Init_thread failed");
    started_ = true;
    if (provided < MPI_THREAD_SERIALIZED)
      return Status::error("this MPI library does not allow calls from "
                           "several threads (MPI_THREAD_SERIALIZED)");
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL,
                      &node);
  MPI_Comm_size(node, &localSize_);
  MPI_Comm_free(&node);
#else
  (void)argc;
  (void)argv;
#endif
  return Status::ok();
}

void finalize() {
#ifdef MOE_HAVE_MPI
  if (started_) {
    MPI_Finalize();
    started_ = false;
  }
#endif
}

void abortAll(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
#ifdef MOE_HAVE_MPI
  if (started_)
    MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

int rank() { return rank_; }
int size() { return size_; }
int localSize() { return localSize_; }

namespace {
#ifdef MOE_HAVE_MPI
MPI_Datatype mpiType(const float *) { return MPI_FLOAT; }
MPI_Datatype mpiType(const double *) { return MPI_DOUBLE; }
MPI_Datatype mpiType(const int64_t *) { return MPI_INT64_T; }
#endif

template <typename T> Status sumOverRanks(T *data, int64_t n) {
  if (size_ == 1 || n == 0)
    return Status::ok();
#ifdef MOE_HAVE_MPI
  for (int64_t done = 0; done < n;) {
    int count = int(std::min<int64_t>(n - done, INT_MAX));
    if (MPI_Allreduce(MPI_IN_PLACE, data + done, count, mpiType(data),
                      MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
      return Status::error("MPI_Allreduce of " + std::to_string(count) +
                           " values failed");
    done += count;
  }
  return Status::ok();
#else
  (void)data;
  return Status::error("this build has no MPI");
#endif
}
} // namespace

Status allreduceSum(float *data, int64_t n) { return sumOverRanks(data, n); }
Status allreduceSum(double *data, int64_t n) { return sumOverRanks(data, n); }
Status allreduceSum(int64_t *data, int64_t n) { return sumOverRanks(data, n); }

int Group::rank() const {
  int64_t p = ranksPerNode > 0 ? ranksPerNode : size_;
  switch (kind) {
  case Kind::Node:
    return int(rank_ % p);
  case Kind::Peers:
    return int(rank_ / p);
  default:
    return rank_;
  }
}

int Group::size() const {
  int64_t p = ranksPerNode > 0 ? ranksPerNode : size_;
  switch (kind) {
  case Kind::Node:
    return int(p);
  case Kind::Peers:
    return int(size_ / p);
  default:
    return size_;
  }
}

Status Group::check() const {
  if (ranksPerNode < 0 || (ranksPerNode > 0 && size_ % ranksPerNode != 0))
    return Status::error("nodes of " + std::to_string(ranksPerNode) +
                         " ranks do not divide the run's " +
                         std::to_string(size_) + " ranks");
  return Status::ok();
}

#ifdef MOE_HAVE_MPI
StatusOr<MPI_Comm> communicator(const Group &group, int stream) {
  MOE_RETURN_IF_ERROR(group.check());
  int64_t p = group.ranksPerNode > 0 ? group.ranksPerNode : size_;
  Group::Kind kind = group.kind;
  // A group of the whole run is All, whatever its name.
  if ((kind == Group::Kind::Node && p == size_) ||
      (kind == Group::Kind::Peers && p == 1))
    kind = Group::Kind::All;
  if (kind == Group::Kind::All && stream < 0)
    return MPI_COMM_WORLD;
  // Made on first use, by every rank at the same collective call.
  static std::map<std::tuple<int, int64_t, int>, MPI_Comm> made;
  auto key = std::make_tuple(int(kind), kind == Group::Kind::All ? 0 : p,
                             stream);
  auto it = made.find(key);
  if (it != made.end())
    return it->second;
  MPI_Comm comm = MPI_COMM_NULL;
  int ok;
  if (kind == Group::Kind::All)
    ok = MPI_Comm_dup(MPI_COMM_WORLD, &comm);
  else if (kind == Group::Kind::Node)
    ok = MPI_Comm_split(MPI_COMM_WORLD, int(rank_ / p), int(rank_ % p), &comm);
  else
    ok = MPI_Comm_split(MPI_COMM_WORLD, int(rank_ % p), int(rank_ / p), &comm);
  if (ok != MPI_SUCCESS)
    return Status::error("making the communicator of a group of ranks "
                         "failed");
  made[key] = comm;
  return comm;
}
#endif

StatusOr<std::vector<int64_t>> allgatherCounts(int64_t mine,
                                               const Group &group) {
  MOE_RETURN_IF_ERROR(group.check());
  std::vector<int64_t> counts(static_cast<size_t>(group.size()), mine);
  if (group.size() == 1)
    return counts;
#ifdef MOE_HAVE_MPI
  StatusOr<MPI_Comm> made = communicator(group, -1);
  if (!made.isOk())
    return made.status();
  MPI_Comm comm = *made;
  if (MPI_Allgather(&mine, 1, MPI_INT64_T, counts.data(), 1, MPI_INT64_T,
                    comm) != MPI_SUCCESS)
    return Status::error("MPI_Allgather of the ranks' row counts failed");
  return counts;
#else
  return Status::error("this build has no MPI");
#endif
}

#ifdef MOE_HAVE_MPI
namespace {
/// Displacements of `counts` and whether they all fit an MPI int.
bool displacements(const std::vector<int64_t> &counts, std::vector<int> &n,
                   std::vector<int> &at) {
  int64_t total = 0;
  n.clear();
  at.clear();
  for (int64_t c : counts) {
    if (c < 0 || c > INT_MAX || total > INT_MAX)
      return false;
    n.push_back(int(c));
    at.push_back(int(total));
    total += c;
  }
  return total <= INT_MAX;
}
} // namespace
#endif

namespace {
/// The checks of a row collective, and its work when the group is one rank
/// (a copy of this rank's rows): true when that was all.
StatusOr<bool> aloneCopies(const char *what, const std::vector<int64_t> &counts,
                           const Group &group, const void *in, void *out,
                           int64_t rowBytes) {
  MOE_RETURN_IF_ERROR(group.check());
  if (int64_t(counts.size()) != group.size())
    return Status::error(std::string(what) + ": " +
                         std::to_string(counts.size()) + " counts for " +
                         std::to_string(group.size()) + " ranks");
  if (group.size() > 1)
    return false;
  const int64_t bytes = counts[0] * rowBytes;
  if (bytes > 0)
    std::memcpy(out, in, size_t(bytes));
  return true;
}
} // namespace

Status allgatherRows(const void *mine, int64_t rowBytes,
                     const std::vector<int64_t> &counts, void *out,
                     const Group &group) {
  StatusOr<bool> copied =
      aloneCopies("allgatherRows", counts, group, mine, out, rowBytes);
  if (!copied.isOk() || *copied)
    return copied.status();
#ifdef MOE_HAVE_MPI
  std::vector<int> n, at;
  if (rowBytes < 1 || rowBytes > INT_MAX || !displacements(counts, n, at))
    return Status::error("allgatherRows: " + std::to_string(rowBytes) +
                         "-byte rows in counts beyond MPI's int");
  StatusOr<MPI_Comm> made = communicator(group, -1);
  if (!made.isOk())
    return made.status();
  MPI_Comm comm = *made;
  MPI_Datatype row;
  if (MPI_Type_contiguous(int(rowBytes), MPI_BYTE, &row) != MPI_SUCCESS ||
      MPI_Type_commit(&row) != MPI_SUCCESS)
    return Status::error("MPI_Type_contiguous of a row failed");
  int rc = MPI_Allgatherv(mine, n[size_t(group.rank())], row, out, n.data(),
                          at.data(), row, comm);
  MPI_Type_free(&row);
  if (rc != MPI_SUCCESS)
    return Status::error("MPI_Allgatherv of the ranks' rows failed");
  return Status::ok();
#else
  (void)mine;
  (void)out;
  return Status::error("this build has no MPI");
#endif
}

Status reduceScatterRows(const float *in, int64_t rowFloats,
                         const std::vector<int64_t> &counts, float *out,
                         const Group &group) {
  StatusOr<bool> copied =
      aloneCopies("reduceScatterRows", counts, group, in, out,
                  rowFloats * int64_t(sizeof(float)));
  if (!copied.isOk() || *copied)
    return copied.status();
#ifdef MOE_HAVE_MPI
  std::vector<int64_t> floats;
  for (int64_t c : counts)
    floats.push_back(c * rowFloats);
  std::vector<int> n, at;
  if (!displacements(floats, n, at))
    return Status::error("reduceScatterRows: " + std::to_string(rowFloats) +
                         "-float rows in counts beyond MPI's int");
  StatusOr<MPI_Comm> made = communicator(group, -1);
  if (!made.isOk())
    return made.status();
  MPI_Comm comm = *made;
  if (MPI_Reduce_scatter(in, out, n.data(), MPI_FLOAT, MPI_SUM, comm) !=
      MPI_SUCCESS)
    return Status::error("MPI_Reduce_scatter of the ranks' rows failed");
  return Status::ok();
#else
  (void)in;
  (void)out;
  return Status::error("this build has no MPI");
#endif
}

bool communicates(const std::string &kernel) {
  return kernel == "moe.experts" || kernel == "moe.all_gather" ||
         kernel == "moe.reduce_scatter";
}

Status allreduceMinMax(int64_t *low, int64_t *high, int64_t n) {
  if (size_ == 1 || n == 0)
    return Status::ok();
#ifdef MOE_HAVE_MPI
  if (n > INT_MAX ||
      MPI_Allreduce(MPI_IN_PLACE, low, int(n), MPI_INT64_T, MPI_MIN,
                    MPI_COMM_WORLD) != MPI_SUCCESS ||
      MPI_Allreduce(MPI_IN_PLACE, high, int(n), MPI_INT64_T, MPI_MAX,
                    MPI_COMM_WORLD) != MPI_SUCCESS)
    return Status::error("MPI_Allreduce (min/max) failed");
  return Status::ok();
#else
  (void)low;
  (void)high;
  return Status::error("this build has no MPI");
#endif
}

#ifdef MOE_HAVE_MPI
namespace {
/// Seconds per one-way message of `bytes` between rank 0 and `peer`
/// (ping-pong, `reps` round trips). Ranks other than 0 and peer return 0.
double pingPong(int peer, int64_t bytes, int reps) {
  std::vector<char> buf(static_cast<size_t>(std::max<int64_t>(bytes, 1)));
  int me = rank_;
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime();
  for (int i = 0; i < reps; ++i) {
    if (me == 0) {
      MPI_Send(buf.data(), int(bytes), MPI_BYTE, peer, 7, MPI_COMM_WORLD);
      MPI_Recv(buf.data(), int(bytes), MPI_BYTE, peer, 7, MPI_COMM_WORLD,
               MPI_STATUS_IGNORE);
    } else if (me == peer) {
      MPI_Recv(buf.data(), int(bytes), MPI_BYTE, 0, 7, MPI_COMM_WORLD,
               MPI_STATUS_IGNORE);
      MPI_Send(buf.data(), int(bytes), MPI_BYTE, 0, 7, MPI_COMM_WORLD);
    }
  }
  double t = (MPI_Wtime() - t0) / (2.0 * reps);
  MPI_Bcast(&t, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  return t;
}
} // namespace
#endif

#ifdef MOE_HAVE_MPI
namespace {
/// The links inside a node as an AllToAll uses them: every rank of the node
/// exchanging with every other at once (ranks may share cores and memory
/// bandwidth). Latency: an all-to-all of 8 bytes per peer over the peers;
/// bandwidth: the bytes a rank sends in an all-to-all of 8 MiB per rank
/// over its time less the latencies. The slowest rank's times count.
void nodeAllToAll(double &bandwidth, double &latency) {
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL,
                      &node);
  int n = 1;
  MPI_Comm_size(node, &n);
  auto timed = [&](int64_t perPeer, int reps) {
    std::vector<char> send(size_t(perPeer) * size_t(n), 1),
        recv(size_t(perPeer) * size_t(n));
    MPI_Alltoall(send.data(), int(perPeer), MPI_BYTE, recv.data(),
                 int(perPeer), MPI_BYTE, node); // warm-up
    MPI_Barrier(node);
    double t0 = MPI_Wtime();
    for (int i = 0; i < reps; ++i)
      MPI_Alltoall(send.data(), int(perPeer), MPI_BYTE, recv.data(),
                   int(perPeer), MPI_BYTE, node);
    double t = (MPI_Wtime() - t0) / reps, worst = t;
    MPI_Allreduce(&t, &worst, 1, MPI_DOUBLE, MPI_MAX, node);
    return worst;
  };
  const double peers = double(n - 1);
  latency = timed(8, 200) / peers;
  const int64_t perPeer = (int64_t(8) << 20) / (n - 1);
  double t = timed(perPeer, 10);
  double sent = double(perPeer) * peers;
  bandwidth = t > latency * peers ? sent / (t - latency * peers) : sent / t;
  MPI_Comm_free(&node);
  // Every rank reports rank 0's figures.
  MPI_Bcast(&bandwidth, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  MPI_Bcast(&latency, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
}
} // namespace
#endif

StatusOr<NetworkProfile> measureNetwork() {
  NetworkProfile p;
#ifdef MOE_HAVE_MPI
  if (size_ < 2)
    return Status::error("--measure-network needs at least 2 ranks (run it "
                         "under mpirun -np N)");
  p.ranks = size_;
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL,
                      &node);
  int local = 1;
  MPI_Comm_size(node, &local);
  MPI_Comm_free(&node);
  // Ranks per node as rank 0 sees it; they must all agree.
  int minLocal = local, maxLocal = local;
  MPI_Allreduce(&local, &minLocal, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&local, &maxLocal, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (minLocal != maxLocal || size_ % local != 0)
    return Status::error("the ranks are spread unevenly over the nodes (" +
                         std::to_string(minLocal) + " to " +
                         std::to_string(maxLocal) + " per node)");
  p.ranksPerNode = local;
  // mpirun places ranks by node: rank 1 shares rank 0's node when there are
  // two or more per node, rank `local` is on the next node.
  const int64_t big = int64_t(16) << 20;
  auto measure = [&](int peer, double &bw, double &lat) {
    lat = pingPong(peer, 8, 200);
    double t = pingPong(peer, big, 10);
    bw = t > lat ? double(big) / (t - lat) : double(big) / t;
  };
  if (local >= 2)
    nodeAllToAll(p.intraBytesPerSecond, p.intraLatencySeconds);
  if (size_ > local) {
    measure(local, p.interBytesPerSecond, p.interLatencySeconds);
    p.measuredInter = true;
  }
  if (local < 2) { // one rank per node: no intra-node link to measure
    p.intraBytesPerSecond = p.interBytesPerSecond;
    p.intraLatencySeconds = p.interLatencySeconds;
  }
  if (!p.measuredInter) {
    p.interBytesPerSecond = p.intraBytesPerSecond;
    p.interLatencySeconds = p.intraLatencySeconds;
  }
  return p;
#else
  return Status::error("--measure-network needs a build with MPI");
#endif
}

std::string topologyJson(const NetworkProfile &p) {
  char buf[768];
  std::snprintf(
      buf, sizeof(buf),
      "{\"format\": \"moe-topology\", \"version\": 1,\n"
      " \"name\": \"measured by moe-exec --measure-network (%d ranks, %d per "
      "node%s)\",\n"
      " \"ranks\": %d, \"ranks_per_node\": %d,\n"
      " \"intra_bytes_per_s\": %.6g, \"intra_latency_s\": %.6g,\n"
      " \"inter_bytes_per_s\": %.6g, \"inter_latency_s\": %.6g}\n",
      p.ranks, p.ranksPerNode,
      p.measuredInter ? "" : "; one node: inter-node figures are intra-node",
      p.ranks, p.ranksPerNode, p.intraBytesPerSecond, p.intraLatencySeconds,
      p.interBytesPerSecond, p.interLatencySeconds);
  return buf;
}

} // namespace moe::rt::dist
