//===- QuantFast.cpp - SIMD products with packed weight matrices ----------===//
//
// The level dispatch, the activation preparation shared by every level, and
// the AVX-512 kernels (the AVX2 ones are in QuantAvx2.cpp). Kernels are
// compiled with target attributes, so the build needs no -march flag, and
// used only when the CPU reports the features at run time.
//
// Decode product, per block of C weight rows ("columns" of y) and all (up to
// seven) rows of x, one call per product so that the constants stay in
// registers: the codes of a row are read as chunks of 16 32-bit lanes; lane
// l of chunk ch holds codes ch·E + P·l .. ch·E + P·l + P − 1 (P codes per
// lane, E = 16·P per chunk). Position j of every lane is one vector: mask it
// (an integer q·2^(bits·j), exact as a float), convert, and FMA with the
// prepared x'[ch][j][l] = x[ch·E + P·l + j] · 2^-(bits·j). The top position
// is shifted down instead (its x' is unscaled), which keeps every integer
// below 2^31. Per group the partial sums are scaled once (a broadcast when
// groups span whole chunks, a per-lane scale vector when a chunk holds
// several groups), and s·z·Σx is subtracted per group at the start. The
// bulk of a block uses plain loads and prefetches a linear run 16 KB ahead;
// only the last chunks of a matrix use masked loads (partial-mask loads that
// miss the cache are slow on some CPUs). With int8 activations (opt-in) the
// VNNI kernels take 4 codes per lane per vpdpbusd instead.
//
//===----------------------------------------------------------------------===//

#include "kernels/cpu/QuantFast.h"

#include "kernels/cpu/Half.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MOE_QUANT_X86 1
#endif

// GCC 12 reports its own AVX-512 headers' _mm512_undefined_* helpers as
// "maybe uninitialized" (a false positive); keep -Werror for the rest.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace moe::kernels::cpu {
namespace {

std::atomic<bool> forceScalar{false};
std::atomic<bool> int8Activations{false};
std::atomic<bool> bf16Activations{false};
std::atomic<int> levelLimit{-1};

GemmLevel detectLevel() {
#ifdef MOE_QUANT_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
    return GemmLevel::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c"))
    return GemmLevel::Avx2;
#endif
  return GemmLevel::Scalar;
}

bool cpuHasVnni() {
#ifdef MOE_QUANT_X86
  static const bool has = detectLevel() == GemmLevel::Avx512 &&
                          __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512vnni");
  return has;
#else
  return false;
#endif
}

/// How far ahead of the loads of a weight row the decode kernels prefetch
/// (the hardware prefetchers alone left a core at half its read rate).
constexpr int64_t kPrefetchBytes = 16384;

/// Codes per 32-bit lane.
constexpr int codesPerLane(int bits) { return bits == 3 ? 8 : 32 / bits; }

/// True when the VNNI path takes products in this format at this level.
bool vnniApplies(const QuantFormat &f, GemmLevel level) {
  return int8Activations && level == GemmLevel::Avx512 && cpuHasVnni() &&
         (f.bits == 8 || f.bits == 4) && f.groupSize % 32 == 0;
}

} // namespace

GemmLevel quantLevel() {
  static const GemmLevel detected = detectLevel();
  if (forceScalar)
    return GemmLevel::Scalar;
  int limit = levelLimit.load(std::memory_order_relaxed);
  if (limit >= 0 && limit < int(detected))
    return GemmLevel(limit);
  return detected;
}

void setQuantLevelLimit(std::optional<GemmLevel> level) {
  levelLimit.store(level ? int(*level) : -1);
}

bool setQuantBf16Activations(bool enable) {
  return bf16Activations.exchange(enable);
}

bool bf16ActivationsApply() {
  return bf16Activations.load(std::memory_order_relaxed) &&
         quantLevel() == GemmLevel::Avx512 && bf16DotAvailable();
}

const char *quantDispatchLevel() {
  switch (quantLevel()) {
  case GemmLevel::Avx512:
    return int8Activations && cpuHasVnni() ? "avx512-vnni-int8" : "avx512";
  case GemmLevel::Avx2:
    return "avx2";
  case GemmLevel::Scalar:
    break;
  }
  return "scalar";
}

bool setQuantForceScalar(bool force) { return forceScalar.exchange(force); }

bool setQuantInt8Activations(bool enable) {
  return int8Activations.exchange(enable);
}

//===----------------------------------------------------------------------===//
// Preparing the activations
//===----------------------------------------------------------------------===//

namespace {

#ifdef MOE_QUANT_X86
void quantizeActivations512(PackedActivations &a);
#endif

/// The int8 activations of the VNNI path (see PackedActivations::q).
void quantizeActivations(PackedActivations &a) {
#ifdef MOE_QUANT_X86
  // The VNNI path implies AVX-512; this is the one-element-at-a-time
  // statement of what the vector code does.
  if (a.format.groupSize % 32 == 0) {
    quantizeActivations512(a);
    return;
  }
#endif
  const int64_t n = a.n, k = a.k, g = a.format.groupSize;
  const int64_t E = a.format.bits == 4 ? 128 : 64, perLane = E / 16;
  for (int64_t r = 0; r < n; ++r) {
    int8_t *q = a.q + r * a.qStride;
    float *xs = a.xs + r * a.chunks * 16;
    for (int64_t gi = 0; gi * g < k; ++gi) {
      const float *xg = a.x + r * k + gi * g;
      float amax = 0;
      for (int64_t i = 0; i < g; ++i)
        amax = std::max(amax, std::fabs(xg[i]));
      const float inv = amax > 0 ? 127.0f / amax : 0.0f, scale = amax / 127.0f;
      int32_t sum = 0;
      for (int64_t i = 0; i < g; ++i) {
        const int64_t e = gi * g + i, ch = e / E, in = e % E;
        // 4 bits: even elements to the low-nibble half, odd to the high.
        const int64_t at =
            ch * E + (a.format.bits == 4 ? (in % 2) * 64 + in / 2 : in);
        int32_t v = std::clamp(int32_t(std::lround(xg[i] * inv)), -127, 127);
        q[at] = int8_t(v);
        sum += v;
        if (in % perLane == 0)
          xs[ch * 16 + in / perLane] = scale;
      }
      a.sx[r * a.sxStride + gi] = scale * float(sum);
    }
  }
}

} // namespace

