//===- VecMath.cpp - Vectorised activations -------------------------------===//

#include "kernels/cpu/VecMath.h"

#include <algorithm>
#include <cmath>
#include <limits>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MOE_VECMATH_X86 1
#endif

namespace moe::kernels::cpu {

namespace {

float sigmoidScalar(float z) { return 1.0f / (1.0f + std::exp(-z)); }

#ifdef MOE_VECMATH_X86
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

bool hasAvx512() {
  static const bool has = [] {
    __builtin_cpu_init();
    return bool(__builtin_cpu_supports("avx512f"));
  }();
  return has;
}

/// e^x = e^r · 2^k with k = round(x·log2 e) and r = x − k·ln 2 computed in
/// two parts (Cody–Waite, so r keeps its precision for large |x|),
/// |r| ≤ ln2/2; e^r by its Taylor polynomial to r^7 (relative error
/// < 1e-7); scalef applies 2^k (overflow to inf, underflow to 0).
__attribute__((target("avx512f"))) inline __m512 exp512(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
  x = _mm512_min_ps(x, _mm512_set1_ps(89.0f));
  __m512 k = _mm512_roundscale_ps(
      _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, k);
}

__attribute__((target("avx512f"))) void
swiglu512(const float *gate, int64_t gs, const float *lin, int64_t ls,
          float *out, int64_t n, float alpha, float beta, float limit) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14,
                                        12, 10, 8, 6, 4, 2, 0);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  const __m512 hi = _mm512_set1_ps(limit), lo = _mm512_set1_ps(-limit);
  const __m512 one = _mm512_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 g, l;
    if (gs == 1) {
      g = _mm512_loadu_ps(gate + i);
    } else {
      __m512 a = _mm512_loadu_ps(gate + 2 * i), b = _mm512_loadu_ps(gate + 2 * i + 16);
      g = _mm512_permutex2var_ps(a, even, b);
    }
    if (ls == 1) {
      l = _mm512_loadu_ps(lin + i);
    } else {
      __m512 a = _mm512_loadu_ps(lin + 2 * i), b = _mm512_loadu_ps(lin + 2 * i + 16);
      l = _mm512_permutex2var_ps(a, even, b);
    }
    // std::min(gate, limit) and std::clamp: NaN stays NaN (min_ps returns
    // its second operand when either is NaN, so the operand order matters).
    g = _mm512_min_ps(hi, g);
    l = _mm512_max_ps(lo, _mm512_min_ps(hi, l));
    __m512 e = exp512(_mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), va), g));
    __m512 s = _mm512_div_ps(g, _mm512_add_ps(one, e));
    _mm512_storeu_ps(out + i, _mm512_mul_ps(s, _mm512_add_ps(l, vb)));
  }
  for (; i < n; ++i) {
    float g = std::min(gate[i * gs], limit);
    float l = lin[i * ls];
    l = l < -limit ? -limit : limit < l ? limit : l;
    out[i] = g * sigmoidScalar(alpha * g) * (l + beta);
  }
}

__attribute__((target("avx512f"))) void silu512(const float *x, const float *mul,
                                                float *out, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 v = _mm512_loadu_ps(x + i);
    __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), v));
    __m512 s = _mm512_div_ps(v, _mm512_add_ps(one, e));
    if (mul)
      s = _mm512_mul_ps(s, _mm512_loadu_ps(mul + i));
    _mm512_storeu_ps(out + i, s);
  }
  for (; i < n; ++i)
    out[i] = x[i] * sigmoidScalar(x[i]) * (mul ? mul[i] : 1.0f);
}

__attribute__((target("avx512f"))) void softmax512(const float *x, float *y,
                                                   int64_t n) {
  __m512 vmax = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(x + i));
  float mx = _mm512_reduce_max_ps(vmax);
  for (; i < n; ++i)
    mx = std::fmax(mx, x[i]);
  if (std::isinf(mx) && mx < 0)
    mx = 0;
  __m512 vm = _mm512_set1_ps(mx), vsum = _mm512_setzero_ps();
  for (i = 0; i + 16 <= n; i += 16) {
    __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm));
    _mm512_storeu_ps(y + i, e);
    vsum = _mm512_add_ps(vsum, e);
  }
  float sum = _mm512_reduce_add_ps(vsum);
  for (; i < n; ++i) {
    y[i] = std::exp(x[i] - mx);
    sum += y[i];
  }
  __m512 inv = _mm512_set1_ps(1.0f / sum);
  for (i = 0; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), inv));
  for (; i < n; ++i)
    y[i] *= 1.0f / sum;
}

__attribute__((target("avx512f"))) void exp512Array(const float *x, float *out,
                                                    int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(out + i, exp512(_mm512_loadu_ps(x + i)));
  for (; i < n; ++i)
    out[i] = std::exp(x[i]);
}

#pragma GCC diagnostic pop
#endif

} // namespace

void swigluArray(const float *gate, int64_t gs, const float *lin, int64_t ls,
                 float *out, int64_t n, float alpha, float beta, float limit) {
#ifdef MOE_VECMATH_X86
  if (hasAvx512())
    return swiglu512(gate, gs, lin, ls, out, n, alpha, beta, limit);
#endif
  for (int64_t i = 0; i < n; ++i) {
    float g = std::min(gate[i * gs], limit);
    float l = lin[i * ls];
    l = l < -limit ? -limit : limit < l ? limit : l;
    out[i] = g * sigmoidScalar(alpha * g) * (l + beta);
  }
}

void siluArray(const float *x, const float *mul, float *out, int64_t n) {
#ifdef MOE_VECMATH_X86
  if (hasAvx512())
    return silu512(x, mul, out, n);
#endif
  for (int64_t i = 0; i < n; ++i)
    out[i] = x[i] * sigmoidScalar(x[i]) * (mul ? mul[i] : 1.0f);
}

void softmaxRow(const float *x, float *y, int64_t n) {
#ifdef MOE_VECMATH_X86
  if (hasAvx512())
    return softmax512(x, y, n);
#endif
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i)
    mx = std::fmax(mx, x[i]);
  if (std::isinf(mx) && mx < 0)
    mx = 0;
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = std::exp(x[i] - mx);
    sum += y[i];
  }
  float inv = 1.0f / sum;
  for (int64_t i = 0; i < n; ++i)
    y[i] *= inv;
}

void expArray(const float *x, float *out, int64_t n) {
#ifdef MOE_VECMATH_X86
  if (hasAvx512())
    return exp512Array(x, out, n);
#endif
  for (int64_t i = 0; i < n; ++i)
    out[i] = std::exp(x[i]);
}

} // namespace moe::kernels::cpu
