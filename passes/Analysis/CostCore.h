//===- CostCore.h - The placement cost model without LLVM -------*- C++ -*-===//
//
// The arithmetic of the placement cost model (MoNDE) and moe-place-experts'
// greedy, in plain C++ so that code without LLVM (the GPU benchmarks, which
// place the experts of models they build themselves) uses the very same
// model and choice as the pass. CostModel.h adds the JSON device profile
// reader and the llvm::ArrayRef API on top.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_PASSES_ANALYSIS_COSTCORE_H
#define MOE_PASSES_ANALYSIS_COSTCORE_H

#include <cstdint>
#include <string>
#include <vector>

namespace moe::cost {

struct DeviceProfile {
  std::string name;
  double gpuMemoryBytes = 0;
  double hbmBytesPerSecond = 0;
  double gpuFlopsPerSecond = 0;
  double gpuLaunchSeconds = 0;
  double h2dBytesPerSecond = 0;
  double d2hBytesPerSecond = 0;
  double pcieLatencySeconds = 0;
  double hostReadBytesPerSecond = 0;
  double cpuFlopsPerSecond = 0;
};

enum class Where { Gpu, Cpu, OnDemand };
const char *whereName(Where w);

/// One expert: its weight bytes at its precision, the FLOPs one token costs
/// (2 · weights), and its width (the activations crossing PCIe per token are
/// 2 · hidden floats).
struct ExpertShape {
  int64_t bytes = 0;
  double flopsPerToken = 0;
  int64_t hidden = 0;
};

/// What a step asks of an expert: with `batch` tokens each picking k experts
/// and this expert taking a share p of the picks, tokens = batch · k · p and
/// the step uses it with probability 1 - (1 - p)^(batch · k).
struct ExpertLoad {
  double tokensPerStep = 0;
  double useProbability = 0;
  static ExpertLoad fromShare(double share, double batch, int64_t topK);
};

/// Expected seconds per step of one expert placed at `where`.
double expertSeconds(const DeviceProfile &d, const ExpertShape &e,
                     const ExpertLoad &load, Where where);

/// Expected seconds per step of a layer of n experts: max(GPU side, CPU
/// side).
double layerSeconds(const DeviceProfile &d, const ExpertShape *experts,
                    const ExpertLoad *loads, const Where *placement,
                    size_t n);

/// One layer as the placement sees it; `where` and `pinned` come in (pins
/// fixed, the rest free) and `where` goes out.
struct PlacementLayer {
  std::vector<ExpertShape> shapes;
  std::vector<ExpertLoad> loads;
  std::vector<Where> where;
  std::vector<bool> pinned;
};

struct PlacementResult {
  /// Empty, or why no placement exists (pins beyond the budget).
  std::string error;
  /// The on-demand cache chosen: its slots (at most cacheExperts) and bytes
  /// (slots × the largest expert), and the predicted GPU and CPU sides of
  /// each layer, in seconds per step.
  int64_t cacheSlots = 0;
  int64_t cacheBytes = 0;
  std::vector<double> gpuSide, cpuSide;
};

/// moe-place-experts' choice under `budget` bytes (docs/placement.md): for
/// each cache of 0 to cacheExperts slots that fits (none when the budget
/// holds every expert), every free expert starts off the GPU where cheaper,
/// greedy moves take experts to the GPU by expected time saved per byte
/// (ties to the more used expert), and the rest take CPU or on demand given
/// their layer; the cache size with the least predicted time wins (ties to
/// fewer slots).
PlacementResult placeExperts(const DeviceProfile &d,
                             std::vector<PlacementLayer> &layers,
                             int64_t budget, int64_t cacheExperts);

} // namespace moe::cost

#endif // MOE_PASSES_ANALYSIS_COSTCORE_H