bool PackedActivations::prepare(const float *xIn, int64_t nIn, int64_t kIn,
                                const QuantFormat &f) {
  ready_ = false;
  GemmLevel lv = quantLevel();
  if (nIn < 1 || nIn >= kPackedDecodeRows || kIn < 1 || lv == GemmLevel::Scalar ||
      (f.bits != 8 && f.bits != 4 && f.bits != 3 && f.bits != 2) ||
      !isValidQuantFormat(f))
    return false;
  x = xIn, n = nIn, k = kIn, format = f, level = lv;
  const int64_t groups = (k + f.groupSize - 1) / f.groupSize;
  sxStride = (groups + 15) / 16 * 16;
  // The VNNI path takes whole 64-byte chunks of codes and whole groups.
  const int64_t E8 = f.bits == 4 ? 128 : 64;
  int8 = vnniApplies(f, lv) && k % E8 == 0 && k % f.groupSize == 0;
  if (int8) {
    lanes = 16;
    chunks = k / E8;
    qStride = k;
    buf_.assign(size_t(n * (sxStride + chunks * 16) + 16), 0.0f);
    float *base = buf_.data();
    base += (16 - (reinterpret_cast<uintptr_t>(base) / 4) % 16) % 16;
    sx = base;
    xs = base + n * sxStride;
    qBuf_.assign(size_t(n * qStride + 64), 0);
    q = qBuf_.data() + (64 - reinterpret_cast<uintptr_t>(qBuf_.data()) % 64) % 64;
    quantizeActivations(*this);
    ready_ = true;
    return true;
  }
  lanes = lv == GemmLevel::Avx512 ? 16 : 8;
  const int P = codesPerLane(f.bits);
  const int64_t E = lanes * P;
  chunks = (k + E - 1) / E;
  xpStride = chunks * E;
  // xp then sx, each at a multiple of 64 bytes (both strides are multiples
  // of 16 floats): every vector load of the kernels stays in one line.
  buf_.assign(size_t(n * (xpStride + sxStride) + 16), 0.0f);
  float *base = buf_.data();
  base += (16 - (reinterpret_cast<uintptr_t>(base) / 4) % 16) % 16;
  xp = base;
  sx = base + n * xpStride;
  float scale[16];
  for (int j = 0; j < P; ++j)
    scale[j] = j == P - 1 ? 1.0f : std::ldexp(1.0f, -f.bits * j);
  for (int64_t r = 0; r < n; ++r) {
    const float *xr = x + r * k;
    float *dst = xp + r * xpStride;
    for (int64_t ch = 0; ch < chunks; ++ch)
      for (int64_t l = 0; l < lanes; ++l)
        for (int j = 0; j < P; ++j) {
          int64_t e = ch * E + P * l + j;
          if (e < k)
            dst[(ch * P + j) * lanes + l] = xr[e] * scale[j];
        }
    for (int64_t g = 0; g < groups; ++g) {
      double s = 0;
      for (int64_t e = g * f.groupSize; e < std::min(k, (g + 1) * f.groupSize);
           ++e)
        s += xr[e];
      sx[r * sxStride + g] = float(s);
    }
  }
  ready_ = true;
  return true;
}

bool PackedActivations::matches(const float *xIn, int64_t nIn, int64_t kIn,
                                const QuantFormat &f) const {
  return ready_ && x == xIn && n == nIn && k == kIn && format.bits == f.bits &&
         format.groupSize == f.groupSize && format.f16Scales == f.f16Scales &&
         format.zeroPoints == f.zeroPoints;
}


//===----------------------------------------------------------------------===//
// AVX-512
//===----------------------------------------------------------------------===//

#ifdef MOE_QUANT_X86

#define MOE_T512 __attribute__((target("avx512f,avx512bw")))
#define MOE_T512_INLINE __attribute__((target("avx512f,avx512bw"), always_inline)) inline

namespace {

/// Sum of the 16 lanes.
MOE_T512_INLINE float hsum512(__m512 v) {
  __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v),
                           _mm256_castpd_ps(_mm512_extractf64x4_pd(
                               _mm512_castps_pd(v), 1)));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/// std::lround(v) clamped to [-127, 127], lane by lane: halves away from
/// zero, computed exactly as trunc(v) + sign(v)·[|v − trunc(v)| ≥ 0.5].
MOE_T512_INLINE __m512i roundClamp127(__m512 v) {
  // Float bit operations as integer ones (AVX512F has no and_ps).
  const __m512i absMask = _mm512_set1_epi32(0x7fffffff);
  const __m512i bits = _mm512_castps_si512(v);
  __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  __m512 frac = _mm512_castsi512_ps(
      _mm512_and_si512(_mm512_castps_si512(_mm512_sub_ps(v, t)), absMask));
  __mmask16 up = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  // ±1 with v's sign where the fraction reaches a half.
  __m512 step = _mm512_castsi512_ps(
      _mm512_or_si512(_mm512_castps_si512(_mm512_set1_ps(1.0f)),
                      _mm512_andnot_si512(absMask, bits)));
  t = _mm512_mask_add_ps(t, up, t, step);
  return _mm512_min_epi32(_mm512_max_epi32(_mm512_cvttps_epi32(t),
                                           _mm512_set1_epi32(-127)),
                          _mm512_set1_epi32(127));
}

/// quantizeActivations() 32 elements at a time: the same int8 values
/// (roundClamp127), the same layout and sums.
MOE_T512 void quantizeActivations512(PackedActivations &a) {
  const int64_t n = a.n, k = a.k, g = a.format.groupSize;
  const bool four = a.format.bits == 4;
  const int64_t E = four ? 128 : 64, perLane = E / 16;
  const __m512i absMask = _mm512_set1_epi32(0x7fffffff);
  // Even and odd elements of 32 (a then b) for the 4-bit layout.
  const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18,
                                          20, 22, 24, 26, 28, 30);
  const __m512i odds = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19,
                                         21, 23, 25, 27, 29, 31);
  for (int64_t r = 0; r < n; ++r) {
    int8_t *q = a.q + r * a.qStride;
    float *xs = a.xs + r * a.chunks * 16;
    for (int64_t gi = 0; gi * g < k; ++gi) {
      const float *xg = a.x + r * k + gi * g;
      __m512 m = _mm512_setzero_ps();
      for (int64_t i = 0; i < g; i += 16)
        m = _mm512_max_ps(m, _mm512_castsi512_ps(_mm512_and_si512(
                                 _mm512_loadu_si512(xg + i), absMask)));
      const float amax = _mm512_reduce_max_ps(m);
      const float inv = amax > 0 ? 127.0f / amax : 0.0f, scale = amax / 127.0f;
      const __m512 vinv = _mm512_set1_ps(inv);
      __m512i sum = _mm512_setzero_si512();
      for (int64_t i = 0; i < g; i += 32) {
        __m512i qa = roundClamp127(_mm512_mul_ps(_mm512_loadu_ps(xg + i), vinv));
        __m512i qb = roundClamp127(_mm512_mul_ps(_mm512_loadu_ps(xg + i + 16), vinv));
        sum = _mm512_add_epi32(sum, _mm512_add_epi32(qa, qb));
        const int64_t e = gi * g + i, ch = e / E, in = e % E;
        if (four) {
          // 4 bits: even elements to the low-nibble half, odd to the high.
          _mm_storeu_si128(
              reinterpret_cast<__m128i *>(q + ch * E + in / 2),
              _mm512_cvtepi32_epi8(_mm512_permutex2var_epi32(qa, evens, qb)));
          _mm_storeu_si128(
              reinterpret_cast<__m128i *>(q + ch * E + 64 + in / 2),
              _mm512_cvtepi32_epi8(_mm512_permutex2var_epi32(qa, odds, qb)));
        } else {
          _mm_storeu_si128(reinterpret_cast<__m128i *>(q + ch * E + in),
                           _mm512_cvtepi32_epi8(qa));
          _mm_storeu_si128(reinterpret_cast<__m128i *>(q + ch * E + in + 16),
                           _mm512_cvtepi32_epi8(qb));
        }
      }
      for (int64_t i = 0; i < g; i += perLane) {
        const int64_t e = gi * g + i;
        xs[(e / E) * 16 + (e % E) / perLane] = scale;
      }
      a.sx[r * a.sxStride + gi] = scale * float(_mm512_reduce_add_epi32(sum));
    }
  }
}

