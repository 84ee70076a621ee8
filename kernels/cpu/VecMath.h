//===- VecMath.h - Vectorised activations -----------------------*- C++ -*-===//
//
// exp-based activations over arrays with AVX-512 (a degree-6 polynomial for
// 2^f, |relative error| < 2e-7), falling back to the scalar functions on
// other CPUs. Used by the expert FFN (SwiGLU, SiLU) and softmax.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CPU_VECMATH_H
#define MOE_KERNELS_CPU_VECMATH_H

#include <cstdint>

namespace moe::kernels::cpu {

/// out[i] = swiglu(gate[i·gs], lin[i·ls]) for i < n, ONNX Runtime's SwiGLU
/// (min(gate, limit), clamp(lin, ±limit), g·sigmoid(alpha·g)·(l + beta)).
/// Strides gs/ls are 1 (separate arrays) or 2 (interleaved pairs).
void swigluArray(const float *gate, int64_t gs, const float *lin, int64_t ls,
                 float *out, int64_t n, float alpha, float beta, float limit);

/// out[i] = silu(x[i]) · (mul ? mul[i] : 1).
void siluArray(const float *x, const float *mul, float *out, int64_t n);

/// y = softmax(x) over n contiguous values (max subtracted; all -inf gives
/// a uniform 0/0-free result as the scalar path does).
void softmaxRow(const float *x, float *y, int64_t n);

/// exp of n values (tests compare it with std::exp).
void expArray(const float *x, float *out, int64_t n);

} // namespace moe::kernels::cpu

#endif // MOE_KERNELS_CPU_VECMATH_H
