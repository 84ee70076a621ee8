//===- IndexKernels.cpp - ONNX shape and index kernels --------------------===//
//
// The kernels the ONNX importer emits for shape computations and indexing
// (docs/onnx-import.md, docs/plan-format.md "Shape and index"), with the
// semantics of the ONNX operator of the same name. Many results have dims
// that depend on input values (a shape tensor, k, NonZero): their shape
// functions give the rank with -1 for those dims, at load time and at run
// time, and the kernels are registered with allocatesOutputs so that the
// CPU body computes the shapes from the values and allocates. The rank must
// follow from the input types (a shape operand's length must be known).
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/KernelUtil.h"
#include "runtime/cpu/Registration.h"

#include "kernels/cpu/Index.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>

namespace moe::rt::cpu {
namespace kc = kernels::cpu;

namespace {

// --- Helpers ---------------------------------------------------------------

/// "input 1 (shape)".
std::string inputName(size_t i, const char *name) {
  return "input " + std::to_string(i) + " (" + name + ")";
}

Status expectDType(const Types &in, size_t i, const char *name,
                   std::initializer_list<DType> allowed) {
  for (DType d : allowed)
    if (in[i].dtype == d)
      return Status::ok();
  std::string want;
  size_t k = 0;
  for (DType d : allowed) {
    if (k)
      want += k + 1 == allowed.size() ? " or " : ", ";
    want += dtypeName(d);
    ++k;
  }
  return Status::error(inputName(i, name) + " has dtype " +
                       dtypeName(in[i].dtype) + ", expected " + want);
}

Status expectSameDType(const Types &in, size_t i, const char *name, size_t j,
                       const char *other) {
  if (in[i].dtype == in[j].dtype)
    return Status::ok();
  return Status::error(inputName(i, name) + " has dtype " +
                       dtypeName(in[i].dtype) + ", expected " +
                       dtypeName(in[j].dtype) + " (the dtype of " +
                       inputName(j, other) + ")");
}

Status expectRank(const Types &in, size_t i, const char *name, size_t rank) {
  if (in[i].shape.size() == rank)
    return Status::ok();
  return Status::error(inputName(i, name) + " has rank " +
                       str(int64_t(in[i].shape.size())) + ", expected " +
                       str(int64_t(rank)));
}

Status expectMinRank(const Types &in, size_t i, const char *name,
                     size_t rank) {
  if (in[i].shape.size() >= rank)
    return Status::ok();
  return Status::error(inputName(i, name) + " has rank " +
                       str(int64_t(in[i].shape.size())) +
                       ", expected at least " + str(int64_t(rank)));
}

/// A rank-1 operand whose length may be unknown; returns it (or -1).
StatusOr<int64_t> vectorLength(const Types &in, size_t i, const char *name) {
  MOE_RETURN_IF_ERROR(expectRank(in, i, name, 1));
  return in[i].shape[0];
}

/// The length of a rank-1 operand that fixes the result rank: it must be
/// known from the types.
StatusOr<size_t> knownLength(const Types &in, size_t i, const char *name) {
  int64_t n;
  MOE_ASSIGN_OR_RETURN(n, vectorLength(in, i, name));
  if (n < 0)
    return Status::error(inputName(i, name) + " has an unknown length " +
                         formatShape(in[i].shape) +
                         ": the result rank must be known");
  return size_t(n);
}

/// A scalar operand: rank 0, or one element of shape [1] (a [-1] is
/// accepted here and checked at run time).
Status expectScalar(const Types &in, size_t i, const char *name) {
  const Shape &s = in[i].shape;
  if (s.empty() || (s.size() == 1 && (s[0] == 1 || s[0] == -1)))
    return Status::ok();
  return Status::error(inputName(i, name) + " has shape " + formatShape(s) +
                       ", expected a scalar (rank 0 or [1])");
}

/// The elements of an i64 or i32 tensor as int64.
std::vector<int64_t> intValues(const Tensor &t) {
  std::vector<int64_t> v(size_t(t.numElements()));
  if (t.dtype() == DType::I64) {
    const int64_t *p = t.data<int64_t>();
    std::copy(p, p + t.numElements(), v.begin());
  } else {
    const int32_t *p = t.data<int32_t>();
    std::copy(p, p + t.numElements(), v.begin());
  }
  return v;
}

/// The single element of a scalar operand (i64, i32 or f32, the float
/// truncated toward zero).
StatusOr<int64_t> scalarInt(const Tensor &t, size_t i, const char *name) {
  if (t.numElements() != 1)
    return Status::error(inputName(i, name) + " has " +
                         str(t.numElements()) + " elements, expected 1");
  if (t.dtype() == DType::F32) {
    float f = t.data<float>()[0];
    if (!std::isfinite(f) || std::fabs(f) >= 9.2e18f)
      return Status::error(inputName(i, name) + " is " + std::to_string(f) +
                           ", not an integer in range");
    return int64_t(f);
  }
  return intValues(t)[0];
}

/// "[-1, 2]": the values of a shape-like operand (formatShape shows -1 as
/// "?", right for types, wrong for values).
std::string formatValues(const Shape &v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i)
    s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

Status negativeDim(size_t i, const char *name, int64_t v, size_t at) {
  return Status::error(inputName(i, name) + " has " + str(v) +
                       " at position " + str(int64_t(at)) +
                       ", expected a dim (≥ 0)");
}

/// Product of concrete dims [begin, end) (tensors exist: no overflow).
int64_t product(const Shape &s, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end; ++i)
    p *= s[i];
  return p;
}

// --- nn.shape --------------------------------------------------------------

/// Shape-15: [start, end) of the dims, both clamped into [0, rank].
StatusOr<std::pair<int64_t, int64_t>> shapeRange(size_t rank,
                                                 const Attrs &attrs) {
  int64_t r = int64_t(rank), start, end;
  MOE_ASSIGN_OR_RETURN(start, attrs.getInt("start", 0));
  MOE_ASSIGN_OR_RETURN(end, attrs.getInt("end", r));
  auto clampDim = [&](int64_t v) {
    if (v < 0)
      v = v < -r ? 0 : v + r;
    return std::min(v, r);
  };
  start = clampDim(start);
  end = std::max(start, clampDim(end));
  return std::make_pair(start, end);
}

StatusOr<Types> inferShape(const Types &in, const Attrs &attrs) {
  MOE_RETURN_IF_ERROR(checkArity(in, 1, 1));
  std::pair<int64_t, int64_t> range;
  MOE_ASSIGN_OR_RETURN(range, shapeRange(in[0].shape.size(), attrs));
  return single(DType::I64, {range.second - range.first});
}

Status runShape(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  std::pair<int64_t, int64_t> range;
  MOE_ASSIGN_OR_RETURN(range, shapeRange(x.rank(), ctx.attrs()));
  int64_t *y = ctx.output(0).mutableData<int64_t>();
  for (int64_t d = range.first; d < range.second; ++d)
    y[d - range.first] = x.dim(size_t(d));
  return Status::ok();
}

// --- nn.constant_of_shape ----------------------------------------------------

StatusOr<DType> resultDType(const Attrs &attrs) {
  int64_t d;
  MOE_ASSIGN_OR_RETURN(d, attrs.getInt("dtype", int64_t(DType::F32)));
  if (d < 0 || d > 127 || !isKnownDType(DType(int8_t(d))))
    return Status::error("attribute `dtype` = " + str(d) + " is not a dtype");
  return DType(int8_t(d));
}

/// The dims a shape operand (i64) asks for; each must be ≥ 0.
StatusOr<Shape> shapeValues(const Tensor &t, size_t i, const char *name) {
  Shape dims = intValues(t);
  for (size_t k = 0; k < dims.size(); ++k)
    if (dims[k] < 0)
      return negativeDim(i, name, dims[k], k);
  return dims;
}

StatusOr<Types> inferConstantOfShape(const Types &in, const Attrs &attrs) {
  MOE_RETURN_IF_ERROR(checkArity(in, 1, 1));
  MOE_RETURN_IF_ERROR(expectDType(in, 0, "shape", {DType::I64}));
  size_t n;
  MOE_ASSIGN_OR_RETURN(n, knownLength(in, 0, "shape"));
  DType dtype;
  MOE_ASSIGN_OR_RETURN(dtype, resultDType(attrs));
  MOE_RETURN_IF_ERROR(attrs.getFloat("value", 0.0).status());
  return single(dtype, Shape(n, -1));
}

Status runConstantOfShape(KernelContext &ctx) {
  Shape dims;
  MOE_ASSIGN_OR_RETURN(dims, shapeValues(ctx.input(0), 0, "shape"));
  DType dtype;
  MOE_ASSIGN_OR_RETURN(dtype, resultDType(ctx.attrs()));
  MOE_RETURN_IF_ERROR(ctx.allocateOutput(0, dtype, dims));
  // One element of the result dtype, converted like nn.cast; an Int
  // attribute converts exactly (no detour through double).
  uint8_t one[16] = {};
  const AttrValue *v = ctx.attrs().find("value");
  if (v && v->kind == AttrKind::Int) {
    MOE_RETURN_IF_ERROR(kc::cast(&v->i, kc::ScalarType::I64, one,
                                 scalarType(dtype), 1));
  } else {
    double f;
    MOE_ASSIGN_OR_RETURN(f, ctx.attrs().getFloat("value", 0.0));
    MOE_RETURN_IF_ERROR(
        kc::cast(&f, kc::ScalarType::F64, one, scalarType(dtype), 1));
  }
  Tensor &y = ctx.output(0);
  kc::fill(y.mutableData(), y.numElements(), one, dtypeSize(dtype));
  return Status::ok();
}

// --- nn.expand -------------------------------------------------------------

StatusOr<Types> inferExpand(const Types &in, const Attrs &) {
  MOE_RETURN_IF_ERROR(checkArity(in, 2, 2));
  MOE_RETURN_IF_ERROR(expectDType(in, 1, "shape", {DType::I64}));
  size_t n;
  MOE_ASSIGN_OR_RETURN(n, knownLength(in, 1, "shape"));
  const Shape &x = in[0].shape;
  size_t rank = std::max(x.size(), n);
  Shape out(rank, -1);
  // A known dim of x other than 1 is the result's (the shape must have 1
  // or the same there).
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i] >= 0 && x[i] != 1)
      out[rank - x.size() + i] = x[i];
  return single(in[0].dtype, out);
}

