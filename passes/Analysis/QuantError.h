//===- QuantError.h - What quantising an expert's weights costs --*- C++ -*-===//
//
// The error model of `moe-assign-precision` (stable header, MLIR-free): the
// candidate weight formats, their exact packed sizes (the kernels' own
// layout, kernels/cpu/Quant.h) and the error of storing a matrix in one of
// them — quantise, dequantise, compare.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_PASSES_ANALYSIS_QUANTERROR_H
#define MOE_PASSES_ANALYSIS_QUANTERROR_H

#include "kernels/cpu/Quant.h"
#include "runtime/Status.h"

#include <string>
#include <string_view>
#include <vector>

namespace moe::precision {

/// A candidate format: bits 0 (f32 as stored), 16 (bf16), or 8/4/3/2 with a
/// group size of 32, 64 or 128, symmetric or with 8-bit zero points.
struct Format {
  int bits = 0;
  int groupSize = 0;
  bool zeroPoints = false;
  bool operator==(const Format &o) const {
    return bits == o.bits && groupSize == o.groupSize &&
           zeroPoints == o.zeroPoints;
  }
};

/// "f32", "bf16", "int4/g128", "int2/g64/zp".
std::string formatName(const Format &f);

/// Parses "f32", "bf16" or "16", "int4/g128" or "4/g128" (also "4g128"),
/// with "/zp" for zero points ("int2/g64/zp").
rt::StatusOr<Format> parseFormat(std::string_view text);

/// The candidates moe-assign-precision tries by default: bf16, int8/g128,
/// int4 with groups 128/64/32, and int3 and int2 with groups 128/64/32, each
/// symmetric and with zero points (int4 with zero points at 128 and 64).
std::vector<Format> defaultFormats();

/// The kernels' format for `f` with f16 or f32 scales.
kernels::cpu::QuantFormat kernelFormat(const Format &f, bool f16Scales);

/// Bytes of a [rows, cols] matrix packed in `f`: the size of its slice in a
/// plan (codes and scales, each section 64-byte aligned).
int64_t packedBytes(const Format &f, int64_t rows, int64_t cols,
                    bool f16Scales);

/// Stores `w` [rows, cols] in `f` and reads it back into `out` (may alias
/// `w`): the values a plan compiled with `f` computes with.
void roundTrip(const float *w, int64_t rows, int64_t cols, const Format &f,
               bool f16Scales, float *out);

/// Σ (w - roundTrip(w))² over the matrix.
double squaredError(const float *w, int64_t rows, int64_t cols,
                    const Format &f, bool f16Scales);

/// GPTQ (Frantar et al., 2022) for one [rows, cols] matrix multiplied by
/// inputs x [n, cols]: quantises column by column in format `f`, spreading
/// each column's error over the columns not yet quantised through the
/// inverse Hessian of the inputs (XᵀX + damp·mean(diag)·I), so that the
/// outputs x·Wᵀ move less than round-to-nearest moves them. Each group keeps
/// the grid round-to-nearest would give it (its scale and zero point come
/// from the original weights), and the elements that fix that grid (the
/// largest magnitude, or the minimum and maximum with zero points) keep their
/// values; so `out` is a matrix whose round-to-nearest quantisation in `f`
/// (what the plan emitter does) yields exactly the GPTQ codes. Returns false,
/// leaving `out` = w, for a format without groups or a Hessian that is not
/// positive definite even after damping.
bool gptqCalibrate(const float *w, int64_t rows, int64_t cols, const float *x,
                   int64_t n, const Format &f, bool f16Scales, float *out,
                   double damp = 0.01);

} // namespace moe::precision

#endif // MOE_PASSES_ANALYSIS_QUANTERROR_H
