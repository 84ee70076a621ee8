//===- Elementwise.cpp - Elementwise kernels on the CPU -------------------===//

#include "kernels/cpu/Elementwise.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

namespace moe::kernels::cpu {

namespace {

//===----------------------------------------------------------------------===//
// Broadcasting
//===----------------------------------------------------------------------===//

/// N operands broadcast to one output, with the output dims coalesced:
/// size-1 dims are dropped and neighbours merged wherever every operand
/// reads them contiguously (or not at all). The innermost stride of each
/// operand is then 0 (broadcast) or 1.
template <size_t N> struct BroadcastPlan {
  Shape dims; // at least one
  std::array<Shape, N> strides;
};

template <size_t N>
BroadcastPlan<N> planBroadcast(const std::array<const Shape *, N> &in,
                               const Shape &out) {
  std::array<Shape, N> full;
  for (size_t i = 0; i < N; ++i)
    full[i] = broadcastStrides(*in[i], out);
  BroadcastPlan<N> p;
  for (size_t d = 0; d < out.size(); ++d) {
    if (out[d] == 1)
      continue;
    bool merge = !p.dims.empty();
    for (size_t i = 0; i < N && merge; ++i)
      merge = p.strides[i].back() == full[i][d] * out[d];
    if (merge) {
      p.dims.back() *= out[d];
      for (size_t i = 0; i < N; ++i)
        p.strides[i].back() = full[i][d];
      continue;
    }
    p.dims.push_back(out[d]);
    for (size_t i = 0; i < N; ++i)
      p.strides[i].push_back(full[i][d]);
  }
  if (p.dims.empty()) { // rank 0, or all dims 1
    p.dims.push_back(1);
    for (size_t i = 0; i < N; ++i)
      p.strides[i].push_back(0);
  }
  return p;
}

using Offsets = std::array<int64_t, 3>;

/// Calls rowFn(off, stride, outOffset, len) over pieces of the output: each
/// a run of `len` consecutive output elements along the innermost coalesced
/// dim, where operand i starts at element off[i] and advances by stride[i]
/// (0 or 1). Long runs are cut into chunks so that work spreads over the
/// threads even when the whole output is one run.
template <size_t N, typename RowFn>
void forEachBroadcastRow(const std::array<const Shape *, N> &in,
                         const Shape &outShape, int64_t costPerElement,
                         const RowFn &rowFn) {
  static_assert(N <= 3, "Offsets holds three operands");
  int64_t total = numElements(outShape);
  if (total == 0)
    return;
  BroadcastPlan<N> p = planBroadcast<N>(in, outShape);
  size_t rank = p.dims.size();
  int64_t len = p.dims.back();
  int64_t rows = total / len;
  constexpr int64_t kChunk = 1 << 14;
  int64_t chunks = (len + kChunk - 1) / kChunk;
  parallelFor(rows * chunks, std::min(len, kChunk) * costPerElement,
              [&](int64_t begin, int64_t end) {
                for (int64_t item = begin; item < end; ++item) {
                  int64_t row = item / chunks;
                  int64_t start = (item % chunks) * kChunk;
                  Offsets off{}, st{};
                  int64_t rest = row;
                  for (size_t d = rank - 1; d-- > 0;) {
                    int64_t idx = rest % p.dims[d];
                    rest /= p.dims[d];
                    for (size_t i = 0; i < N; ++i)
                      off[i] += idx * p.strides[i][d];
                  }
                  for (size_t i = 0; i < N; ++i) {
                    st[i] = p.strides[i][rank - 1];
                    off[i] += start * st[i];
                  }
                  rowFn(off, st, row * len + start,
                        std::min(kChunk, len - start));
                }
              });
}

/// po[i] = f(pa[i·sa], pb[i·sb]) with separate loops per stride pattern so
/// that the common cases vectorise.
template <typename T, typename R, typename F>
inline void binaryLoop(const T *pa, int64_t sa, const T *pb, int64_t sb, R *po,
                       int64_t len, const F &f) {
  if (sa == 1 && sb == 1)
    for (int64_t i = 0; i < len; ++i)
      po[i] = f(pa[i], pb[i]);
  else if (sa == 1 && sb == 0) {
    T y = pb[0];
    for (int64_t i = 0; i < len; ++i)
      po[i] = f(pa[i], y);
  } else if (sa == 0 && sb == 1) {
    T x = pa[0];
    for (int64_t i = 0; i < len; ++i)
      po[i] = f(x, pb[i]);
  } else
    for (int64_t i = 0; i < len; ++i)
      po[i] = f(pa[i * sa], pb[i * sb]);
}

template <typename T, typename R, typename F>
void binaryBroadcast(const T *a, const Shape &aShape, const T *b,
                     const Shape &bShape, R *out, const Shape &outShape,
                     int64_t cost, F f) {
  forEachBroadcastRow<2>({&aShape, &bShape}, outShape, cost,
                         [&](const Offsets &off, const Offsets &st,
                             int64_t o, int64_t len) {
                           binaryLoop(a + off[0], st[0], b + off[1], st[1],
                                      out + o, len, f);
                         });
}

//===----------------------------------------------------------------------===//
// Integer arithmetic
//===----------------------------------------------------------------------===//

template <typename T>
rt::Status binaryInt(BinaryOp op, const T *a, const Shape &aShape, const T *b,
                     const Shape &bShape, T *out, const Shape &outShape,
                     const char *typeName) {
  using U = std::make_unsigned_t<T>;
  auto bin = [&](auto f) {
    binaryBroadcast(a, aShape, b, bShape, out, outShape, 1, f);
  };
  switch (op) {
  case BinaryOp::Add:
    bin([](T x, T y) { return T(U(x) + U(y)); });
    break;
  case BinaryOp::Sub:
    bin([](T x, T y) { return T(U(x) - U(y)); });
    break;
  case BinaryOp::Mul:
    bin([](T x, T y) { return T(U(x) * U(y)); });
    break;
  case BinaryOp::Div: {
    // Every element of b is read at least once when the output is not
    // empty, so a zero anywhere in b is a division by zero.
    if (numElements(outShape) > 0) {
      int64_t nb = numElements(bShape);
      for (int64_t i = 0; i < nb; ++i)
        if (b[i] == 0)
          return rt::Status::error("integer division by zero");
    }
    // x / -1 is negation; done in unsigned arithmetic because min / -1
    // would trap.
    bin([](T x, T y) { return y == -1 ? T(U(0) - U(x)) : T(x / y); });
    break;
  }
  case BinaryOp::Max:
    bin([](T x, T y) { return std::max(x, y); });
    break;
  case BinaryOp::Min:
    bin([](T x, T y) { return std::min(x, y); });
    break;
  case BinaryOp::Pow:
    return rt::Status::error(std::string("pow is not defined on ") +
                             typeName);
  }
  return rt::Status::ok();
}

template <typename T> void negInt(const T *x, T *out, int64_t n) {
  using U = std::make_unsigned_t<T>;
  parallelFor(n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      out[i] = T(U(0) - U(x[i]));
  });
}

//===----------------------------------------------------------------------===//
// Comparison
//===----------------------------------------------------------------------===//

template <typename T>
void compareTyped(CompareOp op, const T *a, const Shape &aShape, const T *b,
                  const Shape &bShape, uint8_t *out, const Shape &outShape) {
  auto cmp = [&](auto f) {
    binaryBroadcast(a, aShape, b, bShape, out, outShape, 1, f);
  };
  switch (op) {
  case CompareOp::Equal:
    return cmp([](T x, T y) { return uint8_t(x == y); });
  case CompareOp::Greater:
    return cmp([](T x, T y) { return uint8_t(x > y); });
  case CompareOp::GreaterOrEqual:
    return cmp([](T x, T y) { return uint8_t(x >= y); });
  case CompareOp::Less:
    return cmp([](T x, T y) { return uint8_t(x < y); });
  case CompareOp::LessOrEqual:
    return cmp([](T x, T y) { return uint8_t(x <= y); });
  }
}

//===----------------------------------------------------------------------===//
// Selection
//===----------------------------------------------------------------------===//

template <typename T>
void whereTyped(const uint8_t *c, const Shape &cShape, const T *x,
                const Shape &xShape, const T *y, const Shape &yShape, T *out,
                const Shape &outShape) {
  forEachBroadcastRow<3>(
      {&cShape, &xShape, &yShape}, outShape, 1,
      [&](const Offsets &off, const Offsets &st, int64_t o, int64_t len) {
        const uint8_t *pc = c + off[0];
        const T *px = x + off[1], *py = y + off[2];
        T *po = out + o;
        if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
          for (int64_t i = 0; i < len; ++i)
            po[i] = pc[i] ? px[i] : py[i];
          return;
        }
        if (st[0] == 0) { // one condition for the whole run
          const T *src = pc[0] ? px : py;
          int64_t s = pc[0] ? st[1] : st[2];
          if (s == 0)
            std::fill(po, po + len, src[0]);
          else
            std::copy(src, src + len, po);
          return;
        }
        for (int64_t i = 0; i < len; ++i)
          po[i] = pc[i] ? px[i * st[1]] : py[i * st[2]];
      });
}

