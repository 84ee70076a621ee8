//===- KernelUtil.h - Helpers for kernel shape functions --------*- C++ -*-===//
//
// Checks shared by the shape functions of the built-in kernels. They accept
// unknown (-1) dims: a check on a dim only fires when the dims involved are
// known, so the same code verifies plans and computes run-time shapes.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_CPU_KERNELUTIL_H
#define MOE_RUNTIME_CPU_KERNELUTIL_H

#include "runtime/Kernel.h"

#include "kernels/cpu/Layout.h"

#include <string>

#define MOE_CONCAT_IMPL(a, b) a##b
#define MOE_CONCAT(a, b) MOE_CONCAT_IMPL(a, b)
/// `lhs = value of expr`, or returns its error.
#define MOE_ASSIGN_OR_RETURN(lhs, expr)                                        \
  MOE_ASSIGN_OR_RETURN_IMPL(MOE_CONCAT(_moe_so_, __LINE__), lhs, expr)
#define MOE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)                              \
  auto tmp = (expr);                                                           \
  if (!tmp.isOk())                                                             \
    return tmp.status();                                                       \
  lhs = std::move(*tmp)

namespace moe::rt::cpu {

using Types = std::vector<TensorType>;

inline std::string str(int64_t v) { return std::to_string(v); }

/// The input count is within [min, max].
inline Status checkArity(const Types &in, size_t min, size_t max) {
  if (in.size() >= min && in.size() <= max)
    return Status::ok();
  std::string want = min == max ? std::to_string(min)
                                : std::to_string(min) + " to " +
                                      std::to_string(max);
  return Status::error("expects " + want + " inputs, got " +
                       std::to_string(in.size()));
}

inline Status checkDType(const Types &in, size_t i, DType want) {
  if (in[i].dtype == want)
    return Status::ok();
  return Status::error("input " + std::to_string(i) + " has dtype " +
                       dtypeName(in[i].dtype) + ", expected " +
                       dtypeName(want));
}

inline Status checkRank(const Types &in, size_t i, size_t rank) {
  if (in[i].shape.size() == rank)
    return Status::ok();
  return Status::error("input " + std::to_string(i) + " has rank " +
                       std::to_string(in[i].shape.size()) + ", expected " +
                       std::to_string(rank));
}

inline Status checkMinRank(const Types &in, size_t i, size_t rank) {
  if (in[i].shape.size() >= rank)
    return Status::ok();
  return Status::error("input " + std::to_string(i) + " has rank " +
                       std::to_string(in[i].shape.size()) +
                       ", expected at least " + std::to_string(rank));
}

/// Two dims agree when either is unknown or they are equal.
inline bool dimsMatch(int64_t a, int64_t b) { return a < 0 || b < 0 || a == b; }

/// The known one of two matching dims (-1 if both are unknown).
inline int64_t mergeDims(int64_t a, int64_t b) { return a >= 0 ? a : b; }

/// Fails unless input i's dim d matches `want` ("input 2 dim 1 is 5,
/// expected 4 (what)").
inline Status checkDim(const Types &in, size_t i, size_t d, int64_t want,
                       const std::string &what) {
  int64_t got = in[i].shape[d];
  if (dimsMatch(got, want))
    return Status::ok();
  return Status::error("input " + std::to_string(i) + " dim " +
                       std::to_string(d) + " is " + str(got) + ", expected " +
                       str(want) + " (" + what + ")");
}

/// An axis in [-rank, rank) made non-negative.
inline StatusOr<int64_t> normalizeAxis(int64_t axis, size_t rank,
                                       const std::string &what) {
  int64_t r = int64_t(rank);
  if (axis < -r || axis >= r)
    return Status::error(what + " " + str(axis) + " is outside [" + str(-r) +
                         ", " + str(r) + ")");
  return axis < 0 ? axis + r : axis;
}

/// Numpy broadcasting of two shapes with unknown dims.
/// The reduced dims of a rank-`rank` input for the `axes` attribute.
inline StatusOr<std::vector<bool>> reducedDims(const Attrs &attrs,
                                               size_t rank) {
  std::vector<int64_t> axes;
  MOE_ASSIGN_OR_RETURN(axes, attrs.getInts("axes", std::vector<int64_t>{}));
  std::vector<bool> reduced(rank, axes.empty());
  for (int64_t a : axes) {
    int64_t axis;
    MOE_ASSIGN_OR_RETURN(axis, normalizeAxis(a, rank, "axis"));
    if (reduced[size_t(axis)])
      return Status::error("attribute `axes` repeats axis " + str(a));
    reduced[size_t(axis)] = true;
  }
  return reduced;
}

inline StatusOr<Shape> broadcastShapes(const Shape &a, const Shape &b) {
  size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da == 1)
      out[i] = db;
    else if (db == 1)
      out[i] = da;
    else if (da < 0 || db < 0)
      out[i] = da < 0 ? db : da; // the unknown one must be 1 or equal
    else if (da == db)
      out[i] = da;
    else
      return Status::error("shapes " + formatShape(a) + " and " +
                           formatShape(b) + " do not broadcast");
  }
  return out;
}

/// Product of dims, -1 if any is unknown.
inline int64_t productOrUnknown(const Shape &s, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end; ++i) {
    if (s[i] < 0 || __builtin_mul_overflow(p, s[i], &p))
      return -1;
  }
  return p;
}

inline kernels::cpu::ScalarType scalarType(DType t) {
  return kernels::cpu::ScalarType(int8_t(t));
}

/// A one-output result.
inline StatusOr<Types> single(DType dtype, Shape shape) {
  return Types{TensorType{dtype, std::move(shape)}};
}

} // namespace moe::rt::cpu

#endif // MOE_RUNTIME_CPU_KERNELUTIL_H
