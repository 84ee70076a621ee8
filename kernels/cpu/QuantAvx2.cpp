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

/// As in QuantFast.cpp.
constexpr int64_t kPrefetchBytes = 16384;

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

/// Position J of the lanes of one weight row's chunk (column c) times R
/// rows of x.
template <int B, int R, int C, int NA, int J>
MOE_T256_INLINE void position256(__m256i d, int c, const float *const (&x)[R],
                                 int64_t off, __m256 (&acc)[R][C][NA]) {
  __m256 w = codeAt256<B, J>(d);
  for (int r = 0; r < R; ++r)
    acc[r][c][J % NA] = _mm256_fmadd_ps(
        w, _mm256_loadu_ps(x[r] + off + 8 * J), acc[r][c][J % NA]);
}

/// Chunk `ch` of C weight rows times R rows of x into acc. Checked: the
/// last chunks of the matrix (`limit[c]`: bytes from row c to the end of
/// the codes); otherwise the loads are inside the codes and the rows are
/// prefetched ahead (never past `pfLast`).
template <int B, int R, int C, int NA, bool Checked, int... J>
MOE_T256_INLINE void chunk256(const uint8_t *const (&rows)[C], int64_t ch,
                              const int64_t (&limit)[C], const uint8_t *pfLast,
                              const float *const (&x)[R],
                              __m256 (&acc)[R][C][NA],
                              std::integer_sequence<int, J...>) {
  constexpr int P = codesPerLane(B), CB = B == 3 ? 24 : 32;
  // The 3-bit loads read 28 bytes from a chunk's start.
  constexpr int kRead = B == 3 ? 28 : 32;
  for (int c = 0; c < C; ++c) {
    const uint8_t *at = rows[c] + ch * CB;
    __m256i d;
    if constexpr (Checked) {
      d = loadChunk256<B>(at, limit[c] - ch * CB,
                          ch * CB + kRead <= limit[c]);
    } else {
      const uint8_t *pf = at + kPrefetchBytes;
      _mm_prefetch(reinterpret_cast<const char *>(pf < pfLast ? pf : pfLast),
                   _MM_HINT_T0);
      d = loadChunk256<B>(at, CB, true);
    }
    (position256<B, R, C, NA, J>(d, c, x, ch * P * 8, acc), ...);
  }
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

/// Scales (as floats) and zero points of `count` (≤ 8) groups from `at`,
/// zero past them: vector loads inside the arrays, else element by element.
MOE_T256_INLINE void groups8(const detail::DecodeProduct &p, int64_t at,
                             int64_t count, __m256 &scale, __m256 &zero) {
  const QuantFormat &f = p.a->format;
  const float mid = float(1 << (f.bits - 1));
  if (count == 8 && at + 8 <= p.outFeatures * p.groupsPerRow) {
    scale = f.f16Scales
                ? _mm256_cvtph_ps(_mm_loadu_si128(
                      reinterpret_cast<const __m128i *>(p.scales + 2 * at)))
                : _mm256_loadu_ps(reinterpret_cast<const float *>(p.scales) +
                                  at);
    zero = f.zeroPoints
               ? _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(
                     reinterpret_cast<const __m128i *>(p.zeros + at))))
               : _mm256_set1_ps(mid);
    return;
  }
  alignas(32) float s[8] = {}, z[8] = {};
  for (int64_t i = 0; i < count; ++i) {
    if (f.f16Scales) {
      uint16_t h;
      std::memcpy(&h, p.scales + 2 * (at + i), 2);
      s[i] = halfToFloat(h);
    } else {
      std::memcpy(&s[i], p.scales + 4 * (at + i), 4);
    }
    z[i] = f.zeroPoints ? float(p.zeros[at + i]) : mid;
  }
  scale = _mm256_load_ps(s);
  zero = _mm256_load_ps(z);
}

/// The scale of group `at` in every lane.
MOE_T256_INLINE __m256 scale1(const detail::DecodeProduct &p, int64_t at) {
  if (p.a->format.f16Scales) {
    uint16_t h;
    std::memcpy(&h, p.scales + 2 * at, 2);
    return _mm256_cvtph_ps(_mm_set1_epi16(short(h)));
  }
  return _mm256_broadcast_ss(reinterpret_cast<const float *>(p.scales) + at);
}