template <typename T>
void clipTyped(const T *x, T lo, T hi, T *out, int64_t n) {
  parallelFor(n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      out[i] = std::min(std::max(x[i], lo), hi);
  });
}

//===----------------------------------------------------------------------===//
// Integer reductions
//===----------------------------------------------------------------------===//

template <typename T>
void reduceIntTyped(IntReduceOp op, const T *x, const Shape &shape,
                    const std::vector<bool> &reduced, T *y) {
  using U = std::make_unsigned_t<T>;
  Shape strides = stridesOf(shape);
  Shape keptDims, keptStrides, redDims, redStrides;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (reduced[d]) {
      redDims.push_back(shape[d]);
      redStrides.push_back(strides[d]);
    } else {
      keptDims.push_back(shape[d]);
      keptStrides.push_back(strides[d]);
    }
  }
  int64_t outCount = numElements(keptDims);
  int64_t redCount = numElements(redDims);
  parallelFor(outCount, redCount, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> idx(redDims.size());
    for (int64_t o = begin; o < end; ++o) {
      int64_t offset = 0, rest = o;
      for (size_t d = keptDims.size(); d-- > 0;) {
        offset += (rest % keptDims[d]) * keptStrides[d];
        rest /= keptDims[d];
      }
      U sum = 0;
      T mx = std::numeric_limits<T>::min();
      std::fill(idx.begin(), idx.end(), 0);
      for (int64_t r = 0; r < redCount; ++r) {
        T v = x[offset];
        sum += U(v);
        mx = std::max(mx, v);
        // Odometer step over the reduced dims.
        for (size_t d = redDims.size(); d-- > 0;) {
          offset += redStrides[d];
          if (++idx[d] < redDims[d])
            break;
          offset -= redStrides[d] * redDims[d];
          idx[d] = 0;
        }
      }
      y[o] = op == IntReduceOp::Sum ? T(sum) : mx;
    }
  });
}

