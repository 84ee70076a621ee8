//===- ElementwiseKernels.cpp - Binary and unary nn.* kernels -------------===//

#include "runtime/cpu/KernelUtil.h"
#include "runtime/cpu/Registration.h"

#include "kernels/cpu/Elementwise.h"

namespace moe::rt::cpu {
namespace kc = kernels::cpu;

namespace {

/// a, b → broadcast(a, b); f32 or (unless floatOnly) i64, both the same.
InferFn binaryInfer(bool floatOnly) {
  return [floatOnly](const Types &in, const Attrs &) -> StatusOr<Types> {
    MOE_RETURN_IF_ERROR(checkArity(in, 2, 2));
    DType t = in[0].dtype;
    if (t != DType::F32 && (floatOnly || t != DType::I64))
      return Status::error("input 0 has dtype " + dtypeName(t) + ", expected " +
                           (floatOnly ? "f32" : "f32 or i64"));
    MOE_RETURN_IF_ERROR(checkDType(in, 1, t));
    Shape out;
    MOE_ASSIGN_OR_RETURN(out, broadcastShapes(in[0].shape, in[1].shape));
    return single(t, out);
  };
}

RunFn binaryRun(kc::BinaryOp op) {
  return [op](KernelContext &ctx) -> Status {
    const Tensor &a = ctx.input(0), &b = ctx.input(1);
    Tensor &out = ctx.output(0);
    if (a.dtype() == DType::I64)
      return kc::binaryI64(op, a.data<int64_t>(), a.shape(),
                           b.data<int64_t>(), b.shape(),
                           out.mutableData<int64_t>(), out.shape());
    kc::binaryF32(op, a.data<float>(), a.shape(), b.data<float>(), b.shape(),
                  out.mutableData<float>(), out.shape());
    return Status::ok();
  };
}

StatusOr<Types> unaryInfer(const Types &in, const Attrs &) {
  MOE_RETURN_IF_ERROR(checkArity(in, 1, 1));
  MOE_RETURN_IF_ERROR(checkDType(in, 0, DType::F32));
  return single(DType::F32, in[0].shape);
}

RunFn unaryRun(kc::UnaryOp op) {
  return [op](KernelContext &ctx) -> Status {
    const Tensor &x = ctx.input(0);
    kc::unaryF32(op, x.data<float>(), ctx.output(0).mutableData<float>(),
                 x.numElements());
    return Status::ok();
  };
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
    add(r, name, binaryInfer(false), binaryRun(op));
  add(r, "nn.pow", binaryInfer(true), binaryRun(B::Pow));

  using U = kc::UnaryOp;
  const std::pair<const char *, U> unaries[] = {
      {"nn.silu", U::Silu},   {"nn.sigmoid", U::Sigmoid},
      {"nn.relu", U::Relu},   {"nn.tanh", U::Tanh},
      {"nn.exp", U::Exp},     {"nn.log", U::Log},
      {"nn.neg", U::Neg},     {"nn.abs", U::Abs},
      {"nn.sqrt", U::Sqrt},   {"nn.rsqrt", U::Rsqrt},
      {"nn.reciprocal", U::Reciprocal}};
  for (const auto &[name, op] : unaries)
    add(r, name, unaryInfer, unaryRun(op));

  add(
      r, "nn.gelu",
      [](const Types &in, const Attrs &attrs) -> StatusOr<Types> {
        MOE_RETURN_IF_ERROR(geluKind(attrs).status());
        return unaryInfer(in, attrs);
      },
      [](KernelContext &ctx) -> Status {
        kc::UnaryOp op;
        MOE_ASSIGN_OR_RETURN(op, geluKind(ctx.attrs()));
        return unaryRun(op)(ctx);
      });
}

} // namespace moe::rt::cpu
