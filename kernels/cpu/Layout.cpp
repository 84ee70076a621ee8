//===- Layout.cpp - Data movement kernels on the CPU ----------------------===//

#include "kernels/cpu/Layout.h"
#include "kernels/cpu/Half.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

namespace moe::kernels::cpu {

void transpose(const void *x, const Shape &shape, const Shape &perm,
               size_t elemSize, void *y) {
  size_t rank = shape.size();
  Shape inStrides = stridesOf(shape);
  Shape outShape(rank), permStrides(rank);
  for (size_t i = 0; i < rank; ++i) {
    outShape[i] = shape[perm[i]];
    permStrides[i] = inStrides[perm[i]];
  }
  int64_t total = numElements(outShape);
  if (total == 0)
    return;
  int64_t len = rank ? outShape[rank - 1] : 1;
  int64_t lastStride = rank ? permStrides[rank - 1] : 0;
  const auto *src = static_cast<const uint8_t *>(x);
  auto *dst = static_cast<uint8_t *>(y);
  parallelFor(total / len, len, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      int64_t rest = row, off = 0;
      for (size_t d = rank ? rank - 1 : 0; d-- > 0;) {
        off += (rest % outShape[d]) * permStrides[d];
        rest /= outShape[d];
      }
      uint8_t *out = dst + row * len * int64_t(elemSize);
      if (lastStride == 1) {
        std::memcpy(out, src + off * int64_t(elemSize), size_t(len) * elemSize);
        continue;
      }
      for (int64_t i = 0; i < len; ++i)
        std::memcpy(out + i * int64_t(elemSize),
                    src + (off + i * lastStride) * int64_t(elemSize), elemSize);
    }
  });
}

rt::Status gather(const void *data, int64_t outer, int64_t axisLen,
                  int64_t inner, const int64_t *idx64, const int32_t *idx32,
                  int64_t numIndices, size_t elemSize, void *y) {
  std::vector<int64_t> idx(numIndices);
  for (int64_t i = 0; i < numIndices; ++i) {
    int64_t v = idx64 ? idx64[i] : int64_t(idx32[i]);
    int64_t w = v < 0 ? v + axisLen : v;
    if (w < 0 || w >= axisLen)
      return rt::Status::error("index " + std::to_string(v) + " at position " +
                               std::to_string(i) + " is outside [-" +
                               std::to_string(axisLen) + ", " +
                               std::to_string(axisLen) + ")");
    idx[i] = w;
  }
  const auto *src = static_cast<const uint8_t *>(data);
  auto *dst = static_cast<uint8_t *>(y);
  size_t rowBytes = size_t(inner) * elemSize;
  parallelFor(outer * numIndices, inner, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      int64_t o = r / numIndices, i = r % numIndices;
      std::memcpy(dst + size_t(r) * rowBytes,
                  src + size_t(o * axisLen + idx[i]) * rowBytes, rowBytes);
    }
  });
  return rt::Status::ok();
}

void concat(const std::vector<const void *> &inputs,
            const std::vector<int64_t> &axisLens, int64_t outer,
            int64_t inner, size_t elemSize, void *y) {
  int64_t total = 0;
  for (int64_t len : axisLens)
    total += len;
  auto *dst = static_cast<uint8_t *>(y);
  size_t rowBytes = size_t(inner) * elemSize;
  parallelFor(outer, total * inner, [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      uint8_t *out = dst + size_t(o * total) * rowBytes;
      for (size_t k = 0; k < inputs.size(); ++k) {
        size_t bytes = size_t(axisLens[k]) * rowBytes;
        if (bytes)
          std::memcpy(out, static_cast<const uint8_t *>(inputs[k]) + o * bytes,
                      bytes);
        out += bytes;
      }
    }
  });
}