std::string typeNumber(ScalarType t) { return std::to_string(int(t)); }

} // namespace

//===----------------------------------------------------------------------===//
// Entry points
//===----------------------------------------------------------------------===//

void binaryF32(BinaryOp op, const float *a, const Shape &aShape,
               const float *b, const Shape &bShape, float *out,
               const Shape &outShape) {
  auto bin = [&](int64_t cost, auto f) {
    binaryBroadcast(a, aShape, b, bShape, out, outShape, cost, f);
  };
  switch (op) {
  case BinaryOp::Add:
    return bin(1, [](float x, float y) { return x + y; });
  case BinaryOp::Sub:
    return bin(1, [](float x, float y) { return x - y; });
  case BinaryOp::Mul:
    return bin(1, [](float x, float y) { return x * y; });
  case BinaryOp::Div:
    return bin(1, [](float x, float y) { return x / y; });
  case BinaryOp::Max:
    return bin(1, [](float x, float y) { return std::max(x, y); });
  case BinaryOp::Min:
    return bin(1, [](float x, float y) { return std::min(x, y); });
  case BinaryOp::Pow:
    return bin(8, [](float x, float y) { return std::pow(x, y); });
  }
}

rt::Status binaryI64(BinaryOp op, const int64_t *a, const Shape &aShape,
                     const int64_t *b, const Shape &bShape, int64_t *out,
                     const Shape &outShape) {
  return binaryInt(op, a, aShape, b, bShape, out, outShape, "i64");
}

