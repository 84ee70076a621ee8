//===- PartitionSim.cpp - The AllToAll cost model on published topologies -===//
//
// moe-partition-sim [--json FILE]: for GPU clusters of 8 GPUs per node over
// NVLink and 2-16 nodes over InfiniBand, and two MoE layers (Mixtral-like,
// DeepSeek-V3-like), prints what the traffic model (passes/Analysis/
// TrafficModel.h) predicts: plain expert-parallel AllToAll, the best
// hierarchical and pipelined schedules, and the best layout overall. A
// simulation of the cost model alone (no network is used).
//
// moe-partition-sim --topology FILE --layer H,F,E,K --tokens T ...: every
// candidate for one layer on one topology (bench/expert_parallel uses it for
// the predictions it prints next to its measurements).
//
//===----------------------------------------------------------------------===//

#include "passes/Analysis/TrafficModel.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace tr = moe::traffic;

namespace {

const char *const kUsage =
    "usage: moe-partition-sim [--json FILE]\n"
    "       moe-partition-sim --topology FILE --layer H,F,E,K --tokens T\n"
    "                         [--flops-per-rank X] [--memory-bytes-per-s Y\n"
    "                          --expert-bytes B] [--activation-bytes A]\n"
    "                         [--layout EP|TP|hybrid] [--min-pipeline-gain G]\n"
    "                         [--compute-model roofline|serial]\n"
    "The first form prints the published-topology table; the second prints\n"
    "every candidate the traffic model predicts for one layer (hidden H,\n"
    "expert width F, E experts, top-K, T tokens per rank) on a topology, one\n"
    "JSON object per line, fastest first; \"chosen\" marks the one\n"
    "moe-partition would pick (min-pipeline-gain G, default 0.05) among those\n"
    "of --layout (default: all).\n";

/// The second form: every candidate for one layer, as JSON lines.
int candidates(const std::string &topology, const std::string &layer,
               const tr::LayerShape &base, const std::string &layout,
               double minGain) {
  llvm::Expected<tr::Topology> t = tr::readTopology(topology);
  if (!t) {
    std::fprintf(stderr, "moe-partition-sim: error: %s\n",
                 llvm::toString(t.takeError()).c_str());
    return 1;
  }
  tr::LayerShape l = base;
  long long h, f, e, k;
  if (std::sscanf(layer.c_str(), "%lld,%lld,%lld,%lld", &h, &f, &e, &k) != 4 ||
      h < 1 || f < 1 || e < 1 || k < 1 || k > e) {
    std::fprintf(stderr, "moe-partition-sim: error: --layer wants H,F,E,K "
                         "(positive, K <= E), not '%s'\n", layer.c_str());
    return 2;
  }
  l.hidden = h;
  l.ffn = f;
  l.numExperts = e;
  l.topK = k;
  std::vector<tr::Prediction> all;
  for (const tr::Prediction &p : tr::predictAll(*t, l))
    if (layout.empty() || layout == tr::layoutName(p.layout))
      all.push_back(p);
  size_t chosen = tr::choose(all, minGain);
  for (size_t i = 0; i < all.size(); ++i) {
    const tr::Prediction &p = all[i];
    std::printf("{\"layout\": \"%s\", \"schedule\": \"%s\", \"chunks\": "
                "%lld, \"comm_ms\": %.6g, \"compute_ms\": %.6g, \"ms\": "
                "%.6g, \"chosen\": %s}\n",
                tr::layoutName(p.layout), tr::scheduleName(p.schedule),
                (long long)p.chunks, p.commSeconds * 1e3,
                p.computeSeconds * 1e3, p.seconds * 1e3,
                i == chosen ? "true" : "false");
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  std::string json, topology, layer, layout;
  double minGain = 0.05;
  tr::LayerShape one;
  one.activationBytes = 4;
  for (int i = 1; i < argc; ++i) {
    auto number = [&](double &out) {
      if (i + 1 >= argc)
        return false;
      char *end = nullptr;
      out = std::strtod(argv[++i], &end);
      return *end == '\0' && out >= 0;
    };
    double v = 0;
    std::string a = argv[i];
    if (a == "--json" && i + 1 < argc) {
      json = argv[++i];
    } else if (a == "--topology" && i + 1 < argc) {
      topology = argv[++i];
    } else if (a == "--layer" && i + 1 < argc) {
      layer = argv[++i];
    } else if (a == "--compute-model" && i + 1 < argc &&
               (!std::strcmp(argv[i + 1], "roofline") ||
                !std::strcmp(argv[i + 1], "serial"))) {
      one.serialCompute = !std::strcmp(argv[++i], "serial");
    } else if (a == "--layout" && i + 1 < argc) {
      layout = argv[++i];
    } else if (a == "--min-pipeline-gain" && number(v) && v < 1) {
      minGain = v;
    } else if (a == "--tokens" && number(v) && v >= 1) {
      one.tokensPerRank = int64_t(v);
    } else if (a == "--flops-per-rank" && number(v) && v > 0) {
      one.flopsPerSecond = v;
    } else if (a == "--memory-bytes-per-s" && number(v)) {
      one.memoryBytesPerSecond = v;
    } else if (a == "--expert-bytes" && number(v)) {
      one.expertBytes = v;
    } else if (a == "--activation-bytes" && number(v) && v > 0) {
      one.activationBytes = v;
    } else {
      std::fprintf(a == "--help" ? stdout : stderr, "%s", kUsage);
      return a == "--help" ? 0 : 2;
    }
  }
  if (!topology.empty() || !layer.empty()) {
    if (topology.empty() || layer.empty()) {
      std::fprintf(stderr, "%s", kUsage);
      return 2;
    }
    return candidates(topology, layer, one, layout, minGain);
  }
  struct LayerCase {
    const char *name;
    tr::LayerShape shape;
  } layers[] = {
      {"Mixtral-like (h 4096, f 14336, 8 experts, top-2, bf16)",
       {0, 4096, 14336, 2, 8, 2.0, 4e14, 3}},
      {"DeepSeek-V3-like (h 7168, f 2048, 256 experts, top-8, bf16)",
       {0, 7168, 2048, 8, 256, 2.0, 4e14, 3}},
  };
  std::string out = "{\"benchmark\": \"partition-sim\", \"model\": "
                    "\"passes/Analysis/TrafficModel.h\", \"topology\": "
                    "\"8 GPUs per node, NVLink 300 GB/s and 3 us per GPU; "
                    "InfiniBand 25 GB/s and 10 us per GPU\", \"rows\": [";
  bool first = true;
  std::printf("%-58s %5s %7s %12s %14s %14s  %s\n", "layer", "nodes", "tokens",
              "EP direct ms", "EP hier. ms", "EP best ms", "best overall");
  for (const LayerCase &lc : layers)
    for (int64_t tokens : {256, 4096})
      for (int64_t nodes : {2, 4, 8, 16}) {
        tr::Topology t;
        t.ranks = 8 * nodes;
        t.ranksPerNode = 8;
        t.intraBytesPerSecond = 3e11;
        t.intraLatencySeconds = 3e-6;
        t.interBytesPerSecond = 2.5e10;
        t.interLatencySeconds = 1e-5;
        tr::LayerShape l = lc.shape;
        l.tokensPerRank = tokens;
        auto all = tr::predictAll(t, l);
        auto pick = [&](tr::Layout lay, int sched, bool anyChunks) {
          const tr::Prediction *best = nullptr;
          for (const tr::Prediction &p : all)
            if (p.layout == lay &&
                (sched < 0 || int(p.schedule) == sched) &&
                (anyChunks || p.chunks == 1) && (!best || p.seconds < best->seconds))
              best = &p;
          return best;
        };
        const tr::Prediction *direct =
            pick(tr::Layout::ExpertParallel, int(tr::Schedule::Direct), false);
        const tr::Prediction *hier = pick(tr::Layout::ExpertParallel,
                                          int(tr::Schedule::Hierarchical), false);
        const tr::Prediction *ep = pick(tr::Layout::ExpertParallel, -1, true);
        const tr::Prediction &best = all.front();
        std::printf("%-58s %5lld %7lld %12.3f %14.3f %14.3f  %s\n", lc.name,
                    (long long)nodes, (long long)tokens,
                    direct->seconds * 1e3, hier->seconds * 1e3,
                    ep->seconds * 1e3, best.describe().c_str());
        char row[768];
        std::snprintf(row, sizeof(row),
                      "%s{\"layer\": \"%s\", \"nodes\": %lld, "
                      "\"tokens_per_gpu\": %lld, \"ep_direct_ms\": %.6f, "
                      "\"ep_hierarchical_ms\": %.6f, \"ep_best_ms\": %.6f, "
                      "\"ep_best\": \"%s\", \"best\": \"%s\", "
                      "\"speedup_best_vs_ep_direct\": %.4f}",
                      first ? "" : ",\n  ", lc.name, (long long)nodes,
                      (long long)tokens, direct->seconds * 1e3,
                      hier->seconds * 1e3, ep->seconds * 1e3,
                      ep->describe().c_str(), best.describe().c_str(),
                      direct->seconds / best.seconds);
        out += row;
        first = false;
      }
  out += "]}\n";
  if (!json.empty()) {
    std::ofstream f(json);
    f << out;
    if (!f) {
      std::fprintf(stderr, "moe-partition-sim: error: cannot write %s\n",
                   json.c_str());
      return 1;
    }
  }
  return 0;
}