template <int R, int C, int NA>
MOE_T256_INLINE void foldGroup(const detail::DecodeProduct &p, int64_t col,
                               int64_t gi, __m256 (&acc)[R][C][NA],
                               __m256 (&tot)[R][C]) {
  for (int c = 0; c < C; ++c) {
    __m256 s = scale1(p, (col + c) * p.groupsPerRow + gi);
    for (int r = 0; r < R; ++r)
      tot[r][c] = _mm256_fmadd_ps(sumAcc(acc, r, c), s, tot[r][c]);
  }
  clearAcc(acc);
}

/// Chunk ch holds gpc groups (lane l: group l·gpc/8).
template <int R, int C, int NA>
MOE_T256_INLINE void foldLanes(const detail::DecodeProduct &p, int64_t col,
                               int64_t ch, int64_t gpc, __m256i lanes,
                               __m256 (&acc)[R][C][NA], __m256 (&tot)[R][C]) {
  const int64_t rem = p.groupsPerRow - ch * gpc;
  for (int c = 0; c < C; ++c) {
    __m256 s, z;
    groups8(p, (col + c) * p.groupsPerRow + ch * gpc, rem >= gpc ? gpc : rem,
            s, z);
    s = _mm256_permutevar8x32_ps(s, lanes);
    for (int r = 0; r < R; ++r)
      tot[r][c] = _mm256_fmadd_ps(sumAcc(acc, r, c), s, tot[r][c]);
  }
  clearAcc(acc);
}

/// Decode product of all R rows of x with weight rows [from, to) in blocks
/// of C.
template <int B, int R, int C>
MOE_T256 void rows256(const detail::DecodeProduct &p, int64_t from,
                      int64_t to) {
  constexpr int P = codesPerLane(B), E = 8 * P;
  constexpr int64_t CB = B == 3 ? 24 : 32, kRead = B == 3 ? 28 : 32;
  constexpr int NA = R == 1 ? 2 : 1;
  using Positions = std::make_integer_sequence<int, P>;
  const PackedActivations &a = *p.a;
  const int64_t chunks = a.chunks, g = a.format.groupSize;
  const int64_t gpr = p.groupsPerRow;
  const float *x[R];
  for (int r = 0; r < R; ++r)
    x[r] = a.xp + r * a.xpStride;
  const int64_t cpg = g >= E ? g / E : 1, gpc = g < E ? E / g : 1;
  alignas(32) int32_t idx[8];
  for (int l = 0; l < 8; ++l)
    idx[l] = int32_t(l * gpc / 8);
  const __m256i lanes =
      _mm256_load_si256(reinterpret_cast<const __m256i *>(idx));
  const uint8_t *pfLast = p.codes + p.c1 * p.rowBytes - 64;

  for (int64_t col = from; col < to; col += C) {
    const uint8_t *rows[C];
    int64_t limit[C];
    for (int c = 0; c < C; ++c) {
      rows[c] = p.codes + (col + c) * p.rowBytes;
      limit[c] = (p.outFeatures - col - c) * p.rowBytes;
    }
    const int64_t plain = std::min(
        chunks, limit[C - 1] >= kRead ? (limit[C - 1] - kRead) / CB + 1 : 0);

    // Start from −Σ_g s·z·Σx.
    __m256 tot[R][C];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c)
        tot[r][c] = _mm256_setzero_ps();
    for (int64_t gb = 0; gb < gpr; gb += 8)
      for (int c = 0; c < C; ++c) {
        __m256 sc, z;
        groups8(p, (col + c) * gpr + gb, std::min<int64_t>(8, gpr - gb), sc,
                z);
        __m256 sz = _mm256_mul_ps(sc, z);
        for (int r = 0; r < R; ++r)
          tot[r][c] = _mm256_fnmadd_ps(
              sz, _mm256_loadu_ps(a.sx + r * a.sxStride + gb), tot[r][c]);
      }

    __m256 acc[R][C][NA];
    clearAcc(acc);
    int64_t ch = 0;
    if (gpc > 1) {
      // The scales of 8 groups (8/gpc chunks) of each row are converted
      // once; each chunk's lanes pick theirs with a shifted index.
      alignas(32) float sbuf[C][8] = {};
      for (; ch < plain && ch + 1 < chunks; ++ch) {
        const int64_t first = (ch * gpc) % 8;
        if (first == 0)
          for (int c = 0; c < C; ++c) {
            __m256 sc, z;
            groups8(p, (col + c) * gpr + ch * gpc,
                    std::min<int64_t>(8, gpr - ch * gpc), sc, z);
            _mm256_store_ps(sbuf[c], sc);
          }
        chunk256<B, R, C, NA, false>(rows, ch, limit, pfLast, x, acc,
                                     Positions());
        const __m256i pick =
            _mm256_add_epi32(lanes, _mm256_set1_epi32(int32_t(first)));
        for (int c = 0; c < C; ++c) {
          __m256 sc =
              _mm256_permutevar8x32_ps(_mm256_load_ps(sbuf[c]), pick);
          for (int r = 0; r < R; ++r)
            tot[r][c] = _mm256_fmadd_ps(sumAcc(acc, r, c), sc, tot[r][c]);
        }
        clearAcc(acc);
      }
      for (; ch < chunks; ++ch) {
        chunk256<B, R, C, NA, true>(rows, ch, limit, pfLast, x, acc,
                                    Positions());
        foldLanes(p, col, ch, gpc, lanes, acc, tot);
      }
    } else if (cpg == 1) {
      for (; ch < plain; ++ch) {
        chunk256<B, R, C, NA, false>(rows, ch, limit, pfLast, x, acc,
                                     Positions());
        foldGroup(p, col, ch, acc, tot);
      }
      for (; ch < chunks; ++ch) {
        chunk256<B, R, C, NA, true>(rows, ch, limit, pfLast, x, acc,
                                    Positions());
        foldGroup(p, col, ch, acc, tot);
      }
    } else {
      int64_t gi = 0;
      for (; (gi + 1) * cpg <= plain; ++gi) {
        for (ch = gi * cpg; ch < (gi + 1) * cpg; ++ch)
          chunk256<B, R, C, NA, false>(rows, ch, limit, pfLast, x, acc,
                                       Positions());
        foldGroup(p, col, gi, acc, tot);
      }
      for (; gi < gpr; ++gi) {
        for (ch = gi * cpg; ch < std::min(chunks, (gi + 1) * cpg); ++ch)
          chunk256<B, R, C, NA, true>(rows, ch, limit, pfLast, x, acc,
                                      Positions());
        foldGroup(p, col, gi, acc, tot);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c)
        p.y[r * p.outFeatures + col + c] =
            hsum256(tot[r][c]) + (p.bias ? p.bias[col + c] : 0.0f);
  }
}

