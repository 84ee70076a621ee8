//===- Elementwise.cpp - Elementwise kernels on the CPU -------------------===//

#include "kernels/cpu/Elementwise.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <string>

namespace moe::kernels::cpu {

namespace {

/// Visits the broadcast operands row by row (the last output dim innermost,
/// with per-operand strides 0 or 1 there) and calls rowFn(aPtr, sa, bPtr,
/// sb, outPtr, len).
template <typename T, typename RowFn>
void forEachBroadcastRow(const T *a, const Shape &aShape, const T *b,
                         const Shape &bShape, T *out, const Shape &outShape,
                         const RowFn &rowFn) {
  int64_t total = numElements(outShape);
  if (total == 0)
    return;
  if (aShape == outShape && bShape == outShape) {
    // Same shapes: one flat row, split for parallelism.
    parallelFor(total, 1, [&](int64_t begin, int64_t end) {
      rowFn(a + begin, 1, b + begin, 1, out + begin, end - begin);
    });
    return;
  }
  Shape as = broadcastStrides(aShape, outShape);
  Shape bs = broadcastStrides(bShape, outShape);
  size_t rank = outShape.size();
  int64_t len = rank ? outShape[rank - 1] : 1;
  int64_t sa = rank ? as[rank - 1] : 0, sb = rank ? bs[rank - 1] : 0;
  int64_t rows = total / len;
  parallelFor(rows, len, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      int64_t rest = row, ao = 0, bo = 0;
      for (size_t d = rank ? rank - 1 : 0; d-- > 0;) {
        int64_t idx = rest % outShape[d];
        rest /= outShape[d];
        ao += idx * as[d];
        bo += idx * bs[d];
      }
      rowFn(a + ao, sa, b + bo, sb, out + row * len, len);
    }
  });
}

template <typename F>
void binaryRowsF32(const float *a, const Shape &aShape, const float *b,
                   const Shape &bShape, float *out, const Shape &outShape,
                   F f) {
  forEachBroadcastRow<float>(
      a, aShape, b, bShape, out, outShape,
      [&](const float *pa, int64_t sa, const float *pb, int64_t sb, float *po,
          int64_t len) {
        // Separate loops per stride pattern so the common cases vectorise.
        if (sa == 1 && sb == 1)
          for (int64_t i = 0; i < len; ++i)
            po[i] = f(pa[i], pb[i]);
        else if (sa == 1 && sb == 0)
          for (int64_t i = 0; i < len; ++i)
            po[i] = f(pa[i], pb[0]);
        else if (sa == 0 && sb == 1)
          for (int64_t i = 0; i < len; ++i)
            po[i] = f(pa[0], pb[i]);
        else
          for (int64_t i = 0; i < len; ++i)
            po[i] = f(pa[i * sa], pb[i * sb]);
      });
}

int64_t wrapAdd(int64_t x, int64_t y) {
  return int64_t(uint64_t(x) + uint64_t(y));
}
int64_t wrapSub(int64_t x, int64_t y) {
  return int64_t(uint64_t(x) - uint64_t(y));
}
int64_t wrapMul(int64_t x, int64_t y) {
  return int64_t(uint64_t(x) * uint64_t(y));
}

} // namespace

void binaryF32(BinaryOp op, const float *a, const Shape &aShape,
               const float *b, const Shape &bShape, float *out,
               const Shape &outShape) {
  switch (op) {
  case BinaryOp::Add:
    return binaryRowsF32(a, aShape, b, bShape, out, outShape,
                         [](float x, float y) { return x + y; });
  case BinaryOp::Sub:
    return binaryRowsF32(a, aShape, b, bShape, out, outShape,
                         [](float x, float y) { return x - y; });
  case BinaryOp::Mul:
    return binaryRowsF32(a, aShape, b, bShape, out, outShape,
                         [](float x, float y) { return x * y; });
  case BinaryOp::Div:
    return binaryRowsF32(a, aShape, b, bShape, out, outShape,
                         [](float x, float y) { return x / y; });
  case BinaryOp::Max:
    return binaryRowsF32(a, aShape, b, bShape, out, outShape,
                         [](float x, float y) { return std::max(x, y); });
  case BinaryOp::Min:
    return binaryRowsF32(a, aShape, b, bShape, out, outShape,
                         [](float x, float y) { return std::min(x, y); });
  case BinaryOp::Pow:
    return binaryRowsF32(a, aShape, b, bShape, out, outShape,
                         [](float x, float y) { return std::pow(x, y); });
  }
}

rt::Status binaryI64(BinaryOp op, const int64_t *a, const Shape &aShape,
                     const int64_t *b, const Shape &bShape, int64_t *out,
                     const Shape &outShape) {
  if (op == BinaryOp::Pow)
    return rt::Status::error("pow is not defined on i64");
  std::atomic<bool> divByZero{false};
  forEachBroadcastRow<int64_t>(
      a, aShape, b, bShape, out, outShape,
      [&](const int64_t *pa, int64_t sa, const int64_t *pb, int64_t sb,
          int64_t *po, int64_t len) {
        for (int64_t i = 0; i < len; ++i) {
          int64_t x = pa[i * sa], y = pb[i * sb], r = 0;
          switch (op) {
          case BinaryOp::Add:
            r = wrapAdd(x, y);
            break;
          case BinaryOp::Sub:
            r = wrapSub(x, y);
            break;
          case BinaryOp::Mul:
            r = wrapMul(x, y);
            break;
          case BinaryOp::Div:
            if (y == 0) {
              divByZero.store(true, std::memory_order_relaxed);
              r = 0;
            } else if (y == -1) {
              r = wrapSub(0, x); // INT64_MIN / -1 would trap
            } else {
              r = x / y;
            }
            break;
          case BinaryOp::Max:
            r = std::max(x, y);
            break;
          case BinaryOp::Min:
            r = std::min(x, y);
            break;
          case BinaryOp::Pow:
            break;
          }
          po[i] = r;
        }
      });
  if (divByZero.load())
    return rt::Status::error("integer division by zero");
  return rt::Status::ok();
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

} // namespace moe::kernels::cpu
