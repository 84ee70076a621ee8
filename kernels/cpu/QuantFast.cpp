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

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

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
std::atomic<bool> int8Activations{false};

bool cpuHasAvx512() {
#if defined(__x86_64__)
  static const bool has =
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  return has;
#else
  return false;
#endif
}

bool cpuHasVnni() {
#if defined(__x86_64__)
  static const bool has = cpuHasAvx512() &&
                          __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512vnni");
  return has;
#else
  return false;
#endif
}

} // namespace

const char *quantDispatchLevel() {
  if (forceScalar || !cpuHasAvx512())
    return "scalar";
  return int8Activations && cpuHasVnni() ? "avx512-vnni-int8" : "avx512";
}

bool setQuantForceScalar(bool force) { return forceScalar.exchange(force); }

bool setQuantInt8Activations(bool enable) {
  return int8Activations.exchange(enable);
}

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

/// One output column of a bf16 matrix: widen 16 weights to f32 (a shift),
/// FMA with up to kRowTile rows of x.
__attribute__((target("avx512f,avx512bw"))) void
columnBf16(const float *x, int64_t rows, int64_t k, const uint16_t *w,
           int64_t col, const float *bias, int64_t outFeatures, float *y) {
  __m512 acc[kRowTile];
  for (int64_t r = 0; r < rows; ++r)
    acc[r] = _mm512_setzero_ps();
  for (int64_t j = 0; j < k; j += 16) {
    __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(w + j));
    __m512 v =
        _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    for (int64_t r = 0; r < rows; ++r)
      acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps(x + r * k + j), v, acc[r]);
  }
  float b = bias ? bias[col] : 0.0f;
  for (int64_t r = 0; r < rows; ++r)
    y[r * outFeatures + col] = _mm512_reduce_add_ps(acc[r]) + b;
}

/// Row `row` of a packed int8/int4 matrix as floats.
__attribute__((target("avx512f,avx512bw"))) void
dequantRow512(const uint8_t *codes, const uint8_t *scales, const uint8_t *zeros,
              const QuantFormat &f, int64_t groupsPerRow, int64_t row,
              float *out) {
  const float mid = float(1 << (f.bits - 1));
  for (int64_t g = 0; g < groupsPerRow; ++g) {
    int64_t gi = row * groupsPerRow + g;
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
    for (int64_t j = base; j < base + f.groupSize; j += 16)
      _mm512_storeu_ps(out + j, _mm512_mul_ps(
                                    _mm512_sub_ps(loadCodes(codes, f.bits, j), vz),
                                    vs));
  }
}

// GCC 12's AVX-512 headers trip -Wuninitialized on their own placeholder
// operand (_mm512_undefined_epi32) when these are compiled out of line.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
/// 16 bfloat16 values widened to float.
__attribute__((target("avx512f,avx512bw"))) void
storeBf16Widened(const uint16_t *w, float *out) {
  __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(w));
  _mm512_storeu_ps(out, _mm512_castsi512_ps(
                            _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
}
#pragma GCC diagnostic pop

/// Activations of n rows quantised per group of 32: int8 values laid out for
/// the code order of `bits` (4 bits: each 32-chunk as its 16 even then 16
/// odd elements, matching low/high nibbles), one scale per (row, group of
/// the weight format) and the sum of the int8 values per (row, group).
struct QuantizedActivations {
  std::vector<int8_t> q;
  std::vector<float> scale;
  std::vector<int32_t> sum;
};

QuantizedActivations quantizeActivations(const float *x, int64_t n, int64_t k,
                                         int bits, int64_t groupSize) {
  QuantizedActivations a;
  int64_t groups = k / groupSize;
  a.q.resize(size_t(n * k));
  a.scale.resize(size_t(n * groups));
  a.sum.resize(size_t(n * groups));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t g = 0; g < groups; ++g) {
      const float *xs = x + r * k + g * groupSize;
      float amax = 0;
      for (int64_t i = 0; i < groupSize; ++i)
        amax = std::max(amax, std::fabs(xs[i]));
      float scale = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0.0f;
      int32_t sum = 0;
      int8_t *out = a.q.data() + r * k + g * groupSize;
      for (int64_t c = 0; c < groupSize; c += 32)
        for (int64_t i = 0; i < 32; ++i) {
          // 4 bits: position i of the chunk holds element 2i (i < 16) or
          // 2(i-16)+1, the order of the unpacked low/high nibbles.
          int64_t src = bits == 4 ? (i < 16 ? 2 * i : 2 * (i - 16) + 1) : i;
          int32_t v = int32_t(std::lround(xs[c + src] * inv));
          out[c + i] = int8_t(std::clamp(v, -127, 127));
          sum += out[c + i];
        }
      a.scale[size_t(r * groups + g)] = scale;
      a.sum[size_t(r * groups + g)] = sum;
    }
  return a;
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma,avx2"))) void
columnVnni(const QuantizedActivations &a, int64_t r, int64_t k,
           const uint8_t *codes, const uint8_t *scales, const uint8_t *zeros,
           const QuantFormat &f, int64_t groupsPerRow, int64_t col, float bias,
           float *out) {
  __m256 facc = _mm256_setzero_ps();
  float correction = 0;
  const int8_t *xq = a.q.data() + r * k;
  const __m128i mask = _mm_set1_epi8(0x0F);
  const int32_t mid = 1 << (f.bits - 1);
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
    int32_t zero = f.zeroPoints ? zeros[gi] : mid;
    __m256i iacc = _mm256_setzero_si256();
    int64_t base = g * f.groupSize;
    for (int64_t j = base; j < base + f.groupSize; j += 32) {
      __m256i c;
      if (f.bits == 8) {
        c = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(codes + j));
      } else {
        __m128i b =
            _mm_loadu_si128(reinterpret_cast<const __m128i *>(codes + j / 2));
        __m128i lo = _mm_and_si128(b, mask);
        __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
        c = _mm256_set_m128i(hi, lo);
      }
      __m256i xv =
          _mm256_loadu_si256(reinterpret_cast<const __m256i *>(xq + j));
      iacc = _mm256_dpbusd_epi32(iacc, c, xv);
    }
    int64_t ag = r * (k / f.groupSize) + g;
    float s = scale * a.scale[size_t(ag)];
    facc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc), _mm256_set1_ps(s), facc);
    correction += s * float(zero) * float(a.sum[size_t(ag)]);
  }
  __m128 h =
      _mm_add_ps(_mm256_castps256_ps128(facc), _mm256_extractf128_ps(facc, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  *out = _mm_cvtss_f32(h) - correction + bias;
}

} // namespace

