//===- Profile.h - Routing profiles of a running plan -----------*- C++ -*-===//
//
// `moe-exec PLAN --profile out.json` runs calibration inputs and records, per
// MoE layer and expert, how often the router picked the expert and with what
// weight, the distribution of the routing weights, and (optionally) a sample
// of the tokens' hidden states entering the layer. The precision, placement
// and pruning passes read these files; docs/profile-format.md is the schema
// (format "moe-profile", version kProfileVersion).
//
// A layer is a `moe.route` step with the `moe.dispatch` and `moe.experts`
// steps of the same rank in plan order (the lowering keeps layers in order).
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_PROFILE_H
#define MOE_RUNTIME_PROFILE_H

#include "runtime/PlanLoader.h"

#include <functional>
#include <mutex>
#include <random>

namespace moe::rt {

/// Version of the profile JSON; bumped on any change a reader could
/// misread.
inline constexpr int kProfileVersion = 1;

struct ProfileOptions {
  /// Tokens' hidden states kept per layer (reservoir sample over all
  /// calibration tokens); 0 keeps none.
  int64_t samples = 0;
  /// Seed of the reservoir sampling.
  uint64_t seed = 1;
  /// Bins of the top-1 routing-weight histogram over [0, 1].
  int histogramBins = 20;
};

class RoutingProfiler {
public:
  /// Finds the plan's MoE layers; an error if it has none or its routers
  /// and expert steps do not pair up.
  static StatusOr<std::unique_ptr<RoutingProfiler>>
  create(const LoadedPlan &plan, const ProfileOptions &options = {});

  /// The executor observer (ExecutorOptions::observer); thread-safe.
  void observe(size_t step, const std::vector<Tensor> &inputs,
               const std::vector<Tensor> &outputs);
  /// Call after each run (counts runs).
  void endRun() { ++runs_; }
  /// The first error an observation met (a malformed routing output).
  Status status() const;

  /// The profile as JSON (docs/profile-format.md).
  std::string toJson() const;

  /// Totals over layers of what pruning changed.
  struct PruningStats {
    int64_t calls = 0, slots = 0, skippedSlots = 0;
    int64_t distinct = 0, unprunedDistinct = 0;
    double bytesRead = 0, unprunedBytesRead = 0;
  };
  PruningStats pruningStats() const;
  /// Forgets every observation (e.g. after warm-up runs).
  void reset();
  /// Hands every counter of the profile (not the samples) to `ints` or
  /// `reals`, array by array, in the same order for every profiler of the
  /// plan: summing them over the ranks of a run (each with its own tokens)
  /// gives the run's profile.
  Status forEachCounter(
      const std::function<Status(int64_t *, size_t)> &ints,
      const std::function<Status(double *, size_t)> &reals);

  size_t numLayers() const { return layers_.size(); }

private:
  struct Layer {
    size_t routeStep = 0, dispatchStep = 0, expertsStep = 0;
    int64_t numExperts = 0, topK = 0, hidden = 0;
    int64_t tokens = 0;
    std::vector<int64_t> count;        // per expert
    std::vector<double> weightSum;     // per expert
    std::vector<double> weightSqSum;   // per expert: Σ weight²
    std::vector<int64_t> slotCount;    // [E, k]: picked at rank r
    std::vector<double> slotWeightSum; // [k]
    std::vector<int64_t> top1Histogram;
    double entropySum = 0; // of each token's k weights (normalised)
    // What pruning changed, per batch of a moe.route call (the call, or
    // with the step's batch_stride N each batch t mod N): pairs skipped,
    // distinct experts run and expert bytes read, against the unpruned top-k.
    int64_t batchStride = 0;
    int64_t calls = 0, skippedSlots = 0;
    int64_t distinct = 0, unprunedDistinct = 0;
    double bytesRead = 0, unprunedBytesRead = 0;
    std::vector<int64_t> expertBytes; // per expert, from the plan
    /// The same, with a statically pruned (absent, 0-byte) expert counted
    /// at its layer's mean size: what the unpruned routing would read.
    std::vector<int64_t> unprunedBytes;
    // Reservoir of token rows.
    std::vector<float> sampleRows;   // [n, hidden]
    std::vector<int64_t> sampleIds;  // [n, k]
    int64_t seen = 0;
    std::mt19937_64 rng;
  };
  RoutingProfiler(const LoadedPlan &plan, const ProfileOptions &options)
      : plan_(plan), options_(options) {}
  void observeRoute(Layer &layer, const Tensor &ids, const Tensor &weights);
  void observeDispatch(Layer &layer, const Tensor &hidden, const Tensor &ids);
  void observePruning(Layer &layer, const Tensor &logits, const Tensor &ids);

  const LoadedPlan &plan_;
  ProfileOptions options_;
  std::vector<Layer> layers_;
  std::vector<int> layerOfStep_; // step -> layer, -1
  mutable std::mutex mutex_;
  Status status_;
  int64_t runs_ = 0;
};

/// Standard base64 of bytes (used for the samples in the profile).
std::string base64Encode(const uint8_t *data, size_t size);

} // namespace moe::rt

#endif // MOE_RUNTIME_PROFILE_H
