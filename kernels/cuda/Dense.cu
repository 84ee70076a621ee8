//===- Dense.cu - Elementwise, reduction and layout kernels on CUDA -------===//

#include "kernels/cuda/Dense.h"

#include "kernels/cuda/BlockReduce.cuh"
#include "kernels/cuda/CudaCheck.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

namespace moe::cuda {
namespace {

constexpr unsigned kThreads = 256;

/// Dims and per-operand strides (0 on a broadcast dim), passed by value.
struct Strides {
  int rank = 0;
  int64_t dims[kMaxRank];
  int64_t a[kMaxRank];
  int64_t b[kMaxRank];
  int64_t c[kMaxRank];
};

__device__ float applyBinary(BinaryOp op, float x, float y) {
  switch (op) {
  case BinaryOp::Add:
    return x + y;
  case BinaryOp::Sub:
    return x - y;
  case BinaryOp::Mul:
    return x * y;
  case BinaryOp::Div:
    return x / y;
  case BinaryOp::Pow:
    return y == 2.0f ? x * x : powf(x, y);
  case BinaryOp::Max:
    return fmaxf(x, y);
  case BinaryOp::Min:
    return fminf(x, y);
  }
  return 0.0f;
}

__global__ void binaryKernel(BinaryOp op, const float *a, const float *b,
                             float *out, int64_t n, Strides s) {
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n)
    return;
  int64_t rest = i, ia = 0, ib = 0;
  for (int d = s.rank - 1; d >= 0; --d) {
    int64_t c = rest % s.dims[d];
    rest /= s.dims[d];
    ia += c * s.a[d];
    ib += c * s.b[d];
  }
  out[i] = applyBinary(op, a[ia], b[ib]);
}

__device__ float applyUnary(UnaryOp op, float x) {
  switch (op) {
  case UnaryOp::Neg:
    return -x;
  case UnaryOp::Sqrt:
    return sqrtf(x);
  case UnaryOp::Reciprocal:
    return 1.0f / x;
  case UnaryOp::Exp:
    return expf(x);
  case UnaryOp::Log:
    return logf(x);
  case UnaryOp::Tanh:
    return tanhf(x);
  case UnaryOp::Sigmoid:
    return 1.0f / (1.0f + expf(-x));
  case UnaryOp::Silu:
    return x / (1.0f + expf(-x));
  case UnaryOp::Relu:
    return x > 0 ? x : 0.0f;
  case UnaryOp::Gelu:
    return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
  case UnaryOp::GeluTanh: {
    const float c = 0.7978845608028654f; // sqrt(2 / pi)
    return 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x)));
  }
  case UnaryOp::Rsqrt:
    return rsqrtf(x);
  case UnaryOp::Abs:
    return fabsf(x);
  case UnaryOp::Sin:
    return sinf(x);
  case UnaryOp::Cos:
    return cosf(x);
  case UnaryOp::Erf:
    return erff(x);
  }
  return 0.0f;
}

__global__ void unaryKernel(UnaryOp op, const float *x, float *out,
                            int64_t n) {
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i < n)
    out[i] = applyUnary(op, x[i]);
}

/// One block per row; a block-wide max and sum.
__global__ void softmaxKernel(const float *x, int64_t cols, float *out) {
  __shared__ float scratch[32];
  const float *row = x + blockIdx.x * cols;
  float *dst = out + blockIdx.x * cols;
  float mx = -INFINITY;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    mx = fmaxf(mx, row[c]);
  mx = blockMax(mx, scratch);
  float sum = 0;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    sum += expf(row[c] - mx);
  sum = blockSum(sum, scratch);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    dst[c] = expf(row[c] - mx) / sum;
}

