//===- ElementwiseKernels.cpp - Elementwise nn.* kernels ------------------===//
//
// Arithmetic (f32, i64, i32), the f32 activations, comparisons and logic
// (results i1), nn.where and nn.clip. Binary kernels broadcast like numpy.
//
//===----------------------------------------------------------------------===//

#include "runtime/cpu/KernelUtil.h"
#include "runtime/cpu/Registration.h"

#include "kernels/cpu/Elementwise.h"

namespace moe::rt::cpu {
namespace kc = kernels::cpu;

namespace {

/// "f32, i64 or i32".
std::string dtypeList(const std::vector<DType> &allowed) {
  std::string s;
  for (size_t i = 0; i < allowed.size(); ++i) {
    if (i)
      s += i + 1 == allowed.size() ? " or " : ", ";
    s += dtypeName(allowed[i]);
  }
  return s;
}

/// Input i's dtype is one of `allowed`.
Status checkDTypeIn(const Types &in, size_t i,
                    const std::vector<DType> &allowed) {
  for (DType t : allowed)
    if (in[i].dtype == t)
      return Status::ok();
  return Status::error("input " + std::to_string(i) + " has dtype " +
                       dtypeName(in[i].dtype) + ", expected " +
                       dtypeList(allowed));
}

const std::vector<DType> kArith = {DType::F32, DType::I64, DType::I32};
const std::vector<DType> kF32 = {DType::F32};

/// a, b → broadcast(a, b) of dtype `result` (or a's dtype when unset); a's
/// dtype is one of `allowed` and b's the same.
InferFn binaryInfer(std::vector<DType> allowed,
                    std::optional<DType> result = std::nullopt) {
  return [allowed = std::move(allowed),
          result](const Types &in, const Attrs &) -> StatusOr<Types> {
    MOE_RETURN_IF_ERROR(checkArity(in, 2, 2));
    MOE_RETURN_IF_ERROR(checkDTypeIn(in, 0, allowed));
    MOE_RETURN_IF_ERROR(checkDType(in, 1, in[0].dtype));
    Shape out;
    MOE_ASSIGN_OR_RETURN(out, broadcastShapes(in[0].shape, in[1].shape));
    return single(result.value_or(in[0].dtype), out);
  };
}

RunFn binaryRun(kc::BinaryOp op) {
  return [op](KernelContext &ctx) -> Status {
    const Tensor &a = ctx.input(0), &b = ctx.input(1);
    Tensor &out = ctx.output(0);
    switch (a.dtype()) {
    case DType::I64:
      return kc::binaryI64(op, a.data<int64_t>(), a.shape(),
                           b.data<int64_t>(), b.shape(),
                           out.mutableData<int64_t>(), out.shape());
    case DType::I32:
      return kc::binaryI32(op, a.data<int32_t>(), a.shape(),
                           b.data<int32_t>(), b.shape(),
                           out.mutableData<int32_t>(), out.shape());
    case DType::F32:
      kc::binaryF32(op, a.data<float>(), a.shape(), b.data<float>(),
                    b.shape(), out.mutableData<float>(), out.shape());
      return Status::ok();
    default:
      return Status::error("unsupported dtype " + dtypeName(a.dtype()));
    }
  };
}

RunFn compareRun(kc::CompareOp op) {
  return [op](KernelContext &ctx) -> Status {
    const Tensor &a = ctx.input(0), &b = ctx.input(1);
    Tensor &out = ctx.output(0);
    return kc::compare(op, scalarType(a.dtype()), a.data(), a.shape(),
                       b.data(), b.shape(), out.mutableData<uint8_t>(),
                       out.shape());
  };
}

RunFn logicRun(kc::LogicOp op) {
  return [op](KernelContext &ctx) -> Status {
    const Tensor &a = ctx.input(0), &b = ctx.input(1);
    Tensor &out = ctx.output(0);
    kc::logic(op, a.data<uint8_t>(), a.shape(), b.data<uint8_t>(), b.shape(),
              out.mutableData<uint8_t>(), out.shape());
    return Status::ok();
  };
}

/// x → x for the dtypes in `allowed`.
InferFn unaryInfer(std::vector<DType> allowed) {
  return [allowed = std::move(allowed)](const Types &in,
                                        const Attrs &) -> StatusOr<Types> {
    MOE_RETURN_IF_ERROR(checkArity(in, 1, 1));
    MOE_RETURN_IF_ERROR(checkDTypeIn(in, 0, allowed));
    return single(in[0].dtype, in[0].shape);
  };
}

RunFn unaryRun(kc::UnaryOp op) {
  return [op](KernelContext &ctx) -> Status {
    const Tensor &x = ctx.input(0);
    kc::unaryF32(op, x.data<float>(), ctx.output(0).mutableData<float>(),
                 x.numElements());
    return Status::ok();
  };
}

Status runNeg(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  Tensor &y = ctx.output(0);
  switch (x.dtype()) {
  case DType::I64:
    kc::negI64(x.data<int64_t>(), y.mutableData<int64_t>(), x.numElements());
    return Status::ok();
  case DType::I32:
    kc::negI32(x.data<int32_t>(), y.mutableData<int32_t>(), x.numElements());
    return Status::ok();
  default:
    return unaryRun(kc::UnaryOp::Neg)(ctx);
  }
}

StatusOr<kc::UnaryOp> geluKind(const Attrs &attrs) {
  std::string approx;
  MOE_ASSIGN_OR_RETURN(approx, attrs.getString("approximate", "none"));
  if (approx == "none")
    return kc::UnaryOp::GeluErf;
  if (approx == "tanh")
    return kc::UnaryOp::GeluTanh;
  return Status::error("attribute `approximate` is '" + approx +
                       "', expected 'none' or 'tanh'");
}

/// cond (i1), x, y (same dtype) → broadcast of the three.
StatusOr<Types> inferWhere(const Types &in, const Attrs &) {
  MOE_RETURN_IF_ERROR(checkArity(in, 3, 3));
  MOE_RETURN_IF_ERROR(checkDType(in, 0, DType::I1));
  MOE_RETURN_IF_ERROR(
      checkDTypeIn(in, 1, {DType::F32, DType::I64, DType::I32, DType::I1}));
  MOE_RETURN_IF_ERROR(checkDType(in, 2, in[1].dtype));
  Shape cx, out;
  MOE_ASSIGN_OR_RETURN(cx, broadcastShapes(in[0].shape, in[1].shape));
  MOE_ASSIGN_OR_RETURN(out, broadcastShapes(cx, in[2].shape));
  return single(in[1].dtype, out);
}

Status runWhere(KernelContext &ctx) {
  const Tensor &c = ctx.input(0), &x = ctx.input(1), &y = ctx.input(2);
  Tensor &out = ctx.output(0);
  return kc::where(c.data<uint8_t>(), c.shape(), x.data(), x.shape(),
                   y.data(), y.shape(), dtypeSize(x.dtype()),
                   out.mutableData(), out.shape());
}

/// x, min, max → x's type; min and max hold one element of x's dtype.
StatusOr<Types> inferClip(const Types &in, const Attrs &) {
  MOE_RETURN_IF_ERROR(checkArity(in, 3, 3));
  MOE_RETURN_IF_ERROR(checkDTypeIn(in, 0, kArith));
  const char *names[] = {"x", "min", "max"};
  for (size_t i = 1; i < 3; ++i) {
    MOE_RETURN_IF_ERROR(checkDType(in, i, in[0].dtype));
    for (int64_t d : in[i].shape)
      if (!dimsMatch(d, 1))
        return Status::error("input " + std::to_string(i) + " (" + names[i] +
                             ") has shape " + formatShape(in[i].shape) +
                             ", expected one element");
  }
  return single(in[0].dtype, in[0].shape);
}

Status runClip(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  return kc::clip(scalarType(x.dtype()), x.data(), ctx.input(1).data(),
                  ctx.input(2).data(), ctx.output(0).mutableData(),
                  x.numElements());
}

void add(KernelRegistry &r, std::string name, InferFn infer, RunFn run) {
  Status st = r.add({std::move(name), std::move(infer), std::move(run), false});
  (void)st;
}

} // namespace

void registerElementwiseKernels(KernelRegistry &r) {
  using B = kc::BinaryOp;
  const std::pair<const char *, B> binaries[] = {
      {"nn.add", B::Add}, {"nn.sub", B::Sub}, {"nn.mul", B::Mul},
      {"nn.div", B::Div}, {"nn.max", B::Max}, {"nn.min", B::Min}};
  for (const auto &[name, op] : binaries)
    add(r, name, binaryInfer(kArith), binaryRun(op));
  add(r, "nn.pow", binaryInfer(kF32), binaryRun(B::Pow));

  using U = kc::UnaryOp;
  const std::pair<const char *, U> unaries[] = {
      {"nn.silu", U::Silu},   {"nn.sigmoid", U::Sigmoid},
      {"nn.relu", U::Relu},   {"nn.tanh", U::Tanh},
      {"nn.exp", U::Exp},     {"nn.log", U::Log},
      {"nn.abs", U::Abs},     {"nn.sqrt", U::Sqrt},
      {"nn.rsqrt", U::Rsqrt}, {"nn.reciprocal", U::Reciprocal},
      {"nn.cos", U::Cos},     {"nn.sin", U::Sin}};
  for (const auto &[name, op] : unaries)
    add(r, name, unaryInfer(kF32), unaryRun(op));
  add(r, "nn.neg", unaryInfer(kArith), runNeg);

  add(
      r, "nn.gelu",
      [](const Types &in, const Attrs &attrs) -> StatusOr<Types> {
        MOE_RETURN_IF_ERROR(geluKind(attrs).status());
        return unaryInfer(kF32)(in, attrs);
      },
      [](KernelContext &ctx) -> Status {
        kc::UnaryOp op;
        MOE_ASSIGN_OR_RETURN(op, geluKind(ctx.attrs()));
        return unaryRun(op)(ctx);
      });

  using C = kc::CompareOp;
  add(r, "nn.equal",
      binaryInfer({DType::F32, DType::I64, DType::I32, DType::I1}, DType::I1),
      compareRun(C::Equal));
  const std::pair<const char *, C> orderings[] = {
      {"nn.greater", C::Greater},
      {"nn.greater_or_equal", C::GreaterOrEqual},
      {"nn.less", C::Less},
      {"nn.less_or_equal", C::LessOrEqual}};
  for (const auto &[name, op] : orderings)
    add(r, name, binaryInfer(kArith, DType::I1), compareRun(op));

  using L = kc::LogicOp;
  const std::pair<const char *, L> logics[] = {
      {"nn.and", L::And}, {"nn.or", L::Or}, {"nn.xor", L::Xor}};
  for (const auto &[name, op] : logics)
    add(r, name, binaryInfer({DType::I1}), logicRun(op));
  add(r, "nn.not", unaryInfer({DType::I1}), [](KernelContext &ctx) -> Status {
    const Tensor &x = ctx.input(0);
    kc::logicalNot(x.data<uint8_t>(), ctx.output(0).mutableData<uint8_t>(),
                   x.numElements());
    return Status::ok();
  });

  add(r, "nn.where", inferWhere, runWhere);
  add(r, "nn.clip", inferClip, runClip);
}

} // namespace moe::rt::cpu
