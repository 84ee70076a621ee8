//===- TrafficModel.h - AllToAll traffic and parallel layouts ---*- C++ -*-===//
//
// The traffic and cost model of expert/tensor parallel MoE layers (MoNTA), a
// stable analysis header (the partitioning pass of issue 10 builds on it).
// From a topology (docs/partitioning.md: ranks, ranks per node, intra- and
// inter-node bandwidth and latency per rank) and a layer (tokens per rank
// and step, hidden size, top-k, experts and their width), it predicts per
// rank the bytes crossing intra- and inter-node links and the time of each
// candidate layout and AllToAll schedule:
//
//  - expert parallel (EP): experts spread over ranks; each token's hidden
//    state goes to the ranks of its k experts and back (dispatch + combine);
//  - tensor parallel (TP): every rank holds a 1/R slice of every expert;
//    tokens are all-gathered and outputs reduce-scattered (no routing);
//  - hybrid: TP inside a node, EP across nodes (tokens cross nodes once per
//    node that holds one of their experts);
//
// each with a direct AllToAll (one message per peer), a hierarchical one
// (intra-node exchange first, then one message per remote node), and either
// one chunked into c pieces pipelined with the expert compute.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_PASSES_ANALYSIS_TRAFFICMODEL_H
#define MOE_PASSES_ANALYSIS_TRAFFICMODEL_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moe::traffic {

struct Topology {
  std::string name;
  int64_t ranks = 1;
  int64_t ranksPerNode = 1;
  double intraBytesPerSecond = 0; ///< per rank, to ranks of its node
  double intraLatencySeconds = 0; ///< per message
  double interBytesPerSecond = 0; ///< per rank, to other nodes
  double interLatencySeconds = 0; ///< per message
  int64_t nodes() const { return ranks / ranksPerNode; }
};

/// Reads a topology (format "moe-topology", version 1); errors name the file
/// and the field.
llvm::Expected<Topology> readTopology(llvm::StringRef path);
llvm::Expected<Topology> parseTopology(llvm::StringRef json,
                                       llvm::StringRef path);

struct LayerShape {
  int64_t tokensPerRank = 1; ///< tokens each rank holds per step
  int64_t hidden = 0;
  int64_t ffn = 0;           ///< expert width
  int64_t topK = 1;
  int64_t numExperts = 1;
  double activationBytes = 2;  ///< per element on the wire (bf16: 2)
  double flopsPerSecond = 1e12; ///< expert compute rate of one rank
  int64_t matricesPerExpert = 3; ///< gate, up, down
  /// Bytes of one expert's weights and the rate a rank reads them; with
  /// both set the expert compute of a rank is the larger of its FLOPs over
  /// flopsPerSecond and the bytes of the experts its rows touch over
  /// memoryBytesPerSecond (a roofline; chunks carry whole experts, so
  /// pipelining reads them once too). 0: FLOPs only.
  double expertBytes = 0;
  double memoryBytesPerSecond = 0;
  /// The weight reads and the FLOPs take their sum rather than the larger
  /// of the two: a kernel that does not overlap them (measured: the CPU
  /// expert kernels with one thread per rank, bench/expert_parallel).
  bool serialCompute = false;
};

/// Seconds of one rank's expert compute in a step.
double computeSeconds(const Topology &t, const LayerShape &l);

enum class Layout { ExpertParallel, TensorParallel, Hybrid };
enum class Schedule { Direct, Hierarchical };
const char *layoutName(Layout l);
const char *scheduleName(Schedule s);

struct Prediction {
  Layout layout = Layout::ExpertParallel;
  Schedule schedule = Schedule::Direct;
  int64_t chunks = 1;            ///< 1: not pipelined
  double intraBytes = 0;         ///< per rank and step, both directions
  double interBytes = 0;
  double commSeconds = 0;        ///< the exchanges alone
  double computeSeconds = 0;     ///< the experts alone
  double seconds = 0;            ///< the layer, overlap included
  std::string describe() const;  ///< "EP hierarchical x4: 1.23 ms"
};

/// Every candidate (layouts × schedules × chunks in {1, 2, 4, 8}), fastest
/// first; a layout that does not fit the topology (hybrid on one node, TP
/// with fewer ffn columns than ranks) is left out.
std::vector<Prediction> predictAll(const Topology &t, const LayerShape &l);

/// The index of the candidate to run among `candidates` (fastest first, as
/// predictAll returns them): the fastest, except that a pipelined one must
/// beat its layout and schedule unchunked by the share `minPipelineGain` of
/// that time. Smaller predicted gains are within what the model leaves out
/// (the calls and the load imbalance of every chunk). Empty: 0.
size_t choose(const std::vector<Prediction> &candidates,
              double minPipelineGain);

} // namespace moe::traffic

#endif // MOE_PASSES_ANALYSIS_TRAFFICMODEL_H
