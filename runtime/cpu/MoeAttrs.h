//===- MoeAttrs.h - Attributes of the moe.* kernels -------------*- C++ -*-===//
//
// The readers of moe.route's and moe.experts' attributes, shared by the CPU
// kernels and the other devices' kernels so that every device accepts and
// rejects the same plans with the same messages.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_CPU_MOEATTRS_H
#define MOE_RUNTIME_CPU_MOEATTRS_H

#include "runtime/Kernel.h"

#include "kernels/cpu/Moe.h"

namespace moe::rt::cpu {

/// moe.route's `scoring`: softmax (default) or sigmoid.
StatusOr<kernels::cpu::Scoring> routeScoring(const Attrs &attrs);

/// `num_experts` (at least 1).
StatusOr<int64_t> expertCount(const Attrs &attrs);

/// The optional operands of moe.experts, in operand order, and the
/// activation.
struct ExpertsLayout {
  bool w3 = false, b1 = false, b2 = false, b3 = false;
  kernels::cpu::ExpertActivation act;
  size_t numInputs() const { return 4 + w3 + b1 + b2 + b3; }
};

/// moe.experts' layout for `e` experts: has_w3/b1/b2/b3, the activation
/// (ONNX Runtime's SwiGLU parameters) and the per-expert lists' ranges.
StatusOr<ExpertsLayout> expertsLayout(const Attrs &attrs, int64_t e);

} // namespace moe::rt::cpu

#endif // MOE_RUNTIME_CPU_MOEATTRS_H