/// One block per row; sums in float, as the CPU's rows are short.
__global__ void normKernel(const float *x, const float *w, const float *b,
                           float eps, bool layer, int64_t d, float *y) {
  __shared__ float scratch[32];
  const float *row = x + blockIdx.x * d;
  float *out = y + blockIdx.x * d;
  float mean = 0;
  if (layer) {
    float s = 0;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x)
      s += row[i];
    mean = blockSum(s, scratch) / float(d);
  }
  float sq = 0;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    float v = row[i] - mean;
    sq += v * v;
  }
  float inv = rsqrtf(blockSum(sq, scratch) / float(d) + eps);
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    float v = (row[i] - mean) * inv * w[i];
    out[i] = b ? v + b[i] : v;
  }
}

/// One thread per output element (outer, inner); the reduced axis summed
/// in order.
__global__ void reduceKernel(const float *x, int64_t outer, int64_t reduced,
                             int64_t inner, bool mean, float *out) {
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= outer * inner)
    return;
  int64_t o = i / inner, in = i % inner;
  const float *p = x + o * reduced * inner + in;
  float acc = 0;
  for (int64_t r = 0; r < reduced; ++r)
    acc += p[r * inner];
  out[i] = mean && reduced ? acc / float(reduced) : acc;
}

template <typename T>
__global__ void stridedKernel(const T *x, int64_t offset, T *out, int64_t n,
                              Strides s) {
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n)
    return;
  // s.dims: output dims; s.a: the input stride of each output dim.
  int64_t rest = i, src = offset;
  for (int d = s.rank - 1; d >= 0; --d) {
    int64_t c = rest % s.dims[d];
    rest /= s.dims[d];
    src += c * s.a[d];
  }
  out[i] = x[src];
}

template <typename T>
__global__ void whereKernel(const uint8_t *cond, const T *x, const T *y,
                            T *out, int64_t n, Strides s) {
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n)
    return;
  int64_t rest = i, ic = 0, ix = 0, iy = 0;
  for (int d = s.rank - 1; d >= 0; --d) {
    int64_t c = rest % s.dims[d];
    rest /= s.dims[d];
    ic += c * s.c[d];
    ix += c * s.a[d];
    iy += c * s.b[d];
  }
  out[i] = cond[ic] ? x[ix] : y[iy];
}

template <typename T>
__global__ void gatherKernel(const T *x, int64_t axisLen, int64_t inner,
                             const int64_t *indices, int64_t count, T *out,
                             int64_t n) {
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n)
    return;
  int64_t r = i % inner, rest = i / inner;
  int64_t j = rest % count, o = rest / count;
  out[i] = x[(o * axisLen + indices[j]) * inner + r];
}

/// A dtype's element read as double (exact for every integer type but
/// i64 beyond 2^53, which only float targets read).
template <typename T> __device__ double load(const T *p, int64_t i) {
  return double(p[i]);
}
template <> __device__ double load(const __half *p, int64_t i) {
  return double(__half2float(p[i]));
}
template <> __device__ double load(const __nv_bfloat16 *p, int64_t i) {
  return double(__bfloat162float(p[i]));
}

template <typename T> __device__ void storeFloat(T *p, int64_t i, double v) {
  p[i] = T(v);
}
template <> __device__ void storeFloat(__half *p, int64_t i, double v) {
  p[i] = __float2half(float(v));
}
template <> __device__ void storeFloat(__nv_bfloat16 *p, int64_t i, double v) {
  p[i] = __float2bfloat16(float(v));
}

template <typename T> struct IsFloat {
  static constexpr bool value = false;
};
template <> struct IsFloat<float> {
  static constexpr bool value = true;
};
template <> struct IsFloat<double> {
  static constexpr bool value = true;
};
template <> struct IsFloat<__half> {
  static constexpr bool value = true;
};
template <> struct IsFloat<__nv_bfloat16> {
  static constexpr bool value = true;
};

/// The range of an integer target, for saturating float → integer casts.
template <typename T> struct IntRange;
template <> struct IntRange<int64_t> {
  static constexpr int64_t min = INT64_MIN, max = INT64_MAX;
};
template <> struct IntRange<int32_t> {
  static constexpr int32_t min = INT32_MIN, max = INT32_MAX;
};
template <> struct IntRange<int8_t> {
  static constexpr int8_t min = INT8_MIN, max = INT8_MAX;
};
template <> struct IntRange<uint8_t> {
  static constexpr uint8_t min = 0, max = UINT8_MAX;
};