/// A chunk of codes as 16 lanes of P codes. `full`: the 64 bytes from p
/// may be read (they are inside the codes; bytes past the row only meet
/// zeros of x'); otherwise only the `bytes` left in the codes are (a masked
/// load, slow on some CPUs when it misses the cache: only at the very end of
/// a matrix).
template <int B>
MOE_T512_INLINE __m512i loadChunk512(const uint8_t *p, bool full,
                                     int64_t bytes) {
  __m512i v = full ? _mm512_loadu_si512(p)
                   : _mm512_maskz_loadu_epi8(
                         bytes >= 64 ? ~__mmask64(0)
                                     : __mmask64((1ull << bytes) - 1),
                         p);
  if constexpr (B == 3) {
    // 16 24-bit words from 48 bytes: dwords 3i..3i+2 to 128-bit block i,
    // then the bytes of word j of a block to lane j.
    v = _mm512_permutexvar_epi32(
        _mm512_set_epi32(0, 11, 10, 9, 0, 8, 7, 6, 0, 5, 4, 3, 0, 2, 1, 0), v);
    return _mm512_shuffle_epi8(
        v, _mm512_set4_epi32(0x800B0A09, 0x80080706, 0x80050403, 0x80020100));
  }
  return v;
}

/// Position J of every lane as floats: q·2^(B·J) (the top position: q).
template <int B, int J> MOE_T512_INLINE __m512 codeAt512(__m512i d) {
  constexpr int P = codesPerLane(B);
  if constexpr (J == P - 1)
    return _mm512_cvtepi32_ps(_mm512_srli_epi32(d, B * J));
  else
    return _mm512_cvtepi32_ps(
        _mm512_and_si512(d, _mm512_set1_epi32(((1 << B) - 1) << (B * J))));
}

/// Position J of the lanes of one weight row's chunk (column c) times R
/// rows of x.
template <int B, int R, int C, int NA, int J>
MOE_T512_INLINE void position512(__m512i d, int c, const float *const (&x)[R],
                                 int64_t off, __m512 (&acc)[R][C][NA]) {
  __m512 w = codeAt512<B, J>(d);
  for (int r = 0; r < R; ++r)
    acc[r][c][J % NA] = _mm512_fmadd_ps(
        w, _mm512_loadu_ps(x[r] + off + 16 * J), acc[r][c][J % NA]);
}

/// Chunk `ch` of C weight rows times R rows of x into acc. Checked: the
/// last chunks of the matrix (`limit[c]`: bytes from row c to the end of
/// the codes); otherwise all 64 bytes are readable and the rows are
/// prefetched kPrefetchBytes ahead (never past `pfLast`, the last line of
/// this product's rows).
template <int B, int R, int C, int NA, bool Checked, int... J>
MOE_T512_INLINE void chunk512(const uint8_t *const (&rows)[C], int64_t ch,
                              const int64_t (&limit)[C], const uint8_t *pfLast,
                              const float *const (&x)[R],
                              __m512 (&acc)[R][C][NA],
                              std::integer_sequence<int, J...>) {
  constexpr int P = codesPerLane(B), CB = B == 3 ? 48 : 64;
  for (int c = 0; c < C; ++c) {
    const uint8_t *at = rows[c] + ch * CB;
    __m512i d;
    if constexpr (Checked) {
      d = loadChunk512<B>(at, ch * CB + 64 <= limit[c], limit[c] - ch * CB);
    } else {
      const uint8_t *pf = at + kPrefetchBytes;
      _mm_prefetch(reinterpret_cast<const char *>(pf < pfLast ? pf : pfLast),
                   _MM_HINT_T0);
      d = loadChunk512<B>(at, true, 64);
    }
    (position512<B, R, C, NA, J>(d, c, x, ch * P * 16, acc), ...);
  }
}

/// Position J of a bulk chunk: x' of row r at x + r·xs.
template <int B, int R, int C, int NA, int J>
MOE_T512_INLINE void bulkPosition512(__m512i d, int c, const float *x,
                                     int64_t xs, __m512 (&acc)[R][C][NA]) {
  __m512 w = codeAt512<B, J>(d);
  for (int r = 0; r < R; ++r)
    acc[r][c][J % NA] = _mm512_fmadd_ps(
        w, _mm512_loadu_ps(x + r * xs + 16 * J), acc[r][c][J % NA]);
}

/// A chunk in the bulk of the rows (plain loads; the caller prefetches):
/// weight row c's codes at `at + c·rb`, x' of row r at x + r·xs.
template <int B, int R, int C, int NA, int... J>
MOE_T512_INLINE void bulk512(const uint8_t *at, int64_t rb, const float *x,
                             int64_t xs, __m512 (&acc)[R][C][NA],
                             std::integer_sequence<int, J...>) {
  for (int c = 0; c < C; ++c) {
    __m512i d = loadChunk512<B>(at + c * rb, true, 64);
    (bulkPosition512<B, R, C, NA, J>(d, c, x, xs, acc), ...);
  }
}

/// Prefetches the first kPrefetchBytes of [begin, end) (the bulk loops'
/// runs start that far ahead), so that a product's first rows do not wait.
MOE_T512_INLINE void primePrefetch(const uint8_t *begin, const uint8_t *end) {
  const uint8_t *stop = std::min(end, begin + kPrefetchBytes);
  for (const uint8_t *at = begin; at < stop; at += 64)
    _mm_prefetch(reinterpret_cast<const char *>(at), _MM_HINT_T0);
}

