//===- Normalize.h - Softmax, reductions and norms on the CPU ---*- C++ -*-===//
#ifndef MOE_KERNELS_CPU_NORMALIZE_H
#define MOE_KERNELS_CPU_NORMALIZE_H

#include "kernels/cpu/Common.h"

namespace moe::kernels::cpu {

/// Softmax over the middle axis of x viewed as [outer, axisLen, inner],
/// numerically stable (the maximum is subtracted).
void softmax(const float *x, float *y, int64_t outer, int64_t axisLen,
             int64_t inner);

enum class ReduceOp { Sum, Mean, Max };

/// Reduces x of `shape` over the dims with reduced[d] set, writing the kept
/// dims in order (keepdims does not change the data layout). Sums are
/// accumulated in double. Max over an empty range gives -inf.
void reduce(ReduceOp op, const float *x, const Shape &shape,
            const std::vector<bool> &reduced, float *y);

/// y = x / sqrt(mean(x²) + eps) · w over rows of length d.
void rmsNorm(const float *x, const float *w, float eps, float *y,
             int64_t rows, int64_t d);

/// y = (x - mean) / sqrt(var + eps) · w (+ b) over rows of length d, with
/// the biased variance.
void layerNorm(const float *x, const float *w, const float *b, float eps,
               float *y, int64_t rows, int64_t d);

} // namespace moe::kernels::cpu

#endif // MOE_KERNELS_CPU_NORMALIZE_H