/// One element of the cast; Out is an integer type when not IsFloat.
template <typename In, typename Out>
__device__ void castOne(const In *x, Out *y, int64_t i, bool toBool) {
  if (toBool) {
    y[i] = Out(load(x, i) != 0.0 ? 1 : 0);
    return;
  }
  if constexpr (IsFloat<Out>::value) {
    storeFloat(y, i, load(x, i));
  } else if constexpr (IsFloat<In>::value) {
    double v = load(x, i);
    const double lo = double(IntRange<Out>::min);
    const double hi = double(IntRange<Out>::max);
    if (v != v)
      y[i] = Out(0);
    else if (v <= lo)
      y[i] = IntRange<Out>::min;
    else if (v >= hi)
      y[i] = IntRange<Out>::max;
    else
      y[i] = Out(v);
  } else {
    y[i] = Out(x[i]); // integer to integer: wraps
  }
}

template <typename In, typename Out>
__global__ void castKernel(const In *x, Out *y, int64_t n, bool toBool) {
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i < n)
    castOne(x, y, i, toBool);
}

int64_t product(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

/// Row-major strides of `shape` aligned to the last `rank` dims, 0 where
/// the dim broadcasts.
bool broadcastStrides(const std::vector<int64_t> &shape, int rank,
                      const std::vector<int64_t> &out, int64_t *strides) {
  int off = rank - int(shape.size());
  if (off < 0)
    return false;
  int64_t stride = 1;
  for (int d = rank - 1; d >= 0; --d) {
    if (d < off) {
      strides[d] = 0;
      continue;
    }
    int64_t dim = shape[size_t(d - off)];
    if (dim != out[size_t(d)] && dim != 1)
      return false;
    strides[d] = dim == 1 ? 0 : stride;
    stride *= dim;
  }
  return true;
}

/// Calls f with a null pointer of the unsigned type of `elemSize` bytes
/// (1, 2, 4 or 8): kernels that only move elements are instantiated once per
/// size, not per dtype.
template <typename F>
rt::Status bySize(size_t elemSize, const char *what, F f) {
  switch (elemSize) {
  case 1:
    f(static_cast<uint8_t *>(nullptr));
    break;
  case 2:
    f(static_cast<uint16_t *>(nullptr));
    break;
  case 4:
    f(static_cast<uint32_t *>(nullptr));
    break;
  case 8:
    f(static_cast<uint64_t *>(nullptr));
    break;
  default:
    return rt::Status::error(std::string(what) + ": element size " +
                             std::to_string(elemSize) + " is not supported");
  }
  return checkLaunch(what);
}

} // namespace

rt::Status binary(BinaryOp op, const float *a,
                  const std::vector<int64_t> &aShape, const float *b,
                  const std::vector<int64_t> &bShape, float *out,
                  const std::vector<int64_t> &outShape, Stream stream) {
  Strides s;
  s.rank = int(outShape.size());
  if (s.rank > kMaxRank)
    return rt::Status::error("rank " + std::to_string(s.rank) +
                             " exceeds the CUDA kernels' " +
                             std::to_string(kMaxRank));
  for (int d = 0; d < s.rank; ++d)
    s.dims[d] = outShape[size_t(d)];
  if (!broadcastStrides(aShape, s.rank, outShape, s.a) ||
      !broadcastStrides(bShape, s.rank, outShape, s.b))
    return rt::Status::error("operands do not broadcast to the output");
  int64_t n = product(outShape);
  if (n == 0)
    return rt::Status::ok();
  binaryKernel<<<blocksFor(n, kThreads), kThreads, 0, stream>>>(op, a, b, out,
                                                                 n, s);
  return checkLaunch("binaryKernel launch");
}

rt::Status unary(UnaryOp op, const float *x, int64_t n, float *out,
                 Stream stream) {
  if (n == 0)
    return rt::Status::ok();
  unaryKernel<<<blocksFor(n, kThreads), kThreads, 0, stream>>>(op, x, out, n);
  return checkLaunch("unaryKernel launch");
}