Status runExpand(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  Shape want;
  MOE_ASSIGN_OR_RETURN(want, shapeValues(ctx.input(1), 1, "shape"));
  size_t rank = std::max(x.rank(), want.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t xd = i < rank - x.rank() ? 1 : x.dim(i - (rank - x.rank()));
    int64_t sd = i < rank - want.size() ? 1 : want[i - (rank - want.size())];
    if (xd == sd || sd == 1)
      out[i] = xd;
    else if (xd == 1)
      out[i] = sd;
    else
      return Status::error("cannot expand x " + formatShape(x.shape()) +
                           " to input 1 (shape) " + formatValues(want) +
                           ": dim " + str(int64_t(i)) + " of the result is " +
                           str(xd) + " in x and " + str(sd) + " in the shape");
  }
  MOE_RETURN_IF_ERROR(ctx.allocateOutput(0, x.dtype(), out));
  kc::broadcastTo(x.data(), x.shape(), out, dtypeSize(x.dtype()),
                  ctx.output(0).mutableData());
  return Status::ok();
}

// --- nn.range --------------------------------------------------------------

StatusOr<Types> inferRange(const Types &in, const Attrs &) {
  MOE_RETURN_IF_ERROR(checkArity(in, 3, 3));
  MOE_RETURN_IF_ERROR(
      expectDType(in, 0, "start", {DType::F32, DType::I64, DType::I32}));
  MOE_RETURN_IF_ERROR(expectSameDType(in, 1, "limit", 0, "start"));
  MOE_RETURN_IF_ERROR(expectSameDType(in, 2, "delta", 0, "start"));
  MOE_RETURN_IF_ERROR(expectScalar(in, 0, "start"));
  MOE_RETURN_IF_ERROR(expectScalar(in, 1, "limit"));
  MOE_RETURN_IF_ERROR(expectScalar(in, 2, "delta"));
  return single(in[0].dtype, {-1});
}

