//===- QuantAvx2.cpp - AVX2 products with packed weight matrices ----------===//
//
// The AVX2+FMA+F16C level of the decode products of QuantFast.h: the same
// scheme as the AVX-512 kernels of QuantFast.cpp on 8 lanes (a chunk is 8
// lanes of P codes; x prepared for 8 lanes), with fewer accumulators (16
// registers) and the last chunk of a row copied to a zero-padded buffer
// instead of masked loads. Compiled with target attributes and used only
// when the CPU reports the features.
//
//===----------------------------------------------------------------------===//

#include "kernels/cpu/QuantFast.h"

#include "kernels/cpu/Half.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

namespace moe::kernels::cpu {
namespace {

#define MOE_T256 __attribute__((target("avx2,fma,f16c")))
#define MOE_T256_INLINE                                                        \
  __attribute__((target("avx2,fma,f16c"), always_inline)) inline

constexpr int codesPerLane(int bits) { return bits == 3 ? 8 : 32 / bits; }

MOE_T256_INLINE float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/// A chunk of codes as 8 lanes of P codes. `safe`: the loads stay inside
/// the codes (bytes past the row only meet zeros of x'); otherwise the
/// `bytes` left in the codes are copied to a zeroed buffer first.
template <int B>
MOE_T256_INLINE __m256i loadChunk256(const uint8_t *p, int64_t bytes,
                                     bool safe) {
  constexpr int CB = B == 3 ? 24 : 32;
  alignas(32) uint8_t buf[32];
  if (!safe) {
    std::memset(buf, 0, sizeof buf);
    std::memcpy(buf, p, size_t(std::min<int64_t>(bytes, CB)));
    p = buf;
  }
  if constexpr (B == 3) {
    // 8 24-bit words: bytes 0..11 to the low 128-bit half, 12..23 to the
    // high half, then word j of a half to lane j.
    __m256i v = _mm256_loadu2_m128i(reinterpret_cast<const __m128i *>(p + 12),
                                    reinterpret_cast<const __m128i *>(p));
    const __m256i shuf = _mm256_setr_epi8(
        0, 1, 2, -128, 3, 4, 5, -128, 6, 7, 8, -128, 9, 10, 11, -128, 0, 1, 2,
        -128, 3, 4, 5, -128, 6, 7, 8, -128, 9, 10, 11, -128);
    return _mm256_shuffle_epi8(v, shuf);
  } else {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p));
  }
}

template <int B, int J> MOE_T256_INLINE __m256 codeAt256(__m256i d) {
  constexpr int P = codesPerLane(B);
  if constexpr (J == P - 1)
    return _mm256_cvtepi32_ps(_mm256_srli_epi32(d, B * J));
  else
    return _mm256_cvtepi32_ps(
        _mm256_and_si256(d, _mm256_set1_epi32(((1 << B) - 1) << (B * J))));
}

template <int B, int R, int C, int NA, int J>
MOE_T256_INLINE void position256(const __m256i (&d)[C],
                                 const float *const (&x)[R], int64_t off,
                                 __m256 (&acc)[R][C][NA]) {
  __m256 xv[R];
  for (int r = 0; r < R; ++r)
    xv[r] = _mm256_loadu_ps(x[r] + off + 8 * J);
  for (int c = 0; c < C; ++c) {
    __m256 w = codeAt256<B, J>(d[c]);
    for (int r = 0; r < R; ++r)
      acc[r][c][J % NA] = _mm256_fmadd_ps(w, xv[r], acc[r][c][J % NA]);
  }
}

/// Chunk `ch` of C weight rows; `limit[c]`: bytes from the start of row c
/// to the end of the codes.
template <int B, int R, int C, int NA, int... J>
MOE_T256_INLINE void chunk256(const uint8_t *const (&rows)[C], int64_t ch,
                              const int64_t (&limit)[C],
                              const float *const (&x)[R],
                              __m256 (&acc)[R][C][NA],
                              std::integer_sequence<int, J...>) {
  constexpr int P = codesPerLane(B), CB = B == 3 ? 24 : 32;
  // The 3-bit loads read 28 bytes from a chunk's start.
  constexpr int kRead = B == 3 ? 28 : 32;
  __m256i d[C];
  for (int c = 0; c < C; ++c)
    d[c] = loadChunk256<B>(rows[c] + ch * CB, limit[c] - ch * CB,
                           ch * CB + kRead <= limit[c]);
  (position256<B, R, C, NA, J>(d, x, ch * P * 8, acc), ...);
}

template <int R, int C, int NA>
MOE_T256_INLINE void clearAcc(__m256 (&acc)[R][C][NA]) {
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c)
      for (int i = 0; i < NA; ++i)
        acc[r][c][i] = _mm256_setzero_ps();
}