template <int B, int R, int C> void blocks256(const detail::DecodeProduct &p) {
  const int64_t mid = p.c0 + (p.c1 - p.c0) / C * C;
  if (mid > p.c0)
    rows256<B, R, C>(p, p.c0, mid);
  if constexpr (C > 1)
    if (mid < p.c1)
      rows256<B, R, 1>(p, mid, p.c1);
}

template <int B> void decode256(const detail::DecodeProduct &p) {
  // All rows of x at once (the weights are read once); two weight rows per
  // block for one or two rows of x (16 registers).
  switch (p.a->n) {
  case 1:
    blocks256<B, 1, 2>(p);
    break;
  case 2:
    blocks256<B, 2, 2>(p);
    break;
  case 3:
    blocks256<B, 3, 1>(p);
    break;
  case 4:
    blocks256<B, 4, 1>(p);
    break;
  case 5:
    blocks256<B, 5, 1>(p);
    break;
  case 6:
    blocks256<B, 6, 1>(p);
    break;
  default:
    blocks256<B, 7, 1>(p);
    break;
  }
}

template <int R, int C>
MOE_T256 void bf16Tile256(const float *x, int64_t k, const uint16_t *w,
                          int64_t col, const float *bias, int64_t outFeatures,
                          float *y, const char *end) {
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c)
      acc[r][c] = _mm256_setzero_ps();
  int64_t j = 0;
  // Rows [col, col + C) are contiguous: prefetch a linear run ahead of
  // them (not past `end`).
  const char *cursor =
      reinterpret_cast<const char *>(w + col * k) + kPrefetchBytes;
  for (; j + 8 <= k; j += 8) {
    if ((j & 31) == 0) {
      if (cursor < end)
        for (int c = 0; c < C; ++c)
          _mm_prefetch(cursor + 64 * c, _MM_HINT_T0);
      cursor += 64 * C;
    }
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
  const char *end = reinterpret_cast<const char *>(w + c1 * k) - 64;
  auto run = [&](auto rows) {
    constexpr int R = decltype(rows)::value;
    int64_t c = c0;
    for (; c + 2 <= c1; c += 2)
      bf16Tile256<R, 2>(x, k, w, c, bias, outFeatures, y, end);
    for (; c < c1; ++c)
      bf16Tile256<R, 1>(x, k, w, c, bias, outFeatures, y, end);
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
