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

/// A JSON string literal (quotes included) with escapes.
std::string jsonString(const std::string &s);
/// A double as JSON: shortest text that round-trips, ".0" added to integral
/// values, null for NaN and infinities.
std::string jsonNumber(double v);

} // namespace moe::rt

#endif // MOE_RUNTIME_DESCRIBE_H