template <int R, int C, int NA>
MOE_T256_INLINE __m256 sumAcc(const __m256 (&acc)[R][C][NA], int r, int c) {
  __m256 s = acc[r][c][0];
  for (int i = 1; i < NA; ++i)
    s = _mm256_add_ps(s, acc[r][c][i]);
  return s;
}

template <int C>
MOE_T256 void scales256(const detail::DecodeProduct &p, int64_t col, float *sf,
                        float *szf, int64_t stride) {
  const QuantFormat &f = p.a->format;
  const int64_t gpr = p.groupsPerRow;
  const float mid = float(1 << (f.bits - 1));
  for (int c = 0; c < C; ++c) {
    const int64_t base = (col + c) * gpr;
    float *s = sf + c * stride, *sz = szf + c * stride;
    int64_t g = 0;
    for (; g + 8 <= gpr; g += 8) {
      __m256 v =
          f.f16Scales
              ? _mm256_cvtph_ps(_mm_loadu_si128(
                    reinterpret_cast<const __m128i *>(p.scales + 2 * (base + g))))
              : _mm256_loadu_ps(
                    reinterpret_cast<const float *>(p.scales) + base + g);
      __m256 z = _mm256_set1_ps(mid);
      if (f.zeroPoints)
        z = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(
            reinterpret_cast<const __m128i *>(p.zeros + base + g))));
      _mm256_storeu_ps(s + g, v);
      _mm256_storeu_ps(sz + g, _mm256_mul_ps(v, z));
    }
    for (; g < gpr; ++g) {
      float v;
      if (f.f16Scales) {
        uint16_t h;
        std::memcpy(&h, p.scales + 2 * (base + g), 2);
        v = halfToFloat(h);
      } else {
        std::memcpy(&v, p.scales + 4 * (base + g), 4);
      }
      s[g] = v;
      sz[g] = v * (f.zeroPoints ? float(p.zeros[base + g]) : mid);
    }
    for (; g < stride; ++g)
      s[g] = sz[g] = 0.0f;
  }
}

