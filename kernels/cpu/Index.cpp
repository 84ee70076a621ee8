//===- Index.cpp - Shape and index kernels on the CPU (ONNX) --------------===//

#include "kernels/cpu/Index.h"
#include "kernels/cpu/Half.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>

namespace moe::kernels::cpu {

namespace {

std::string str(int64_t v) { return std::to_string(v); }

/// v wrapped once into [0, dim), or -1 when it stays outside.
int64_t wrapIndex(int64_t v, int64_t dim) {
  int64_t w = v < 0 ? v + dim : v; // v < 0 and dim ≥ 0: no overflow
  return w >= 0 && w < dim ? w : -1;
}

rt::Status indexError(int64_t v, int64_t position, int64_t dim,
                      const std::string &what) {
  return rt::Status::error("index " + str(v) + " at position " +
                           str(position) + " is outside [" + str(-dim) + ", " +
                           str(dim) + ") (" + what + ")");
}

} // namespace

void broadcastTo(const void *x, const Shape &shape, const Shape &outShape,
                 size_t elemSize, void *y) {
  int64_t total = numElements(outShape);
  if (total == 0)
    return;
  size_t rank = outShape.size();
  Shape strides = broadcastStrides(shape, outShape);
  int64_t len = rank ? outShape[rank - 1] : 1;
  int64_t last = rank ? strides[rank - 1] : 0;
  const auto *src = static_cast<const uint8_t *>(x);
  auto *dst = static_cast<uint8_t *>(y);
  int64_t es = int64_t(elemSize);
  parallelFor(total / len, len, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      int64_t rest = row, off = 0;
      for (size_t d = rank ? rank - 1 : 0; d-- > 0;) {
        off += (rest % outShape[d]) * strides[d];
        rest /= outShape[d];
      }
      uint8_t *out = dst + row * len * es;
      if (last == 1) {
        std::memcpy(out, src + off * es, size_t(len * es));
        continue;
      }
      for (int64_t i = 0; i < len; ++i)
        std::memcpy(out + i * es, src + (off + i * last) * es, elemSize);
    }
  });
}

void tile(const void *x, const Shape &shape, const Shape &repeats,
          size_t elemSize, void *y) {
  size_t rank = shape.size();
  Shape outShape(rank);
  for (size_t d = 0; d < rank; ++d)
    outShape[d] = shape[d] * repeats[d];
  int64_t total = numElements(outShape);
  if (total == 0)
    return;
  Shape strides = stridesOf(shape);
  int64_t len = rank ? outShape[rank - 1] : 1;
  int64_t xlen = rank ? shape[rank - 1] : 1;
  int64_t reps = rank ? repeats[rank - 1] : 1;
  const auto *src = static_cast<const uint8_t *>(x);
  auto *dst = static_cast<uint8_t *>(y);
  int64_t es = int64_t(elemSize);
  parallelFor(total / len, len, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      int64_t rest = row, off = 0;
      for (size_t d = rank ? rank - 1 : 0; d-- > 0;) {
        off += ((rest % outShape[d]) % shape[d]) * strides[d];
        rest /= outShape[d];
      }
      uint8_t *out = dst + row * len * es;
      for (int64_t r = 0; r < reps; ++r)
        std::memcpy(out + r * xlen * es, src + off * es, size_t(xlen * es));
    }
  });
}

void fill(void *y, int64_t n, const void *value, size_t elemSize) {
  auto *dst = static_cast<uint8_t *>(y);
  parallelFor(n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      std::memcpy(dst + i * int64_t(elemSize), value, elemSize);
  });
}

