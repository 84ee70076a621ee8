//===- AllToAllBench.cpp - Measured AllToAll against the traffic model ----===//
//
// mpirun -np N moe-alltoall-bench [--topology FILE] [--json FILE]
//
// For an OLMoE-like layer (hidden 2048, top-8 of 64 experts, bf16 rows on
// the wire, experts spread evenly over the ranks, tokens routed uniformly at
// random), times on the ranks of this run:
//   - plain: MPI_Alltoallv of the dispatched rows, the expert compute (as
//     on an accelerator: the rank polls the exchange, yielding its core
//     between polls when the ranks outnumber the cores, as long as the
//     model's compute time), MPI_Alltoallv back;
//   - chunked c = 2, 4, 8: the rows in c pieces, each piece's exchange
//     (MPI_Ialltoallv) overlapped with the previous piece's compute;
// and prints each next to the traffic model's prediction for the measured
// topology (moe-exec --measure-network) or the one given, and the chunk
// count moe-partition would choose (tr::choose). Rank 0 prints.
//
//===----------------------------------------------------------------------===//

#include "passes/Analysis/TrafficModel.h"

#include "runtime/MpiApi.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace tr = moe::traffic;

namespace {

int rank_ = 0, size_ = 1;

/// Whether the ranks outnumber the cores (set in main).
bool oversubscribed = false;

/// The expert compute of an accelerator: `seconds` of polling `req` (if
/// any) so that the exchange progresses. When the ranks outnumber the cores
/// the rank yields its core between polls to the ranks that exchange.
void compute(double seconds, MPI_Request *req) {
  double end = MPI_Wtime() + seconds;
  int done = 0;
  while (MPI_Wtime() < end) {
    if (req && *req != MPI_REQUEST_NULL && !done)
      MPI_Test(req, &done, MPI_STATUS_IGNORE);
    double left = end - MPI_Wtime();
    if (oversubscribed && left > 0)
      std::this_thread::yield();
  }
}

/// One layer step with the rows split into `chunks`; returns seconds.
double step(const std::vector<int> &counts, int64_t rowBytes, int chunks,
            double computeSeconds) {
  // Per chunk, per destination: counts / chunks rows (the rest in the last).
  const size_t n = static_cast<size_t>(size_);
  std::vector<std::vector<int>> send(static_cast<size_t>(chunks),
                                     std::vector<int>(n, 0));
  for (int d = 0; d < size_; ++d)
    for (int c = 0; c < chunks; ++c) {
      int base = counts[size_t(d)] / chunks;
      send[size_t(c)][size_t(d)] =
          int((base + (c == chunks - 1 ? counts[size_t(d)] % chunks : 0)) *
              rowBytes);
    }
  std::vector<std::vector<int>> recv(static_cast<size_t>(chunks),
                                     std::vector<int>(n, 0));
  for (int c = 0; c < chunks; ++c)
    MPI_Alltoall(send[size_t(c)].data(), 1, MPI_INT, recv[size_t(c)].data(), 1,
                 MPI_INT, MPI_COMM_WORLD);
  auto displs = [](const std::vector<int> &n) {
    std::vector<int> d(n.size(), 0);
    for (size_t i = 1; i < n.size(); ++i)
      d[i] = d[i - 1] + n[i - 1];
    return d;
  };
  int64_t maxBytes = 0;
  for (int c = 0; c < chunks; ++c) {
    int64_t s = 0, r = 0;
    for (int d = 0; d < size_; ++d) {
      s += send[size_t(c)][size_t(d)];
      r += recv[size_t(c)][size_t(d)];
    }
    maxBytes = std::max({maxBytes, s, r});
  }
  std::vector<char> sbuf(size_t(std::max<int64_t>(maxBytes, 1)), 1),
      rbuf(size_t(std::max<int64_t>(maxBytes, 1)));
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime();
  double perChunk = computeSeconds / chunks;
  // Dispatch of chunk c overlaps the compute of chunk c - 1; combine
  // exchanges follow each chunk's compute (same volume, reversed).
  MPI_Request req = MPI_REQUEST_NULL;
  auto start = [&](int c) {
    std::vector<int> sd = displs(send[size_t(c)]), rd = displs(recv[size_t(c)]);
    MPI_Ialltoallv(sbuf.data(), send[size_t(c)].data(), sd.data(), MPI_BYTE,
                   rbuf.data(), recv[size_t(c)].data(), rd.data(), MPI_BYTE,
                   MPI_COMM_WORLD, &req);
  };
  start(0);
  MPI_Wait(&req, MPI_STATUS_IGNORE);
  for (int c = 0; c < chunks; ++c) {
    if (c + 1 < chunks)
      start(c + 1);
    compute(perChunk, &req);
    if (c + 1 < chunks)
      MPI_Wait(&req, MPI_STATUS_IGNORE);
  }
  // Combine: the outputs back, in the same chunks (not overlapped: the
  // model counts both directions in its exchange time).
  for (int c = 0; c < chunks; ++c) {
    start(c);
    MPI_Wait(&req, MPI_STATUS_IGNORE);
  }
  double t = MPI_Wtime() - t0, worst = 0;
  MPI_Allreduce(&t, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}

} // namespace

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  std::string topoPath, json;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--topology") && i + 1 < argc)
      topoPath = argv[++i];
    else if (!std::strcmp(argv[i], "--json") && i + 1 < argc)
      json = argv[++i];
    else {
      if (rank_ == 0)
        std::fprintf(stderr, "usage: mpirun -np N moe-alltoall-bench "
                             "[--topology FILE] [--json FILE]\n");
      MPI_Finalize();
      return 2;
    }
  }
  if (topoPath.empty() || size_ < 2) {
    if (rank_ == 0)
      std::fprintf(stderr, "moe-alltoall-bench: error: run under mpirun -np N "
                           "(N >= 2) with --topology FILE (moe-exec "
                           "--measure-network writes one)\n");
    MPI_Finalize();
    return 1;
  }
  llvm::Expected<tr::Topology> topo = tr::readTopology(topoPath);
  if (!topo || topo->ranks != size_) {
    if (rank_ == 0)
      std::fprintf(stderr, "moe-alltoall-bench: error: %s\n",
                   topo ? "the topology's rank count differs from this run"
                        : llvm::toString(topo.takeError()).c_str());
    MPI_Finalize();
    return 1;
  }
  {
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0,
                        MPI_INFO_NULL, &node);
    int local = 1;
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    oversubscribed = unsigned(local) > std::thread::hardware_concurrency();
  }
  const int64_t hidden = 2048, topK = 8, experts = 64;
  // A rate that makes the expert compute about as long as the exchange on a
  // loopback run, where pipelining has something to hide.
  const double flops = 2e13;
  std::string out = "{\"benchmark\": \"alltoall\", \"ranks\": " +
                    std::to_string(size_) + ", \"rows\": [";
  if (rank_ == 0)
    std::printf("%6s %6s %12s %12s %8s\n", "tokens", "chunks", "measured ms",
                "predicted ms", "ratio");
  bool first = true;
  for (int64_t tokens : {64, 256, 1024}) {
    // Uniform routing: each (token, slot) to a random expert; experts are
    // spread evenly over the ranks.
    std::mt19937 rng(unsigned(17 + rank_));
    std::vector<int> counts(static_cast<size_t>(size_), 0);
    for (int64_t t = 0; t < tokens * topK; ++t)
      counts[size_t((rng() % experts) * size_ / experts)] += 1;
    counts[size_t(rank_)] = 0; // rows for local experts stay
    tr::LayerShape l;
    l.tokensPerRank = tokens;
    l.hidden = hidden;
    l.ffn = 1024;
    l.topK = topK;
    l.numExperts = experts;
    l.activationBytes = 2;
    l.flopsPerSecond = flops;
    auto all = tr::predictAll(*topo, l);
    // The exchange alone (dispatch and combine, no compute) first.
    {
      const tr::Prediction *p = nullptr;
      for (const tr::Prediction &q : all)
        if (q.layout == tr::Layout::ExpertParallel &&
            q.schedule == tr::Schedule::Direct && q.chunks == 1)
          p = &q;
      std::vector<double> times;
      for (int rep = 0; rep < 7; ++rep)
        times.push_back(step(counts, hidden * 2, 1, 0.0));
      std::sort(times.begin(), times.end());
      double median = times[times.size() / 2];
      if (rank_ == 0) {
        std::printf("%6lld %6s %12.3f %12.3f %8.2f\n", (long long)tokens,
                    "comm", median * 1e3, p->commSeconds * 1e3,
                    median / p->commSeconds);
        char row[256];
        std::snprintf(row, sizeof(row),
                      "%s{\"tokens\": %lld, \"chunks\": \"exchange only\", "
                      "\"measured_ms\": %.6f, \"predicted_ms\": %.6f, "
                      "\"ratio\": %.4f}",
                      first ? "" : ",\n  ", (long long)tokens, median * 1e3,
                      p->commSeconds * 1e3, median / p->commSeconds);
        out += row;
        first = false;
      }
    }
    std::vector<tr::Prediction> ep;
    for (const tr::Prediction &q : all)
      if (q.layout == tr::Layout::ExpertParallel &&
          q.schedule == tr::Schedule::Direct)
        ep.push_back(q);
    const int64_t chosen = ep[tr::choose(ep, 0.05)].chunks;
    double plainMs = 0, chosenMs = 0;
    for (int chunks : {1, 2, 4, 8}) {
      const tr::Prediction *p = nullptr;
      for (const tr::Prediction &q : all)
        if (q.layout == tr::Layout::ExpertParallel &&
            q.schedule == tr::Schedule::Direct && q.chunks == chunks)
          p = &q;
      std::vector<double> times;
      for (int rep = 0; rep < 7; ++rep)
        times.push_back(step(counts, hidden * 2, chunks, p->computeSeconds));
      std::sort(times.begin(), times.end());
      double median = times[times.size() / 2];
      if (chunks == 1)
        plainMs = median * 1e3;
      if (chunks == chosen)
        chosenMs = median * 1e3;
      if (rank_ == 0) {
        std::printf("%6lld %6d %12.3f %12.3f %8.2f%s\n", (long long)tokens,
                    chunks, median * 1e3, p->seconds * 1e3,
                    median / p->seconds, chunks == chosen ? "  (chosen)" : "");
        char row[256];
        std::snprintf(row, sizeof(row),
                      "%s{\"tokens\": %lld, \"chunks\": %d, \"measured_ms\": "
                      "%.6f, \"predicted_ms\": %.6f, \"ratio\": %.4f, "
                      "\"chosen\": %s}",
                      first ? "" : ",\n  ", (long long)tokens, chunks,
                      median * 1e3, p->seconds * 1e3, median / p->seconds,
                      chunks == chosen ? "true" : "false");
        out += row;
        first = false;
      }
    }
    if (rank_ == 0)
      std::printf("%6lld: the model's choice, %lld chunks, measures %.3f ms; "
                  "plain %.3f ms\n",
                  (long long)tokens, (long long)chosen, chosenMs, plainMs);
  }
  out += "]}\n";
  if (rank_ == 0 && !json.empty())
    std::ofstream(json) << out;
  MPI_Finalize();
  return 0;
}