constexpr int64_t kMaxRangeCount = int64_t(1) << 60;

template <typename T> Status rangeInt(KernelContext &ctx) {
  for (size_t i = 0; i < 3; ++i)
    if (ctx.input(i).numElements() != 1)
      return Status::error(
          inputName(i, i == 0 ? "start" : i == 1 ? "limit" : "delta") +
          " has " + str(ctx.input(i).numElements()) + " elements, expected 1");
  int64_t start = ctx.input(0).data<T>()[0];
  int64_t limit = ctx.input(1).data<T>()[0];
  int64_t delta = ctx.input(2).data<T>()[0];
  if (delta == 0)
    return Status::error("input 2 (delta) is 0");
  // Count in unsigned arithmetic: limit - start may not fit in int64.
  uint64_t n = 0;
  if (delta > 0 && limit > start) {
    uint64_t diff = uint64_t(limit) - uint64_t(start), d = uint64_t(delta);
    n = diff / d + (diff % d != 0);
  } else if (delta < 0 && limit < start) {
    uint64_t diff = uint64_t(start) - uint64_t(limit);
    uint64_t d = uint64_t(0) - uint64_t(delta);
    n = diff / d + (diff % d != 0);
  }
  if (n > uint64_t(kMaxRangeCount))
    return Status::error("the range has " + std::to_string(n) +
                         " elements, too many");
  MOE_RETURN_IF_ERROR(
      ctx.allocateOutput(0, ctx.input(0).dtype(), {int64_t(n)}));
  T *y = ctx.output(0).mutableData<T>();
  // start + i·delta stays within [start, limit): wrapping arithmetic on
  // uint64 gives it exactly.
  for (uint64_t i = 0; i < n; ++i)
    y[i] = T(int64_t(uint64_t(start) + i * uint64_t(delta)));
  return Status::ok();
}

Status rangeF32(KernelContext &ctx) {
  double v[3];
  static const char *names[3] = {"start", "limit", "delta"};
  for (size_t i = 0; i < 3; ++i) {
    if (ctx.input(i).numElements() != 1)
      return Status::error(inputName(i, names[i]) + " has " +
                           str(ctx.input(i).numElements()) +
                           " elements, expected 1");
    v[i] = ctx.input(i).data<float>()[0];
    if (!std::isfinite(v[i]))
      return Status::error(inputName(i, names[i]) + " is not finite");
  }
  if (v[2] == 0)
    return Status::error("input 2 (delta) is 0");
  double count = std::ceil((v[1] - v[0]) / v[2]);
  if (count > double(kMaxRangeCount))
    return Status::error("the range has " + std::to_string(count) +
                         " elements, too many");
  int64_t n = count > 0 ? int64_t(count) : 0;
  MOE_RETURN_IF_ERROR(ctx.allocateOutput(0, DType::F32, {n}));
  float *y = ctx.output(0).mutableData<float>();
  for (int64_t i = 0; i < n; ++i)
    y[i] = float(v[0] + double(i) * v[2]);
  return Status::ok();
}

Status runRange(KernelContext &ctx) {
  switch (ctx.input(0).dtype()) {
  case DType::I64:
    return rangeInt<int64_t>(ctx);
  case DType::I32:
    return rangeInt<int32_t>(ctx);
  default:
    return rangeF32(ctx);
  }
}

// --- nn.tile ---------------------------------------------------------------

StatusOr<Types> inferTile(const Types &in, const Attrs &) {
  MOE_RETURN_IF_ERROR(checkArity(in, 2, 2));
  MOE_RETURN_IF_ERROR(expectDType(in, 1, "repeats", {DType::I64}));
  int64_t n;
  MOE_ASSIGN_OR_RETURN(n, vectorLength(in, 1, "repeats"));
  const Shape &x = in[0].shape;
  if (n >= 0 && n != int64_t(x.size()))
    return Status::error("input 1 (repeats) has " + str(n) +
                         " entries, expected " + str(int64_t(x.size())) +
                         " (the rank of input 0)");
  Shape out(x.size(), -1);
  for (size_t d = 0; d < x.size(); ++d)
    if (x[d] == 0)
      out[d] = 0;
  return single(in[0].dtype, out);
}

Status runTile(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  Shape repeats = intValues(ctx.input(1));
  if (repeats.size() != x.rank())
    return Status::error("input 1 (repeats) has " +
                         str(int64_t(repeats.size())) + " entries, expected " +
                         str(int64_t(x.rank())) + " (the rank of input 0)");
  Shape out(x.rank());
  for (size_t d = 0; d < x.rank(); ++d) {
    if (repeats[d] < 0)
      return Status::error("input 1 (repeats) has " + str(repeats[d]) +
                           " at position " + str(int64_t(d)) +
                           ", expected a count (≥ 0)");
    if (__builtin_mul_overflow(x.dim(d), repeats[d], &out[d]))
      return Status::error("tiling " + formatShape(x.shape()) + " by " +
                           formatValues(repeats) + " is too large");
  }
  MOE_RETURN_IF_ERROR(ctx.allocateOutput(0, x.dtype(), out));
  kc::tile(x.data(), x.shape(), repeats, dtypeSize(x.dtype()),
           ctx.output(0).mutableData());
  return Status::ok();
}

// --- nn.dynamic_reshape, nn.squeeze, nn.unsqueeze, nn.flatten ----------------

StatusOr<Types> inferDynamicReshape(const Types &in, const Attrs &attrs) {
  MOE_RETURN_IF_ERROR(checkArity(in, 2, 2));
  MOE_RETURN_IF_ERROR(expectDType(in, 1, "shape", {DType::I64}));
  size_t n;
  MOE_ASSIGN_OR_RETURN(n, knownLength(in, 1, "shape"));
  MOE_RETURN_IF_ERROR(attrs.getInt("allowzero", 0).status());
  return single(in[0].dtype, Shape(n, -1));
}

