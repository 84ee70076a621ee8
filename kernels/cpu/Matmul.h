//===- Matmul.h - Matrix products on the CPU --------------------*- C++ -*-===//
#ifndef MOE_KERNELS_CPU_MATMUL_H
#define MOE_KERNELS_CPU_MATMUL_H

#include "kernels/cpu/Common.h"

namespace moe::kernels::cpu {

/// c[..., M, N] = a[..., M, K] · b[..., K, N] with numpy broadcasting of the
/// batch dims. Ranks are ≥ 2 and `cShape` is the broadcast result shape
/// (a 1-D operand of ONNX MatMul is passed as [1, K] or [K, 1]).
void matmul(const float *a, const Shape &aShape, const float *b,
            const Shape &bShape, float *c, const Shape &cShape);

/// y[rows, N] = x[rows, K] · w[N, K]ᵀ (+ bias[N] when not null). Parallel
/// over tiles of rows × output columns, so that a single row (decoding)
/// still spreads over the threads.
void linear(const float *x, int64_t rows, int64_t k, const float *w,
            int64_t n, const float *bias, float *y);

/// The serial body of linear() for output columns [col0, col1), for callers
/// that parallelise themselves.
void linearSerial(const float *x, int64_t rows, int64_t k, const float *w,
                  int64_t n, const float *bias, float *y, int64_t col0,
                  int64_t col1);

} // namespace moe::kernels::cpu

#endif // MOE_KERNELS_CPU_MATMUL_H
