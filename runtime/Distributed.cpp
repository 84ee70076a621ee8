//===- Distributed.cpp - Ranks of a multi-process run ---------------------===//

#include "runtime/Distributed.h"

#ifdef MOE_HAVE_MPI
// The C API only: OpenMPI's C++ bindings need a library we do not link.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <cstdio>
#include <vector>
#include <cstdlib>
#include <string>

namespace moe::rt::dist {

namespace {
int rank_ = 0, size_ = 1, localSize_ = 1;
bool started_ = false;
ExchangeStats totals_; // exchangeExperts runs one call at a time
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

int rank() { return rank_; }
int size() { return size_; }
int localSize() { return localSize_; }
ExchangeStats exchangeTotals() { return totals_; }
void resetExchangeTotals() { totals_ = ExchangeStats(); }

Status allreduceSum(float *data, int64_t n) {
  if (size_ == 1 || n == 0)
    return Status::ok();
#ifdef MOE_HAVE_MPI
  for (int64_t done = 0; done < n;) {
    int count = int(std::min<int64_t>(n - done, INT_MAX));
    if (MPI_Allreduce(MPI_IN_PLACE, data + done, count, MPI_FLOAT, MPI_SUM,
                      MPI_COMM_WORLD) != MPI_SUCCESS)
      return Status::error("MPI_Allreduce of " + std::to_string(count) +
                           " floats failed");
    done += count;
  }
  return Status::ok();
#else
  return Status::error("this build has no MPI");
#endif
}

Status ExchangeLayout::check(int ranks) const {
  if (numExperts < 1 || int64_t(replicaOffsets.size()) != numExperts + 1 ||
      replicaOffsets.front() != 0 ||
      replicaOffsets.back() != int64_t(replicas.size()))
    return Status::error("the expert ranks (replicas, replica_offsets) do "
                         "not describe " + std::to_string(numExperts) +
                         " experts");
  for (int64_t x = 0; x < numExperts; ++x)
    if (replicaOffsets[size_t(x) + 1] <= replicaOffsets[size_t(x)])
      return Status::error("expert " + std::to_string(x) + " has no rank");
  for (int64_t r : replicas)
    if (r < 0 || r >= ranks)
      return Status::error("an expert is held by rank " + std::to_string(r) +
                           ", but the run has " + std::to_string(ranks) +
                           " ranks");
  if (chunks < 1)
    return Status::error("exchange chunks = " + std::to_string(chunks) +
                         " must be at least 1");
  return Status::ok();
}

namespace {

/// The chunk of each (computing rank, expert): a rank's experts, in order,
/// split into `chunks` runs of about equal length. A chunk carries whole
/// experts, so every expert is computed once, on all its rows (its weights
/// are read once, and the results do not depend on the chunk count).
std::vector<int64_t> chunkOfExperts(const ExchangeLayout &l, int64_t ranks) {
  const int64_t e = l.numExperts;
  std::vector<int64_t> held(static_cast<size_t>(ranks), 0),
      chunk(static_cast<size_t>(ranks * e), -1);
  for (int64_t x = 0; x < e; ++x)
    for (int64_t i = l.replicaOffsets[size_t(x)];
         i < l.replicaOffsets[size_t(x) + 1]; ++i)
      ++held[size_t(l.replicas[size_t(i)])];
  std::vector<int64_t> seen(static_cast<size_t>(ranks), 0);
  for (int64_t x = 0; x < e; ++x)
    for (int64_t i = l.replicaOffsets[size_t(x)];
         i < l.replicaOffsets[size_t(x) + 1]; ++i) {
      int64_t d = l.replicas[size_t(i)];
      if (chunk[size_t(d * e + x)] >= 0)
        continue; // listed twice
      chunk[size_t(d * e + x)] = seen[size_t(d)]++ * l.chunks / held[size_t(d)];
    }
  return chunk;
}

/// One chunk of an exchange, seen from this rank. Counts and displacements
/// are in floats (MPI counts are ints).
struct Chunk {
  // Outgoing: per (destination, expert), destinations in rank order (this
  // rank's own rows stay out of MPI), experts in order; `at` is the first
  // row in x.
  struct Segment {
    int64_t rank, expert, at, rows;
    int64_t work = 0; ///< the first row in `work` (rows this rank computes)
  };
  std::vector<Segment> out, in; // in: per (sender, expert); `at` unused
  std::vector<int> sendCounts, sendDispls, recvCounts, recvDispls;
  std::vector<float> sendBuf, recvBuf, backSend, backRecv;
  // The rows this rank computes, expert-major: (expert, sender) in order.
  std::vector<float> work, result;
  std::vector<Segment> local; // this rank's rows it computes itself
  // Per expert: [begin, end) rows in work.
  std::vector<std::pair<int64_t, int64_t>> experts;
#ifdef MOE_HAVE_MPI
  MPI_Request dispatch = MPI_REQUEST_NULL, combine = MPI_REQUEST_NULL;
#endif
};

Status fitsInt(int64_t floats, const char *what) {
  if (floats > INT_MAX)
    return Status::error(std::string("an exchange of ") +
                         std::to_string(floats) + " floats " + what +
                         " is larger than MPI counts allow");
  return Status::ok();
}

/// Lays out chunk `c` from every rank's counts per expert.
Status layoutChunk(const ExchangeLayout &l, const std::vector<int64_t> &all,
                   const std::vector<int64_t> &chunkOf,
                   const int64_t *offsets, int64_t hidden, int64_t c,
                   Chunk &k) {
  const int64_t e = l.numExperts, ranks = size_, me = rank_;
  auto count = [&](int64_t s, int64_t x) -> int64_t {
    int64_t d = l.destination(s, x);
    return chunkOf[size_t(d * e + x)] == c ? all[size_t(s * e + x)] : 0;
  };
  k.sendCounts.assign(size_t(ranks), 0);
  k.recvCounts.assign(size_t(ranks), 0);
  for (int64_t d = 0; d < ranks; ++d)
    for (int64_t x = 0; x < e; ++x) {
      if (l.destination(me, x) != d)
        continue;
      int64_t at = offsets[x];
      int64_t rows = count(me, x);
      if (rows == 0)
        continue;
      (d == me ? k.local : k.out).push_back({d, x, at, rows});
      if (d != me)
        k.sendCounts[size_t(d)] += int(rows * hidden);
    }
  // Expert-major positions of the rows this rank computes.
  k.experts.assign(size_t(e), {0, 0});
  std::vector<int64_t> position(size_t(ranks * e), -1);
  int64_t at = 0;
  for (int64_t x = 0; x < e; ++x) {
    k.experts[size_t(x)].first = at;
    for (int64_t s = 0; s < ranks; ++s)
      if (l.destination(s, x) == me) {
        position[size_t(s * e + x)] = at;
        at += count(s, x);
      }
    k.experts[size_t(x)].second = at;
  }
  for (Chunk::Segment &seg : k.local)
    seg.work = position[size_t(me * e + seg.expert)];
  for (int64_t s = 0; s < ranks; ++s)
    for (int64_t x = 0; x < e; ++x)
      if (s != me && l.destination(s, x) == me && count(s, x) > 0) {
        k.in.push_back({s, x, 0, count(s, x), position[size_t(s * e + x)]});
        k.recvCounts[size_t(s)] += int(count(s, x) * hidden);
      }
  int64_t sent = 0, received = 0;
  for (int64_t r = 0; r < ranks; ++r) {
    sent += k.sendCounts[size_t(r)];
    received += k.recvCounts[size_t(r)];
  }
  MOE_RETURN_IF_ERROR(fitsInt(sent, "sent"));
  MOE_RETURN_IF_ERROR(fitsInt(received, "received"));
  auto displs = [](const std::vector<int> &n) {
    std::vector<int> d(n.size(), 0);
    for (size_t i = 1; i < n.size(); ++i)
      d[i] = d[i - 1] + n[i - 1];
    return d;
  };
  k.sendDispls = displs(k.sendCounts);
  k.recvDispls = displs(k.recvCounts);
  k.sendBuf.resize(size_t(sent));
  k.recvBuf.resize(size_t(received));
  k.backSend.resize(size_t(received));
  k.backRecv.resize(size_t(sent));
  k.work.resize(size_t(at * hidden));
  k.result.resize(size_t(at * hidden));
  return Status::ok();
}

void copyRows(const float *from, float *to, int64_t rows, int64_t hidden) {
  std::memcpy(to, from, size_t(rows * hidden) * sizeof(float));
}

} // namespace

Status exchangeExperts(const ExchangeLayout &l, const float *x, int64_t rows,
                       int64_t hidden, const int64_t *offsets,
                       const ExpertCompute &compute, float *y) {
  MOE_RETURN_IF_ERROR(l.check(size_));
  const int64_t e = l.numExperts;
  // Every rank's rows per expert.
  std::vector<int64_t> mine(static_cast<size_t>(e)),
      all(static_cast<size_t>(e * size_));
  for (int64_t i = 0; i < e; ++i)
    mine[size_t(i)] = offsets[i + 1] - offsets[i];
#ifdef MOE_HAVE_MPI
  if (size_ > 1) {
    if (MPI_Allgather(mine.data(), int(e), MPI_INT64_T, all.data(), int(e),
                      MPI_INT64_T, MPI_COMM_WORLD) != MPI_SUCCESS)
      return Status::error("MPI_Allgather of the expert row counts failed");
  } else {
    all = mine;
  }
#else
  if (size_ > 1)
    return Status::error("this build has no MPI");
  all = mine;
#endif
  std::vector<Chunk> chunks(static_cast<size_t>(l.chunks));
  std::vector<int64_t> chunkOf = chunkOfExperts(l, size_);
  for (int64_t c = 0; c < l.chunks; ++c)
    MOE_RETURN_IF_ERROR(layoutChunk(l, all, chunkOf, offsets, hidden, c,
                                    chunks[size_t(c)]));
  // Dropped tokens' rows.
  if (offsets[e] < rows)
    std::memset(y + offsets[e] * hidden, 0,
                size_t((rows - offsets[e]) * hidden) * sizeof(float));
  using Clock = std::chrono::steady_clock;
  double waited = 0;
#ifdef MOE_HAVE_MPI
  auto startDispatch = [&](Chunk &k) -> Status {
    int64_t at = 0;
    for (const Chunk::Segment &seg : k.out) {
      copyRows(x + seg.at * hidden, k.sendBuf.data() + at * hidden, seg.rows,
               hidden);
      at += seg.rows;
    }
    if (size_ == 1)
      return Status::ok();
    if (MPI_Ialltoallv(k.sendBuf.data(), k.sendCounts.data(),
                       k.sendDispls.data(), MPI_FLOAT, k.recvBuf.data(),
                       k.recvCounts.data(), k.recvDispls.data(), MPI_FLOAT,
                       MPI_COMM_WORLD, &k.dispatch) != MPI_SUCCESS)
      return Status::error("MPI_Ialltoallv (expert dispatch) failed");
    return Status::ok();
  };
  auto wait = [&](MPI_Request &r, const char *what) -> Status {
    if (r == MPI_REQUEST_NULL)
      return Status::ok();
    auto t0 = Clock::now();
    int rc = MPI_Wait(&r, MPI_STATUS_IGNORE);
    waited += std::chrono::duration<double>(Clock::now() - t0).count();
    if (rc != MPI_SUCCESS)
      return Status::error(std::string("MPI_Wait (") + what + ") failed");
    return Status::ok();
  };
  // Lets the exchanges in flight progress (MPI moves data inside its calls).
  auto poll = [&]() {
    for (Chunk &k : chunks)
      for (MPI_Request *r : {&k.dispatch, &k.combine})
        if (*r != MPI_REQUEST_NULL) {
          int done = 0;
          MPI_Test(r, &done, MPI_STATUS_IGNORE);
        }
  };
#else
  auto startDispatch = [&](Chunk &) -> Status { return Status::ok(); };
  auto poll = [&]() {};
#endif
  if (!chunks.empty())
    MOE_RETURN_IF_ERROR(startDispatch(chunks[0]));
  for (size_t c = 0; c < chunks.size(); ++c) {
    Chunk &k = chunks[c];
#ifdef MOE_HAVE_MPI
    MOE_RETURN_IF_ERROR(wait(k.dispatch, "expert dispatch"));
#endif
    if (c + 1 < chunks.size())
      MOE_RETURN_IF_ERROR(startDispatch(chunks[c + 1]));
    // The rows to compute, expert-major.
    for (const Chunk::Segment &seg : k.local)
      copyRows(x + seg.at * hidden, k.work.data() + seg.work * hidden,
               seg.rows, hidden);
    {
      int64_t at = 0;
      for (const Chunk::Segment &seg : k.in) {
        copyRows(k.recvBuf.data() + at * hidden,
                 k.work.data() + seg.work * hidden, seg.rows, hidden);
        at += seg.rows;
      }
    }
    for (int64_t i = 0; i < e; ++i) {
      auto [begin, end] = k.experts[size_t(i)];
      if (end == begin)
        continue;
      MOE_RETURN_IF_ERROR(compute(i, k.work.data() + begin * hidden,
                                  end - begin,
                                  k.result.data() + begin * hidden));
      poll();
    }
    // This rank's own rows to y, the others back to their senders (in the
    // order they sent).
    for (const Chunk::Segment &seg : k.local)
      copyRows(k.result.data() + seg.work * hidden, y + seg.at * hidden,
               seg.rows, hidden);
    {
      int64_t at = 0;
      for (const Chunk::Segment &seg : k.in) {
        copyRows(k.result.data() + seg.work * hidden,
                 k.backSend.data() + at * hidden, seg.rows, hidden);
        at += seg.rows;
      }
    }
#ifdef MOE_HAVE_MPI
    if (size_ > 1 &&
        MPI_Ialltoallv(k.backSend.data(), k.recvCounts.data(),
                       k.recvDispls.data(), MPI_FLOAT, k.backRecv.data(),
                       k.sendCounts.data(), k.sendDispls.data(), MPI_FLOAT,
                       MPI_COMM_WORLD, &k.combine) != MPI_SUCCESS)
      return Status::error("MPI_Ialltoallv (expert combine) failed");
#endif
  }
  (void)poll;
  for (Chunk &k : chunks) {
#ifdef MOE_HAVE_MPI
    MOE_RETURN_IF_ERROR(wait(k.combine, "expert combine"));
#endif
    int64_t at = 0;
    for (const Chunk::Segment &seg : k.out) {
      copyRows(k.backRecv.data() + at * hidden, y + seg.at * hidden, seg.rows,
               hidden);
      at += seg.rows;
    }
    totals_.rowsSent += at;
    for (const Chunk::Segment &seg : k.in)
      totals_.rowsReceived += seg.rows;
  }
  totals_.waitSeconds += waited;
  ++totals_.calls;
  return Status::ok();
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