/// ONNX Reshape: 0 copies the input dim (unless allowzero), one -1 is
/// inferred.
StatusOr<Shape> reshapeValues(const Shape &in, const Shape &spec,
                              bool allowZero) {
  Shape out = spec;
  int inferred = -1;
  bool hasZero = false;
  int64_t known = 1;
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t v = out[i];
    if (v == -1) {
      if (inferred >= 0)
        return Status::error("input 1 (shape) " + formatValues(spec) +
                             " has more than one -1");
      inferred = int(i);
      continue;
    }
    if (v < -1)
      return negativeDim(1, "shape", v, i);
    if (v == 0) {
      hasZero = true;
      if (!allowZero) {
        if (i >= in.size())
          return Status::error("input 1 (shape) " + formatValues(spec) +
                               " copies dim " + str(int64_t(i)) +
                               " (a 0) but input 0 has rank " +
                               str(int64_t(in.size())));
        out[i] = in[i];
      }
    }
    if (__builtin_mul_overflow(known, out[i], &known))
      return Status::error("input 1 (shape) " + formatValues(spec) +
                           " is too large");
  }
  if (allowZero && hasZero && inferred >= 0)
    return Status::error("input 1 (shape) " + formatValues(spec) +
                         " has both 0 and -1 with allowzero");
  int64_t count = product(in, 0, in.size());
  if (inferred >= 0) {
    if (known == 0 || count % known != 0)
      return Status::error("cannot reshape " + formatShape(in) + " (" +
                           str(count) + " elements) to input 1 (shape) " +
                           formatValues(spec));
    out[size_t(inferred)] = count / known;
  } else if (known != count) {
    return Status::error("cannot reshape " + formatShape(in) + " (" +
                         str(count) + " elements) to input 1 (shape) " +
                         formatValues(spec));
  }
  return out;
}

Status runDynamicReshape(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  int64_t allowZero;
  MOE_ASSIGN_OR_RETURN(allowZero, ctx.attrs().getInt("allowzero", 0));
  Shape out;
  MOE_ASSIGN_OR_RETURN(out, reshapeValues(x.shape(), intValues(ctx.input(1)),
                                          allowZero != 0));
  // Tensors are immutable once produced: the output shares the storage.
  Tensor t;
  MOE_ASSIGN_OR_RETURN(t, x.reshaped(out));
  ctx.setOutput(0, std::move(t));
  return Status::ok();
}

/// `axes` normalised against `rank`, each once.
StatusOr<std::vector<bool>> axisSet(const Shape &axes, size_t rank) {
  std::vector<bool> set(rank, false);
  for (int64_t a : axes) {
    int64_t axis;
    MOE_ASSIGN_OR_RETURN(axis, normalizeAxis(a, rank, "attribute `axes` entry"));
    if (set[size_t(axis)])
      return Status::error("attribute `axes` repeats axis " + str(a));
    set[size_t(axis)] = true;
  }
  return set;
}

StatusOr<Shape> squeezedShape(const Shape &x, const Attrs &attrs) {
  Shape axes;
  MOE_ASSIGN_OR_RETURN(axes, attrs.getInts("axes", Shape{}));
  Shape out;
  if (axes.empty()) {
    for (int64_t d : x) {
      if (d < 0)
        return Status::error("attribute `axes` is empty and input 0 has "
                             "unknown dims " + formatShape(x) +
                             ": the result rank depends on their values");
      if (d != 1)
        out.push_back(d);
    }
    return out;
  }
  std::vector<bool> set;
  MOE_ASSIGN_OR_RETURN(set, axisSet(axes, x.size()));
  for (size_t d = 0; d < x.size(); ++d) {
    if (!set[d]) {
      out.push_back(x[d]);
      continue;
    }
    if (x[d] >= 0 && x[d] != 1)
      return Status::error("input 0 dim " + str(int64_t(d)) + " is " +
                           str(x[d]) + ", cannot squeeze it (only size 1)");
  }
  return out;
}

StatusOr<Shape> unsqueezedShape(const Shape &x, const Attrs &attrs) {
  Shape axes;
  MOE_ASSIGN_OR_RETURN(axes, attrs.getInts("axes"));
  std::vector<bool> set;
  MOE_ASSIGN_OR_RETURN(set, axisSet(axes, x.size() + axes.size()));
  Shape out;
  size_t next = 0;
  for (size_t d = 0; d < set.size(); ++d)
    out.push_back(set[d] ? 1 : x[next++]);
  return out;
}

StatusOr<Shape> flattenedShape(const Shape &x, const Attrs &attrs) {
  int64_t axis, r = int64_t(x.size());
  MOE_ASSIGN_OR_RETURN(axis, attrs.getInt("axis", 1));
  if (axis < -r || axis > r)
    return Status::error("attribute `axis` " + str(axis) + " is outside [" +
                         str(-r) + ", " + str(r) + "]");
  if (axis < 0)
    axis += r;
  return Shape{productOrUnknown(x, 0, size_t(axis)),
               productOrUnknown(x, size_t(axis), x.size())};
}

using ShapeFn = StatusOr<Shape> (*)(const Shape &, const Attrs &);

/// A kernel that only changes the shape; the output shares the storage.
template <ShapeFn F> StatusOr<Types> inferAlias(const Types &in, const Attrs &attrs) {
  MOE_RETURN_IF_ERROR(checkArity(in, 1, 1));
  Shape out;
  MOE_ASSIGN_OR_RETURN(out, F(in[0].shape, attrs));
  return single(in[0].dtype, out);
}

template <ShapeFn F> Status runAlias(KernelContext &ctx) {
  Shape out;
  MOE_ASSIGN_OR_RETURN(out, F(ctx.input(0).shape(), ctx.attrs()));
  Tensor t;
  MOE_ASSIGN_OR_RETURN(t, ctx.input(0).reshaped(out));
  ctx.setOutput(0, std::move(t));
  return Status::ok();
}