rt::Status binaryI32(BinaryOp op, const int32_t *a, const Shape &aShape,
                     const int32_t *b, const Shape &bShape, int32_t *out,
                     const Shape &outShape) {
  return binaryInt(op, a, aShape, b, bShape, out, outShape, "i32");
}

float applyUnary(UnaryOp op, float x) {
  switch (op) {
  case UnaryOp::Silu:
    return x / (1.0f + std::exp(-x));
  case UnaryOp::Sigmoid:
    return 1.0f / (1.0f + std::exp(-x));
  case UnaryOp::Relu:
    return x > 0.0f ? x : 0.0f;
  case UnaryOp::Tanh:
    return std::tanh(x);
  case UnaryOp::Exp:
    return std::exp(x);
  case UnaryOp::Log:
    return std::log(x);
  case UnaryOp::Neg:
    return -x;
  case UnaryOp::Abs:
    return std::fabs(x);
  case UnaryOp::Sqrt:
    return std::sqrt(x);
  case UnaryOp::Rsqrt:
    return 1.0f / std::sqrt(x);
  case UnaryOp::Reciprocal:
    return 1.0f / x;
  case UnaryOp::GeluErf:
    return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
  case UnaryOp::GeluTanh: {
    constexpr float kC = 0.79788456080286536f; // sqrt(2/pi)
    return 0.5f * x * (1.0f + std::tanh(kC * (x + 0.044715f * x * x * x)));
  }
  case UnaryOp::Cos:
    return std::cos(x);
  case UnaryOp::Sin:
    return std::sin(x);
  }
  return x;
}

void unaryF32(UnaryOp op, const float *x, float *out, int64_t n) {
  parallelFor(n, 8, [&](int64_t begin, int64_t end) {
    switch (op) {
    case UnaryOp::Relu:
      for (int64_t i = begin; i < end; ++i)
        out[i] = x[i] > 0.0f ? x[i] : 0.0f;
      return;
    case UnaryOp::Neg:
      for (int64_t i = begin; i < end; ++i)
        out[i] = -x[i];
      return;
    default:
      for (int64_t i = begin; i < end; ++i)
        out[i] = applyUnary(op, x[i]);
      return;
    }
  });
}

void negI64(const int64_t *x, int64_t *out, int64_t n) { negInt(x, out, n); }
void negI32(const int32_t *x, int32_t *out, int64_t n) { negInt(x, out, n); }

rt::Status compare(CompareOp op, ScalarType type, const void *a,
                   const Shape &aShape, const void *b, const Shape &bShape,
                   uint8_t *out, const Shape &outShape) {
  switch (type) {
  case ScalarType::F32:
    compareTyped(op, static_cast<const float *>(a), aShape,
                 static_cast<const float *>(b), bShape, out, outShape);
    return rt::Status::ok();
  case ScalarType::I64:
    compareTyped(op, static_cast<const int64_t *>(a), aShape,
                 static_cast<const int64_t *>(b), bShape, out, outShape);
    return rt::Status::ok();
  case ScalarType::I32:
    compareTyped(op, static_cast<const int32_t *>(a), aShape,
                 static_cast<const int32_t *>(b), bShape, out, outShape);
    return rt::Status::ok();
  case ScalarType::I1: {
    // Booleans compare by truth value, whatever nonzero byte holds it.
    auto pa = static_cast<const uint8_t *>(a);
    auto pb = static_cast<const uint8_t *>(b);
    auto cmp = [&](auto f) {
      binaryBroadcast(pa, aShape, pb, bShape, out, outShape, 1, f);
    };
    switch (op) {
    case CompareOp::Equal:
      cmp([](uint8_t x, uint8_t y) { return uint8_t((x != 0) == (y != 0)); });
      break;
    case CompareOp::Greater:
      cmp([](uint8_t x, uint8_t y) { return uint8_t(x != 0 && y == 0); });
      break;
    case CompareOp::GreaterOrEqual:
      cmp([](uint8_t x, uint8_t y) { return uint8_t(x != 0 || y == 0); });
      break;
    case CompareOp::Less:
      cmp([](uint8_t x, uint8_t y) { return uint8_t(x == 0 && y != 0); });
      break;
    case CompareOp::LessOrEqual:
      cmp([](uint8_t x, uint8_t y) { return uint8_t(x == 0 || y != 0); });
      break;
    }
    return rt::Status::ok();
  }
  default:
    return rt::Status::error("comparison is not defined on element type " +
                             typeNumber(type));
  }
}

