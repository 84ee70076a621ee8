//===- Exchange.cpp - Expert-parallel row exchange between ranks ----------===//
//
// Every rank knows every rank's rows per expert (an all-gather of E counts),
// so every rank can list the same segments — the rows one sender has for
// one expert — and each segment's path: sender → destination (direct), or
// sender → relay → destination (hierarchical: the relay is the rank of the
// sender's node with the destination's index in its node). A hop is one
// MPI_Ialltoallv ("phase") in which each pair of ranks exchanges its
// segments in (sender, expert) order; both ends derive the same order.
//
//===----------------------------------------------------------------------===//

#include "runtime/Exchange.h"

#include "runtime/Distributed.h"
#include "runtime/PlanLoader.h"

#ifdef MOE_HAVE_MPI
#include "runtime/DistributedMpi.h"
#endif

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <memory>
#include <string>

namespace moe::rt::dist {

namespace {

ExchangeStats totals_; // exchangeExperts runs one call at a time

// The dispatch and the combine exchanges each run on their own
// communicator (dist::communicator, streams 0 and 1): a hierarchical
// exchange posts its second phase when the first arrives, which differs
// between ranks, and non-blocking collectives must be posted in the same
// order on every rank of a communicator. On each of these two the order is
// fixed (see exchangeExperts).

void copyRows(const float *from, float *to, int64_t rows, int64_t hidden) {
  if (rows > 0)
    std::memcpy(to, from, size_t(rows * hidden) * sizeof(float));
}

/// Rows in flight or at work: every element is written before it is read,
/// so the storage is left uninitialised (a zeroed vector would add a pass
/// over all of it to every exchange).
class Rows {
public:
  void resize(size_t n) { data_.reset(n ? new float[n] : nullptr); }
  float *data() { return data_.get(); }

private:
  std::unique_ptr<float[]> data_;
};

/// One MPI_Ialltoallv. Parts are sorted by peer, then in segment order.
struct Phase {
  struct Part {
    int64_t peer, rows;
    const float *src; // sends
    float *dst;       // receives
  };
  std::vector<Part> sends, recvs;
  std::vector<int> sendCounts, sendDispls, recvCounts, recvDispls;
  Rows sendBuf, recvBuf;
  int ranks = 1; ///< of the exchange's group
#ifdef MOE_HAVE_MPI
  MPI_Comm comm = MPI_COMM_WORLD;
  MPI_Request request = MPI_REQUEST_NULL;
#endif

  Status prepare(int groupRanks, int64_t hidden) {
    ranks = groupRanks;
    auto byPeer = [](const Part &a, const Part &b) { return a.peer < b.peer; };
    std::stable_sort(sends.begin(), sends.end(), byPeer);
    std::stable_sort(recvs.begin(), recvs.end(), byPeer);
    auto layout = [&](const std::vector<Part> &parts, std::vector<int> &counts,
                      std::vector<int> &displs,
                      Rows &buf) -> Status {
      std::vector<int64_t> n(static_cast<size_t>(ranks), 0);
      int64_t total = 0;
      for (const Part &p : parts) {
        n[size_t(p.peer)] += p.rows * hidden;
        total += p.rows * hidden;
      }
      if (total > INT_MAX)
        return Status::error("an expert exchange of " + std::to_string(total) +
                             " floats is larger than MPI counts allow");
      counts.assign(n.begin(), n.end());
      displs.assign(static_cast<size_t>(ranks), 0);
      for (int r = 1; r < ranks; ++r)
        displs[size_t(r)] = displs[size_t(r) - 1] + counts[size_t(r) - 1];
      buf.resize(size_t(total));
      return Status::ok();
    };
    MOE_RETURN_IF_ERROR(layout(sends, sendCounts, sendDispls, sendBuf));
    return layout(recvs, recvCounts, recvDispls, recvBuf);
  }

  Status start(int64_t hidden) {
    float *at = sendBuf.data();
    for (const Part &p : sends) {
      copyRows(p.src, at, p.rows, hidden);
      at += p.rows * hidden;
    }
#ifdef MOE_HAVE_MPI
    if (ranks > 1 &&
        MPI_Ialltoallv(sendBuf.data(), sendCounts.data(), sendDispls.data(),
                       MPI_FLOAT, recvBuf.data(), recvCounts.data(),
                       recvDispls.data(), MPI_FLOAT, comm,
                       &request) != MPI_SUCCESS)
      return Status::error("MPI_Ialltoallv (expert exchange) failed");
#endif
    return Status::ok();
  }