bool linearPackedVnni(const float *x, int64_t n, int64_t k,
                      const uint8_t *packed, const QuantFormat &f,
                      int64_t outFeatures, const float *bias, float *y,
                      int64_t c0, int64_t c1) {
  if (forceScalar || !int8Activations || !cpuHasVnni() ||
      (f.bits != 8 && f.bits != 4) || f.groupSize % 32 != 0 ||
      k % f.groupSize != 0)
    return false;
  QuantizedActivations a = quantizeActivations(x, n, k, f.bits, f.groupSize);
  QuantLayout l = quantLayout(f, outFeatures, k);
  for (int64_t c = c0; c < c1; ++c)
    for (int64_t r = 0; r < n; ++r)
      columnVnni(a, r, k, packed + c * l.rowBytes, packed + l.scalesOffset,
                 packed + l.zerosOffset, f, l.groupsPerRow, c,
                 bias ? bias[c] : 0.0f, y + r * outFeatures + c);
  return true;
}

bool linearPackedAvx512(const float *x, int64_t n, int64_t k,
                        const uint8_t *packed, const QuantFormat &f,
                        int64_t outFeatures, const float *bias, float *y,
                        int64_t c0, int64_t c1) {
  if (forceScalar || !cpuHasAvx512())
    return false;
  if (f.bits == 16) {
    if (k % 16 != 0)
      return false;
    for (int64_t r0 = 0; r0 < n; r0 += kRowTile) {
      int64_t rows = n - r0 < kRowTile ? n - r0 : kRowTile;
      for (int64_t c = c0; c < c1; ++c)
        columnBf16(x + r0 * k, rows, k,
                   reinterpret_cast<const uint16_t *>(packed) + c * k, c, bias,
                   outFeatures, y + r0 * outFeatures);
    }
    return true;
  }
  if ((f.bits != 8 && f.bits != 4) || f.groupSize % 16 != 0 ||
      k % f.groupSize != 0)
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

bool dequantizeRowAvx512(const uint8_t *packed, const QuantFormat &f,
                         int64_t rows, int64_t cols, int64_t row, float *out) {
  if (forceScalar || !cpuHasAvx512())
    return false;
  if (f.bits == 16) {
    if (cols % 16 != 0)
      return false;
    const uint16_t *w = reinterpret_cast<const uint16_t *>(packed) + row * cols;
    for (int64_t j = 0; j < cols; j += 16)
      storeBf16Widened(w + j, out + j);
    return true;
  }
  if ((f.bits != 8 && f.bits != 4) || f.groupSize % 16 != 0 ||
      cols % f.groupSize != 0)
    return false;
  QuantLayout l = quantLayout(f, rows, cols);
  dequantRow512(packed + row * l.rowBytes, packed + l.scalesOffset,
                packed + l.zerosOffset, f, l.groupsPerRow, row, out);
  return true;
}

#else

bool dequantizeRowAvx512(const uint8_t *, const QuantFormat &, int64_t,
                         int64_t, int64_t, float *) {
  return false;
}

bool linearPackedVnni(const float *, int64_t, int64_t, const uint8_t *,
                      const QuantFormat &, int64_t, const float *, float *,
                      int64_t, int64_t) {
  return false;
}

bool linearPackedAvx512(const float *, int64_t, int64_t, const uint8_t *,
                        const QuantFormat &, int64_t, const float *, float *,
                        int64_t, int64_t) {
  return false;
}

#endif

} // namespace moe::kernels::cpu
