//===- RoutingProfile.h - Reading moe-exec routing profiles -----*- C++ -*-===//
//
// A stable analysis header for our passes and users' plugins: the routing
// profile `moe-exec PLAN --profile FILE` records (docs/profile-format.md),
// read back and checked against the module it is applied to.
//
//   auto profile = moe::readRoutingProfile(path);     // llvm::Expected
//   if (auto err = moe::checkProfileMatches(*profile, module)) ...
//
//===----------------------------------------------------------------------===//
#ifndef MOE_PASSES_ANALYSIS_ROUTINGPROFILE_H
#define MOE_PASSES_ANALYSIS_ROUTINGPROFILE_H

#include "passes/Analysis/ExpertInventory.h"

#include "mlir/IR/Operation.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlir::moe {

/// The profile version this reader understands (runtime/Profile.h writes it).
inline constexpr int64_t kRoutingProfileVersion = 1;

struct ExpertRouting {
  int64_t count = 0;      ///< (token, slot) picks of the expert
  double weightSum = 0;   ///< Σ routing weight over its picks
  double weightMean = 0;  ///< weightSum / count (0 when never picked)
  /// Σ routing weight² over its picks (absent in a file: weightMean² ·
  /// count).
  double weightSqSum = 0;
  std::vector<int64_t> slotCounts; ///< picks at rank 0..k-1
};

struct LayerRouting {
  int64_t numExperts = 0, topK = 0, hidden = 0, tokens = 0;
  std::vector<ExpertRouting> experts;
  std::vector<double> slotWeightMean;
  std::vector<int64_t> top1Histogram;
  double routingEntropyMean = 0;
  /// Sampled tokens' hidden states entering the layer ([sampleRows, hidden])
  /// and their expert ids ([sampleRows, topK]); empty when not recorded.
  int64_t sampleRows = 0;
  std::vector<float> samples;
  std::vector<int64_t> sampleIds;

  /// Share of all picks that went to expert e (0 when no tokens).
  double frequency(int64_t e) const;
  /// Share of all routing weight that went to expert e.
  double weightShare(int64_t e) const;
  /// Share of Σ weight² that went to expert e: the expert's share of the
  /// layer output's expected squared error when every expert errs alike.
  double energyShare(int64_t e) const;
};

struct RoutingProfile {
  std::string path;
  int64_t version = 0;
  std::string modelId;
  std::string plan;
  int64_t runs = 0;
  std::vector<LayerRouting> layers;
};

/// How an expert's importance is derived from its routing (the weighting
/// moe-assign-precision offers; docs/mixed-precision.md).
enum class ImportanceKind {
  Energy,    ///< share of Σ routing weight²
  Mixed,     ///< a·frequency + (1-a)·weight share (MC-MoE)
  Frequency, ///< share of picks
  Weight,    ///< share of routing weight
  Uniform,   ///< all alike
};
/// "energy", "mixed", "frequency", "weight", "uniform".
std::optional<ImportanceKind> parseImportanceKind(llvm::StringRef name);

/// The importance of each of a layer's `numExperts` experts: by `kind` from
/// `layer` (uniform when `layer` is null), then raised to at least `floor`
/// times the layer's mean. `frequencyWeight` is a of Mixed.
std::vector<double> expertImportance(const LayerRouting *layer,
                                     int64_t numExperts, ImportanceKind kind,
                                     double frequencyWeight, double floor);

/// Reads and validates a profile; errors name the file and what is wrong
/// ("profile.json: layer 2: expert 5: `count` is negative").
llvm::Expected<RoutingProfile> readRoutingProfile(llvm::StringRef path);
/// Same, from JSON text (`path` only names it in errors).
llvm::Expected<RoutingProfile> parseRoutingProfile(llvm::StringRef json,
                                                   llvm::StringRef path);

/// The profile at `path` checked against the model under `root`
/// (checkProfileMatches); no profile (std::nullopt) when `path` is empty.
/// What a pass with a `profile` option calls.
llvm::Expected<std::optional<RoutingProfile>>
loadProfileFor(llvm::StringRef path, Operation *root);

/// What the expert passes start from: the MoE layers under `root` and the
/// profile at `path` (loadProfileFor: none when `path` is empty). Fails with
/// the profile's error, or when there is no moe.experts op.
struct ExpertPassInputs {
  ExpertInventory inventory;
  std::optional<RoutingProfile> routing;
};
llvm::Expected<ExpertPassInputs> loadExpertPassInputs(llvm::StringRef path,
                                                      Operation *root);

/// Checks that `profile` was recorded with a plan of the model under `root`:
/// same model_id (modelFingerprint, or the module's `moe.model_id`), same
/// number of MoE layers and experts per layer.
llvm::Error checkProfileMatches(const RoutingProfile &profile,
                                Operation *root);

} // namespace mlir::moe

#endif // MOE_PASSES_ANALYSIS_ROUTINGPROFILE_H