  /// Whether the exchange has arrived (waiting for it when `block`).
  StatusOr<bool> arrived(bool block) {
#ifdef MOE_HAVE_MPI
    if (request == MPI_REQUEST_NULL)
      return true;
    int done = 0;
    int rc = block ? MPI_Wait(&request, MPI_STATUS_IGNORE)
                   : MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS)
      return Status::error("MPI_Wait (expert exchange) failed");
    return block || done;
#else
    (void)block;
    return true;
#endif
  }

  void finish(int64_t hidden) {
    const float *at = recvBuf.data();
    for (const Part &p : recvs) {
      copyRows(at, p.dst, p.rows, hidden);
      at += p.rows * hidden;
    }
  }
};

/// A chunk's exchange in one direction: its phases, one after the other.
struct Transfer {
  std::vector<Phase> phases;
  size_t next = 0;
  bool running = false;

  Status start(int64_t hidden) {
    next = 0;
    running = !phases.empty();
    return running ? phases[0].start(hidden) : Status::ok();
  }
  /// Moves on as far as the arrived phases allow; with `block`, to the end;
  /// with `untilLastPosted`, until its last phase is posted.
  Status progress(int64_t hidden, bool block, double &waited,
                  bool untilLastPosted = false) {
    while (running) {
      if (untilLastPosted && next + 1 == phases.size())
        return Status::ok();
      auto t0 = std::chrono::steady_clock::now();
      StatusOr<bool> done = phases[next].arrived(block);
      if (block)
        waited += std::chrono::duration<double>(
                      std::chrono::steady_clock::now() - t0)
                      .count();
      if (!done.isOk())
        return done.status();
      if (!*done)
        return Status::ok();
      phases[next].finish(hidden);
      if (++next == phases.size()) {
        running = false;
        break;
      }
      MOE_RETURN_IF_ERROR(phases[next].start(hidden));
    }
    return Status::ok();
  }
};

/// Everything about one chunk, seen from this rank.
struct Chunk {
  Transfer dispatch, combine;
  Rows work, result, relay;
  // This rank's own rows that it computes itself (offsets in floats).
  struct Local {
    int64_t inX, inWork, rows;
  };
  std::vector<Local> local;
  std::vector<std::pair<int64_t, int64_t>> experts; // [begin, end) in work
  int64_t workRows = 0; // expert-major from 0: experts[x] tile [0, workRows)
};

/// The chunk of each (computing rank, expert): a rank's experts, in order,
/// split into `chunks` runs of about equal length.
std::vector<int64_t> chunkOfExperts(const ExchangeLayout &l, int64_t ranks) {
  const int64_t e = l.numExperts;
  std::vector<int64_t> held(static_cast<size_t>(ranks), 0),
      chunk(static_cast<size_t>(ranks * e), -1);
  for (int64_t x = 0; x < e; ++x)
    for (int64_t i = l.replicaOffsets[size_t(x)];
         i < l.replicaOffsets[size_t(x) + 1]; ++i)
      if (chunk[size_t(l.replicas[size_t(i)] * e + x)] < 0) {
        chunk[size_t(l.replicas[size_t(i)] * e + x)] = 0;
        ++held[size_t(l.replicas[size_t(i)])];
      }
  std::vector<int64_t> seen(static_cast<size_t>(ranks), 0);
  for (int64_t d = 0; d < ranks; ++d)
    for (int64_t x = 0; x < e; ++x)
      if (chunk[size_t(d * e + x)] >= 0)
        chunk[size_t(d * e + x)] =
            seen[size_t(d)]++ * l.chunks / held[size_t(d)];
  return chunk;
}

/// Lays out chunk `c` for this rank from every rank's rows per expert.
Status layoutChunk(const ExchangeLayout &l, const std::vector<int64_t> &all,
                   const std::vector<int64_t> &chunkOf, const float *x,
                   const int64_t *offsets, float *y, int64_t hidden,
                   int64_t c, Chunk &k) {
  const Group group = l.group();
  const int64_t e = l.numExperts, ranks = group.size(), me = group.rank();
  const int64_t p = l.ranksPerNode > 0 ? l.ranksPerNode : ranks;
  struct Seg {
    int64_t s, x, rows, d, relay;
    int64_t work = -1, relayAt = -1;
  };
  std::vector<Seg> segs;
  for (int64_t s = 0; s < ranks; ++s)
    for (int64_t i = 0; i < e; ++i) {
      int64_t n = all[size_t(s * e + i)];
      if (n == 0)
        continue;
      int64_t d = l.destination(s, i);
      if (chunkOf[size_t(d * e + i)] != c)
        continue;
      int64_t relay = l.hierarchical ? (s / p) * p + d % p : s;
      segs.push_back({s, i, n, d, relay});
    }
  // Rows this rank computes, expert-major ((expert, sender) order), and
  // rows it relays, in segment order.
  std::vector<size_t> order(segs.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return segs[a].x < segs[b].x;
  });
  k.experts.assign(static_cast<size_t>(e), {0, 0});
  int64_t work = 0, relayRows = 0;
  for (size_t i : order) {
    Seg &g = segs[i];
    if (g.d != me)
      continue;
    if (k.experts[size_t(g.x)].second == 0)
      k.experts[size_t(g.x)] = {work, work};
    g.work = work;
    work += g.rows;
    k.experts[size_t(g.x)].second = work;
  }
  for (Seg &g : segs)
    if (g.relay == me && g.s != me && g.d != me) {
      g.relayAt = relayRows;
      relayRows += g.rows;
    }
  k.workRows = work;
  k.work.resize(size_t(work * hidden));
  k.result.resize(size_t(work * hidden));
  k.relay.resize(size_t(relayRows * hidden));
  auto inX = [&](const Seg &g) { return offsets[g.x] * hidden; };
  // Dispatch: sender -> relay (hierarchical), then relay -> destination.
  // Combine: the way back.
  Phase toRelay, fromRelay, backToRelay, backFromRelay;
  for (const Seg &g : segs) {
    float *atWork = g.d == me ? k.work.data() + g.work * hidden : nullptr;
    float *atResult = g.d == me ? k.result.data() + g.work * hidden : nullptr;
    float *atRelay = g.relayAt >= 0 ? k.relay.data() + g.relayAt * hidden
                                    : nullptr;
    if (g.s == me && g.d == me) {
      k.local.push_back({inX(g), g.work * hidden, g.rows});
      continue;
    }
    if (g.s != g.relay) { // the hop inside the sender's node
      if (g.s == me) {
        toRelay.sends.push_back({g.relay, g.rows, x + inX(g), nullptr});
        backFromRelay.recvs.push_back({g.relay, g.rows, nullptr, y + inX(g)});
      }
      if (g.relay == me) {
        toRelay.recvs.push_back({g.s, g.rows, nullptr,
                                 g.d == me ? atWork : atRelay});
        backFromRelay.sends.push_back({g.s, g.rows,
                                       g.d == me ? atResult : atRelay,
                                       nullptr});
      }
    }
    if (g.relay != g.d) { // the hop to the destination
      if (g.relay == me) {
        fromRelay.sends.push_back({g.d, g.rows,
                                   g.s == me ? x + inX(g) : atRelay, nullptr});
        backToRelay.recvs.push_back({g.d, g.rows, nullptr,
                                     g.s == me ? y + inX(g) : atRelay});
      }
      if (g.d == me) {
        fromRelay.recvs.push_back({g.relay, g.rows, nullptr, atWork});
        backToRelay.sends.push_back({g.relay, g.rows, atResult, nullptr});
      }
    }
  }
  if (l.hierarchical)
    k.dispatch.phases.push_back(std::move(toRelay));
  k.dispatch.phases.push_back(std::move(fromRelay));
  k.combine.phases.push_back(std::move(backToRelay));
  if (l.hierarchical)
    k.combine.phases.push_back(std::move(backFromRelay));
  for (int stream = 0; stream < 2; ++stream)
    for (Phase &ph : (stream ? k.combine : k.dispatch).phases) {
#ifdef MOE_HAVE_MPI
      if (ranks > 1) {
        StatusOr<MPI_Comm> comm = communicator(group, stream);
        if (!comm.isOk())
          return comm.status();
        ph.comm = *comm;
      }
#endif
      MOE_RETURN_IF_ERROR(ph.prepare(int(ranks), hidden));
    }
  for (const Phase &ph : k.dispatch.phases) {
    for (const Phase::Part &part : ph.sends)
      totals_.rowsSent += part.rows;
    for (const Phase::Part &part : ph.recvs)
      totals_.rowsReceived += part.rows;
  }
  return Status::ok();
}

