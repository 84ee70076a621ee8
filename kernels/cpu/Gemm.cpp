//===- Gemm.cpp - Register-blocked float32 products with runtime dispatch -===//
//
// Two layouts: `linear` (y = x·wᵀ, w [N, K] row-major, PyTorch's [out, in],
// the expert and nn.linear layout) as 4×4 blocks of dot products, and
// `matmul` (c = a·b, b [K, N]) as 4-row × 32-column blocks of broadcast
// FMAs. Each has an AVX-512 and an AVX2+FMA path compiled with target
// attributes (no -march flag needed) and chosen once from what the CPU
// reports; the scalar code of Matmul.cpp is the reference.
//
//===----------------------------------------------------------------------===//

#include "kernels/cpu/Gemm.h"

#include "kernels/cpu/Half.h"

#include <algorithm>
#include <atomic>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MOE_GEMM_X86 1
#endif

namespace moe::kernels::cpu {

namespace {

std::atomic<int> forcedLevel{-1};

GemmLevel detectLevel() {
#ifdef MOE_GEMM_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f"))
    return GemmLevel::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return GemmLevel::Avx2;
#endif
  return GemmLevel::Scalar;
}

} // namespace

GemmLevel gemmLevel() {
  static const GemmLevel detected = detectLevel();
  int forced = forcedLevel.load(std::memory_order_relaxed);
  if (forced >= 0 && forced < int(detected))
    return GemmLevel(forced);
  return detected;
}

const char *gemmLevelName(GemmLevel level) {
  switch (level) {
  case GemmLevel::Avx512:
    return "avx512";
  case GemmLevel::Avx2:
    return "avx2";
  case GemmLevel::Scalar:
    break;
  }
  return "scalar";
}

void setGemmLevelLimit(std::optional<GemmLevel> level) {
  forcedLevel.store(level ? int(*level) : -1);
}

#ifdef MOE_GEMM_X86
// GCC 12's AVX-512 headers trip -Wuninitialized on their own placeholder
// operands (_mm512_undefined_*) when the intrinsics are inlined here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace {

//--- linear: y[r, j] = dot(x[r], w[j]) + bias[j] ----------------------------

/// Sum of the 16 lanes (GCC 12's _mm512_reduce_add_ps trips
/// -Wmaybe-uninitialized inside its own header when inlined here).
__attribute__((target("avx512f"))) inline float hsum512(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  float s0 = (t[0] + t[1]) + (t[2] + t[3]), s1 = (t[4] + t[5]) + (t[6] + t[7]);
  float s2 = (t[8] + t[9]) + (t[10] + t[11]);
  float s3 = (t[12] + t[13]) + (t[14] + t[15]);
  return (s0 + s1) + (s2 + s3);
}

/// Within each 128-bit block: (sum of a's block, of b's, of c's, of d's).
__attribute__((target("avx512f"))) inline __m512 reduce4(__m512 a, __m512 b,
                                                         __m512 c, __m512 d) {
  __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  return _mm512_add_ps(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),
                       _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
}

/// Lane i = the sum of the 16 lanes of the i-th argument.
__attribute__((target("avx512f"))) inline __m512
reduce16(__m512 v0, __m512 v1, __m512 v2, __m512 v3, __m512 v4, __m512 v5,
         __m512 v6, __m512 v7, __m512 v8, __m512 v9, __m512 v10, __m512 v11,
         __m512 v12, __m512 v13, __m512 v14, __m512 v15) {
  __m512 u0 = reduce4(v0, v1, v2, v3), u1 = reduce4(v4, v5, v6, v7);
  __m512 u2 = reduce4(v8, v9, v10, v11), u3 = reduce4(v12, v13, v14, v15);
  // Blocks: a = (u0[0]+u0[2], u0[1]+u0[3], u1[0]+u1[2], u1[1]+u1[3]).
  __m512 a = _mm512_add_ps(_mm512_shuffle_f32x4(u0, u1, 0x44),
                           _mm512_shuffle_f32x4(u0, u1, 0xEE));
  __m512 b = _mm512_add_ps(_mm512_shuffle_f32x4(u2, u3, 0x44),
                           _mm512_shuffle_f32x4(u2, u3, 0xEE));
  return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x88),
                       _mm512_shuffle_f32x4(a, b, 0xDD));
}