template <int B, int R, int C>
MOE_T256 void tile256(const detail::DecodeProduct &p, int64_t r0, int64_t col,
                      const float *sf, const float *szf, int64_t stride) {
  constexpr int P = codesPerLane(B), E = 8 * P;
  constexpr int NA = R == 1 ? 2 : 1;
  using Positions = std::make_integer_sequence<int, P>;
  const PackedActivations &a = *p.a;
  const int64_t chunks = a.chunks, g = a.format.groupSize;
  const float *x[R];
  for (int r = 0; r < R; ++r)
    x[r] = a.xp + (r0 + r) * a.xpStride;
  // Reads may run past a row (into codes that meet zeros of x') but not
  // past the last row of the matrix.
  const uint8_t *rows[C];
  int64_t limit[C];
  for (int c = 0; c < C; ++c) {
    rows[c] = p.codes + (col + c) * p.rowBytes;
    limit[c] = (p.outFeatures - col - c) * p.rowBytes;
  }

  __m256 tot[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c)
      tot[r][c] = _mm256_setzero_ps();
  for (int64_t gb = 0; gb < a.sxStride; gb += 8)
    for (int c = 0; c < C; ++c) {
      __m256 sz = _mm256_loadu_ps(szf + c * stride + gb);
      for (int r = 0; r < R; ++r)
        tot[r][c] = _mm256_fnmadd_ps(
            sz, _mm256_loadu_ps(a.sx + (r0 + r) * a.sxStride + gb),
            tot[r][c]);
    }

  __m256 acc[R][C][NA];
  if (g >= E) {
    const int64_t cpg = g / E;
    for (int64_t gi = 0; gi < p.groupsPerRow; ++gi) {
      clearAcc(acc);
      const int64_t ch1 = std::min(chunks, (gi + 1) * cpg);
      for (int64_t ch = gi * cpg; ch < ch1; ++ch)
        chunk256<B, R, C, NA>(rows, ch, limit, x, acc, Positions());
      for (int c = 0; c < C; ++c) {
        __m256 s = _mm256_broadcast_ss(sf + c * stride + gi);
        for (int r = 0; r < R; ++r)
          tot[r][c] = _mm256_fmadd_ps(sumAcc(acc, r, c), s, tot[r][c]);
      }
    }
  } else {
    const int64_t gpc = E / g;
    alignas(32) int32_t idx[8];
    for (int l = 0; l < 8; ++l)
      idx[l] = int32_t(l * gpc / 8);
    const __m256i lanesGroup =
        _mm256_load_si256(reinterpret_cast<const __m256i *>(idx));
    for (int64_t ch = 0; ch < chunks; ++ch) {
      clearAcc(acc);
      chunk256<B, R, C, NA>(rows, ch, limit, x, acc, Positions());
      for (int c = 0; c < C; ++c) {
        __m256 s = _mm256_permutevar8x32_ps(
            _mm256_loadu_ps(sf + c * stride + ch * gpc), lanesGroup);
        for (int r = 0; r < R; ++r)
          tot[r][c] = _mm256_fmadd_ps(sumAcc(acc, r, c), s, tot[r][c]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c)
      p.y[(r0 + r) * p.outFeatures + col + c] =
          hsum256(tot[r][c]) + (p.bias ? p.bias[col + c] : 0.0f);
}

template <int B, int C>
MOE_T256 void columns256(const detail::DecodeProduct &p, int64_t col) {
  const int64_t stride = p.a->sxStride + 16;
  float *sf = p.scratch, *szf = p.scratch + 4 * stride;
  scales256<C>(p, col, sf, szf, stride);
  const int64_t n = p.a->n;
  for (int64_t r0 = 0; r0 < n; r0 += 4) {
    switch (std::min<int64_t>(4, n - r0)) {
    case 1:
      tile256<B, 1, C>(p, r0, col, sf, szf, stride);
      break;
    case 2:
      tile256<B, 2, C>(p, r0, col, sf, szf, stride);
      break;
    case 3:
      tile256<B, 3, 1>(p, r0, col, sf, szf, stride);
      if constexpr (C == 2)
        tile256<B, 3, 1>(p, r0, col + 1, sf + stride, szf + stride, stride);
      break;
    default:
      tile256<B, 4, 1>(p, r0, col, sf, szf, stride);
      if constexpr (C == 2)
        tile256<B, 4, 1>(p, r0, col + 1, sf + stride, szf + stride, stride);
      break;
    }
  }
}

template <int B> void decode256(const detail::DecodeProduct &p) {
  int64_t col = p.c0;
  for (; col + 2 <= p.c1; col += 2)
    columns256<B, 2>(p, col);
  for (; col < p.c1; ++col)
    columns256<B, 1>(p, col);
}

template <int R, int C>
MOE_T256 void bf16Tile256(const float *x, int64_t k, const uint16_t *w,
                          int64_t col, const float *bias, int64_t outFeatures,
                          float *y) {
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c)
      acc[r][c] = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= k; j += 8) {
    __m256 v[C];
    for (int c = 0; c < C; ++c)
      v[c] = _mm256_castsi256_ps(_mm256_slli_epi32(
          _mm256_cvtepu16_epi32(_mm_loadu_si128(
              reinterpret_cast<const __m128i *>(w + (col + c) * k + j))),
          16));
    for (int r = 0; r < R; ++r) {
      __m256 xv = _mm256_loadu_ps(x + r * k + j);
      for (int c = 0; c < C; ++c)
        acc[r][c] = _mm256_fmadd_ps(xv, v[c], acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      float s = hsum256(acc[r][c]);
      for (int64_t i = j; i < k; ++i)
        s += x[r * k + i] * bf16ToFloat(w[(col + c) * k + i]);
      y[r * outFeatures + col + c] = s + (bias ? bias[col + c] : 0.0f);
    }
}

} // namespace

namespace detail {

void decodeAvx2(const DecodeProduct &p) {
  switch (p.a->format.bits) {
  case 8:
    decode256<8>(p);
    break;
  case 4:
    decode256<4>(p);
    break;
  case 3:
    decode256<3>(p);
    break;
  default:
    decode256<2>(p);
    break;
  }
}

void bf16DecodeAvx2(const float *x, int64_t n, int64_t k, const uint16_t *w,
                    int64_t outFeatures, const float *bias, float *y,
                    int64_t c0, int64_t c1) {
  auto run = [&](auto rows) {
    constexpr int R = decltype(rows)::value;
    int64_t c = c0;
    for (; c + 2 <= c1; c += 2)
      bf16Tile256<R, 2>(x, k, w, c, bias, outFeatures, y);
    for (; c < c1; ++c)
      bf16Tile256<R, 1>(x, k, w, c, bias, outFeatures, y);
  };
  switch (n) {
  case 1:
    run(std::integral_constant<int, 1>());
    break;
  case 2:
    run(std::integral_constant<int, 2>());
    break;
  case 3:
    run(std::integral_constant<int, 3>());
    break;
  default:
    run(std::integral_constant<int, 4>());
    break;
  }
}

} // namespace detail
} // namespace moe::kernels::cpu

#endif
