//===- Elementwise.h - Elementwise kernels on the CPU -----------*- C++ -*-===//
#ifndef MOE_KERNELS_CPU_ELEMENTWISE_H
#define MOE_KERNELS_CPU_ELEMENTWISE_H

#include "kernels/cpu/Common.h"
#include "runtime/Status.h"

namespace moe::kernels::cpu {

enum class BinaryOp { Add, Sub, Mul, Div, Max, Min, Pow };

enum class UnaryOp {
  Silu,
  Sigmoid,
  Relu,
  Tanh,
  Exp,
  Log,
  Neg,
  Abs,
  Sqrt,
  Rsqrt,
  Reciprocal,
  GeluErf,
  GeluTanh,
};

/// out = op(a, b) with numpy broadcasting; `outShape` is the broadcast of the
/// two shapes.
void binaryF32(BinaryOp op, const float *a, const Shape &aShape,
               const float *b, const Shape &bShape, float *out,
               const Shape &outShape);

/// Integer version: wraps on overflow, division truncates toward zero and a
/// zero divisor is an error. Pow is not defined on integers.
rt::Status binaryI64(BinaryOp op, const int64_t *a, const Shape &aShape,
                     const int64_t *b, const Shape &bShape, int64_t *out,
                     const Shape &outShape);

/// out[i] = op(x[i]) over n elements.
void unaryF32(UnaryOp op, const float *x, float *out, int64_t n);

/// The scalar definition of each unary op (also the tests' reference).
float applyUnary(UnaryOp op, float x);

} // namespace moe::kernels::cpu

#endif // MOE_KERNELS_CPU_ELEMENTWISE_H