/// y[r0 + r, j0 + c] = the sum of acc[r][c]'s lanes (+ bias[j0 + c]).
template <int R, int C>
__attribute__((target("avx512f"))) inline void
storeBlock512(__m512 (&acc)[R][C], const float *bias, float *y, int64_t n,
              int64_t r0, int64_t j0) {
  if constexpr (R == 4 && C == 4) {
    // Sum all 16 accumulators at once (a transpose-and-add tree: ~45
    // shuffles and adds instead of 16 separate horizontal sums); lane
    // 4r + c of the result is acc[r][c].
    __m512 sums = reduce16(acc[0][0], acc[0][1], acc[0][2], acc[0][3],
                           acc[1][0], acc[1][1], acc[1][2], acc[1][3],
                           acc[2][0], acc[2][1], acc[2][2], acc[2][3],
                           acc[3][0], acc[3][1], acc[3][2], acc[3][3]);
    __m128 b4 = bias ? _mm_loadu_ps(bias + j0) : _mm_setzero_ps();
    _mm_storeu_ps(y + (r0 + 0) * n + j0,
                  _mm_add_ps(_mm512_extractf32x4_ps(sums, 0), b4));
    _mm_storeu_ps(y + (r0 + 1) * n + j0,
                  _mm_add_ps(_mm512_extractf32x4_ps(sums, 1), b4));
    _mm_storeu_ps(y + (r0 + 2) * n + j0,
                  _mm_add_ps(_mm512_extractf32x4_ps(sums, 2), b4));
    _mm_storeu_ps(y + (r0 + 3) * n + j0,
                  _mm_add_ps(_mm512_extractf32x4_ps(sums, 3), b4));
  } else {
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c)
        y[(r0 + r) * n + j0 + c] =
            hsum512(acc[r][c]) + (bias ? bias[j0 + c] : 0.0f);
  }
}

template <int R, int C>
__attribute__((target("avx512f"))) inline void
linearBlock512(const float *x, int64_t k, const float *w, const float *bias,
               float *y, int64_t n, int64_t r0, int64_t j0) {
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c)
      acc[r][c] = _mm512_setzero_ps();
  int64_t kk = 0;
  for (; kk + 16 <= k; kk += 16) {
    __m512 b[C];
    for (int c = 0; c < C; ++c)
      b[c] = _mm512_loadu_ps(w + (j0 + c) * k + kk);
    for (int r = 0; r < R; ++r) {
      __m512 a = _mm512_loadu_ps(x + (r0 + r) * k + kk);
      for (int c = 0; c < C; ++c)
        acc[r][c] = _mm512_fmadd_ps(a, b[c], acc[r][c]);
    }
  }
  if (kk < k) {
    __mmask16 m = __mmask16((1u << (k - kk)) - 1);
    __m512 b[C];
    for (int c = 0; c < C; ++c)
      b[c] = _mm512_maskz_loadu_ps(m, w + (j0 + c) * k + kk);
    for (int r = 0; r < R; ++r) {
      __m512 a = _mm512_maskz_loadu_ps(m, x + (r0 + r) * k + kk);
      for (int c = 0; c < C; ++c)
        acc[r][c] = _mm512_fmadd_ps(a, b[c], acc[r][c]);
    }
  }
  storeBlock512<R, C>(acc, bias, y, n, r0, j0);
}

/// AVX512-BF16 (vdpbf16ps): x and w as bf16 bits, each instruction 32
/// products in pairs summed into 16 f32 lanes. Twice the multiply-adds of
/// the f32 block per instruction and per byte loaded.
#define MOE_T512BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))

template <int R, int C>
MOE_T512BF16 inline void linearBlockBf16(const uint16_t *x, int64_t k,
                                         const uint16_t *w, const float *bias,
                                         float *y, int64_t n, int64_t r0,
                                         int64_t j0) {
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c)
      acc[r][c] = _mm512_setzero_ps();
  int64_t kk = 0;
  for (; kk + 32 <= k; kk += 32) {
    __m512bh b[C];
    for (int c = 0; c < C; ++c)
      b[c] = (__m512bh)_mm512_loadu_si512(w + (j0 + c) * k + kk);
    for (int r = 0; r < R; ++r) {
      __m512bh a = (__m512bh)_mm512_loadu_si512(x + (r0 + r) * k + kk);
      for (int c = 0; c < C; ++c)
        acc[r][c] = _mm512_dpbf16_ps(acc[r][c], a, b[c]);
    }
  }
  if (kk < k) {
    // Zeros past k on both sides: an odd tail's lone element pairs with 0.
    __mmask32 m = __mmask32((uint64_t(1) << (k - kk)) - 1);
    __m512bh b[C];
    for (int c = 0; c < C; ++c)
      b[c] = (__m512bh)_mm512_maskz_loadu_epi16(m, w + (j0 + c) * k + kk);
    for (int r = 0; r < R; ++r) {
      __m512bh a = (__m512bh)_mm512_maskz_loadu_epi16(m, x + (r0 + r) * k + kk);
      for (int c = 0; c < C; ++c)
        acc[r][c] = _mm512_dpbf16_ps(acc[r][c], a, b[c]);
    }
  }
  storeBlock512<R, C>(acc, bias, y, n, r0, j0);
}

