//===- Elementwise.h - Elementwise kernels on the CPU -----------*- C++ -*-===//
//
// Arithmetic, comparison, logic and selection over tensors with numpy
// broadcasting (every rank, rank 0 included), plus the integer reductions.
// Broadcast operands are walked as rows of coalesced dims, so same-shape and
// scalar operands run as flat loops; big outputs are split over TBB.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CPU_ELEMENTWISE_H
#define MOE_KERNELS_CPU_ELEMENTWISE_H

#include "kernels/cpu/Common.h"
#include "kernels/cpu/Layout.h"
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
  Cos,
  Sin,
};

enum class CompareOp { Equal, Greater, GreaterOrEqual, Less, LessOrEqual };

enum class LogicOp { And, Or, Xor };

/// out = op(a, b) with numpy broadcasting; `outShape` is the broadcast of the
/// two shapes.
void binaryF32(BinaryOp op, const float *a, const Shape &aShape,
               const float *b, const Shape &bShape, float *out,
               const Shape &outShape);

/// Integer versions: wrap on overflow, division truncates toward zero and a
/// zero divisor is an error (checked before anything is written). Pow is not
/// defined on integers.
rt::Status binaryI64(BinaryOp op, const int64_t *a, const Shape &aShape,
                     const int64_t *b, const Shape &bShape, int64_t *out,
                     const Shape &outShape);
rt::Status binaryI32(BinaryOp op, const int32_t *a, const Shape &aShape,
                     const int32_t *b, const Shape &bShape, int32_t *out,
                     const Shape &outShape);

/// out[i] = op(x[i]) over n elements.
void unaryF32(UnaryOp op, const float *x, float *out, int64_t n);

/// The scalar definition of each unary op (also the tests' reference).
float applyUnary(UnaryOp op, float x);

/// out[i] = -x[i], wrapping (the minimum stays the minimum).
void negI64(const int64_t *x, int64_t *out, int64_t n);
void negI32(const int32_t *x, int32_t *out, int64_t n);

/// out (i1, one byte 0/1) = a op b with broadcasting; a and b have element
/// type `type`: F32, I64, I32, or I1 (nonzero bytes are true). NaN compares
/// unequal and unordered. Other types are an error.
rt::Status compare(CompareOp op, ScalarType type, const void *a,
                   const Shape &aShape, const void *b, const Shape &bShape,
                   uint8_t *out, const Shape &outShape);

/// out (i1) = a op b on i1 operands (nonzero bytes are true), broadcast.
void logic(LogicOp op, const uint8_t *a, const Shape &aShape, const uint8_t *b,
           const Shape &bShape, uint8_t *out, const Shape &outShape);

/// out[i] = !x[i] on i1.
void logicalNot(const uint8_t *x, uint8_t *out, int64_t n);

/// out = cond ? x : y with three-way broadcasting; x, y and out have
/// elements of `elemSize` bytes (1, 2, 4 or 8; others are an error), cond is
/// i1 (nonzero is true).
rt::Status where(const uint8_t *cond, const Shape &condShape, const void *x,
                 const Shape &xShape, const void *y, const Shape &yShape,
                 size_t elemSize, void *out, const Shape &outShape);

/// out[i] = min(max(x[i], lo), hi) over n elements of type F32, I64 or I32
/// (lo and hi point at one element each). lo > hi gives hi everywhere; NaN
/// inputs stay NaN.
rt::Status clip(ScalarType type, const void *x, const void *lo,
                const void *hi, void *out, int64_t n);

enum class IntReduceOp { Sum, Max };

/// Integer reductions of x (I64 or I32) over the dims with reduced[d] set,
/// written in the order of the kept dims. Sum wraps (0 over an empty range),
/// Max gives the type's minimum over an empty range.
rt::Status reduceInt(IntReduceOp op, ScalarType type, const void *x,
                     const Shape &shape, const std::vector<bool> &reduced,
                     void *y);

} // namespace moe::kernels::cpu

#endif // MOE_KERNELS_CPU_ELEMENTWISE_H