/// Prefetches the C lines at the cursor (a linear run kPrefetchBytes ahead
/// of the block's codes) unless past `stop`, and advances it by `step`.
template <int C>
MOE_T512_INLINE void prefetchRun(const uint8_t *&cursor, const uint8_t *stop,
                                 int64_t step) {
  if (cursor < stop)
    for (int c = 0; c < C; ++c)
      _mm_prefetch(reinterpret_cast<const char *>(cursor + 64 * c),
                   _MM_HINT_T0);
  cursor += step;
}

template <int R, int C, int NA>
MOE_T512_INLINE void clearAcc(__m512 (&acc)[R][C][NA]) {
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c)
      for (int i = 0; i < NA; ++i)
        acc[r][c][i] = _mm512_setzero_ps();
}

template <int R, int C, int NA>
MOE_T512_INLINE __m512 sumAcc(const __m512 (&acc)[R][C][NA], int r, int c) {
  __m512 s = acc[r][c][0];
  for (int i = 1; i < NA; ++i)
    s = _mm512_add_ps(s, acc[r][c][i]);
  return s;
}

/// Scales of groups [at, at + 16) of the matrix (a column's groups from
/// `at`), the lanes outside `m` zero. The loads read past a column's groups
/// (into the next column's); only at the end of the array are they masked.
MOE_T512_INLINE __m512 scales16(const detail::DecodeProduct &p, int64_t at,
                                __mmask16 m) {
  const bool inside = at + 16 <= p.outFeatures * p.groupsPerRow;
  __m512 s;
  if (p.a->format.f16Scales)
    s = _mm512_cvtph_ps(
        inside ? _mm256_loadu_si256(
                     reinterpret_cast<const __m256i *>(p.scales + 2 * at))
               : _mm512_castsi512_si256(_mm512_maskz_loadu_epi16(
                     __mmask32(m), p.scales + 2 * at)));
  else
    s = inside ? _mm512_loadu_ps(p.scales + 4 * at)
               : _mm512_maskz_loadu_ps(m, p.scales + 4 * at);
  return _mm512_maskz_mov_ps(m, s);
}

/// Zero points of groups [at, at + 16), as floats (2^(bits-1) without).
MOE_T512_INLINE __m512 zeros16(const detail::DecodeProduct &p, int64_t at,
                               __mmask16 m) {
  if (!p.a->format.zeroPoints)
    return _mm512_set1_ps(float(1 << (p.a->format.bits - 1)));
  const bool inside = at + 16 <= p.outFeatures * p.groupsPerRow;
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(
      inside ? _mm_loadu_si128(reinterpret_cast<const __m128i *>(p.zeros + at))
             : _mm512_castsi512_si128(
                   _mm512_maskz_loadu_epi8(__mmask64(m), p.zeros + at))));
}

/// The scale of group `at` in every lane, for a known scale type.
template <bool F16>
MOE_T512_INLINE __m512 scale1As(const detail::DecodeProduct &p, int64_t at) {
  if constexpr (F16) {
    uint16_t h;
    std::memcpy(&h, p.scales + 2 * at, 2);
    return _mm512_cvtph_ps(_mm256_set1_epi16(short(h)));
  } else {
    float f;
    std::memcpy(&f, p.scales + 4 * at, 4);
    return _mm512_set1_ps(f);
  }
}

/// The scale of group `at` in every lane.
MOE_T512_INLINE __m512 scale1(const detail::DecodeProduct &p, int64_t at) {
  if (p.a->format.f16Scales) {
    uint16_t h;
    std::memcpy(&h, p.scales + 2 * at, 2);
    return _mm512_cvtph_ps(_mm256_set1_epi16(short(h)));
  }
  float f;
  std::memcpy(&f, p.scales + 4 * at, 4);
  return _mm512_set1_ps(f);
}

/// Folds acc into tot with the scale at `sp` (F16 or f32) of weight row 0,
/// `sp + c·ss` of row c; clears acc.
template <int R, int C, int NA, bool F16>
MOE_T512_INLINE void foldAt(const uint8_t *sp, int64_t ss,
                            __m512 (&acc)[R][C][NA], __m512 (&tot)[R][C]) {
  for (int c = 0; c < C; ++c) {
    __m512 s;
    if constexpr (F16) {
      uint16_t h;
      std::memcpy(&h, sp + c * ss, 2);
      s = _mm512_cvtph_ps(_mm256_set1_epi16(short(h)));
    } else {
      float f;
      std::memcpy(&f, sp + c * ss, 4);
      s = _mm512_set1_ps(f);
    }
    for (int r = 0; r < R; ++r)
      tot[r][c] = _mm512_fmadd_ps(sumAcc(acc, r, c), s, tot[r][c]);
  }
  clearAcc(acc);
}

/// Folds acc into tot with the scale of group `gi` of each row, clears acc.
template <int R, int C, int NA>
MOE_T512_INLINE void foldGroup(const detail::DecodeProduct &p, int64_t col,
                               int64_t gi, __m512 (&acc)[R][C][NA],
                               __m512 (&tot)[R][C]) {
  for (int c = 0; c < C; ++c) {
    __m512 s = scale1(p, (col + c) * p.groupsPerRow + gi);
    for (int r = 0; r < R; ++r)
      tot[r][c] = _mm512_fmadd_ps(sumAcc(acc, r, c), s, tot[r][c]);
  }
  clearAcc(acc);
}

/// Folds acc (chunk ch, `gpc` groups of 16/gpc lanes each) into tot with
/// per-lane scales, clears acc.
template <int R, int C, int NA>
MOE_T512_INLINE void foldLanes(const detail::DecodeProduct &p, int64_t col,
                               int64_t ch, int64_t gpc, __m512i lanes,
                               __m512 (&acc)[R][C][NA], __m512 (&tot)[R][C]) {
  const int64_t rem = p.groupsPerRow - ch * gpc;
  const __mmask16 m = __mmask16((1u << (rem >= gpc ? gpc : rem)) - 1);
  for (int c = 0; c < C; ++c) {
    __m512 s = _mm512_permutexvar_ps(
        lanes, scales16(p, (col + c) * p.groupsPerRow + ch * gpc, m));
    for (int r = 0; r < R; ++r)
      tot[r][c] = _mm512_fmadd_ps(sumAcc(acc, r, c), s, tot[r][c]);
  }
  clearAcc(acc);
}