// --- nn.dynamic_slice --------------------------------------------------------

const char *kSliceNames[5] = {"x", "starts", "ends", "axes", "steps"};

StatusOr<Types> inferDynamicSlice(const Types &in, const Attrs &) {
  MOE_RETURN_IF_ERROR(checkArity(in, 3, 5));
  int64_t n = -1;
  for (size_t i = 1; i < in.size(); ++i) {
    MOE_RETURN_IF_ERROR(
        expectDType(in, i, kSliceNames[i], {DType::I64, DType::I32}));
    int64_t len;
    MOE_ASSIGN_OR_RETURN(len, vectorLength(in, i, kSliceNames[i]));
    if (len >= 0 && n >= 0 && len != n)
      return Status::error(inputName(i, kSliceNames[i]) + " has " + str(len) +
                           " entries, input 1 (starts) " + str(n));
    n = mergeDims(n, len);
  }
  if (n == 0)
    return single(in[0].dtype, in[0].shape);
  return single(in[0].dtype, Shape(in[0].shape.size(), -1));
}

Status runDynamicSlice(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  std::vector<Shape> v(5);
  for (size_t i = 1; i < ctx.numInputs(); ++i)
    v[i] = intValues(ctx.input(i));
  Shape first, step, count;
  MOE_RETURN_IF_ERROR(kc::resolveSlice(
      x.shape(), v[1], v[2],
      ctx.numInputs() >= 4 ? std::optional<Shape>(v[3]) : std::nullopt,
      ctx.numInputs() >= 5 ? std::optional<Shape>(v[4]) : std::nullopt, first,
      step, count));
  MOE_RETURN_IF_ERROR(ctx.allocateOutput(0, x.dtype(), count));
  kc::slice(x.data(), x.shape(), first, step, count, dtypeSize(x.dtype()),
            ctx.output(0).mutableData());
  return Status::ok();
}

// --- nn.gather_nd ------------------------------------------------------------

StatusOr<Types> inferGatherND(const Types &in, const Attrs &attrs) {
  MOE_RETURN_IF_ERROR(checkArity(in, 2, 2));
  MOE_RETURN_IF_ERROR(expectMinRank(in, 0, "data", 1));
  MOE_RETURN_IF_ERROR(expectDType(in, 1, "indices", {DType::I64}));
  MOE_RETURN_IF_ERROR(expectMinRank(in, 1, "indices", 1));
  const Shape &data = in[0].shape, &idx = in[1].shape;
  int64_t r = int64_t(data.size()), q = int64_t(idx.size()), b;
  MOE_ASSIGN_OR_RETURN(b, attrs.getInt("batch_dims", 0));
  if (b < 0 || b >= std::min(q, r))
    return Status::error("attribute `batch_dims` " + str(b) +
                         " is outside [0, " + str(std::min(q, r)) + ")");
  int64_t k = idx.back();
  if (k < 0)
    return Status::error("input 1 (indices) has an unknown last dim " +
                         formatShape(idx) + ": the result rank depends on it");
  if (k < 1 || k > r - b)
    return Status::error("input 1 (indices) has last dim " + str(k) +
                         ", expected 1 to " + str(r - b) +
                         " (data rank - batch_dims)");
  Shape out(idx.begin(), idx.end() - 1);
  for (size_t d = 0; d < size_t(b); ++d) {
    if (!dimsMatch(data[d], idx[d]))
      return Status::error("input 1 (indices) dim " + str(int64_t(d)) +
                           " is " + str(idx[d]) + ", expected " +
                           str(data[d]) + " (batch dim of input 0)");
    out[d] = mergeDims(data[d], idx[d]);
  }
  out.insert(out.end(), data.begin() + b + k, data.end());
  return single(in[0].dtype, out);
}

Status runGatherND(KernelContext &ctx) {
  const Tensor &data = ctx.input(0), &idx = ctx.input(1);
  int64_t b;
  MOE_ASSIGN_OR_RETURN(b, ctx.attrs().getInt("batch_dims", 0));
  return kc::gatherND(data.data(), data.shape(), idx.data<int64_t>(),
                      idx.shape(), b, dtypeSize(data.dtype()),
                      ctx.output(0).mutableData())
      .withContext("input 1 (indices)");
}

// --- nn.scatter_elements, nn.scatter_nd --------------------------------------

StatusOr<kc::Reduction> reduction(const Attrs &attrs, DType data) {
  std::string s;
  MOE_ASSIGN_OR_RETURN(s, attrs.getString("reduction", "none"));
  kc::Reduction r;
  if (s == "none")
    return kc::Reduction::None;
  if (s == "add")
    r = kc::Reduction::Add;
  else if (s == "mul")
    r = kc::Reduction::Mul;
  else if (s == "max")
    r = kc::Reduction::Max;
  else if (s == "min")
    r = kc::Reduction::Min;
  else
    return Status::error("attribute `reduction` is `" + s +
                         "`, expected none, add, mul, max or min");
  if (data != DType::F32 && data != DType::I64 && data != DType::I32 &&
      data != DType::I1)
    return Status::error("reduction `" + s + "` needs f32, i64, i32 or i1 "
                         "data, input 0 (data) is " + dtypeName(data));
  return r;
}