rt::Status gatherND(const void *data, const Shape &dataShape,
                    const int64_t *indices, const Shape &indicesShape,
                    int64_t batchDims, size_t elemSize, void *y) {
  size_t b = size_t(batchDims), q = indicesShape.size();
  size_t k = size_t(indicesShape[q - 1]);
  int64_t batches = 1, tuples = 1, slice = 1, batchStride = 1;
  for (size_t d = 0; d < b; ++d)
    batches *= dataShape[d];
  for (size_t d = b; d + 1 < q; ++d)
    tuples *= indicesShape[d];
  for (size_t d = b + k; d < dataShape.size(); ++d)
    slice *= dataShape[d];
  for (size_t d = b; d < dataShape.size(); ++d)
    batchStride *= dataShape[d];
  Shape strides = stridesOf(dataShape);
  std::vector<int64_t> offsets(size_t(batches * tuples));
  for (int64_t t = 0; t < batches * tuples; ++t) {
    int64_t off = (t / (tuples ? tuples : 1)) * batchStride;
    for (size_t j = 0; j < k; ++j) {
      int64_t v = indices[size_t(t) * k + j];
      int64_t dim = dataShape[b + j];
      int64_t w = wrapIndex(v, dim);
      if (w < 0)
        return indexError(v, t * int64_t(k) + int64_t(j), dim,
                          "data dim " + str(int64_t(b + j)));
      off += w * strides[b + j];
    }
    offsets[size_t(t)] = off;
  }
  const auto *src = static_cast<const uint8_t *>(data);
  auto *dst = static_cast<uint8_t *>(y);
  size_t bytes = size_t(slice) * elemSize;
  parallelFor(batches * tuples, slice, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t)
      if (bytes)
        std::memcpy(dst + size_t(t) * bytes,
                    src + size_t(offsets[size_t(t)]) * elemSize, bytes);
  });
  return rt::Status::ok();
}

namespace {

template <typename T> void combineValue(T &dst, T src, Reduction r) {
  switch (r) {
  case Reduction::None:
    dst = src;
    break;
  case Reduction::Add:
    if constexpr (std::is_integral_v<T>)
      dst = T(std::make_unsigned_t<T>(dst) + std::make_unsigned_t<T>(src));
    else
      dst = dst + src;
    break;
  case Reduction::Mul:
    if constexpr (std::is_integral_v<T>)
      dst = T(std::make_unsigned_t<T>(dst) * std::make_unsigned_t<T>(src));
    else
      dst = dst * src;
    break;
  case Reduction::Max:
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(src) || src > dst)
        dst = src;
    } else if (src > dst) {
      dst = src;
    }
    break;
  case Reduction::Min:
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(src) || src < dst)
        dst = src;
    } else if (src < dst) {
      dst = src;
    }
    break;
  }
}

/// y[yi] (op)= u[ui].
void combineAt(void *y, int64_t yi, const void *u, int64_t ui, Reduction r,
               ScalarType type, size_t elemSize) {
  if (r == Reduction::None) {
    std::memcpy(static_cast<uint8_t *>(y) + yi * int64_t(elemSize),
                static_cast<const uint8_t *>(u) + ui * int64_t(elemSize),
                elemSize);
    return;
  }
  switch (type) {
  case ScalarType::F32:
    combineValue(static_cast<float *>(y)[yi],
                 static_cast<const float *>(u)[ui], r);
    break;
  case ScalarType::I64:
    combineValue(static_cast<int64_t *>(y)[yi],
                 static_cast<const int64_t *>(u)[ui], r);
    break;
  case ScalarType::I32:
    combineValue(static_cast<int32_t *>(y)[yi],
                 static_cast<const int32_t *>(u)[ui], r);
    break;
  case ScalarType::I1: {
    uint8_t &d = static_cast<uint8_t *>(y)[yi];
    bool a = d != 0, b = static_cast<const uint8_t *>(u)[ui] != 0;
    d = (r == Reduction::Add || r == Reduction::Max) ? (a || b) : (a && b);
    break;
  }
  default:
    break; // rejected by checkReduction
  }
}

rt::Status checkReduction(Reduction r, ScalarType type) {
  if (r == Reduction::None || type == ScalarType::F32 ||
      type == ScalarType::I64 || type == ScalarType::I32 ||
      type == ScalarType::I1)
    return rt::Status::ok();
  return rt::Status::error("a scatter reduction needs f32, i64, i32 or i1 "
                           "data");
}

} // namespace

