//===- Gemm.h - Register-blocked float32 products ---------------*- C++ -*-===//
//
// The SIMD paths of linearSerial() and matmul() (Matmul.h), chosen at run
// time from the CPU (AVX-512, else AVX2+FMA, else the scalar reference).
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CPU_GEMM_H
#define MOE_KERNELS_CPU_GEMM_H

#include <cstdint>
#include <optional>

namespace moe::kernels::cpu {

enum class GemmLevel { Scalar = 0, Avx2 = 1, Avx512 = 2 };

/// The level the fast paths use on this CPU (at most the limit set below).
GemmLevel gemmLevel();
const char *gemmLevelName(GemmLevel level);
/// Caps the level (tests compare every level against the scalar path);
/// nullopt removes the cap.
void setGemmLevelLimit(std::optional<GemmLevel> level);

/// y[r, j] = x[r]·w[j] (+ bias[j]) for r < rows, j in [c0, c1); w [n, k].
/// False when only the scalar reference applies.
bool linearFast(const float *x, int64_t rows, int64_t k, const float *w,
                int64_t n, const float *bias, float *y, int64_t c0,
                int64_t c1);

/// Whether linearBf16Fast() runs here: AVX512-BF16 at the AVX-512 level.
bool bf16DotAvailable();

/// y[r, j] = x[r]·w[j] (+ bias[j]) for r < rows, j in [c0, c1), with x
/// [rows, k] and w [n, k] as bf16 bits: exact products of the bf16 values
/// summed in f32 (vdpbf16ps, 4×4 blocks). False where bf16DotAvailable() is
/// false.
bool linearBf16Fast(const uint16_t *x, int64_t rows, int64_t k,
                    const uint16_t *w, int64_t n, const float *bias, float *y,
                    int64_t c0, int64_t c1);

/// out[i] = x[i] as bf16 bits, rounded to nearest even.
void roundToBf16(const float *x, int64_t count, uint16_t *out);

/// c[m, n] = a[m, k] · b[k, n], row-major with leading dimensions lda, ldb,
/// ldc. False when only the scalar reference applies.
bool matmulFast(const float *a, int64_t lda, int64_t m, int64_t k,
                const float *b, int64_t ldb, int64_t n, float *c,
                int64_t ldc);

} // namespace moe::kernels::cpu

#endif // MOE_KERNELS_CPU_GEMM_H