StatusOr<Types> inferScatterElements(const Types &in, const Attrs &attrs) {
  MOE_RETURN_IF_ERROR(checkArity(in, 3, 3));
  MOE_RETURN_IF_ERROR(expectMinRank(in, 0, "data", 1));
  MOE_RETURN_IF_ERROR(
      expectDType(in, 1, "indices", {DType::I64, DType::I32}));
  MOE_RETURN_IF_ERROR(expectSameDType(in, 2, "updates", 0, "data"));
  size_t rank = in[0].shape.size();
  MOE_RETURN_IF_ERROR(expectRank(in, 1, "indices", rank));
  MOE_RETURN_IF_ERROR(expectRank(in, 2, "updates", rank));
  int64_t axis;
  MOE_ASSIGN_OR_RETURN(axis, attrs.getInt("axis", 0));
  MOE_ASSIGN_OR_RETURN(axis, normalizeAxis(axis, rank, "attribute `axis`"));
  const Shape &data = in[0].shape, &idx = in[1].shape, &upd = in[2].shape;
  for (size_t d = 0; d < rank; ++d) {
    if (!dimsMatch(idx[d], upd[d]))
      return Status::error("input 2 (updates) dim " + str(int64_t(d)) +
                           " is " + str(upd[d]) + ", expected " + str(idx[d]) +
                           " (the shape of input 1 (indices))");
    if (int64_t(d) != axis && idx[d] >= 0 && data[d] >= 0 && idx[d] > data[d])
      return Status::error("input 1 (indices) dim " + str(int64_t(d)) +
                           " is " + str(idx[d]) + ", larger than input 0 "
                           "(data)'s " + str(data[d]));
  }
  MOE_RETURN_IF_ERROR(reduction(attrs, in[0].dtype).status());
  return single(in[0].dtype, data);
}

Status runScatterElements(KernelContext &ctx) {
  const Tensor &data = ctx.input(0), &idx = ctx.input(1), &upd = ctx.input(2);
  int64_t axis;
  MOE_ASSIGN_OR_RETURN(axis, ctx.attrs().getInt("axis", 0));
  MOE_ASSIGN_OR_RETURN(axis, normalizeAxis(axis, data.rank(), "axis"));
  kc::Reduction r;
  MOE_ASSIGN_OR_RETURN(r, reduction(ctx.attrs(), data.dtype()));
  bool i64 = idx.dtype() == DType::I64;
  return kc::scatterElements(data.data(), data.shape(),
                             i64 ? idx.data<int64_t>() : nullptr,
                             i64 ? nullptr : idx.data<int32_t>(), upd.data(),
                             idx.shape(), axis, r, scalarType(data.dtype()),
                             dtypeSize(data.dtype()),
                             ctx.output(0).mutableData())
      .withContext("input 1 (indices)");
}

StatusOr<Types> inferScatterND(const Types &in, const Attrs &attrs) {
  MOE_RETURN_IF_ERROR(checkArity(in, 3, 3));
  MOE_RETURN_IF_ERROR(expectMinRank(in, 0, "data", 1));
  MOE_RETURN_IF_ERROR(expectDType(in, 1, "indices", {DType::I64}));
  MOE_RETURN_IF_ERROR(expectMinRank(in, 1, "indices", 1));
  MOE_RETURN_IF_ERROR(expectSameDType(in, 2, "updates", 0, "data"));
  const Shape &data = in[0].shape, &idx = in[1].shape, &upd = in[2].shape;
  int64_t k = idx.back(), r = int64_t(data.size());
  if (k > r)
    return Status::error("input 1 (indices) has last dim " + str(k) +
                         ", larger than the rank of input 0 (data) " + str(r));
  if (k >= 0) {
    // updates = indices.shape[:-1] + data.shape[k:]
    Shape want(idx.begin(), idx.end() - 1);
    want.insert(want.end(), data.begin() + k, data.end());
    if (!shapesCompatible(want, upd))
      return Status::error("input 2 (updates) has shape " + formatShape(upd) +
                           ", expected " + formatShape(want));
  }
  MOE_RETURN_IF_ERROR(reduction(attrs, in[0].dtype).status());
  return single(in[0].dtype, data);
}

Status runScatterND(KernelContext &ctx) {
  const Tensor &data = ctx.input(0), &idx = ctx.input(1), &upd = ctx.input(2);
  kc::Reduction r;
  MOE_ASSIGN_OR_RETURN(r, reduction(ctx.attrs(), data.dtype()));
  return kc::scatterND(data.data(), data.shape(), idx.data<int64_t>(),
                       idx.shape(), upd.data(), r, scalarType(data.dtype()),
                       dtypeSize(data.dtype()), ctx.output(0).mutableData())
      .withContext("input 1 (indices)");
}

// --- nn.nonzero --------------------------------------------------------------

StatusOr<Types> inferNonZero(const Types &in, const Attrs &) {
  MOE_RETURN_IF_ERROR(checkArity(in, 1, 1));
  int64_t rank = std::max<int64_t>(int64_t(in[0].shape.size()), 1);
  return single(DType::I64, {rank, -1});
}

Status runNonZero(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  kc::ScalarType t = scalarType(x.dtype());
  size_t es = dtypeSize(x.dtype());
  int64_t count = kc::countNonZero(x.data(), t, es, x.numElements());
  int64_t rank = std::max<int64_t>(int64_t(x.rank()), 1);
  MOE_RETURN_IF_ERROR(ctx.allocateOutput(0, DType::I64, {rank, count}));
  kc::nonZero(x.data(), x.shape(), t, es, count,
              ctx.output(0).mutableData<int64_t>());
  return Status::ok();
}

// --- nn.one_hot --------------------------------------------------------------

StatusOr<int64_t> oneHotAxis(size_t indicesRank, const Attrs &attrs) {
  int64_t axis, r = int64_t(indicesRank) + 1;
  MOE_ASSIGN_OR_RETURN(axis, attrs.getInt("axis", -1));
  return normalizeAxis(axis, size_t(r), "attribute `axis`");
}

StatusOr<Types> inferOneHot(const Types &in, const Attrs &attrs) {
  MOE_RETURN_IF_ERROR(checkArity(in, 3, 3));
  MOE_RETURN_IF_ERROR(
      expectDType(in, 0, "indices", {DType::I64, DType::I32, DType::F32}));
  MOE_RETURN_IF_ERROR(
      expectDType(in, 1, "depth", {DType::I64, DType::I32, DType::F32}));
  MOE_RETURN_IF_ERROR(expectScalar(in, 1, "depth"));
  int64_t n;
  MOE_ASSIGN_OR_RETURN(n, vectorLength(in, 2, "values"));
  if (n >= 0 && n != 2)
    return Status::error("input 2 (values) has " + str(n) +
                         " entries, expected 2 (off, on)");
  int64_t axis;
  MOE_ASSIGN_OR_RETURN(axis, oneHotAxis(in[0].shape.size(), attrs));
  Shape out = in[0].shape;
  out.insert(out.begin() + axis, -1);
  return single(in[2].dtype, out);
}

