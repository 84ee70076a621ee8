//===- Dequant.h - Dequantisation of packed integer weights -----*- C++ -*-===//
//
// ONNX Runtime's QMoE weight layout. What its operator documentation
// (docs/ContribOperators.md, com.microsoft.QMoE) says, for quant_type 'int':
//   fc*_experts_weights  uint8 (E, N, K / pack_size), pack_size = 8 / bits,
//                        "column major per expert": one row of K inputs for
//                        each of the N outputs;
//   fc*_scales           (E, N), or (E, N, K / block_size) with block_size;
//   fc*_zero_points      uint8 (E, N / pack_size), or
//                        (E, N, K / block_size / pack_size) with block_size,
//                        i.e. packed like the weights along their last axis;
//   dequantized = (quantized - zero_point) * scale, and without zero points
//   zero_point = 2^(bits-1) (2, 8, 128 for 2, 4, 8 bits).
// Here a matrix is [rows, cols] = [N, K], stored as uint8
// [rows, cols·bits/8] with the values of a byte packed low bits first; scales
// are per row ([rows]) or per block of cols/nblocks consecutive columns
// ([rows, nblocks]); zero points are packed along the scales' last axis:
// [ceil(rows·bits/8)] or [rows, ceil(nblocks·bits/8)] (ceil: ORT requires
// divisibility, where both agree).
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CPU_DEQUANT_H
#define MOE_KERNELS_CPU_DEQUANT_H

#include "kernels/cpu/Common.h"
#include "kernels/cpu/Quant.h"
#include "runtime/Status.h"

namespace moe::kernels::cpu {

struct DequantArgs {
  /// [batch, rows, cols·bits/8]
  const uint8_t *q = nullptr;
  int64_t batch = 0, rows = 0, cols = 0;
  int bits = 4;
  /// f32 (scalesF32) or binary16 bits (scalesF16): [batch, rows] when
  /// nblocks is 0, else [batch, rows, nblocks] (nblocks divides cols).
  const float *scalesF32 = nullptr;
  const uint16_t *scalesF16 = nullptr;
  int64_t nblocks = 0;
  /// [batch, ceil(rows·bits/8)] (per-row) or [batch, rows,
  /// ceil(nblocks·bits/8)] (blocked); null: 2^(bits−1).
  const uint8_t *zeroPoints = nullptr;
  /// [batch, rows, cols]
  float *out = nullptr;
};

/// Dequantises as described above. Fails on bits other than 2, 4, 8, on
/// nblocks not dividing cols, or on a missing scale pointer; the shapes are
/// otherwise the caller's to check.
rt::Status dequantize(const DequantArgs &args);

/// The group size that stores this layout exactly in the plan's packed
/// format (Quant.h): the largest of 128, 64, 32 that divides the block
/// length (any of them for per-row scales); 0 when none does.
int repackGroupSize(const DequantArgs &args);

/// Stores matrix `b` (< batch) of `args` (out unused) in the packed format
/// {bits, group, f32 scales, zero points when args has them} without loss:
/// codes are copied, each group takes its block's scale and zero point.
/// `dst` must hold quantLayout(format, rows, cols).totalBytes bytes.
void repackMatrix(const DequantArgs &args, int64_t b, int group,
                  uint8_t *dst);

} // namespace moe::kernels::cpu

#endif // MOE_KERNELS_CPU_DEQUANT_H