/// out[i] = x[i] as bf16 bits, to nearest even (vcvtne2ps2bf16).
MOE_T512BF16 void roundToBf16Avx512(const float *x, int64_t count,
                                    uint16_t *out) {
  int64_t i = 0;
  for (; i + 32 <= count; i += 32) {
    __m512bh h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16),
                                     _mm512_loadu_ps(x + i));
    _mm512_storeu_si512(out + i, (__m512i)h);
  }
  if (i < count) {
    __mmask16 lo = __mmask16(count - i >= 16 ? 0xFFFF
                                             : (1u << (count - i)) - 1);
    __mmask16 hi = __mmask16(count - i > 16 ? (1u << (count - i - 16)) - 1
                                            : 0);
    __m512bh h = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, x + i + 16),
                                     _mm512_maskz_loadu_ps(lo, x + i));
    _mm512_mask_storeu_epi16(out + i,
                             __mmask32((uint64_t(1) << (count - i)) - 1),
                             (__m512i)h);
  }
}

__attribute__((target("avx2,fma"))) inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int R, int C>
__attribute__((target("avx2,fma"))) inline void
linearBlock256(const float *x, int64_t k, const float *w, const float *bias,
               float *y, int64_t n, int64_t r0, int64_t j0) {
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c)
      acc[r][c] = _mm256_setzero_ps();
  int64_t kk = 0;
  for (; kk + 8 <= k; kk += 8) {
    __m256 b[C];
    for (int c = 0; c < C; ++c)
      b[c] = _mm256_loadu_ps(w + (j0 + c) * k + kk);
    for (int r = 0; r < R; ++r) {
      __m256 a = _mm256_loadu_ps(x + (r0 + r) * k + kk);
      for (int c = 0; c < C; ++c)
        acc[r][c] = _mm256_fmadd_ps(a, b[c], acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      float s = hsum256(acc[r][c]);
      for (int64_t t = kk; t < k; ++t)
        s += x[(r0 + r) * k + t] * w[(j0 + c) * k + t];
      y[(r0 + r) * n + j0 + c] = s + (bias ? bias[j0 + c] : 0.0f);
    }
}

/// Rows in blocks of RB, columns in blocks of CB; edges with smaller blocks.
template <int RB, int CB, template <int, int> class Block, typename T = float>
struct LinearDriver {
  template <int R>
  static void cols(const T *x, int64_t k, const T *w,
                   const float *bias, float *y, int64_t n, int64_t r0,
                   int64_t c0, int64_t c1) {
    int64_t j = c0;
    for (; j + CB <= c1; j += CB)
      Block<R, CB>::run(x, k, w, bias, y, n, r0, j);
    for (; j < c1; ++j)
      Block<R, 1>::run(x, k, w, bias, y, n, r0, j);
  }
  static void run(const T *x, int64_t rows, int64_t k, const T *w,
                  int64_t n, const float *bias, float *y, int64_t c0,
                  int64_t c1) {
    // Column strips of 64 keep a strip of w in cache across the rows.
    for (int64_t s0 = c0; s0 < c1; s0 += 64) {
      int64_t s1 = std::min(c1, s0 + 64);
      int64_t r = 0;
      for (; r + RB <= rows; r += RB)
        cols<RB>(x, k, w, bias, y, n, r, s0, s1);
      for (; r < rows; ++r)
        cols<1>(x, k, w, bias, y, n, r, s0, s1);
    }
  }
};

template <int R, int C> struct Block512 {
  static void run(const float *x, int64_t k, const float *w, const float *b,
                  float *y, int64_t n, int64_t r0, int64_t j0) {
    linearBlock512<R, C>(x, k, w, b, y, n, r0, j0);
  }
};
template <int R, int C> struct BlockBf16 {
  static void run(const uint16_t *x, int64_t k, const uint16_t *w,
                  const float *b, float *y, int64_t n, int64_t r0,
                  int64_t j0) {
    linearBlockBf16<R, C>(x, k, w, b, y, n, r0, j0);
  }
};
template <int R, int C> struct Block256 {
  static void run(const float *x, int64_t k, const float *w, const float *b,
                  float *y, int64_t n, int64_t r0, int64_t j0) {
    linearBlock256<R, C>(x, k, w, b, y, n, r0, j0);
  }
};

//--- matmul: c[i, :] = Σ_k a[i, k] · b[k, :] --------------------------------

template <int R>
__attribute__((target("avx512f"))) void
matmulRows512(const float *a, int64_t lda, const float *b, int64_t ldb,
              int64_t n, int64_t k, float *c, int64_t ldc) {
  for (int64_t j = 0; j < n; j += 32) {
    int64_t w0 = std::min<int64_t>(16, n - j);
    int64_t w1 = std::max<int64_t>(0, std::min<int64_t>(16, n - j - 16));
    __mmask16 m0 = __mmask16((1u << w0) - 1), m1 = __mmask16((1u << w1) - 1);
    __m512 acc[R][2];
    for (int r = 0; r < R; ++r)
      acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t kk = 0; kk < k; ++kk) {
      const float *brow = b + kk * ldb + j;
      __m512 b0 = _mm512_maskz_loadu_ps(m0, brow);
      __m512 b1 = _mm512_maskz_loadu_ps(m1, brow + 16);
      for (int r = 0; r < R; ++r) {
        __m512 av = _mm512_set1_ps(a[r * lda + kk]);
        acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
      }
    }
    for (int r = 0; r < R; ++r) {
      _mm512_mask_storeu_ps(c + r * ldc + j, m0, acc[r][0]);
      _mm512_mask_storeu_ps(c + r * ldc + j + 16, m1, acc[r][1]);
    }
  }
}