void logic(LogicOp op, const uint8_t *a, const Shape &aShape, const uint8_t *b,
           const Shape &bShape, uint8_t *out, const Shape &outShape) {
  auto bin = [&](auto f) {
    binaryBroadcast(a, aShape, b, bShape, out, outShape, 1, f);
  };
  switch (op) {
  case LogicOp::And:
    return bin([](uint8_t x, uint8_t y) { return uint8_t(x != 0 && y != 0); });
  case LogicOp::Or:
    return bin([](uint8_t x, uint8_t y) { return uint8_t(x != 0 || y != 0); });
  case LogicOp::Xor:
    return bin([](uint8_t x, uint8_t y) { return uint8_t((x != 0) != (y != 0)); });
  }
}

void logicalNot(const uint8_t *x, uint8_t *out, int64_t n) {
  parallelFor(n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      out[i] = uint8_t(x[i] == 0);
  });
}

rt::Status where(const uint8_t *cond, const Shape &condShape, const void *x,
                 const Shape &xShape, const void *y, const Shape &yShape,
                 size_t elemSize, void *out, const Shape &outShape) {
  auto run = [&](auto tag) {
    using T = decltype(tag);
    whereTyped(cond, condShape, static_cast<const T *>(x), xShape,
               static_cast<const T *>(y), yShape, static_cast<T *>(out),
               outShape);
  };
  switch (elemSize) {
  case 1:
    run(uint8_t{});
    return rt::Status::ok();
  case 2:
    run(uint16_t{});
    return rt::Status::ok();
  case 4:
    run(uint32_t{});
    return rt::Status::ok();
  case 8:
    run(uint64_t{});
    return rt::Status::ok();
  default:
    return rt::Status::error("where: unsupported element size " +
                             std::to_string(elemSize));
  }
}

rt::Status clip(ScalarType type, const void *x, const void *lo,
                const void *hi, void *out, int64_t n) {
  auto run = [&](auto tag) {
    using T = decltype(tag);
    clipTyped(static_cast<const T *>(x), *static_cast<const T *>(lo),
              *static_cast<const T *>(hi), static_cast<T *>(out), n);
  };
  switch (type) {
  case ScalarType::F32:
    run(float{});
    return rt::Status::ok();
  case ScalarType::I64:
    run(int64_t{});
    return rt::Status::ok();
  case ScalarType::I32:
    run(int32_t{});
    return rt::Status::ok();
  default:
    return rt::Status::error("clip is not defined on element type " +
                             typeNumber(type));
  }
}

rt::Status reduceInt(IntReduceOp op, ScalarType type, const void *x,
                     const Shape &shape, const std::vector<bool> &reduced,
                     void *y) {
  switch (type) {
  case ScalarType::I64:
    reduceIntTyped(op, static_cast<const int64_t *>(x), shape, reduced,
                   static_cast<int64_t *>(y));
    return rt::Status::ok();
  case ScalarType::I32:
    reduceIntTyped(op, static_cast<const int32_t *>(x), shape, reduced,
                   static_cast<int32_t *>(y));
    return rt::Status::ok();
  default:
    return rt::Status::error("integer reduction on element type " +
                             typeNumber(type));
  }
}

} // namespace moe::kernels::cpu