rt::Status resolveSlice(const Shape &shape, const Shape &starts,
                        const Shape &ends, const std::optional<Shape> &axes,
                        const std::optional<Shape> &steps, Shape &first,
                        Shape &step, Shape &count) {
  const size_t rank = shape.size(), n = starts.size();
  Shape ax, st;
  if (axes)
    ax = *axes;
  else
    for (size_t i = 0; i < n; ++i)
      ax.push_back(int64_t(i));
  st = steps ? *steps : Shape(n, 1);
  const char *names[] = {"", "starts", "ends", "axes", "steps"};
  const Shape *lists[] = {nullptr, &starts, &ends, &ax, &st};
  for (int i = 2; i < 5; ++i)
    if (lists[i]->size() != n)
      return rt::Status::error("input " + std::to_string(i) + " (" +
                               names[i] + ") has " +
                               std::to_string(lists[i]->size()) +
                               " entries, input 1 (starts) " +
                               std::to_string(n));
  first.assign(rank, 0);
  step.assign(rank, 1);
  count = shape;
  std::vector<bool> seen(rank, false);
  for (size_t i = 0; i < n; ++i) {
    int64_t r = int64_t(rank), a = ax[i];
    if (a < -r || a >= r)
      return rt::Status::error("input 3 (axes) has " + std::to_string(a) +
                               " at position " + std::to_string(i) +
                               ", outside [" + std::to_string(-r) + ", " +
                               std::to_string(r) + ")");
    size_t axis = size_t(a < 0 ? a + r : a);
    if (seen[axis])
      return rt::Status::error("input 3 (axes) repeats axis " +
                               std::to_string(a));
    seen[axis] = true;
    if (st[i] == 0)
      return rt::Status::error("input 4 (steps) has a 0 at position " +
                               std::to_string(i));
    step[axis] = st[i];
    MOE_RETURN_IF_ERROR(resolveSliceAxis(shape[axis], starts[i], ends[i],
                                         st[i], first[axis], count[axis]));
  }
  return rt::Status::ok();
}

rt::Status resolveSliceAxis(int64_t dim, int64_t start, int64_t end,
                            int64_t step, int64_t &first, int64_t &count) {
  if (step == 0)
    return rt::Status::error("slice step is 0");
  if (start < 0)
    start = start < -dim ? -1 : start + dim;
  if (end < 0)
    end = end < -dim ? -1 : end + dim;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    count = end > start ? int64_t((uint64_t(end - start) + uint64_t(step) - 1) /
                                    uint64_t(step))
                        : 0;
  } else {
    if (dim == 0) {
      first = count = 0;
      return rt::Status::ok();
    }
    // ONNX clamps the start into [0, dim - 1] for negative steps: a start
    // before the first element still selects it.
    start = std::clamp<int64_t>(start, 0, dim - 1);
    end = std::clamp<int64_t>(end, -1, dim - 1);
    // -step may overflow for INT64_MIN: compute the count in unsigned.
    uint64_t mstep = uint64_t(0) - uint64_t(step);
    count = start > end ? int64_t((uint64_t(start - end) + mstep - 1) / mstep)
                        : 0;
  }
  first = start;
  return rt::Status::ok();
}

void slice(const void *x, const Shape &shape, const Shape &first,
           const Shape &step, const Shape &outShape, size_t elemSize,
           void *y) {
  size_t rank = shape.size();
  int64_t total = numElements(outShape);
  if (total == 0)
    return;
  Shape strides = stridesOf(shape);
  int64_t base = 0;
  for (size_t d = 0; d < rank; ++d)
    base += first[d] * strides[d];
  int64_t len = rank ? outShape[rank - 1] : 1;
  int64_t lastStride = rank ? step[rank - 1] * strides[rank - 1] : 0;
  const auto *src = static_cast<const uint8_t *>(x);
  auto *dst = static_cast<uint8_t *>(y);
  int64_t es = int64_t(elemSize);
  parallelFor(total / len, len, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      int64_t rest = row, off = base;
      for (size_t d = rank ? rank - 1 : 0; d-- > 0;) {
        off += (rest % outShape[d]) * step[d] * strides[d];
        rest /= outShape[d];
      }
      uint8_t *out = dst + row * len * es;
      for (int64_t i = 0; i < len; ++i)
        std::memcpy(out + i * es, src + (off + i * lastStride) * es, elemSize);
    }
  });
}

