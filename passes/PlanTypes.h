//===- PlanTypes.h - Element types as the plan stores them ------*- C++ -*-===//
//
// The mapping between MLIR element types and moe_plan::DType values
// (runtime/schema/plan.fbs). Kept as integers here so that the compiler's
// passes need not include the generated FlatBuffers header.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_PASSES_PLANTYPES_H
#define MOE_PASSES_PLANTYPES_H

#include "mlir/IR/Types.h"

#include <optional>

namespace mlir::moe {

/// The moe_plan::DType value of `type`, or nullopt when the plan cannot hold
/// it.
inline std::optional<int64_t> getPlanDType(Type type) {
  if (type.isF32())
    return 0;
  if (type.isF16())
    return 1;
  if (type.isBF16())
    return 2;
  if (type.isF64())
    return 3;
  if (type.isInteger(64))
    return 4;
  if (type.isInteger(32))
    return 5;
  if (type.isUnsignedInteger(8))
    return 7;
  if (type.isInteger(8))
    return 6;
  if (type.isInteger(1))
    return 8;
  return std::nullopt;
}

} // namespace mlir::moe

#endif // MOE_PASSES_PLANTYPES_H
