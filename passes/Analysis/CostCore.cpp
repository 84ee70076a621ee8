//===- CostCore.cpp - The placement cost model without LLVM ---------------===//

#include "passes/Analysis/CostCore.h"

#include <algorithm>
#include <cmath>

namespace moe::cost {

const char *whereName(Where w) {
  switch (w) {
  case Where::Gpu:
    return "gpu";
  case Where::Cpu:
    return "cpu";
  case Where::OnDemand:
    return "on_demand";
  }
  return "?";
}

ExpertLoad ExpertLoad::fromShare(double share, double batch, int64_t topK) {
  ExpertLoad l;
  double picks = batch * double(topK);
  share = std::clamp(share, 0.0, 1.0);
  l.tokensPerStep = picks * share;
  l.useProbability = 1.0 - std::pow(1.0 - share, picks);
  return l;
}

namespace {
/// Seconds of the expert on the GPU for n tokens, weights resident.
double gpuSeconds(const DeviceProfile &d, const ExpertShape &e, double n) {
  return d.gpuLaunchSeconds +
         std::max(double(e.bytes) / d.hbmBytesPerSecond,
                  n * e.flopsPerToken / d.gpuFlopsPerSecond);
}
} // namespace

double expertSeconds(const DeviceProfile &d, const ExpertShape &e,
                     const ExpertLoad &load, Where where) {
  double u = load.useProbability;
  if (!(u > 0))
    return 0.0;
  // Tokens in a step that uses the expert.
  double n = load.tokensPerStep / u;
  double t = 0;
  switch (where) {
  case Where::Gpu:
    t = gpuSeconds(d, e, n);
    break;
  case Where::Cpu:
    t = std::max(double(e.bytes) / d.hostReadBytesPerSecond,
                 n * e.flopsPerToken / d.cpuFlopsPerSecond) +
        2 * d.pcieLatencySeconds +
        n * double(e.hidden) * 4.0 *
            (1.0 / d.h2dBytesPerSecond + 1.0 / d.d2hBytesPerSecond);
    break;
  case Where::OnDemand:
    t = double(e.bytes) / d.h2dBytesPerSecond + d.pcieLatencySeconds +
        gpuSeconds(d, e, n);
    break;
  }
  return u * t;
}

double layerSeconds(const DeviceProfile &d, const ExpertShape *experts,
                    const ExpertLoad *loads, const Where *placement,
                    size_t n) {
  double gpu = 0, cpu = 0;
  for (size_t i = 0; i < n; ++i) {
    double t = expertSeconds(d, experts[i], loads[i], placement[i]);
    (placement[i] == Where::Cpu ? cpu : gpu) += t;
  }
  return std::max(gpu, cpu);
}

namespace {
/// Steps 2-4 of placeExperts with `cache` bytes of the budget reserved.
PlacementResult placeWithCache(const DeviceProfile &d,
                               std::vector<PlacementLayer> &layers,
                               int64_t budget, int64_t cache,
                               bool everything) {
  PlacementResult result;
  int64_t left = budget - cache;
  for (PlacementLayer &l : layers)
    for (size_t x = 0; x < l.where.size(); ++x)
      if (l.pinned[x] && l.where[x] == Where::Gpu)
        left -= l.shapes[x].bytes;
  if (left < 0) {
    result.error = "the experts pinned to the GPU need more than the budget "
                   "of " + std::to_string(budget) + " bytes";
    return result;
  }
  auto seconds = [&](const PlacementLayer &l, size_t x, Where w) {
    return expertSeconds(d, l.shapes[x], l.loads[x], w);
  };
  // Start: each free expert off the GPU where it is cheaper.
  for (PlacementLayer &l : layers)
    for (size_t x = 0; x < l.where.size(); ++x)
      if (!l.pinned[x])
        l.where[x] = (cache > 0 && seconds(l, x, Where::OnDemand) <
                                       seconds(l, x, Where::Cpu))
                         ? Where::OnDemand
                         : Where::Cpu;
  // Per layer, the GPU and CPU sides.
  std::vector<double> gpuSide(layers.size()), cpuSide(layers.size());
  auto recompute = [&](size_t li) {
    const PlacementLayer &l = layers[li];
    double g = 0, c = 0;
    for (size_t x = 0; x < l.where.size(); ++x)
      (l.where[x] == Where::Cpu ? c : g) += seconds(l, x, l.where[x]);
    gpuSide[li] = g;
    cpuSide[li] = c;
  };
  for (size_t li = 0; li < layers.size(); ++li)
    recompute(li);
  // Greedy: the move to the GPU that saves the most per byte, while it fits.
  while (true) {
    double bestScore = -1, bestUse = -1;
    size_t bestL = 0, bestX = 0;
    bool found = false;
    for (size_t li = 0; li < layers.size(); ++li) {
      const PlacementLayer &l = layers[li];
      double now = std::max(gpuSide[li], cpuSide[li]);
      for (size_t x = 0; x < l.where.size(); ++x) {
        if (l.pinned[x] || l.where[x] == Where::Gpu ||
            l.shapes[x].bytes > left)
          continue;
        double cur = seconds(l, x, l.where[x]);
        double g = gpuSide[li] + seconds(l, x, Where::Gpu) -
                   (l.where[x] == Where::OnDemand ? cur : 0.0);
        double c = cpuSide[li] - (l.where[x] == Where::Cpu ? cur : 0.0);
        double saved = now - std::max(g, c);
        if (saved < 0 && !everything)
          continue;
        double score = saved / double(std::max<int64_t>(l.shapes[x].bytes, 1));
        double use = l.loads[x].useProbability;
        if (!found || score > bestScore ||
            (score == bestScore && use > bestUse)) {
          found = true;
          bestScore = score;
          bestUse = use;
          bestL = li;
          bestX = x;
        }
      }
    }
    if (!found)
      break;
    layers[bestL].where[bestX] = Where::Gpu;
    left -= layers[bestL].shapes[bestX].bytes;
    recompute(bestL);
  }
  // Off the GPU: CPU or on demand, given the rest of the layer.
  if (cache > 0)
    for (size_t li = 0; li < layers.size(); ++li) {
      PlacementLayer &l = layers[li];
      for (size_t x = 0; x < l.where.size(); ++x) {
        if (l.pinned[x] || l.where[x] == Where::Gpu)
          continue;
        Where other = l.where[x] == Where::Cpu
                                ? Where::OnDemand
                                : Where::Cpu;
        double before = std::max(gpuSide[li], cpuSide[li]);
        Where keep = l.where[x];
        l.where[x] = other;
        recompute(li);
        if (std::max(gpuSide[li], cpuSide[li]) >= before) {
          l.where[x] = keep;
          recompute(li);
        }
      }
    }

  result.cacheBytes = cache;
  result.gpuSide = std::move(gpuSide);
  result.cpuSide = std::move(cpuSide);
  return result;
}
} // namespace

PlacementResult placeExperts(const DeviceProfile &d,
                             std::vector<PlacementLayer> &layers,
                             int64_t budget, int64_t cacheExperts) {
  int64_t largest = 0, totalBytes = 0;
  for (const PlacementLayer &l : layers)
    for (const ExpertShape &s : l.shapes) {
      largest = std::max(largest, s.bytes);
      totalBytes += s.bytes;
    }
  // Budget holding every expert: all resident (unless pinned elsewhere).
  const bool everything = budget >= totalBytes;
  // A cache takes budget from resident experts, and an on-demand expert
  // pays its PCIe copy on every miss: how many slots pay depends on the
  // routing, so each size that fits is tried.
  int64_t most = 0;
  if (!everything)
    while (most < cacheExperts && (most + 1) * largest <= budget)
      ++most;
  const std::vector<PlacementLayer> start = layers;
  PlacementResult best;
  std::vector<PlacementLayer> bestLayers;
  double bestTime = 0;
  for (int64_t slots = 0; slots <= most; ++slots) {
    std::vector<PlacementLayer> trial = start;
    PlacementResult r =
        placeWithCache(d, trial, budget, slots * largest, everything);
    if (!r.error.empty()) {
      if (slots == 0)
        return r; // the pins alone exceed the budget
      break;      // pins and this cache do not fit, nor larger ones
    }
    double time = 0;
    for (size_t li = 0; li < trial.size(); ++li)
      time += std::max(r.gpuSide[li], r.cpuSide[li]);
    if (slots == 0 || time < bestTime) {
      r.cacheSlots = slots;
      best = std::move(r);
      bestLayers = std::move(trial);
      bestTime = time;
    }
  }
  layers = std::move(bestLayers);
  return best;
}

} // namespace moe::cost
