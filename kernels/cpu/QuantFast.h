//===- QuantFast.h - SIMD products with packed weight matrices --*- C++ -*-===//
//
// Fast paths of linearPackedSerial() (Quant.h), chosen at run time from what
// the CPU supports. Each returns false when it does not handle the format or
// the CPU, and the caller falls back to the scalar reference, which the tests
// compare these against.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CPU_QUANTFAST_H
#define MOE_KERNELS_CPU_QUANTFAST_H

#include "kernels/cpu/Quant.h"

namespace moe::kernels::cpu {

/// The SIMD level the fast paths use: "avx512-vnni-int8" (with int8
/// activations enabled), "avx512" or "scalar".
const char *quantDispatchLevel();

/// Forces the scalar reference (for tests and benchmarks); returns the
/// previous setting.
bool setQuantForceScalar(bool force);

/// Lets 8- and 4-bit products quantise the activations to int8 (per group of
/// the weight format, scale max|x| / 127) and use AVX-512 VNNI integer dot
/// products: about 4x less work per weight, at an activation rounding error
/// of at most half a step (0.4% of the group's largest |x|). Off by default;
/// returns the previous setting.
bool setQuantInt8Activations(bool enable);

/// The VNNI path (see setQuantInt8Activations); false when not enabled, not
/// supported by the CPU, or not applicable to the format.
bool linearPackedVnni(const float *x, int64_t n, int64_t k,
                      const uint8_t *packed, const QuantFormat &format,
                      int64_t outFeatures, const float *bias, float *y,
                      int64_t c0, int64_t c1);

/// AVX-512 dequantise-and-multiply for 8- and 4-bit matrices whose rows are
/// whole groups (cols % groupSize == 0). Same contract as
/// linearPackedSerial().
/// Row `row` of a packed matrix (bf16, int8 or int4) as floats with
/// AVX-512; false when the CPU or the format needs dequantizeRow().
bool dequantizeRowAvx512(const uint8_t *packed, const QuantFormat &f,
                         int64_t rows, int64_t cols, int64_t row, float *out);

bool linearPackedAvx512(const float *x, int64_t n, int64_t k,
                        const uint8_t *packed, const QuantFormat &format,
                        int64_t outFeatures, const float *bias, float *y,
                        int64_t c0, int64_t c1);

} // namespace moe::kernels::cpu

#endif // MOE_KERNELS_CPU_QUANTFAST_H