/// One row of a: the whole column tile (≤ 256 columns) accumulates in
/// registers while b streams row by row, sequentially (decode is bound by
/// reading b, and strided column blocks would defeat the prefetcher).
__attribute__((target("avx512f"))) void
matmulRow512Wide(const float *a, int64_t lda, const float *b, int64_t ldb,
                 int64_t n, int64_t k, float *c, int64_t ldc) {
  (void)lda, (void)ldc;
  for (int64_t j0 = 0; j0 < n; j0 += 256) {
    int64_t cols = std::min<int64_t>(256, n - j0);
    int64_t vecs = (cols + 15) / 16;
    __mmask16 tail = __mmask16((1u << (cols - (vecs - 1) * 16)) - 1);
    __m512 acc[16];
    for (int v = 0; v < 16; ++v)
      acc[v] = _mm512_setzero_ps();
    for (int64_t kk = 0; kk < k; ++kk) {
      __m512 av = _mm512_set1_ps(a[kk]);
      const float *brow = b + kk * ldb + j0;
      for (int v = 0; v < 16; ++v) {
        if (v >= vecs)
          break;
        __m512 bv = v == vecs - 1 ? _mm512_maskz_loadu_ps(tail, brow + 16 * v)
                                  : _mm512_loadu_ps(brow + 16 * v);
        acc[v] = _mm512_fmadd_ps(av, bv, acc[v]);
      }
    }
    for (int64_t v = 0; v < vecs; ++v) {
      if (v == vecs - 1)
        _mm512_mask_storeu_ps(c + j0 + 16 * v, tail, acc[v]);
      else
        _mm512_storeu_ps(c + j0 + 16 * v, acc[v]);
    }
  }
}

