//===- Dense.h - Elementwise, reduction and layout kernels on CUDA -*- C++ -*-===//
//
// The dense nn.* kernels of the CUDA device, on f32 tensors of up to
// kMaxRank dims with numpy broadcasting. Shapes and strides are host
// values passed by value to the launch.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CUDA_DENSE_H
#define MOE_KERNELS_CUDA_DENSE_H

#include "kernels/cuda/Stream.h"
#include "runtime/Status.h"

#include <cstdint>
#include <vector>

namespace moe::cuda {

constexpr int kMaxRank = 8;

enum class BinaryOp { Add, Sub, Mul, Div, Pow, Max, Min };
enum class UnaryOp {
  Neg, Sqrt, Reciprocal, Exp, Log, Tanh, Sigmoid, Silu, Relu, Gelu, GeluTanh,
  Abs, Sin, Cos, Erf, Rsqrt
};

/// out = a op b, `outShape` the broadcast of `aShape` and `bShape`.
rt::Status binary(BinaryOp op, const float *a, const std::vector<int64_t> &aShape,
                  const float *b, const std::vector<int64_t> &bShape,
                  float *out, const std::vector<int64_t> &outShape,
                  Stream stream);

/// out[i] = op(x[i]) for n elements.
rt::Status unary(UnaryOp op, const float *x, int64_t n, float *out,
                 Stream stream);

/// Softmax over the last axis of [rows, cols].
rt::Status softmaxRows(const float *x, int64_t rows, int64_t cols, float *out,
                       Stream stream);

/// y = x / sqrt(mean(x²) + eps) · w (rms) or (x − mean) / sqrt(var + eps)
/// · w (+ b) (layer, biased variance) over rows of length d; b may be null.
rt::Status normRows(const float *x, const float *w, const float *b, float eps,
                    bool layer, int64_t rows, int64_t d, float *y,
                    Stream stream);

/// out[outer, inner] = mean (or sum) over the middle axis of
/// x[outer, reduced, inner].
rt::Status reduceMiddle(const float *x, int64_t outer, int64_t reduced,
                        int64_t inner, bool mean, float *out, Stream stream);

/// out = x transposed by `perm` (out dim i = x dim perm[i]), any element
/// size of 1, 2, 4 or 8 bytes.
rt::Status transpose(const void *x, const std::vector<int64_t> &shape,
                     const std::vector<int64_t> &perm, size_t elemSize,
                     void *out, Stream stream);

/// out[i...] = x[offset + Σ i[d] · strides[d]] for every index of
/// `outShape` (strides in elements; 0 repeats, negative walks back): the
/// copy behind transpose, slice and expand. Element size 1, 2, 4 or 8.
rt::Status stridedCopy(const void *x, int64_t offset,
                       const std::vector<int64_t> &outShape,
                       const std::vector<int64_t> &strides, size_t elemSize,
                       void *out, Stream stream);

/// out = cond ? x : y with numpy broadcasting (cond one byte per element;
/// x, y and out of `elemSize` 1, 2, 4 or 8 bytes).
rt::Status where(const uint8_t *cond, const std::vector<int64_t> &condShape,
                 const void *x, const std::vector<int64_t> &xShape,
                 const void *y, const std::vector<int64_t> &yShape,
                 size_t elemSize, void *out,
                 const std::vector<int64_t> &outShape, Stream stream);

/// Converts n elements between the plan's dtypes (the values of
/// moe_plan::DType: 0 f32, 1 f16, 2 bf16, 3 f64, 4 i64, 5 i32, 6 i8, 7 u8,
/// 8 i1) as the CPU's cast does: float → integer truncates toward zero and
/// saturates (NaN → 0), integer → integer wraps, → i1 is `!= 0`.
rt::Status cast(const void *x, int from, void *out, int to, int64_t n,
                Stream stream);

/// out[o, i, r] = x[o, indices[i], r] for x [outer, axisLen, inner] and
/// `count` indices already checked to lie in [0, axisLen).
rt::Status gather(const void *x, int64_t outer, int64_t axisLen,
                  int64_t inner, const int64_t *indices, int64_t count,
                  size_t elemSize, void *out, Stream stream);

} // namespace moe::cuda

#endif // MOE_KERNELS_CUDA_DENSE_H
