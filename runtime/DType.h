//===- DType.h - Element types of runtime tensors ---------------*- C++ -*-===//
//
// The runtime uses the schema's moe_plan::DType directly; this header adds
// sizes, names, shape formatting and the 16-bit float conversions.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_DTYPE_H
#define MOE_RUNTIME_DTYPE_H

#include "kernels/cpu/Half.h"
#include "runtime/schema/plan_generated.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moe::rt {

using DType = moe_plan::DType;
using Shape = std::vector<int64_t>;

/// True for the enumerators of DType (a plan may carry any byte).
bool isKnownDType(DType dtype);
/// Bytes per element (i1 is stored as one byte); 0 for an unknown dtype.
size_t dtypeSize(DType dtype);
/// "f32", "f16", "bf16", "f64", "i64", "i32", "i8", "u8", "i1", or
/// "dtype(N)" for an unknown value.
std::string dtypeName(DType dtype);
/// Inverse of dtypeName for the known names.
std::optional<DType> parseDType(std::string_view name);
/// f32, f16, bf16, f64.
bool isFloatDType(DType dtype);

/// "[2, 3]" with "?" for -1 dims.
std::string formatShape(const Shape &shape);
/// MLIR-like "?x64xf32" ("f32" for a scalar).
std::string formatType(DType dtype, const Shape &shape);

using kernels::cpu::bf16ToFloat;
using kernels::cpu::floatToBf16;
using kernels::cpu::floatToHalf;
using kernels::cpu::halfToFloat;

} // namespace moe::rt

#endif // MOE_RUNTIME_DTYPE_H
