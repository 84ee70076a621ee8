//===- Describe.h - Plans in words and in JSON ------------------*- C++ -*-===//
#ifndef MOE_RUNTIME_DESCRIBE_H
#define MOE_RUNTIME_DESCRIBE_H

#include "runtime/PlanLoader.h"

#include <string>

namespace moe::rt {

/// The plan in words: producer, inputs/outputs (`?x64xf32`), weights and one
/// line per step (`%5 = nn.matmul(%1, %3) {attrs} @cpu`).
std::string describeText(const LoadedPlan &plan);

/// The plan as JSON, indented by 2 spaces, with each element of "inputs",
/// "outputs", "weights" and "steps" on one line (so tests can match lines).
std::string describeJson(const LoadedPlan &plan);

/// One expert's weights (w1, w2, w3 of its moe.experts step) as stored.
struct ExpertStorage {
  /// "int4/g128/f16" when w1, w2 (and w3) agree, else "w1 int4/g128/f16,
  /// w2 int8/g64/f16"; "?" when a weight is computed at run time.
  std::string format;
  int64_t bytes = 0;    ///< packed bytes of its slices (plain: its share)
  int64_t elements = 0; ///< weights of its matrices
  /// "gpu", "cpu", "on_demand" or "" (unassigned), from the step's
  /// `placement`.
  std::string placement;
};

/// The experts of one MoE layer (a moe.experts step).
struct ExpertLayerStorage {
  size_t step = 0;
  std::vector<ExpertStorage> experts;
};

/// Every moe.experts step's experts, in plan order.
std::vector<ExpertLayerStorage> expertStorage(const LoadedPlan &plan);

/// A JSON string literal (quotes included) with escapes.
std::string jsonString(const std::string &s);
/// A double as JSON: shortest text that round-trips, ".0" added to integral
/// values, null for NaN and infinities.
std::string jsonNumber(double v);

} // namespace moe::rt

#endif // MOE_RUNTIME_DESCRIBE_H
