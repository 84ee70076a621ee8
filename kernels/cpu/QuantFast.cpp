//===- QuantFast.cpp - SIMD products with packed weight matrices ----------===//
//
// The AVX-512 path dequantises 16 weights at a time in registers
// ((code - zero) * scale, per group) and accumulates x · w with FMAs in
// vector accumulators, one horizontal sum per output; it is compiled with a
// target attribute so the build needs no -march flag, and used only when
// the CPU reports AVX-512F/BW at run time.
//
//===----------------------------------------------------------------------===//

#include "kernels/cpu/QuantFast.h"

#include "kernels/cpu/Half.h"

#include <atomic>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// GCC 12 reports its own AVX-512 headers' _mm512_undefined_* helpers as
// "maybe uninitialized" (a false positive); keep -Werror for the rest.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace moe::kernels::cpu {
namespace {

std::atomic<bool> forceScalar{false};

bool cpuHasAvx512() {
#if defined(__x86_64__)
  static const bool has =
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  return has;
#else
  return false;
#endif
}

} // namespace

const char *quantDispatchLevel() {
  return !forceScalar && cpuHasAvx512() ? "avx512" : "scalar";
}

bool setQuantForceScalar(bool force) { return forceScalar.exchange(force); }

#if defined(__x86_64__)

namespace {

/// Up to this many rows of x share each dequantised weight vector.
constexpr int64_t kRowTile = 4;

/// 16 codes starting at code index j of a row, as floats.
__attribute__((target("avx512f,avx512bw"))) inline __m512
loadCodes(const uint8_t *row, int bits, int64_t j) {
  __m128i bytes;
  if (bits == 8) {
    bytes = _mm_loadu_si128(reinterpret_cast<const __m128i *>(row + j));
  } else { // 4 bits: 8 bytes hold 16 codes, low nibble first.
    __m128i packed =
        _mm_loadl_epi64(reinterpret_cast<const __m128i *>(row + j / 2));
    __m128i mask = _mm_set1_epi8(0x0F);
    __m128i lo = _mm_and_si128(packed, mask);
    __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), mask);
    bytes = _mm_unpacklo_epi8(lo, hi);
  }
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes));
}

__attribute__((target("avx512f,avx512bw"))) void
columnBlock(const float *x, int64_t rows, int64_t k, const uint8_t *codes,
            const uint8_t *scales, const uint8_t *zeros, const QuantFormat &f,
            int64_t groupsPerRow, int64_t col, const float *bias,
            int64_t outFeatures, float *y) {
  __m512 acc[kRowTile];
  for (int64_t r = 0; r < rows; ++r)
    acc[r] = _mm512_setzero_ps();
  const float mid = float(1 << (f.bits - 1));
  for (int64_t g = 0; g < groupsPerRow; ++g) {
    int64_t gi = col * groupsPerRow + g;
    float scale;
    if (f.f16Scales) {
      uint16_t h;
      std::memcpy(&h, scales + 2 * gi, 2);
      scale = halfToFloat(h);
    } else {
      std::memcpy(&scale, scales + 4 * gi, 4);
    }
    float zero = f.zeroPoints ? float(zeros[gi]) : mid;
    __m512 vs = _mm512_set1_ps(scale), vz = _mm512_set1_ps(zero);
    int64_t base = g * f.groupSize;
    for (int64_t j = base; j < base + f.groupSize; j += 16) {
      __m512 w =
          _mm512_mul_ps(_mm512_sub_ps(loadCodes(codes, f.bits, j), vz), vs);
      for (int64_t r = 0; r < rows; ++r)
        acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps(x + r * k + j), w, acc[r]);
    }
  }
  float b = bias ? bias[col] : 0.0f;
  for (int64_t r = 0; r < rows; ++r)
    y[r * outFeatures + col] = _mm512_reduce_add_ps(acc[r]) + b;
}

} // namespace

bool linearPackedAvx512(const float *x, int64_t n, int64_t k,
                        const uint8_t *packed, const QuantFormat &f,
                        int64_t outFeatures, const float *bias, float *y,
                        int64_t c0, int64_t c1) {
  if (forceScalar || !cpuHasAvx512() || (f.bits != 8 && f.bits != 4) ||
      f.groupSize % 16 != 0 || k % f.groupSize != 0)
    return false;
  QuantLayout l = quantLayout(f, outFeatures, k);
  const uint8_t *scales = packed + l.scalesOffset;
  const uint8_t *zeros = packed + l.zerosOffset;
  for (int64_t r0 = 0; r0 < n; r0 += kRowTile) {
    int64_t rows = n - r0 < kRowTile ? n - r0 : kRowTile;
    for (int64_t c = c0; c < c1; ++c)
      columnBlock(x + r0 * k, rows, k, packed + c * l.rowBytes, scales, zeros,
                  f, l.groupsPerRow, c, bias, outFeatures,
                  y + r0 * outFeatures);
  }
  return true;
}

#else

bool linearPackedAvx512(const float *, int64_t, int64_t, const uint8_t *,
                        const QuantFormat &, int64_t, const float *, float *,
                        int64_t, int64_t) {
  return false;
}

#endif

} // namespace moe::kernels::cpu
