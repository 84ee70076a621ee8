//===- Layout.h - Data movement kernels on the CPU --------------*- C++ -*-===//
//
// Kernels that move elements without arithmetic work on bytes, so they take
// the element size instead of a C++ type and serve every dtype.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CPU_LAYOUT_H
#define MOE_KERNELS_CPU_LAYOUT_H

#include "kernels/cpu/Common.h"
#include "runtime/Status.h"

#include <optional>
#include <string>

namespace moe::kernels::cpu {

/// y = x with its dims permuted: y.shape[i] = x.shape[perm[i]].
void transpose(const void *x, const Shape &shape, const Shape &perm,
               size_t elemSize, void *y);

/// ONNX Gather: y[o, i, r] = data[o, indices[i], r] with data viewed as
/// [outer, axisLen, inner]. Negative indices wrap once; anything still
/// outside [0, axisLen) is an error. Exactly one of idx64/idx32 is set.
rt::Status gather(const void *data, int64_t outer, int64_t axisLen,
                  int64_t inner, const int64_t *idx64, const int32_t *idx32,
                  int64_t numIndices, size_t elemSize, void *y);

/// Concatenates inputs viewed as [outer, axisLen_i, inner] along the middle
/// axis.
void concat(const std::vector<const void *> &inputs,
            const std::vector<int64_t> &axisLens, int64_t outer,
            int64_t inner, size_t elemSize, void *y);

/// The ONNX Slice rule for one axis of length `dim`: negative start/end
/// count from the end, then start is clamped into [0, dim] (step > 0) or
/// [0, dim - 1] (step < 0) and end into [0, dim] or [-1, dim - 1]; returns
/// the first index and the element count. A zero step is an error.
rt::Status resolveSliceAxis(int64_t dim, int64_t start, int64_t end,
                            int64_t step, int64_t &first, int64_t &count);

/// ONNX Slice (opset 10+) of a tensor of `shape`: `starts` and `ends` per
/// sliced axis, `axes` (nullopt: 0, 1, ...) and `steps` (nullopt: 1s) in
/// the same order; gives each dim's first index, step and count. Errors
/// name the operands as the inputs of Slice ("input 3 (axes) repeats axis
/// 1").
rt::Status resolveSlice(const Shape &shape, const Shape &starts,
                        const Shape &ends, const std::optional<Shape> &axes,
                        const std::optional<Shape> &steps, Shape &first,
                        Shape &step, Shape &count);

/// y[i...] = x[first[d] + i[d] · step[d] ...]; `outShape` holds the counts.
void slice(const void *x, const Shape &shape, const Shape &first,
           const Shape &step, const Shape &outShape, size_t elemSize,
           void *y);

/// Element types for cast(); the values are those of moe_plan::DType.
enum class ScalarType : int8_t {
  F32 = 0,
  F16 = 1,
  BF16 = 2,
  F64 = 3,
  I64 = 4,
  I32 = 5,
  I8 = 6,
  U8 = 7,
  I1 = 8,
};

/// Converts n elements. Float → integer truncates toward zero and saturates
/// (NaN → 0); integer → integer wraps; → i1 is `!= 0`.
rt::Status cast(const void *x, ScalarType from, void *y, ScalarType to,
                int64_t n);

} // namespace moe::kernels::cpu

#endif // MOE_KERNELS_CPU_LAYOUT_H