rt::Status softmaxRows(const float *x, int64_t rows, int64_t cols, float *out,
                       Stream stream) {
  if (rows == 0 || cols == 0)
    return rt::Status::ok();
  unsigned threads = cols >= 256 ? 256 : 32;
  softmaxKernel<<<unsigned(rows), threads, 0, stream>>>(x, cols, out);
  return checkLaunch("softmaxKernel launch");
}

rt::Status normRows(const float *x, const float *w, const float *b, float eps,
                    bool layer, int64_t rows, int64_t d, float *y,
                    Stream stream) {
  if (rows == 0 || d == 0)
    return rt::Status::ok();
  unsigned threads = d >= 1024 ? 512 : d >= 256 ? 256 : 64;
  normKernel<<<unsigned(rows), threads, 0, stream>>>(x, w, b, eps, layer, d,
                                                     y);
  return checkLaunch("normKernel launch");
}

rt::Status reduceMiddle(const float *x, int64_t outer, int64_t reduced,
                        int64_t inner, bool mean, float *out, Stream stream) {
  if (outer * inner == 0)
    return rt::Status::ok();
  reduceKernel<<<blocksFor(outer * inner, kThreads), kThreads, 0, stream>>>(
      x, outer, reduced, inner, mean, out);
  return checkLaunch("reduceKernel launch");
}

rt::Status transpose(const void *x, const std::vector<int64_t> &shape,
                     const std::vector<int64_t> &perm, size_t elemSize,
                     void *out, Stream stream) {
  const size_t rank = shape.size();
  if (perm.size() != rank)
    return rt::Status::error("transpose: the permutation has " +
                             std::to_string(perm.size()) + " entries for rank " +
                             std::to_string(rank));
  std::vector<int64_t> inStride(rank, 1);
  for (size_t d = rank; d-- > 1;)
    inStride[d - 1] = inStride[d] * shape[d];
  std::vector<int64_t> outShape(rank), strides(rank);
  for (size_t d = 0; d < rank; ++d) {
    int64_t p = perm[d];
    if (p < 0 || p >= int64_t(rank))
      return rt::Status::error("transpose: bad permutation");
    outShape[d] = shape[size_t(p)];
    strides[d] = inStride[size_t(p)];
  }
  return stridedCopy(x, 0, outShape, strides, elemSize, out, stream);
}

rt::Status stridedCopy(const void *x, int64_t offset,
                       const std::vector<int64_t> &outShape,
                       const std::vector<int64_t> &strides, size_t elemSize,
                       void *out, Stream stream) {
  Strides s;
  s.rank = int(outShape.size());
  if (s.rank > kMaxRank || strides.size() != outShape.size())
    return rt::Status::error("strided copy: rank " + std::to_string(s.rank) +
                             " (at most " + std::to_string(kMaxRank) + ")");
  for (int d = 0; d < s.rank; ++d) {
    s.dims[d] = outShape[size_t(d)];
    s.a[d] = strides[size_t(d)];
  }
  int64_t n = product(outShape);
  if (n == 0)
    return rt::Status::ok();
  return bySize(elemSize, "stridedKernel launch", [&](auto *tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    stridedKernel<<<blocksFor(n, kThreads), kThreads, 0, stream>>>(
        static_cast<const T *>(x), offset, static_cast<T *>(out), n, s);
  });
}

rt::Status where(const uint8_t *cond, const std::vector<int64_t> &condShape,
                 const void *x, const std::vector<int64_t> &xShape,
                 const void *y, const std::vector<int64_t> &yShape,
                 size_t elemSize, void *out,
                 const std::vector<int64_t> &outShape, Stream stream) {
  Strides s;
  s.rank = int(outShape.size());
  if (s.rank > kMaxRank)
    return rt::Status::error("where: rank " + std::to_string(s.rank) +
                             " (at most " + std::to_string(kMaxRank) + ")");
  for (int d = 0; d < s.rank; ++d)
    s.dims[d] = outShape[size_t(d)];
  if (!broadcastStrides(condShape, s.rank, outShape, s.c) ||
      !broadcastStrides(xShape, s.rank, outShape, s.a) ||
      !broadcastStrides(yShape, s.rank, outShape, s.b))
    return rt::Status::error("where: operands do not broadcast to the output");
  int64_t n = product(outShape);
  if (n == 0)
    return rt::Status::ok();
  return bySize(elemSize, "whereKernel launch", [&](auto *tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    whereKernel<<<blocksFor(n, kThreads), kThreads, 0, stream>>>(
        cond, static_cast<const T *>(x), static_cast<const T *>(y),
        static_cast<T *>(out), n, s);
  });
}