rt::Status scatterElements(const void *data, const Shape &dataShape,
                           const int64_t *idx64, const int32_t *idx32,
                           const void *updates, const Shape &indicesShape,
                           int64_t axis, Reduction reduction, ScalarType type,
                           size_t elemSize, void *y) {
  MOE_RETURN_IF_ERROR(checkReduction(reduction, type));
  size_t rank = dataShape.size(), ax = size_t(axis);
  int64_t n = numElements(indicesShape);
  Shape strides = stridesOf(dataShape);
  int64_t dim = dataShape[ax];
  // Resolve every target first, so that a bad index writes nothing.
  std::vector<int64_t> targets(static_cast<size_t>(n));
  std::vector<int64_t> coord(rank, 0);
  for (int64_t p = 0; p < n; ++p) {
    if (p > 0) // advance the row-major coordinate
      for (size_t d = rank; d-- > 0;) {
        if (++coord[d] < indicesShape[d])
          break;
        coord[d] = 0;
      }
    int64_t v = idx64 ? idx64[p] : int64_t(idx32[p]);
    int64_t w = wrapIndex(v, dim);
    if (w < 0)
      return indexError(v, p, dim, "data dim " + str(axis));
    int64_t off = 0;
    for (size_t d = 0; d < rank; ++d)
      off += (d == ax ? w : coord[d]) * strides[d];
    targets[size_t(p)] = off;
  }
  int64_t total = numElements(dataShape);
  if (total)
    std::memcpy(y, data, size_t(total) * elemSize);
  for (int64_t p = 0; p < n; ++p)
    combineAt(y, targets[size_t(p)], updates, p, reduction, type, elemSize);
  return rt::Status::ok();
}

rt::Status scatterND(const void *data, const Shape &dataShape,
                     const int64_t *indices, const Shape &indicesShape,
                     const void *updates, Reduction reduction,
                     ScalarType type, size_t elemSize, void *y) {
  MOE_RETURN_IF_ERROR(checkReduction(reduction, type));
  size_t q = indicesShape.size();
  size_t k = size_t(indicesShape[q - 1]);
  int64_t tuples = 1, slice = 1;
  for (size_t d = 0; d + 1 < q; ++d)
    tuples *= indicesShape[d];
  for (size_t d = k; d < dataShape.size(); ++d)
    slice *= dataShape[d];
  Shape strides = stridesOf(dataShape);
  std::vector<int64_t> offsets(static_cast<size_t>(tuples));
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t off = 0;
    for (size_t j = 0; j < k; ++j) {
      int64_t v = indices[size_t(t) * k + j];
      int64_t w = wrapIndex(v, dataShape[j]);
      if (w < 0)
        return indexError(v, t * int64_t(k) + int64_t(j), dataShape[j],
                          "data dim " + str(int64_t(j)));
      off += w * strides[j];
    }
    offsets[size_t(t)] = off;
  }
  int64_t total = numElements(dataShape);
  if (total)
    std::memcpy(y, data, size_t(total) * elemSize);
  for (int64_t t = 0; t < tuples; ++t) {
    if (reduction == Reduction::None) {
      if (slice)
        std::memcpy(static_cast<uint8_t *>(y) +
                        offsets[size_t(t)] * int64_t(elemSize),
                    static_cast<const uint8_t *>(updates) +
                        t * slice * int64_t(elemSize),
                    size_t(slice) * elemSize);
      continue;
    }
    for (int64_t e = 0; e < slice; ++e)
      combineAt(y, offsets[size_t(t)] + e, updates, t * slice + e, reduction,
                type, elemSize);
  }
  return rt::Status::ok();
}

bool isNonZero(const void *x, ScalarType type, size_t elemSize, int64_t i) {
  switch (type) {
  case ScalarType::F32:
    return static_cast<const float *>(x)[i] != 0.0f;
  case ScalarType::F64:
    return static_cast<const double *>(x)[i] != 0.0;
  case ScalarType::F16:
  case ScalarType::BF16: // ±0 are the only values without bits below the sign
    return (static_cast<const uint16_t *>(x)[i] & 0x7fff) != 0;
  default: {
    const auto *p = static_cast<const uint8_t *>(x) + i * int64_t(elemSize);
    for (size_t b = 0; b < elemSize; ++b)
      if (p[b])
        return true;
    return false;
  }
  }
}

int64_t countNonZero(const void *x, ScalarType type, size_t elemSize,
                     int64_t n) {
  std::atomic<int64_t> count{0};
  parallelFor(n, 2, [&](int64_t begin, int64_t end) {
    int64_t c = 0;
    for (int64_t i = begin; i < end; ++i)
      c += isNonZero(x, type, elemSize, i);
    count.fetch_add(c);
  });
  return count.load();
}