template <int R>
__attribute__((target("avx2,fma"))) void
matmulRows256(const float *a, int64_t lda, const float *b, int64_t ldb,
              int64_t n, int64_t k, float *c, int64_t ldc) {
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    __m256 acc[R][2];
    for (int r = 0; r < R; ++r)
      acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int64_t kk = 0; kk < k; ++kk) {
      const float *brow = b + kk * ldb + j;
      __m256 b0 = _mm256_loadu_ps(brow), b1 = _mm256_loadu_ps(brow + 8);
      for (int r = 0; r < R; ++r) {
        __m256 av = _mm256_set1_ps(a[r * lda + kk]);
        acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
      }
    }
    for (int r = 0; r < R; ++r) {
      _mm256_storeu_ps(c + r * ldc + j, acc[r][0]);
      _mm256_storeu_ps(c + r * ldc + j + 8, acc[r][1]);
    }
  }
  for (; j < n; ++j)
    for (int r = 0; r < R; ++r) {
      float s = 0;
      for (int64_t kk = 0; kk < k; ++kk)
        s += a[r * lda + kk] * b[kk * ldb + j];
      c[r * ldc + j] = s;
    }
}

using RowsFn = void (*)(const float *, int64_t, const float *, int64_t,
                        int64_t, int64_t, float *, int64_t);
template <RowsFn Rows4, RowsFn Rows1>
void matmulDriver(const float *a, int64_t lda, int64_t m, int64_t k,
                  const float *b, int64_t ldb, int64_t n, float *c,
                  int64_t ldc) {
  int64_t i = 0;
  for (; i + 4 <= m; i += 4)
    Rows4(a + i * lda, lda, b, ldb, n, k, c + i * ldc, ldc);
  for (; i < m; ++i)
    Rows1(a + i * lda, lda, b, ldb, n, k, c + i * ldc, ldc);
}

} // namespace
#pragma GCC diagnostic pop
#endif // MOE_GEMM_X86

bool linearFast(const float *x, int64_t rows, int64_t k, const float *w,
                int64_t n, const float *bias, float *y, int64_t c0,
                int64_t c1) {
#ifdef MOE_GEMM_X86
  switch (gemmLevel()) {
  case GemmLevel::Avx512:
    LinearDriver<4, 4, Block512>::run(x, rows, k, w, n, bias, y, c0, c1);
    return true;
  case GemmLevel::Avx2:
    LinearDriver<4, 2, Block256>::run(x, rows, k, w, n, bias, y, c0, c1);
    return true;
  case GemmLevel::Scalar:
    break;
  }
#endif
  (void)x, (void)rows, (void)k, (void)w, (void)n, (void)bias, (void)y,
      (void)c0, (void)c1;
  return false;
}

bool bf16DotAvailable() {
#ifdef MOE_GEMM_X86
  static const bool has = detectLevel() == GemmLevel::Avx512 &&
                          __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512bf16");
  return has && gemmLevel() == GemmLevel::Avx512;
#else
  return false;
#endif
}

bool linearBf16Fast(const uint16_t *x, int64_t rows, int64_t k,
                    const uint16_t *w, int64_t n, const float *bias, float *y,
                    int64_t c0, int64_t c1) {
#ifdef MOE_GEMM_X86
  if (bf16DotAvailable()) {
    LinearDriver<4, 4, BlockBf16, uint16_t>::run(x, rows, k, w, n, bias, y,
                                                 c0, c1);
    return true;
  }
#endif
  (void)x, (void)rows, (void)k, (void)w, (void)n, (void)bias, (void)y,
      (void)c0, (void)c1;
  return false;
}

void roundToBf16(const float *x, int64_t count, uint16_t *out) {
#ifdef MOE_GEMM_X86
  if (bf16DotAvailable()) {
    roundToBf16Avx512(x, count, out);
    return;
  }
#endif
  for (int64_t i = 0; i < count; ++i)
    out[i] = floatToBf16(x[i]);
}

bool matmulFast(const float *a, int64_t lda, int64_t m, int64_t k,
                const float *b, int64_t ldb, int64_t n, float *c,
                int64_t ldc) {
#ifdef MOE_GEMM_X86
  switch (gemmLevel()) {
  case GemmLevel::Avx512:
    matmulDriver<matmulRows512<4>, matmulRow512Wide>(a, lda, m, k, b, ldb, n,
                                                     c, ldc);
    return true;
  case GemmLevel::Avx2:
    matmulDriver<matmulRows256<4>, matmulRows256<1>>(a, lda, m, k, b, ldb, n,
                                                     c, ldc);
    return true;
  case GemmLevel::Scalar:
    break;
  }
#endif
  (void)a, (void)lda, (void)m, (void)k, (void)b, (void)ldb, (void)n,
      (void)c, (void)ldc;
  return false;
}

} // namespace moe::kernels::cpu