/// Decode product of all R rows of x with weight rows [from, to) in blocks
/// of C (one call per product keeps the constants in registers).
template <int B, int R, int C, bool F16>
MOE_T512 void rows512(const detail::DecodeProduct &p, int64_t from,
                      int64_t to) {
  constexpr int P = codesPerLane(B), E = 16 * P;
  constexpr int64_t CB = B == 3 ? 48 : 64;
  constexpr int NA = R == 1 ? 2 : 1;
  using Positions = std::make_integer_sequence<int, P>;
  const PackedActivations &a = *p.a;
  const int64_t chunks = a.chunks, g = a.format.groupSize;
  const int64_t gpr = p.groupsPerRow;
  const float *x[R];
  for (int r = 0; r < R; ++r)
    x[r] = a.xp + r * a.xpStride;
  // Partial sums over a group (cpg chunks), or over a chunk holding gpc
  // groups (lane l: group l·gpc/16), are scaled into tot.
  const int64_t cpg = g >= E ? g / E : 1, gpc = g < E ? E / g : 1;
  alignas(64) int32_t idx[16];
  for (int l = 0; l < 16; ++l)
    idx[l] = int32_t(l * gpc / 16);
  const __m512i lanes = _mm512_load_si512(idx);
  const uint8_t *pfLast = p.codes + p.c1 * p.rowBytes - 64;
  // The bulk prefetches a linear run ahead of each block; it stops where a
  // run of C lines would pass the end of this product's rows.
  const uint8_t *pfStop = p.codes + p.c1 * p.rowBytes - 64 * C;
  const int64_t rb = p.rowBytes, xs = a.xpStride;
  constexpr int64_t esz = F16 ? 2 : 4;
  const int64_t ss = gpr * esz; // bytes between the scales of two rows
  primePrefetch(p.codes + from * rb, p.codes + p.c1 * rb);

  for (int64_t col = from; col < to; col += C) {
    // Reads may run past a row (into codes that meet zeros of x') but not
    // past the last row of the matrix: chunks from `plain` on are checked.
    const uint8_t *rows[C];
    int64_t limit[C];
    for (int c = 0; c < C; ++c) {
      rows[c] = p.codes + (col + c) * p.rowBytes;
      limit[c] = (p.outFeatures - col - c) * p.rowBytes;
    }
    const int64_t plain = std::min(
        chunks, limit[C - 1] >= 64 ? (limit[C - 1] - 64) / CB + 1 : 0);

    // Start from −Σ_g s·z·Σx.
    __m512 tot[R][C];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c)
        tot[r][c] = _mm512_setzero_ps();
    for (int64_t gb = 0; gb < gpr; gb += 16) {
      const int64_t rem = gpr - gb;
      const __mmask16 m =
          rem >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << rem) - 1);
      for (int c = 0; c < C; ++c) {
        const int64_t at = (col + c) * gpr + gb;
        __m512 sz = _mm512_mul_ps(scales16(p, at, m), zeros16(p, at, m));
        for (int r = 0; r < R; ++r)
          tot[r][c] = _mm512_fnmadd_ps(
              sz, _mm512_loadu_ps(a.sx + r * a.sxStride + gb),
              tot[r][c]);
      }
    }

    __m512 acc[R][C][NA];
    clearAcc(acc);
    int64_t ch = 0;
    const uint8_t *at = rows[0], *cursor = rows[0] + kPrefetchBytes;
    const float *xc = a.xp;
    const uint8_t *sp = p.scales + esz * col * gpr;
    if (gpc > 1) {
      // The scales of 16 groups (16/gpc chunks) of each row are converted
      // once; each chunk's lanes pick theirs with a shifted index.
      alignas(64) float sbuf[C][16];
      for (; ch < plain && ch + 1 < chunks; ++ch, at += CB, xc += E) {
        const int64_t first = (ch * gpc) % 16;
        if (first == 0)
          for (int c = 0; c < C; ++c) {
            const int64_t rem = gpr - ch * gpc;
            _mm512_store_ps(
                sbuf[c], scales16(p, (col + c) * gpr + ch * gpc,
                                  rem >= 16 ? __mmask16(0xFFFF)
                                            : __mmask16((1u << rem) - 1)));
          }
        prefetchRun<C>(cursor, pfStop, C * CB);
        bulk512<B, R, C, NA>(at, rb, xc, xs, acc, Positions());
        const __m512i pick =
            _mm512_add_epi32(lanes, _mm512_set1_epi32(int32_t(first)));
        for (int c = 0; c < C; ++c) {
          __m512 sc = _mm512_permutexvar_ps(pick, _mm512_load_ps(sbuf[c]));
          for (int r = 0; r < R; ++r)
            tot[r][c] = _mm512_fmadd_ps(sumAcc(acc, r, c), sc, tot[r][c]);
        }
        clearAcc(acc);
      }
      for (; ch < chunks; ++ch) {
        chunk512<B, R, C, NA, true>(rows, ch, limit, pfLast, x, acc,
                                    Positions());
        foldLanes(p, col, ch, gpc, lanes, acc, tot);
      }
    } else if (cpg == 1) {
      for (; ch < plain; ++ch, at += CB, xc += E, sp += esz) {
        prefetchRun<C>(cursor, pfStop, C * CB);
        bulk512<B, R, C, NA>(at, rb, xc, xs, acc, Positions());
        foldAt<R, C, NA, F16>(sp, ss, acc, tot);
      }
      for (; ch < chunks; ++ch) {
        chunk512<B, R, C, NA, true>(rows, ch, limit, pfLast, x, acc,
                                    Positions());
        foldGroup(p, col, ch, acc, tot);
      }
    } else {
      // Groups of cpg chunks (the last group may be partial).
      int64_t gi = 0;
      for (; (gi + 1) * cpg <= plain; ++gi, sp += esz) {
        for (int64_t i = 0; i < cpg; ++i, at += CB, xc += E) {
          prefetchRun<C>(cursor, pfStop, C * CB);
          bulk512<B, R, C, NA>(at, rb, xc, xs, acc, Positions());
        }
        foldAt<R, C, NA, F16>(sp, ss, acc, tot);
      }
      for (; gi < gpr; ++gi) {
        for (ch = gi * cpg; ch < std::min(chunks, (gi + 1) * cpg); ++ch)
          chunk512<B, R, C, NA, true>(rows, ch, limit, pfLast, x, acc,
                                      Positions());
        foldGroup(p, col, gi, acc, tot);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c)
        p.y[r * p.outFeatures + col + c] =
            hsum512(tot[r][c]) + (p.bias ? p.bias[col + c] : 0.0f);
  }
}

