//===- Index.h - Shape and index kernels on the CPU (ONNX) ------*- C++ -*-===//
//
// The loops behind the ONNX-semantics shape and index kernels
// (docs/plan-format.md, "Shape and index"): broadcasting copies, tiling,
// GatherND, ScatterElements, ScatterND, NonZero, OneHot, TopK and Split.
// Kernels that only move elements take the element size and serve every
// dtype; the ones that compare or combine values take a ScalarType. Shapes
// are checked by the caller; index values are checked here and reported as
// a Status.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CPU_INDEX_H
#define MOE_KERNELS_CPU_INDEX_H

#include "kernels/cpu/Common.h"
#include "kernels/cpu/Layout.h"
#include "runtime/Status.h"

namespace moe::kernels::cpu {

/// y (`outShape`) = x (`shape`) broadcast numpy-style: x is right-aligned
/// and its size-1 dims repeat. The caller has checked that they broadcast.
void broadcastTo(const void *x, const Shape &shape, const Shape &outShape,
                 size_t elemSize, void *y);

/// ONNX Tile: y[i...] = x[i[d] mod shape[d] ...], y.shape[d] =
/// shape[d] · repeats[d].
void tile(const void *x, const Shape &shape, const Shape &repeats,
          size_t elemSize, void *y);

/// y[i] = value (`elemSize` bytes) for i in [0, n).
void fill(void *y, int64_t n, const void *value, size_t elemSize);

/// ONNX GatherND with `batchDims` leading batch dims: indices
/// [b..., m..., k] (k = indicesShape.back()) pick slices
/// data[b..., idx[0], ..., idx[k-1], :]; y = [b..., m..., data[B+k:]...].
/// Negative indices wrap once; anything still out of range is an error.
rt::Status gatherND(const void *data, const Shape &dataShape,
                    const int64_t *indices, const Shape &indicesShape,
                    int64_t batchDims, size_t elemSize, void *y);

enum class Reduction { None, Add, Mul, Max, Min };

/// ONNX ScatterElements: y = data, then for every position p of indices,
/// y[p with p[axis] = indices[p]] (op)= updates[p], in row-major order (a
/// repeated index with Reduction::None keeps the last update). Exactly one
/// of idx64/idx32 is set. Reductions need F32, I64, I32 or I1 (on i1, add
/// and max are `or`, mul and min are `and`); None serves every element size.
rt::Status scatterElements(const void *data, const Shape &dataShape,
                           const int64_t *idx64, const int32_t *idx32,
                           const void *updates, const Shape &indicesShape,
                           int64_t axis, Reduction reduction, ScalarType type,
                           size_t elemSize, void *y);

/// ONNX ScatterND: y = data, then for every tuple t of indices [..., k]
/// the slice y[t[0], ..., t[k-1], :] (op)= updates[t's position, :], in
/// order. Types as scatterElements.
rt::Status scatterND(const void *data, const Shape &dataShape,
                     const int64_t *indices, const Shape &indicesShape,
                     const void *updates, Reduction reduction,
                     ScalarType type, size_t elemSize, void *y);

/// Element i of a buffer of type `type` is not zero (floats compare their
/// value: -0 is zero, NaN is not; other types any non-zero byte).
bool isNonZero(const void *x, ScalarType type, size_t elemSize, int64_t i);

/// How many of the n elements are not zero.
int64_t countNonZero(const void *x, ScalarType type, size_t elemSize,
                     int64_t n);

/// ONNX NonZero: y [max(rank, 1), count] holds the coordinates of the
/// non-zero elements in row-major order (a scalar is treated as [1]).
void nonZero(const void *x, const Shape &shape, ScalarType type,
             size_t elemSize, int64_t count, int64_t *y);

/// ONNX OneHot with the indices viewed as [outer, inner] around the new
/// axis: y[o, j, i] = j == indices[o·inner + i] ? on : off, y of shape
/// [outer, depth, inner]. The indices are already wrapped; one outside
/// [0, depth) selects nothing.
void oneHot(const int64_t *indices, int64_t outer, int64_t inner,
            int64_t depth, const void *off, const void *on, size_t elemSize,
            void *y);

/// ONNX TopK along the middle axis of x viewed as [outer, axisLen, inner]:
/// the k largest (or smallest) of each line, sorted, ties to the lower
/// index, NaN above every number. values [outer, k, inner] of x's type
/// (F32, I64 or I32), indices the same shape. Requires 0 ≤ k ≤ axisLen.
rt::Status topK(const void *x, ScalarType type, int64_t outer,
                int64_t axisLen, int64_t inner, int64_t k, bool largest,
                void *values, int64_t *indices);

/// Splits x viewed as [outer, Σ lens, inner] along the middle axis into
/// outputs[i] of [outer, lens[i], inner].
void split(const void *x, int64_t outer, int64_t inner,
           const std::vector<int64_t> &lens, const std::vector<void *> &outputs,
           size_t elemSize);

} // namespace moe::kernels::cpu

#endif // MOE_KERNELS_CPU_INDEX_H