/// The hybrid layout's compute of a chunk (ExchangeLayout::peersOfNodes):
/// the node's ranks gather the rows each received, each computes its slice
/// of every expert on all of them, and the partial rows are summed back to
/// the rank that received them (k.result).
Status computeInNode(const ExchangeLayout &l, Chunk &k, int64_t hidden,
                     const ExpertCompute &compute,
                     const std::function<Status()> &poll) {
  const Group node{Group::Kind::Node, l.peersOfNodes};
  const int64_t e = l.numExperts, p = node.size();
  std::vector<int64_t> mine(static_cast<size_t>(e)),
      all(static_cast<size_t>(p * e));
  for (int64_t x = 0; x < e; ++x)
    mine[size_t(x)] = k.experts[size_t(x)].second - k.experts[size_t(x)].first;
  MOE_RETURN_IF_ERROR(allgatherRows(mine.data(), e * int64_t(sizeof(int64_t)),
                                    std::vector<int64_t>(size_t(p), 1),
                                    all.data(), node));
  std::vector<int64_t> blockRows(static_cast<size_t>(p), 0),
      blockAt(static_cast<size_t>(p) + 1, 0);
  for (int64_t b = 0; b < p; ++b) {
    for (int64_t x = 0; x < e; ++x)
      blockRows[size_t(b)] += all[size_t(b * e + x)];
    blockAt[size_t(b) + 1] = blockAt[size_t(b)] + blockRows[size_t(b)];
  }
  if (blockRows[size_t(node.rank())] != k.workRows)
    return Status::error("the node's row counts disagree with this rank's");
  const int64_t total = blockAt.back();
  Rows gathered, mixed, mixedOut;
  gathered.resize(size_t(total * hidden));
  mixed.resize(size_t(total * hidden));
  mixedOut.resize(size_t(total * hidden));
  MOE_RETURN_IF_ERROR(allgatherRows(k.work.data(),
                                    hidden * int64_t(sizeof(float)),
                                    blockRows, gathered.data(), node));
  // Expert-major over the node: expert x's rows of rank 0, of rank 1, ...
  // (each rank's block is expert-major too).
  std::vector<int64_t> inBlock(static_cast<size_t>(p * e));
  for (int64_t b = 0; b < p; ++b)
    for (int64_t x = 0, at = blockAt[size_t(b)]; x < e; ++x) {
      inBlock[size_t(b * e + x)] = at;
      at += all[size_t(b * e + x)];
    }
  int64_t at = 0;
  for (int64_t x = 0; x < e; ++x) {
    const int64_t begin = at;
    for (int64_t b = 0; b < p; ++b) {
      int64_t n = all[size_t(b * e + x)];
      copyRows(gathered.data() + inBlock[size_t(b * e + x)] * hidden,
               mixed.data() + at * hidden, n, hidden);
      at += n;
    }
    if (at == begin)
      continue;
    MOE_RETURN_IF_ERROR(compute(x, mixed.data() + begin * hidden, at - begin,
                                mixedOut.data() + begin * hidden));
    MOE_RETURN_IF_ERROR(poll());
  }
  // Back into block order (reusing `gathered`), then summed over the node.
  at = 0;
  for (int64_t x = 0; x < e; ++x)
    for (int64_t b = 0; b < p; ++b) {
      int64_t n = all[size_t(b * e + x)];
      copyRows(mixedOut.data() + at * hidden,
               gathered.data() + inBlock[size_t(b * e + x)] * hidden, n,
               hidden);
      at += n;
    }
  return reduceScatterRows(gathered.data(), hidden, blockRows,
                           k.result.data(), node);
}

} // namespace

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
  if (chunks < 1 || chunks > numExperts)
    return Status::error("exchange chunks = " + std::to_string(chunks) +
                         " must be between 1 and the " +
                         std::to_string(numExperts) +
                         " experts (a chunk carries whole experts)");
  if (ranksPerNode < 0 || (ranksPerNode > 0 && ranks % ranksPerNode != 0))
    return Status::error("exchange ranks per node = " +
                         std::to_string(ranksPerNode) + " must divide the " +
                         std::to_string(ranks) + " ranks");
  return Status::ok();
}