/// Weight rows [c0, c1) in blocks of C, the rest one at a time.
template <int B, int R, int C>
void blocks512(const detail::DecodeProduct &p) {
  const int64_t mid = p.c0 + (p.c1 - p.c0) / C * C;
  if (p.a->format.f16Scales) {
    if (mid > p.c0)
      rows512<B, R, C, true>(p, p.c0, mid);
    if constexpr (C > 1)
      if (mid < p.c1)
        rows512<B, R, 1, true>(p, mid, p.c1);
  } else {
    if (mid > p.c0)
      rows512<B, R, C, false>(p, p.c0, mid);
    if constexpr (C > 1)
      if (mid < p.c1)
        rows512<B, R, 1, false>(p, mid, p.c1);
  }
}

template <int B> void decode512(const detail::DecodeProduct &p) {
  // All rows of x at once (the weights are read once); as many weight rows
  // per block as the accumulators of all pairs leave registers for.
  switch (p.a->n) {
  case 1:
    blocks512<B, 1, 4>(p);
    break;
  case 2:
    blocks512<B, 2, 4>(p);
    break;
  case 3:
    blocks512<B, 3, 2>(p);
    break;
  case 4:
    blocks512<B, 4, 2>(p);
    break;
  case 5:
    blocks512<B, 5, 1>(p);
    break;
  case 6:
    blocks512<B, 6, 1>(p);
    break;
  default:
    blocks512<B, 7, 1>(p);
    break;
  }
}

//--- bf16 --------------------------------------------------------------------

/// 16 weights from j of C rows (fewer, masked, at a row's end), times R
/// rows of x.
template <int R, int C, bool Tail>
MOE_T512_INLINE void bf16Step512(const float *x, int64_t k, const uint16_t *w,
                                 int64_t col, int64_t j, __mmask16 m,
                                 __m512 (&acc)[R][C]) {
  __m512 v[C];
  for (int c = 0; c < C; ++c) {
    const uint16_t *src = w + (col + c) * k + j;
    __m256i h = Tail ? _mm512_castsi512_si256(
                           _mm512_maskz_loadu_epi16(__mmask32(m), src))
                     : _mm256_loadu_si256(reinterpret_cast<const __m256i *>(src));
    v[c] = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  for (int r = 0; r < R; ++r) {
    __m512 xv = Tail ? _mm512_maskz_loadu_ps(m, x + r * k + j)
                     : _mm512_loadu_ps(x + r * k + j);
    for (int c = 0; c < C; ++c)
      acc[r][c] = _mm512_fmadd_ps(xv, v[c], acc[r][c]);
  }
}

/// y for R rows of x and weight rows [col, col + C) of a bf16 matrix.
template <int R, int C>
MOE_T512 void bf16Tile512(const float *x, int64_t k, const uint16_t *w,
                          int64_t col, const float *bias, int64_t outFeatures,
                          float *y, const char *end) {
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c)
      acc[r][c] = _mm512_setzero_ps();
  int64_t j = 0;
  // Rows [col, col + C) are contiguous: prefetch a linear run ahead of
  // them (not past `end`, the end of this product's rows).
  const char *cursor =
      reinterpret_cast<const char *>(w + col * k) + kPrefetchBytes;
  for (; j + 16 <= k; j += 16) {
    if (cursor < end)
      for (int c = 0; c < C; c += 2)
        _mm_prefetch(cursor + 64 * (c / 2), _MM_HINT_T0);
    cursor += 32 * C;
    bf16Step512<R, C, false>(x, k, w, col, j, 0xFFFF, acc);
  }
  if (j < k)
    bf16Step512<R, C, true>(x, k, w, col, j, __mmask16((1u << (k - j)) - 1),
                            acc);
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c)
      y[r * outFeatures + col + c] =
          hsum512(acc[r][c]) + (bias ? bias[col + c] : 0.0f);
}

template <int R>
MOE_T512 void bf16Rows512(const float *x, int64_t k, const uint16_t *w,
                          int64_t outFeatures, const float *bias, float *y,
                          int64_t c0, int64_t c1) {
  const char *end = reinterpret_cast<const char *>(w + c1 * k) - 64;
  int64_t c = c0;
  for (; c + 4 <= c1; c += 4)
    bf16Tile512<R, 4>(x, k, w, c, bias, outFeatures, y, end);
  for (; c < c1; ++c)
    bf16Tile512<R, 1>(x, k, w, c, bias, outFeatures, y, end);
}

} // namespace

namespace detail {
void decodeAvx512(const DecodeProduct &p) {
  switch (p.a->format.bits) {
  case 8:
    decode512<8>(p);
    break;
  case 4:
    decode512<4>(p);
    break;
  case 3:
    decode512<3>(p);
    break;
  default:
    decode512<2>(p);
    break;
  }
}
} // namespace detail

//--- VNNI (int8 activations) ------------------------------------------------

namespace {

#define MOE_TVNNI                                                              \
  __attribute__((target("avx512f,avx512bw,avx512vnni")))
#define MOE_TVNNI_INLINE                                                       \
  __attribute__((target("avx512f,avx512bw,avx512vnni"), always_inline)) inline

/// Chunk `ch` of C weight rows for the VNNI path: int8 dot products of 4
/// codes per lane with the activations (vpdpbusd), scaled per lane by the
/// weight and activation scales of the lane's group, into tot. Lanes: the
/// chunk holds gpc groups (lane l: group l·gpc/16); otherwise all its lanes
/// are group `gi`. Checked: the last chunks of the matrix (see chunk512).
template <int B, int R, int C, bool F16, bool Checked, bool Lanes>
MOE_TVNNI_INLINE void vnniChunk(const detail::DecodeProduct &p, int64_t col,
                                const uint8_t *const (&rows)[C], int64_t ch,
                                int64_t gi, const int64_t (&limit)[C],
                                const uint8_t *pfLast, int64_t gpc,
                                __m512i lanes, __m512 (&tot)[R][C]) {
  constexpr int E = B == 4 ? 128 : 64;
  const PackedActivations &a = *p.a;
  const int64_t gpr = p.groupsPerRow;
  for (int c = 0; c < C; ++c) {
    const uint8_t *at = rows[c] + ch * 64;
    __m512i d;
    if constexpr (Checked) {
      const int64_t left = limit[c] - ch * 64;
      d = left >= 64 ? _mm512_loadu_si512(at)
                     : _mm512_maskz_loadu_epi8(__mmask64((1ull << left) - 1),
                                               at);
    } else {
      const uint8_t *pf = at + kPrefetchBytes;
      _mm_prefetch(reinterpret_cast<const char *>(pf < pfLast ? pf : pfLast),
                   _MM_HINT_T0);
      d = _mm512_loadu_si512(at);
    }
    __m512 sw;
    if constexpr (Lanes) {
      const int64_t rem = gpr - ch * gpc;
      sw = _mm512_permutexvar_ps(
          lanes, scales16(p, (col + c) * gpr + ch * gpc,
                          __mmask16((1u << (rem >= gpc ? gpc : rem)) - 1)));
    } else {
      sw = scale1As<F16>(p, (col + c) * gpr + gi);
    }
    __m512i lo = d, hi = d;
    if constexpr (B == 4) {
      const __m512i low4 = _mm512_set1_epi8(0x0F);
      lo = _mm512_and_si512(d, low4);
      hi = _mm512_and_si512(_mm512_srli_epi16(d, 4), low4);
    }
    for (int r = 0; r < R; ++r) {
      const int8_t *q = a.q + r * a.qStride + ch * E;
      __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo,
                                      _mm512_load_si512(q));
      if constexpr (B == 4)
        s = _mm512_dpbusd_epi32(s, hi, _mm512_load_si512(q + 64));
      tot[r][c] = _mm512_fmadd_ps(
          _mm512_cvtepi32_ps(s),
          _mm512_mul_ps(sw, _mm512_load_ps(a.xs + (r * a.chunks + ch) * 16)),
          tot[r][c]);
    }
  }
}