void nonZero(const void *x, const Shape &shape, ScalarType type,
             size_t elemSize, int64_t count, int64_t *y) {
  size_t rank = shape.size();
  int64_t n = numElements(shape);
  std::vector<int64_t> coord(rank, 0);
  int64_t j = 0;
  for (int64_t i = 0; i < n && j < count; ++i) {
    if (i > 0)
      for (size_t d = rank; d-- > 0;) {
        if (++coord[d] < shape[d])
          break;
        coord[d] = 0;
      }
    if (!isNonZero(x, type, elemSize, i))
      continue;
    if (rank == 0)
      y[j] = 0;
    for (size_t d = 0; d < rank; ++d)
      y[int64_t(d) * count + j] = coord[d];
    ++j;
  }
}

void oneHot(const int64_t *indices, int64_t outer, int64_t inner,
            int64_t depth, const void *off, const void *on, size_t elemSize,
            void *y) {
  fill(y, outer * depth * inner, off, elemSize);
  auto *dst = static_cast<uint8_t *>(y);
  parallelFor(outer * inner, 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      int64_t v = indices[p];
      if (v < 0 || v >= depth)
        continue;
      int64_t o = p / inner, i = p % inner;
      std::memcpy(dst + ((o * depth + v) * inner + i) * int64_t(elemSize), on,
                  elemSize);
    }
  });
}

namespace {

/// a < b with NaN above every number (and equal to NaN).
template <typename T> bool lessNaNLast(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(a))
      return false;
    if (std::isnan(b))
      return true;
  }
  return a < b;
}

template <typename T>
void topKTyped(const T *x, int64_t outer, int64_t axisLen, int64_t inner,
               int64_t k, bool largest, T *values, int64_t *indices) {
  parallelFor(outer * inner, axisLen * 8, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> order(static_cast<size_t>(axisLen));
    for (int64_t line = begin; line < end; ++line) {
      int64_t o = line / inner, i = line % inner;
      const T *base = x + o * axisLen * inner + i;
      for (int64_t j = 0; j < axisLen; ++j)
        order[size_t(j)] = j;
      auto before = [&](int64_t a, int64_t b) {
        T va = base[a * inner], vb = base[b * inner];
        if (largest ? lessNaNLast(vb, va) : lessNaNLast(va, vb))
          return true;
        if (largest ? lessNaNLast(va, vb) : lessNaNLast(vb, va))
          return false;
        return a < b;
      };
      std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
      for (int64_t j = 0; j < k; ++j) {
        int64_t at = (o * k + j) * inner + i;
        values[at] = base[order[size_t(j)] * inner];
        indices[at] = order[size_t(j)];
      }
    }
  });
}

} // namespace

rt::Status topK(const void *x, ScalarType type, int64_t outer,
                int64_t axisLen, int64_t inner, int64_t k, bool largest,
                void *values, int64_t *indices) {
  if (k < 0 || k > axisLen)
    return rt::Status::error("k = " + str(k) + " is outside [0, " +
                             str(axisLen) + "]");
  switch (type) {
  case ScalarType::F32:
    topKTyped(static_cast<const float *>(x), outer, axisLen, inner, k, largest,
              static_cast<float *>(values), indices);
    return rt::Status::ok();
  case ScalarType::I64:
    topKTyped(static_cast<const int64_t *>(x), outer, axisLen, inner, k,
              largest, static_cast<int64_t *>(values), indices);
    return rt::Status::ok();
  case ScalarType::I32:
    topKTyped(static_cast<const int32_t *>(x), outer, axisLen, inner, k,
              largest, static_cast<int32_t *>(values), indices);
    return rt::Status::ok();
  default:
    return rt::Status::error("top-k needs f32, i64 or i32 values");
  }
}

void split(const void *x, int64_t outer, int64_t inner,
           const std::vector<int64_t> &lens, const std::vector<void *> &outputs,
           size_t elemSize) {
  int64_t total = 0;
  for (int64_t len : lens)
    total += len;
  const auto *src = static_cast<const uint8_t *>(x);
  size_t rowBytes = size_t(inner) * elemSize;
  parallelFor(outer, total * inner, [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      const uint8_t *in = src + size_t(o * total) * rowBytes;
      for (size_t i = 0; i < lens.size(); ++i) {
        size_t bytes = size_t(lens[i]) * rowBytes;
        if (bytes)
          std::memcpy(static_cast<uint8_t *>(outputs[i]) + size_t(o) * bytes,
                      in, bytes);
        in += bytes;
      }
    }
  });
}

} // namespace moe::kernels::cpu