Status exchangeExperts(const ExchangeLayout &l, const float *x, int64_t rows,
                       int64_t hidden, const int64_t *offsets,
                       const ExpertCompute &compute, float *y) {
  const Group group = l.group();
  MOE_RETURN_IF_ERROR(group.check());
  const int ranks = group.size();
  MOE_RETURN_IF_ERROR(l.check(ranks));
  const int64_t e = l.numExperts;
  // Every rank's rows per expert.
  std::vector<int64_t> mine(static_cast<size_t>(e)),
      all(static_cast<size_t>(e * ranks));
  for (int64_t i = 0; i < e; ++i)
    mine[size_t(i)] = offsets[i + 1] - offsets[i];
  if (ranks == 1) {
    all = mine;
  } else {
#ifdef MOE_HAVE_MPI
    StatusOr<MPI_Comm> comm = communicator(group, -1);
    if (!comm.isOk())
      return comm.status();
    if (MPI_Allgather(mine.data(), int(e), MPI_INT64_T, all.data(), int(e),
                      MPI_INT64_T, *comm) != MPI_SUCCESS)
      return Status::error("MPI_Allgather of the expert row counts failed");
#else
    return Status::error("this build has no MPI");
#endif
  }
  std::vector<int64_t> chunkOf = chunkOfExperts(l, ranks);
  std::vector<Chunk> chunks(static_cast<size_t>(l.chunks));
  for (int64_t c = 0; c < l.chunks; ++c)
    MOE_RETURN_IF_ERROR(layoutChunk(l, all, chunkOf, x, offsets, y, hidden, c,
                                    chunks[size_t(c)]));
  // Dropped tokens' rows.
  if (offsets[e] < rows)
    std::memset(y + offsets[e] * hidden, 0,
                size_t((rows - offsets[e]) * hidden) * sizeof(float));
  double waited = 0;
  // Lets the exchanges in flight move on (MPI moves data inside its calls).
  auto poll = [&]() -> Status {
    for (Chunk &k : chunks)
      for (Transfer *t : {&k.dispatch, &k.combine})
        MOE_RETURN_IF_ERROR(t->progress(hidden, /*block=*/false, waited));
    return Status::ok();
  };
  MOE_RETURN_IF_ERROR(chunks[0].dispatch.start(hidden));
  for (size_t c = 0; c < chunks.size(); ++c) {
    Chunk &k = chunks[c];
    MOE_RETURN_IF_ERROR(k.dispatch.progress(hidden, /*block=*/true, waited));
    if (c + 1 < chunks.size())
      MOE_RETURN_IF_ERROR(chunks[c + 1].dispatch.start(hidden));
    for (const Chunk::Local &m : k.local)
      copyRows(x + m.inX, k.work.data() + m.inWork, m.rows, hidden);
    if (l.peersOfNodes > 1) {
      MOE_RETURN_IF_ERROR(computeInNode(l, k, hidden, compute, poll));
    } else {
      for (int64_t i = 0; i < e; ++i) {
        auto [begin, end] = k.experts[size_t(i)];
        if (end == begin)
          continue;
        MOE_RETURN_IF_ERROR(compute(i, k.work.data() + begin * hidden,
                                    end - begin,
                                    k.result.data() + begin * hidden));
        MOE_RETURN_IF_ERROR(poll());
      }
    }
    for (const Chunk::Local &m : k.local)
      copyRows(k.result.data() + m.inWork, y + m.inX, m.rows, hidden);
    // Each stream posts in chunk order: a dispatch starts after the one
    // before it arrived (above); a combine, once the one before has posted
    // its last phase.
    if (c > 0)
      MOE_RETURN_IF_ERROR(chunks[c - 1].combine.progress(
          hidden, /*block=*/true, waited, /*untilLastPosted=*/true));
    MOE_RETURN_IF_ERROR(k.combine.start(hidden));
  }
  for (Chunk &k : chunks)
    MOE_RETURN_IF_ERROR(k.combine.progress(hidden, /*block=*/true, waited));
  totals_.waitSeconds += waited;
  ++totals_.calls;
  return Status::ok();
}