/// A VNNI chunk in the bulk of the rows (plain loads; the caller
/// prefetches): weight row c's codes at `at + c·rb`, its scale at
/// `sp + c·ss` (Lanes: its lanes' scales picked from sbuf[c]), row r's int8
/// activations at q + r·qs and lane scales at xsc + r·xss.
template <int B, int R, int C, bool F16, bool Lanes>
MOE_TVNNI_INLINE void vnniBulk(__m512i pick, const float (*sbuf)[16],
                               const uint8_t *at, int64_t rb,
                               const uint8_t *sp, int64_t ss, const int8_t *q,
                               int64_t qs, const float *xsc, int64_t xss,
                               __m512 (&tot)[R][C]) {
  for (int c = 0; c < C; ++c) {
    __m512i d = _mm512_loadu_si512(at + c * rb);
    __m512 sw;
    if constexpr (Lanes) {
      sw = _mm512_permutexvar_ps(pick, _mm512_load_ps(sbuf[c]));
    } else if constexpr (F16) {
      uint16_t h;
      std::memcpy(&h, sp + c * ss, 2);
      sw = _mm512_cvtph_ps(_mm256_set1_epi16(short(h)));
    } else {
      float f;
      std::memcpy(&f, sp + c * ss, 4);
      sw = _mm512_set1_ps(f);
    }
    __m512i lo = d, hi = d;
    if constexpr (B == 4) {
      const __m512i low4 = _mm512_set1_epi8(0x0F);
      lo = _mm512_and_si512(d, low4);
      hi = _mm512_and_si512(_mm512_srli_epi16(d, 4), low4);
    }
    for (int r = 0; r < R; ++r) {
      __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo,
                                      _mm512_load_si512(q + r * qs));
      if constexpr (B == 4)
        s = _mm512_dpbusd_epi32(s, hi, _mm512_load_si512(q + r * qs + 64));
      tot[r][c] = _mm512_fmadd_ps(
          _mm512_cvtepi32_ps(s), _mm512_mul_ps(sw, _mm512_load_ps(xsc + r * xss)),
          tot[r][c]);
    }
  }
}

/// The VNNI product of all R rows of x with weight rows [from, to) in
/// blocks of C; the zero points come off per group at the start
/// (s_w · z · s_x · Σq).
template <int B, int R, int C, bool F16>
MOE_TVNNI void vnniRows(const detail::DecodeProduct &p, int64_t from,
                        int64_t to) {
  constexpr int E = B == 4 ? 128 : 64;
  const PackedActivations &a = *p.a;
  const int64_t chunks = a.chunks, g = a.format.groupSize;
  const int64_t gpr = p.groupsPerRow;
  const int64_t cpg = g >= E ? g / E : 1, gpc = g < E ? E / g : 1;
  alignas(64) int32_t idx[16];
  for (int l = 0; l < 16; ++l)
    idx[l] = int32_t(l * gpc / 16);
  const __m512i lanes = _mm512_load_si512(idx);
  const uint8_t *pfLast = p.codes + p.c1 * p.rowBytes - 64;
  const uint8_t *pfStop = p.codes + p.c1 * p.rowBytes - 64 * C;
  const int64_t rb = p.rowBytes, xss = chunks * 16;
  constexpr int64_t esz = F16 ? 2 : 4;
  const int64_t ss = gpr * esz;
  primePrefetch(p.codes + from * rb, p.codes + p.c1 * rb);
  for (int64_t col = from; col < to; col += C) {
    const uint8_t *rows[C];
    int64_t limit[C];
    for (int c = 0; c < C; ++c) {
      rows[c] = p.codes + (col + c) * p.rowBytes;
      limit[c] = (p.outFeatures - col - c) * p.rowBytes;
    }
    const int64_t plain = std::min(
        chunks, limit[C - 1] >= 64 ? (limit[C - 1] - 64) / 64 + 1 : 0);
    __m512 tot[R][C];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c)
        tot[r][c] = _mm512_setzero_ps();
    for (int64_t gb = 0; gb < gpr; gb += 16) {
      const int64_t rem = gpr - gb;
      const __mmask16 m =
          rem >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << rem) - 1);
      for (int c = 0; c < C; ++c) {
        const int64_t at = (col + c) * gpr + gb;
        __m512 sz = _mm512_mul_ps(scales16(p, at, m), zeros16(p, at, m));
        for (int r = 0; r < R; ++r)
          tot[r][c] = _mm512_fnmadd_ps(
              sz, _mm512_load_ps(a.sx + r * a.sxStride + gb), tot[r][c]);
      }
    }
    const uint8_t *at = rows[0], *cursor = rows[0] + kPrefetchBytes;
    const uint8_t *sp = p.scales + esz * col * gpr;
    const int8_t *qc = a.q;
    const float *xsc = a.xs;
    int64_t ch = 0;
    if (gpc > 1) {
      // As in rows512: 16 groups' scales converted once per 16/gpc chunks.
      alignas(64) float sbuf[C][16];
      for (; ch < plain && ch + 1 < chunks; ++ch, at += 64, qc += E, xsc += 16) {
        const int64_t first = (ch * gpc) % 16;
        if (first == 0)
          for (int c = 0; c < C; ++c) {
            const int64_t rem = gpr - ch * gpc;
            _mm512_store_ps(
                sbuf[c], scales16(p, (col + c) * gpr + ch * gpc,
                                  rem >= 16 ? __mmask16(0xFFFF)
                                            : __mmask16((1u << rem) - 1)));
          }
        prefetchRun<C>(cursor, pfStop, C * 64);
        const __m512i pick =
            _mm512_add_epi32(lanes, _mm512_set1_epi32(int32_t(first)));
        vnniBulk<B, R, C, F16, true>(pick, sbuf, at, rb, sp, ss, qc,
                                     a.qStride, xsc, xss, tot);
      }
      for (; ch < chunks; ++ch)
        vnniChunk<B, R, C, F16, true, true>(p, col, rows, ch, 0, limit,
                                            pfLast, gpc, lanes, tot);
    } else {
      // cpg chunks per group (the prepared x has whole groups).
      for (; ch < plain; ++ch, at += 64, qc += E, xsc += 16) {
        prefetchRun<C>(cursor, pfStop, C * 64);
        vnniBulk<B, R, C, F16, false>(lanes, nullptr, at, rb,
                                      sp + esz * (ch / cpg), ss, qc,
                                      a.qStride, xsc, xss, tot);
      }
      for (; ch < chunks; ++ch)
        vnniChunk<B, R, C, F16, true, false>(p, col, rows, ch, ch / cpg,
                                             limit, pfLast, gpc, lanes, tot);
    }
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c)
        p.y[r * p.outFeatures + col + c] =
            hsum512(tot[r][c]) + (p.bias ? p.bias[col + c] : 0.0f);
  }
}