Status runOneHot(KernelContext &ctx) {
  const Tensor &idx = ctx.input(0), &values = ctx.input(2);
  int64_t depth;
  MOE_ASSIGN_OR_RETURN(depth, scalarInt(ctx.input(1), 1, "depth"));
  if (depth < 1)
    return Status::error("input 1 (depth) is " + str(depth) +
                         ", expected at least 1");
  if (values.numElements() != 2)
    return Status::error("input 2 (values) has " + str(values.numElements()) +
                         " entries, expected 2 (off, on)");
  int64_t axis;
  MOE_ASSIGN_OR_RETURN(axis, oneHotAxis(idx.rank(), ctx.attrs()));
  // Wrap negative indices once; anything else outside [0, depth) is -1
  // (a row of `off`).
  std::vector<int64_t> wrapped(size_t(idx.numElements()));
  for (size_t i = 0; i < wrapped.size(); ++i) {
    int64_t v;
    if (idx.dtype() == DType::F32) {
      float f = idx.data<float>()[i];
      v = std::isfinite(f) && std::fabs(f) < 9.2e18f ? int64_t(f) : -depth - 1;
    } else {
      v = idx.dtype() == DType::I64 ? idx.data<int64_t>()[i]
                                    : int64_t(idx.data<int32_t>()[i]);
    }
    if (v < 0 && v >= -depth)
      v += depth;
    wrapped[i] = v >= 0 && v < depth ? v : -1;
  }
  Shape out = idx.shape();
  out.insert(out.begin() + axis, depth);
  MOE_RETURN_IF_ERROR(ctx.allocateOutput(0, values.dtype(), out));
  size_t es = dtypeSize(values.dtype());
  const auto *v = static_cast<const uint8_t *>(values.data());
  kc::oneHot(wrapped.data(), product(idx.shape(), 0, size_t(axis)),
             product(idx.shape(), size_t(axis), idx.rank()), depth, v, v + es,
             es, ctx.output(0).mutableData());
  return Status::ok();
}

// --- nn.topk -----------------------------------------------------------------

StatusOr<Types> inferTopK(const Types &in, const Attrs &attrs) {
  MOE_RETURN_IF_ERROR(checkArity(in, 2, 2));
  MOE_RETURN_IF_ERROR(
      expectDType(in, 0, "x", {DType::F32, DType::I64, DType::I32}));
  MOE_RETURN_IF_ERROR(expectMinRank(in, 0, "x", 1));
  MOE_RETURN_IF_ERROR(expectDType(in, 1, "k", {DType::I64}));
  MOE_RETURN_IF_ERROR(expectScalar(in, 1, "k"));
  int64_t axis;
  MOE_ASSIGN_OR_RETURN(axis, attrs.getInt("axis", -1));
  MOE_ASSIGN_OR_RETURN(axis, normalizeAxis(axis, in[0].shape.size(),
                                           "attribute `axis`"));
  MOE_RETURN_IF_ERROR(attrs.getInt("largest", 1).status());
  MOE_RETURN_IF_ERROR(attrs.getInt("sorted", 1).status());
  Shape out = in[0].shape;
  if (out[size_t(axis)] != 0) // k ≤ dim: a 0 stays 0
    out[size_t(axis)] = -1;
  return Types{TensorType{in[0].dtype, out}, TensorType{DType::I64, out}};
}

Status runTopK(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  int64_t axis, largest, k;
  MOE_ASSIGN_OR_RETURN(axis, ctx.attrs().getInt("axis", -1));
  MOE_ASSIGN_OR_RETURN(axis, normalizeAxis(axis, x.rank(), "axis"));
  MOE_ASSIGN_OR_RETURN(largest, ctx.attrs().getInt("largest", 1));
  MOE_ASSIGN_OR_RETURN(k, scalarInt(ctx.input(1), 1, "k"));
  int64_t dim = x.dim(size_t(axis));
  if (k < 0 || k > dim)
    return Status::error("input 1 (k) is " + str(k) + ", outside [0, " +
                         str(dim) + "] (dim " + str(axis) + " of input 0)");
  Shape out = x.shape();
  out[size_t(axis)] = k;
  MOE_RETURN_IF_ERROR(ctx.allocateOutput(0, x.dtype(), out));
  MOE_RETURN_IF_ERROR(ctx.allocateOutput(1, DType::I64, out));
  return kc::topK(x.data(), scalarType(x.dtype()),
                  product(x.shape(), 0, size_t(axis)), dim,
                  product(x.shape(), size_t(axis) + 1, x.rank()), k,
                  largest != 0, ctx.output(0).mutableData(),
                  ctx.output(1).mutableData<int64_t>());
}

// --- nn.split ----------------------------------------------------------------

/// The sizes of N equal parts of `dim`, the last one smaller (Split-18).
StatusOr<Shape> equalParts(int64_t dim, int64_t n) {
  int64_t chunk = dim / n + (dim % n != 0);
  int64_t last = dim - chunk * (n - 1);
  if (last < 0)
    return Status::error("cannot split dim " + str(dim) + " into " + str(n) +
                         " parts of " + str(chunk) + " (the last smaller)");
  Shape sizes(size_t(n), chunk);
  sizes.back() = last;
  return sizes;
}

