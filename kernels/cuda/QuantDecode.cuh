//===- QuantDecode.cuh - Reading packed codes on the device -----*- C++ -*-===//
//
// The plan's packed formats (kernels/cpu/Quant.h) element by element:
// codes, group scales (f16 or f32) and zero points.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CUDA_QUANTDECODE_CUH
#define MOE_KERNELS_CUDA_QUANTDECODE_CUH

#include "kernels/cuda/Quant.h"

#include <cuda_fp16.h>

namespace moe::cuda {

/// Code j of a row: 8 bits a byte; 4 bits two a byte, low nibble first;
/// 2 bits four a byte, lowest first; 3 bits eight in a little-endian 24-bit
/// word.
__device__ __forceinline__ uint32_t quantCode(const uint8_t *row, int bits,
                                              int64_t j) {
  switch (bits) {
  case 8:
    return row[j];
  case 4:
    return (row[j / 2] >> (4 * (j % 2))) & 0xFu;
  case 2:
    return (row[j / 4] >> (2 * (j % 4))) & 0x3u;
  default: {
    const uint8_t *w = row + j / 8 * 3;
    uint32_t v = uint32_t(w[0]) | uint32_t(w[1]) << 8 | uint32_t(w[2]) << 16;
    return (v >> (3 * (j % 8))) & 0x7u;
  }
  }
}

/// The scale of group g (row-major [rows, groupsPerRow]).
__device__ __forceinline__ float quantScale(const uint8_t *packed,
                                            const QuantMatrix &q, int64_t g) {
  if (q.f16Scales)
    return __half2float(
        reinterpret_cast<const __half *>(packed + q.scalesOffset)[g]);
  return reinterpret_cast<const float *>(packed + q.scalesOffset)[g];
}

/// The zero point of group g: stored, or 2^(bits-1) (symmetric).
__device__ __forceinline__ int quantZero(const uint8_t *packed,
                                         const QuantMatrix &q, int64_t g) {
  return q.zeroPoints ? int(packed[q.zerosOffset + g]) : 1 << (q.bits - 1);
}

} // namespace moe::cuda

#endif // MOE_KERNELS_CUDA_QUANTDECODE_CUH