template <int B, int R, bool F16>
void vnniBlocksAs(const detail::DecodeProduct &p) {
  constexpr int C = R <= 2 ? 4 : R <= 4 ? 2 : 1;
  const int64_t mid = p.c0 + (p.c1 - p.c0) / C * C;
  if (mid > p.c0)
    vnniRows<B, R, C, F16>(p, p.c0, mid);
  if constexpr (C > 1)
    if (mid < p.c1)
      vnniRows<B, R, 1, F16>(p, mid, p.c1);
}

template <int B, int R> void vnniBlocks(const detail::DecodeProduct &p) {
  if (p.a->format.f16Scales)
    vnniBlocksAs<B, R, true>(p);
  else
    vnniBlocksAs<B, R, false>(p);
}

template <int B> void vnni(const detail::DecodeProduct &p) {
  switch (p.a->n) {
  case 1:
    vnniBlocks<B, 1>(p);
    break;
  case 2:
    vnniBlocks<B, 2>(p);
    break;
  case 3:
    vnniBlocks<B, 3>(p);
    break;
  case 4:
    vnniBlocks<B, 4>(p);
    break;
  case 5:
    vnniBlocks<B, 5>(p);
    break;
  case 6:
    vnniBlocks<B, 6>(p);
    break;
  default:
    vnniBlocks<B, 7>(p);
    break;
  }
}

void decodeVnni(const detail::DecodeProduct &p) {
  if (p.a->format.bits == 4)
    vnni<4>(p);
  else
    vnni<8>(p);
}

//--- prefill: dequantised rows -----------------------------------------------

/// 16 codes starting at code index j of a row, as floats.
MOE_T512_INLINE __m512 loadCodes(const uint8_t *row, int bits, int64_t j) {
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

/// Row `row` of a packed int8/int4 matrix as floats.
MOE_T512 void dequantRow512(const uint8_t *codes, const uint8_t *scales,
                            const uint8_t *zeros, const QuantFormat &f,
                            int64_t groupsPerRow, int64_t row, float *out) {
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

/// 16 bfloat16 values widened to float.
MOE_T512 void storeBf16Widened(const uint16_t *w, float *out) {
  __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(w));
  _mm512_storeu_ps(out, _mm512_castsi512_ps(
                            _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
}

} // namespace

bool dequantizeRowAvx512(const uint8_t *packed, const QuantFormat &f,
                         int64_t rows, int64_t cols, int64_t row, float *out) {
  if (quantLevel() != GemmLevel::Avx512)
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

#else // !MOE_QUANT_X86

namespace detail {
void decodeAvx512(const DecodeProduct &) {}
void decodeAvx2(const DecodeProduct &) {}
void bf16DecodeAvx2(const float *, int64_t, int64_t, const uint16_t *, int64_t,
                    const float *, float *, int64_t, int64_t) {}
} // namespace detail

bool dequantizeRowAvx512(const uint8_t *, const QuantFormat &, int64_t,
                         int64_t, int64_t, float *) {
  return false;
}

#endif

//===----------------------------------------------------------------------===//
// Dispatch
//===----------------------------------------------------------------------===//

void linearPackedPrepared(const PackedActivations &a, const uint8_t *packed,
                          const QuantFormat &f, int64_t outFeatures,
                          const float *bias, float *y, int64_t c0, int64_t c1) {
  if (c0 >= c1)
    return;
  QuantLayout l = quantLayout(f, outFeatures, a.k);
  detail::DecodeProduct p{&a,
                          packed,
                          packed + l.scalesOffset,
                          packed + l.zerosOffset,
                          l.rowBytes,
                          l.groupsPerRow,
                          outFeatures,
                          bias,
                          y,
                          c0,
                          c1};
#ifdef MOE_QUANT_X86
  if (a.int8) {
    decodeVnni(p);
    return;
  }
#endif
  if (a.level == GemmLevel::Avx512)
    detail::decodeAvx512(p);
  else
    detail::decodeAvx2(p);
}

bool linearPackedBf16(const float *x, int64_t n, int64_t k,
                      const uint8_t *packed, int64_t outFeatures,
                      const float *bias, float *y, int64_t c0, int64_t c1) {
  GemmLevel lv = quantLevel();
  if (lv == GemmLevel::Scalar)
    return false;
  const uint16_t *w = reinterpret_cast<const uint16_t *>(packed);
  for (int64_t r0 = 0; r0 < n; r0 += 4) {
    int64_t rows = std::min<int64_t>(4, n - r0);
    const float *xr = x + r0 * k;
    float *yr = y + r0 * outFeatures;
#ifdef MOE_QUANT_X86
    if (lv == GemmLevel::Avx512) {
      switch (rows) {
      case 1:
        bf16Rows512<1>(xr, k, w, outFeatures, bias, yr, c0, c1);
        break;
      case 2:
        bf16Rows512<2>(xr, k, w, outFeatures, bias, yr, c0, c1);
        break;
      case 3:
        bf16Rows512<3>(xr, k, w, outFeatures, bias, yr, c0, c1);
        break;
      default:
        bf16Rows512<4>(xr, k, w, outFeatures, bias, yr, c0, c1);
        break;
      }
      continue;
    }
#endif
    detail::bf16DecodeAvx2(xr, rows, k, w, outFeatures, bias, yr, c0, c1);
  }
  return true;
}

} // namespace moe::kernels::cpu
