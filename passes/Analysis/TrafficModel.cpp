//===- TrafficModel.cpp - AllToAll traffic and parallel layouts -----------===//

#include "passes/Analysis/TrafficModel.h"

#include "passes/Analysis/JsonFile.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace moe::traffic {

const char *layoutName(Layout l) {
  switch (l) {
  case Layout::ExpertParallel:
    return "EP";
  case Layout::TensorParallel:
    return "TP";
  case Layout::Hybrid:
    return "TP-in-node+EP";
  }
  return "?";
}

const char *scheduleName(Schedule s) {
  return s == Schedule::Direct ? "direct" : "hierarchical";
}

std::string Prediction::describe() const {
  char buf[160];
  std::snprintf(buf, sizeof(buf), "%s %s%s: %.3f ms (comm %.3f, compute %.3f)",
                layoutName(layout), scheduleName(schedule),
                chunks > 1 ? (" x" + std::to_string(chunks)).c_str() : "",
                seconds * 1e3, commSeconds * 1e3, computeSeconds * 1e3);
  return buf;
}

llvm::Expected<Topology> parseTopology(llvm::StringRef json,
                                       llvm::StringRef path) {
  llvm::Expected<llvm::json::Value> v =
      analysis::parseVersioned(json, path, "moe-topology", 1, "topology");
  if (!v)
    return v.takeError();
  const llvm::json::Object *o = v->getAsObject();
  Topology t;
  if (auto n = o->getString("name"))
    t.name = n->str();
  std::optional<int64_t> ranks = o->getInteger("ranks"),
                         perNode = o->getInteger("ranks_per_node");
  if (!ranks || *ranks < 1)
    return analysis::fileError(path, "`ranks` must be a positive integer");
  if (!perNode || *perNode < 1 || *ranks % *perNode != 0)
    return analysis::fileError(
        path, "`ranks_per_node` must be a positive integer dividing ranks");
  t.ranks = *ranks;
  t.ranksPerNode = *perNode;
  struct Field {
    const char *key;
    double *out;
    bool positive;
  } fields[] = {{"intra_bytes_per_s", &t.intraBytesPerSecond, true},
                {"intra_latency_s", &t.intraLatencySeconds, false},
                {"inter_bytes_per_s", &t.interBytesPerSecond, true},
                {"inter_latency_s", &t.interLatencySeconds, false}};
  for (const Field &f : fields) {
    llvm::Expected<double> x =
        analysis::readNumber(o, f.key, f.key, f.positive, path);
    if (!x)
      return x.takeError();
    *f.out = *x;
  }
  return t;
}

llvm::Expected<Topology> readTopology(llvm::StringRef path) {
  llvm::Expected<std::string> text = analysis::readFile(path, "topology");
  if (!text)
    return text.takeError();
  return parseTopology(*text, path);
}

namespace {

/// One exchange (e.g. a dispatch) of a rank: bytes to ranks of its node and
/// to other nodes, and how many messages each way takes.
struct Exchange {
  double intra = 0, inter = 0;
  double intraMessages = 0, interMessages = 0;
};

/// Bandwidth and latency parts of an exchange's time.
struct Cost {
  double bandwidth = 0, latency = 0;
};

Cost exchangeCost(const Topology &t, const Exchange &x, Schedule s) {
  int64_t p = t.ranksPerNode;
  Cost c;
  if (s == Schedule::Direct) {
    // Both link kinds at once; one message per peer.
    double intra = x.intra / t.intraBytesPerSecond,
           inter = x.inter / t.interBytesPerSecond;
    c.bandwidth = std::max(intra, inter);
    c.latency = std::max(x.intraMessages * t.intraLatencySeconds,
                         x.interMessages * t.interLatencySeconds);
    return c;
  }
  // Hierarchical: first inside the node (what stays there, plus what leaves
  // it moved to the local rank that sends to each remote node), then one
  // message per remote node.
  double intraBytes = x.intra + x.inter * double(p - 1) / double(p);
  double intra = intraBytes / t.intraBytesPerSecond;
  double inter = x.inter / t.interBytesPerSecond;
  c.bandwidth = intra + inter;
  c.latency = double(p - 1) * t.intraLatencySeconds +
              (x.inter > 0 ? double(t.nodes() - 1) * t.interLatencySeconds
                           : 0.0);
  return c;
}

} // namespace