namespace {

/// Loads element i of a buffer of type `t` as double (floats) or int64
/// (integers); `isFloat` says which.
struct Scalar {
  double f = 0;
  int64_t i = 0;
  bool isFloat = false;
};

Scalar load(const void *p, ScalarType t, int64_t i) {
  Scalar s;
  switch (t) {
  case ScalarType::F32:
    s.f = static_cast<const float *>(p)[i];
    s.isFloat = true;
    break;
  case ScalarType::F16:
    s.f = halfToFloat(static_cast<const uint16_t *>(p)[i]);
    s.isFloat = true;
    break;
  case ScalarType::BF16:
    s.f = bf16ToFloat(static_cast<const uint16_t *>(p)[i]);
    s.isFloat = true;
    break;
  case ScalarType::F64:
    s.f = static_cast<const double *>(p)[i];
    s.isFloat = true;
    break;
  case ScalarType::I64:
    s.i = static_cast<const int64_t *>(p)[i];
    break;
  case ScalarType::I32:
    s.i = static_cast<const int32_t *>(p)[i];
    break;
  case ScalarType::I8:
    s.i = static_cast<const int8_t *>(p)[i];
    break;
  case ScalarType::U8:
    s.i = static_cast<const uint8_t *>(p)[i];
    break;
  case ScalarType::I1:
    s.i = static_cast<const uint8_t *>(p)[i] != 0;
    break;
  }
  return s;
}

/// Truncates toward zero and saturates to [lo, hi]; NaN gives 0.
int64_t toInt(double v, int64_t lo, int64_t hi) {
  if (std::isnan(v))
    return 0;
  v = std::trunc(v);
  if (v <= double(lo))
    return lo;
  if (v >= double(hi)) // 2^63 as a double is above INT64_MAX
    return hi;
  return int64_t(v);
}

template <typename T> T toIntType(const Scalar &s) {
  if (!s.isFloat)
    return T(s.i); // wraps (well defined for unsigned, implementation
                   // defined modulo 2^n for signed in C++17 and g++)
  return T(toInt(s.f, std::numeric_limits<T>::min(),
                 std::numeric_limits<T>::max()));
}

void store(void *p, ScalarType t, int64_t i, const Scalar &s) {
  double f = s.isFloat ? s.f : double(s.i);
  switch (t) {
  case ScalarType::F32:
    static_cast<float *>(p)[i] = float(f);
    break;
  case ScalarType::F16:
    static_cast<uint16_t *>(p)[i] = floatToHalf(float(f));
    break;
  case ScalarType::BF16:
    static_cast<uint16_t *>(p)[i] = floatToBf16(float(f));
    break;
  case ScalarType::F64:
    static_cast<double *>(p)[i] = f;
    break;
  case ScalarType::I64:
    static_cast<int64_t *>(p)[i] = toIntType<int64_t>(s);
    break;
  case ScalarType::I32:
    static_cast<int32_t *>(p)[i] = toIntType<int32_t>(s);
    break;
  case ScalarType::I8:
    static_cast<int8_t *>(p)[i] = toIntType<int8_t>(s);
    break;
  case ScalarType::U8:
    static_cast<uint8_t *>(p)[i] = toIntType<uint8_t>(s);
    break;
  case ScalarType::I1:
    static_cast<uint8_t *>(p)[i] = s.isFloat ? uint8_t(s.f != 0) : uint8_t(s.i != 0);
    break;
  }
}

bool knownType(ScalarType t) {
  return int(t) >= int(ScalarType::F32) && int(t) <= int(ScalarType::I1);
}

} // namespace

rt::Status cast(const void *x, ScalarType from, void *y, ScalarType to,
                int64_t n) {
  if (!knownType(from) || !knownType(to))
    return rt::Status::error("cast between unknown element types " +
                             std::to_string(int(from)) + " and " +
                             std::to_string(int(to)));
  parallelFor(n, 4, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      store(y, to, i, load(x, from, i));
  });
  return rt::Status::ok();
}

} // namespace moe::kernels::cpu