/// The number of results: the length of `split` when known, else the
/// `num_outputs` attribute (Split-18), else the count the step declares.
StatusOr<int64_t> splitCount(const Types &in, const Attrs &attrs,
                             std::optional<size_t> declared) {
  int64_t n = -1, attr = -1;
  if (attrs.has("num_outputs")) {
    MOE_ASSIGN_OR_RETURN(attr, attrs.getInt("num_outputs"));
    if (attr < 1)
      return Status::error("attribute `num_outputs` is " + str(attr) +
                           ", expected at least 1");
  }
  if (in.size() == 2) {
    MOE_RETURN_IF_ERROR(expectDType(in, 1, "split", {DType::I64}));
    MOE_ASSIGN_OR_RETURN(n, vectorLength(in, 1, "split"));
    if (n >= 0 && attr >= 0 && n != attr)
      return Status::error("input 1 (split) has " + str(n) +
                           " entries, attribute `num_outputs` is " +
                           str(attr));
  }
  if (n < 0)
    n = attr;
  if (n < 0 && declared)
    n = int64_t(*declared);
  if (n < 0)
    return Status::error(in.size() == 2
                             ? "input 1 (split) has an unknown length and "
                               "the number of outputs is not given"
                             : "without input 1 (split) or attribute "
                               "`num_outputs`, the number of outputs must "
                               "be given");
  if (n < 1)
    return Status::error("splits into 0 outputs");
  return n;
}

StatusOr<Types> inferSplit(const Types &in, const Attrs &attrs,
                           std::optional<size_t> declared) {
  MOE_RETURN_IF_ERROR(checkArity(in, 1, 2));
  MOE_RETURN_IF_ERROR(expectMinRank(in, 0, "x", 1));
  int64_t axis, n;
  MOE_ASSIGN_OR_RETURN(axis, attrs.getInt("axis", 0));
  MOE_ASSIGN_OR_RETURN(axis, normalizeAxis(axis, in[0].shape.size(),
                                           "attribute `axis`"));
  MOE_ASSIGN_OR_RETURN(n, splitCount(in, attrs, declared));
  int64_t dim = in[0].shape[size_t(axis)];
  Shape sizes(size_t(n), -1);
  if (in.size() == 1 && dim >= 0) {
    MOE_ASSIGN_OR_RETURN(sizes, equalParts(dim, n));
  }
  Types out;
  for (int64_t s : sizes) {
    Shape shape = in[0].shape;
    shape[size_t(axis)] = s;
    out.push_back({in[0].dtype, shape});
  }
  return out;
}

Status runSplit(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  int64_t axis;
  MOE_ASSIGN_OR_RETURN(axis, ctx.attrs().getInt("axis", 0));
  MOE_ASSIGN_OR_RETURN(axis, normalizeAxis(axis, x.rank(), "axis"));
  int64_t dim = x.dim(size_t(axis)), n = int64_t(ctx.numOutputs());
  Shape sizes;
  if (ctx.numInputs() == 2) {
    sizes = intValues(ctx.input(1));
    int64_t sum = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (sizes[i] < 0)
        return negativeDim(1, "split", sizes[i], i);
      if (__builtin_add_overflow(sum, sizes[i], &sum))
        sum = -1;
    }
    if (sum != dim)
      return Status::error("input 1 (split) " + formatValues(sizes) +
                           " does not add up to dim " + str(axis) +
                           " of input 0 (" + str(dim) + ")");
  } else {
    MOE_ASSIGN_OR_RETURN(sizes, equalParts(dim, n));
  }
  if (int64_t(sizes.size()) != n)
    return Status::error("input 1 (split) has " + str(int64_t(sizes.size())) +
                         " entries for " + str(n) + " outputs");
  std::vector<void *> outs;
  for (size_t i = 0; i < sizes.size(); ++i) {
    Shape shape = x.shape();
    shape[size_t(axis)] = sizes[i];
    MOE_RETURN_IF_ERROR(ctx.allocateOutput(i, x.dtype(), shape));
    outs.push_back(ctx.output(i).mutableData());
  }
  kc::split(x.data(), product(x.shape(), 0, size_t(axis)),
            product(x.shape(), size_t(axis) + 1, x.rank()), sizes, outs,
            dtypeSize(x.dtype()));
  return Status::ok();
}

// --- Registration ------------------------------------------------------------

void add(KernelRegistry &r, std::string name, InferFn infer, RunFn run,
         bool allocatesOutputs) {
  Status st = r.add({std::move(name), std::move(infer), std::move(run),
                     allocatesOutputs});
  (void)st;
}

} // namespace

void registerIndexKernels(KernelRegistry &r) {
  // nn.shape reads only the shape: a packed weight is fine.
  KernelDef shape{"nn.shape", inferShape, runShape, false};
  shape.acceptsPacked = [](size_t, const Attrs &) { return true; };
  shape.packedInputs = "x";
  Status st = r.add(std::move(shape));
  (void)st;
  add(r, "nn.constant_of_shape", inferConstantOfShape, runConstantOfShape,
      true);
  add(r, "nn.expand", inferExpand, runExpand, true);
  add(r, "nn.range", inferRange, runRange, true);
  add(r, "nn.tile", inferTile, runTile, true);
  // Reshapes: the output shares the input's storage.
  add(r, "nn.dynamic_reshape", inferDynamicReshape, runDynamicReshape, true);
  add(r, "nn.squeeze", inferAlias<squeezedShape>, runAlias<squeezedShape>,
      true);
  add(r, "nn.unsqueeze", inferAlias<unsqueezedShape>,
      runAlias<unsqueezedShape>, true);
  add(r, "nn.flatten", inferAlias<flattenedShape>, runAlias<flattenedShape>,
      true);
  add(r, "nn.dynamic_slice", inferDynamicSlice, runDynamicSlice, true);
  add(r, "nn.gather_nd", inferGatherND, runGatherND, false);
  add(r, "nn.scatter_elements", inferScatterElements, runScatterElements,
      false);
  add(r, "nn.scatter_nd", inferScatterND, runScatterND, false);
  add(r, "nn.nonzero", inferNonZero, runNonZero, true);
  add(r, "nn.one_hot", inferOneHot, runOneHot, true);
  add(r, "nn.topk", inferTopK, runTopK, true);
  KernelDef split{"nn.split",
                  [](const Types &in, const Attrs &attrs) {
                    return inferSplit(in, attrs, std::nullopt);
                  },
                  runSplit, true};
  split.inferCounted = inferSplit;
  st = r.add(std::move(split));
  (void)st;
}

} // namespace moe::rt::cpu
