//===- Quant.h - Group-quantised expert weights on CUDA ---------*- C++ -*-===//
//
// The plan's packed int8/int4/int3/int2 matrices (kernels/cpu/Quant.h: codes
// row by row, then f16 or f32 scales per group, then optional u8 zero
// points; w = (code − zero) · scale) read on the device in place: a GEMV
// that decodes the codes as it streams them (decode steps, few rows), and a
// dequantisation to bf16 for cuBLASLt (prefill, many rows).
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CUDA_QUANT_H
#define MOE_KERNELS_CUDA_QUANT_H

#include "kernels/cuda/Stream.h"
#include "runtime/Status.h"

#include <cstdint>

namespace moe::cuda {

/// One packed matrix's format and byte layout (from kernels::cpu::QuantFormat
/// and quantLayout()), passed by value to the kernels.
struct QuantMatrix {
  int bits = 4;
  int groupSize = 32;
  bool f16Scales = true;
  bool zeroPoints = false;
  int64_t rowBytes = 0, groupsPerRow = 0, scalesOffset = 0, zerosOffset = 0;
};

/// The most rows of x that linearQuant() takes.
constexpr int64_t kQuantGemvRows = 8;

/// y[n, N] = x[n, K] · W[N, K]ᵀ (+ bias[N]) with W packed at `packed` in
/// `q`; n ≤ kQuantGemvRows. One warp per output feature reads each weight
/// byte once for all n rows.
rt::Status linearQuant(const float *x, int64_t n, int64_t k,
                       const uint8_t *packed, const QuantMatrix &q,
                       int64_t outFeatures, const float *bias, float *y,
                       Stream stream);

/// out[rows, cols] (bf16 bits) = the dequantised matrix.
rt::Status dequantizeBf16(const uint8_t *packed, const QuantMatrix &q,
                          int64_t rows, int64_t cols, uint16_t *out,
                          Stream stream);

} // namespace moe::cuda

#endif // MOE_KERNELS_CUDA_QUANT_H
