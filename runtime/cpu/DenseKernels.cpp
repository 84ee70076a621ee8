//===- DenseKernels.cpp - Matmul, softmax, reductions and norms -----------===//

#include "runtime/cpu/KernelUtil.h"
#include "runtime/cpu/Registration.h"

#include "kernels/cpu/Matmul.h"
#include "kernels/cpu/Normalize.h"

namespace moe::rt::cpu {
namespace kc = kernels::cpu;

namespace {

StatusOr<Types> inferMatmul(const Types &in, const Attrs &) {
  MOE_RETURN_IF_ERROR(checkArity(in, 2, 2));
  for (size_t i = 0; i < 2; ++i) {
    MOE_RETURN_IF_ERROR(checkDType(in, i, DType::F32));
    MOE_RETURN_IF_ERROR(checkMinRank(in, i, 2));
  }
  const Shape &a = in[0].shape, &b = in[1].shape;
  MOE_RETURN_IF_ERROR(checkDim(in, 1, b.size() - 2, a.back(), "K of input 0"));
  Shape out;
  MOE_ASSIGN_OR_RETURN(out, broadcastShapes(Shape(a.begin(), a.end() - 2),
                                            Shape(b.begin(), b.end() - 2)));
  out.push_back(a[a.size() - 2]);
  out.push_back(b.back());
  return single(DType::F32, out);
}

Status runMatmul(KernelContext &ctx) {
  const Tensor &a = ctx.input(0), &b = ctx.input(1);
  Tensor &c = ctx.output(0);
  kc::matmul(a.data<float>(), a.shape(), b.data<float>(), b.shape(),
             c.mutableData<float>(), c.shape());
  return Status::ok();
}

StatusOr<Types> inferLinear(const Types &in, const Attrs &) {
  MOE_RETURN_IF_ERROR(checkArity(in, 2, 3));
  for (size_t i = 0; i < in.size(); ++i)
    MOE_RETURN_IF_ERROR(checkDType(in, i, DType::F32));
  MOE_RETURN_IF_ERROR(checkMinRank(in, 0, 1));
  MOE_RETURN_IF_ERROR(checkRank(in, 1, 2));
  const Shape &x = in[0].shape, &w = in[1].shape;
  MOE_RETURN_IF_ERROR(checkDim(in, 1, 1, x.back(), "K of input 0"));
  if (in.size() == 3) {
    MOE_RETURN_IF_ERROR(checkRank(in, 2, 1));
    MOE_RETURN_IF_ERROR(checkDim(in, 2, 0, w[0], "N of input 1"));
  }
  Shape out(x.begin(), x.end() - 1);
  out.push_back(in.size() == 3 ? mergeDims(w[0], in[2].shape[0]) : w[0]);
  return single(DType::F32, out);
}

Status runLinear(KernelContext &ctx) {
  const Tensor &x = ctx.input(0), &w = ctx.input(1);
  const float *bias = ctx.numInputs() == 3 ? ctx.input(2).data<float>() : nullptr;
  int64_t rows = productOrUnknown(x.shape(), 0, x.rank() - 1);
  kc::linear(x.data<float>(), rows, w.dim(1), w.data<float>(), w.dim(0), bias,
             ctx.output(0).mutableData<float>());
  return Status::ok();
}

StatusOr<Types> inferSoftmax(const Types &in, const Attrs &attrs) {
  MOE_RETURN_IF_ERROR(checkArity(in, 1, 1));
  MOE_RETURN_IF_ERROR(checkDType(in, 0, DType::F32));
  MOE_RETURN_IF_ERROR(checkMinRank(in, 0, 1));
  int64_t axis;
  MOE_ASSIGN_OR_RETURN(axis, attrs.getInt("axis", -1));
  MOE_RETURN_IF_ERROR(
      normalizeAxis(axis, in[0].shape.size(), "attribute `axis`").status());
  return single(DType::F32, in[0].shape);
}

Status runSoftmax(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  int64_t axis;
  MOE_ASSIGN_OR_RETURN(axis, ctx.attrs().getInt("axis", -1));
  MOE_ASSIGN_OR_RETURN(axis, normalizeAxis(axis, x.rank(), "axis"));
  int64_t outer = productOrUnknown(x.shape(), 0, size_t(axis));
  int64_t inner = productOrUnknown(x.shape(), size_t(axis) + 1, x.rank());
  kc::softmax(x.data<float>(), ctx.output(0).mutableData<float>(), outer,
              x.dim(size_t(axis)), inner);
  return Status::ok();
}

/// The reduced dims of a rank-`rank` input for the `axes` attribute.
StatusOr<std::vector<bool>> reducedDims(const Attrs &attrs, size_t rank) {
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

StatusOr<Types> inferReduce(const Types &in, const Attrs &attrs) {
  MOE_RETURN_IF_ERROR(checkArity(in, 1, 1));
  MOE_RETURN_IF_ERROR(checkDType(in, 0, DType::F32));
  std::vector<bool> reduced;
  MOE_ASSIGN_OR_RETURN(reduced, reducedDims(attrs, in[0].shape.size()));
  int64_t keep;
  MOE_ASSIGN_OR_RETURN(keep, attrs.getInt("keepdims", 1));
  Shape out;
  for (size_t d = 0; d < reduced.size(); ++d) {
    if (!reduced[d])
      out.push_back(in[0].shape[d]);
    else if (keep)
      out.push_back(1);
  }
  return single(DType::F32, out);
}

RunFn reduceRunner(kc::ReduceOp op) {
  return [op](KernelContext &ctx) -> Status {
    const Tensor &x = ctx.input(0);
    std::vector<bool> reduced;
    MOE_ASSIGN_OR_RETURN(reduced, reducedDims(ctx.attrs(), x.rank()));
    kc::reduce(op, x.data<float>(), x.shape(), reduced,
               ctx.output(0).mutableData<float>());
    return Status::ok();
  };
}

/// Shared by the two norms: x [..., D], w [D], optional b [D] (layer norm).
StatusOr<Types> inferNorm(const Types &in, const Attrs &attrs,
                          size_t maxInputs) {
  MOE_RETURN_IF_ERROR(checkArity(in, 2, maxInputs));
  for (size_t i = 0; i < in.size(); ++i)
    MOE_RETURN_IF_ERROR(checkDType(in, i, DType::F32));
  MOE_RETURN_IF_ERROR(checkMinRank(in, 0, 1));
  for (size_t i = 1; i < in.size(); ++i) {
    MOE_RETURN_IF_ERROR(checkRank(in, i, 1));
    MOE_RETURN_IF_ERROR(checkDim(in, i, 0, in[0].shape.back(), "last dim of input 0"));
  }
  MOE_RETURN_IF_ERROR(attrs.getFloat("eps", 1e-5).status());
  return single(DType::F32, in[0].shape);
}

Status runNorm(KernelContext &ctx, bool layer) {
  const Tensor &x = ctx.input(0);
  double eps;
  MOE_ASSIGN_OR_RETURN(eps, ctx.attrs().getFloat("eps", 1e-5));
  int64_t d = x.shape().back();
  int64_t rows = productOrUnknown(x.shape(), 0, x.rank() - 1);
  float *y = ctx.output(0).mutableData<float>();
  if (layer)
    kc::layerNorm(x.data<float>(), ctx.input(1).data<float>(),
                  ctx.numInputs() == 3 ? ctx.input(2).data<float>() : nullptr,
                  float(eps), y, rows, d);
  else
    kc::rmsNorm(x.data<float>(), ctx.input(1).data<float>(), float(eps), y,
                rows, d);
  return Status::ok();
}

void add(KernelRegistry &r, std::string name, InferFn infer, RunFn run) {
  Status st = r.add({std::move(name), std::move(infer), std::move(run), false});
  (void)st; // names are unique by construction
}

} // namespace

void registerDenseKernels(KernelRegistry &r) {
  add(r, "nn.matmul", inferMatmul, runMatmul);
  add(r, "nn.linear", inferLinear, runLinear);
  add(r, "nn.softmax", inferSoftmax, runSoftmax);
  add(r, "nn.reduce_sum", inferReduce, reduceRunner(kc::ReduceOp::Sum));
  add(r, "nn.reduce_mean", inferReduce, reduceRunner(kc::ReduceOp::Mean));
  add(r, "nn.reduce_max", inferReduce, reduceRunner(kc::ReduceOp::Max));
  add(
      r, "nn.rms_norm",
      [](const Types &in, const Attrs &a) { return inferNorm(in, a, 2); },
      [](KernelContext &ctx) { return runNorm(ctx, false); });
  add(
      r, "nn.layer_norm",
      [](const Types &in, const Attrs &a) { return inferNorm(in, a, 3); },
      [](KernelContext &ctx) { return runNorm(ctx, true); });
}

} // namespace moe::rt::cpu