StatusOr<HeldExperts> releaseOtherExperts(const LoadedPlan &plan, int rank) {
  HeldExperts held;
  for (const StepInfo &step : plan.steps()) {
    for (size_t in = 2; in <= 4 && in < step.inputs.size(); ++in) {
      int32_t w = plan.values()[step.inputs[in]].weight;
      if (w < 0)
        continue; // computed, not a weight of the file
      const WeightInfo &info = plan.weights()[size_t(w)];
      if (info.shape.empty())
        continue;
      std::optional<std::vector<bool>> mine =
          expertSlicesRead(step, in, info.shape[0], rank);
      if (!mine)
        continue; // not an expert weight of a partitioned step
      const uint64_t n = mine->size();
      for (uint64_t x = 0; x < n; ++x) {
        uint64_t at = info.packed() ? info.slices[x].offset
                                    : info.size / n * x;
        uint64_t bytes = info.packed() ? info.slices[x].size : info.size / n;
        held.totalBytes += bytes;
        if ((*mine)[x]) {
          held.heldBytes += bytes;
          continue;
        }
        MOE_RETURN_IF_ERROR(plan.releasePages(size_t(w), at, bytes));
      }
    }
  }
  return held;
}

void addExchange(int64_t calls, int64_t rowsSent, int64_t rowsReceived,
                 double seconds) {
  totals_.calls += calls;
  totals_.rowsSent += rowsSent;
  totals_.rowsReceived += rowsReceived;
  totals_.waitSeconds += seconds;
}

ExchangeStats exchangeTotals() { return totals_; }
void resetExchangeTotals() { totals_ = ExchangeStats(); }

} // namespace moe::rt::dist