namespace {

template <typename In>
rt::Status castFrom(const In *x, void *out, int to, int64_t n,
                    Stream stream) {
  unsigned blocks = blocksFor(n, kThreads);
  switch (to) {
  case 0:
    castKernel<<<blocks, kThreads, 0, stream>>>(x, static_cast<float *>(out),
                                                n, false);
    break;
  case 1:
    castKernel<<<blocks, kThreads, 0, stream>>>(x, static_cast<__half *>(out),
                                                n, false);
    break;
  case 2:
    castKernel<<<blocks, kThreads, 0, stream>>>(
        x, static_cast<__nv_bfloat16 *>(out), n, false);
    break;
  case 3:
    castKernel<<<blocks, kThreads, 0, stream>>>(x, static_cast<double *>(out),
                                                n, false);
    break;
  case 4:
    castKernel<<<blocks, kThreads, 0, stream>>>(
        x, static_cast<int64_t *>(out), n, false);
    break;
  case 5:
    castKernel<<<blocks, kThreads, 0, stream>>>(
        x, static_cast<int32_t *>(out), n, false);
    break;
  case 6:
    castKernel<<<blocks, kThreads, 0, stream>>>(x, static_cast<int8_t *>(out),
                                                n, false);
    break;
  case 7:
    castKernel<<<blocks, kThreads, 0, stream>>>(
        x, static_cast<uint8_t *>(out), n, false);
    break;
  case 8:
    castKernel<<<blocks, kThreads, 0, stream>>>(
        x, static_cast<uint8_t *>(out), n, true);
    break;
  default:
    return rt::Status::error("cast: unknown target dtype " +
                             std::to_string(to));
  }
  return checkLaunch("castKernel launch");
}

} // namespace

rt::Status cast(const void *x, int from, void *out, int to, int64_t n,
                Stream stream) {
  if (n == 0)
    return rt::Status::ok();
  switch (from) {
  case 0:
    return castFrom(static_cast<const float *>(x), out, to, n, stream);
  case 1:
    return castFrom(static_cast<const __half *>(x), out, to, n, stream);
  case 2:
    return castFrom(static_cast<const __nv_bfloat16 *>(x), out, to, n, stream);
  case 3:
    return castFrom(static_cast<const double *>(x), out, to, n, stream);
  case 4:
    return castFrom(static_cast<const int64_t *>(x), out, to, n, stream);
  case 5:
    return castFrom(static_cast<const int32_t *>(x), out, to, n, stream);
  case 6:
    return castFrom(static_cast<const int8_t *>(x), out, to, n, stream);
  case 7:
  case 8:
    return castFrom(static_cast<const uint8_t *>(x), out, to, n, stream);
  default:
    return rt::Status::error("cast: unknown source dtype " +
                             std::to_string(from));
  }
}

rt::Status gather(const void *x, int64_t outer, int64_t axisLen,
                  int64_t inner, const int64_t *indices, int64_t count,
                  size_t elemSize, void *out, Stream stream) {
  int64_t n = outer * count * inner;
  if (n == 0)
    return rt::Status::ok();
  return bySize(elemSize, "gatherKernel launch", [&](auto *tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    gatherKernel<<<blocksFor(n, kThreads), kThreads, 0, stream>>>(
        static_cast<const T *>(x), axisLen, inner, indices, count,
        static_cast<T *>(out), n);
  });
}

} // namespace moe::cuda