double computeSeconds(const Topology &t, const LayerShape &l) {
  const double T = double(l.tokensPerRank), k = double(l.topK);
  // The FLOPs of a rank per step: its T·k (token, expert) pairs' worth.
  double flops = T * k * 2.0 * double(l.matricesPerExpert) *
                 double(l.hidden) * double(l.ffn) / l.flopsPerSecond;
  if (!(l.expertBytes > 0) || !(l.memoryBytesPerSecond > 0))
    return flops;
  // The weights: every layout spreads the experts' bytes evenly over the
  // ranks, and an expert is read when one of the step's T·R tokens picks
  // it, each picking k of E uniformly. Chunks carry whole experts (the
  // runtime's pipelined exchange): each is still read once.
  const double E = double(l.numExperts);
  double untouched = std::pow(1.0 - std::min(k / E, 1.0), T * double(t.ranks));
  double bytes = E * (1.0 - untouched) * l.expertBytes / double(t.ranks);
  double reads = bytes / l.memoryBytesPerSecond;
  return l.serialCompute ? flops + reads : std::max(flops, reads);
}

std::vector<Prediction> predictAll(const Topology &t, const LayerShape &l) {
  std::vector<Prediction> out;
  const double R = double(t.ranks), P = double(t.ranksPerNode),
               N = double(t.nodes());
  const double row = double(l.hidden) * l.activationBytes;
  const double T = double(l.tokensPerRank), k = double(l.topK);
  for (Layout layout :
       {Layout::ExpertParallel, Layout::TensorParallel, Layout::Hybrid}) {
    Exchange x; // one direction (dispatch); combine is the same back
    if (layout == Layout::ExpertParallel) {
      x.intra = T * k * row * (P - 1) / R;
      x.inter = T * k * row * (R - P) / R;
      x.intraMessages = P - 1;
      x.interMessages = R - P;
    } else if (layout == Layout::TensorParallel) {
      if (t.ranks > l.ffn)
        continue;
      x.intra = T * row * (P - 1);
      x.inter = T * row * (R - P);
      x.intraMessages = P - 1;
      x.interMessages = R - P;
    } else {
      if (t.nodes() < 2 || t.ranksPerNode < 2)
        continue;
      x.intra = T * k * row * (P - 1);
      x.inter = T * k * row * (N - 1) / N;
      x.intraMessages = P - 1;
      x.interMessages = N - 1;
    }
    for (Schedule s : {Schedule::Direct, Schedule::Hierarchical}) {
      if (s == Schedule::Hierarchical && (t.nodes() < 2 || P < 2))
        continue;
      Cost one = exchangeCost(t, x, s);
      for (int64_t c : {1, 2, 4, 8}) {
        Prediction p;
        p.layout = layout;
        p.schedule = s;
        p.chunks = c;
        p.intraBytes = 2 * x.intra;
        p.interBytes = 2 * x.inter;
        // Dispatch and combine; each chunk pays the latencies again.
        p.commSeconds = 2 * (one.bandwidth + double(c) * one.latency);
        double compute = computeSeconds(t, l);
        p.computeSeconds = compute;
        // Pipelined: chunk i's exchange overlaps chunk i-1's compute; the
        // first exchange and the last compute are not hidden.
        p.seconds = c == 1 ? p.commSeconds + compute
                           : std::max(p.commSeconds, compute) +
                                 std::min(p.commSeconds, compute) / double(c);
        out.push_back(p);
      }
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Prediction &a, const Prediction &b) {
                     return a.seconds < b.seconds;
                   });
  return out;
}

size_t choose(const std::vector<Prediction> &candidates,
              double minPipelineGain) {
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Prediction &p = candidates[i];
    if (p.chunks == 1)
      return i;
    // A pipelined candidate must clearly beat its unchunked twin (when
    // that is a candidate too).
    auto plain = std::find_if(
        candidates.begin(), candidates.end(), [&](const Prediction &q) {
          return q.chunks == 1 && q.layout == p.layout &&
                 q.schedule == p.schedule;
        });
    if (plain == candidates.end() ||
        p.seconds <= (1.0 - minPipelineGain) * plain->seconds)
      return i;
  }
  return 0;
}

} // namespace moe::traffic
