//===- DenseKernels.cpp - Matmul, softmax, reductions and norms -----------===//

#include "runtime/cpu/KernelUtil.h"
#include "runtime/cpu/Registration.h"

#include "kernels/cpu/Dequant.h"
#include "kernels/cpu/Elementwise.h"
#include "kernels/cpu/Matmul.h"
#include "kernels/cpu/Normalize.h"

namespace moe::rt::cpu {
namespace kc = kernels::cpu;

namespace {

/// ONNX MatMul (numpy matmul): a 1-D a is [1, K] and a 1-D b is [K, 1] for
/// the product, and that 1 is dropped from the result; batch dims
/// broadcast.
StatusOr<Types> inferMatmul(const Types &in, const Attrs &) {
  MOE_RETURN_IF_ERROR(checkArity(in, 2, 2));
  for (size_t i = 0; i < 2; ++i) {
    MOE_RETURN_IF_ERROR(checkDType(in, i, DType::F32));
    MOE_RETURN_IF_ERROR(checkMinRank(in, i, 1));
  }
  const Shape &a = in[0].shape, &b = in[1].shape;
  size_t kDim = b.size() == 1 ? 0 : b.size() - 2;
  MOE_RETURN_IF_ERROR(checkDim(in, 1, kDim, a.back(), "K of input 0"));
  Shape aBatch, bBatch;
  if (a.size() > 2)
    aBatch.assign(a.begin(), a.end() - 2);
  if (b.size() > 2)
    bBatch.assign(b.begin(), b.end() - 2);
  Shape out;
  MOE_ASSIGN_OR_RETURN(out, broadcastShapes(aBatch, bBatch));
  if (a.size() >= 2)
    out.push_back(a[a.size() - 2]);
  if (b.size() >= 2)
    out.push_back(b.back());
  return single(DType::F32, out);
}

Status runMatmul(KernelContext &ctx) {
  const Tensor &a = ctx.input(0), &b = ctx.input(1);
  Tensor &c = ctx.output(0);
  // The kernel wants ranks >= 2: promote 1-D operands; the result has the
  // same layout with the promoted 1s.
  Shape as = a.shape(), bs = b.shape();
  if (as.size() == 1)
    as.insert(as.begin(), 1);
  if (bs.size() == 1)
    bs.push_back(1);
  Shape cs(c.shape());
  if (a.rank() == 1)
    cs.insert(cs.end() - (b.rank() == 1 ? 0 : 1), 1);
  if (b.rank() == 1)
    cs.push_back(1);
  kc::matmul(a.data<float>(), as, b.data<float>(), bs,
             c.mutableData<float>(), cs);
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

/// x (f32; reduce_sum and reduce_max also i64, i32) → reduced.
InferFn reduceInfer(bool integers) {
  return [integers](const Types &in, const Attrs &attrs) -> StatusOr<Types> {
    MOE_RETURN_IF_ERROR(checkArity(in, 1, 1));
    DType t = in[0].dtype;
    if (t != DType::F32 && !(integers && (t == DType::I64 || t == DType::I32)))
      return Status::error("input 0 has dtype " + dtypeName(t) +
                           ", expected " +
                           (integers ? "f32, i64 or i32" : "f32"));
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
    return single(t, out);
  };
}

RunFn reduceRunner(kc::ReduceOp op) {
  return [op](KernelContext &ctx) -> Status {
    const Tensor &x = ctx.input(0);
    std::vector<bool> reduced;
    MOE_ASSIGN_OR_RETURN(reduced, reducedDims(ctx.attrs(), x.rank()));
    if (x.dtype() != DType::F32)
      return kc::reduceInt(op == kc::ReduceOp::Max ? kc::IntReduceOp::Max
                                                   : kc::IntReduceOp::Sum,
                           scalarType(x.dtype()), x.data(), x.shape(),
                           reduced, ctx.output(0).mutableData());
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

StatusOr<int> dequantBits(const Attrs &attrs) {
  int64_t bits;
  MOE_ASSIGN_OR_RETURN(bits, attrs.getInt("bits"));
  if (bits != 2 && bits != 4 && bits != 8)
    return Status::error("attribute `bits` is " + str(bits) +
                         ", expected 2, 4 or 8");
  return int(bits);
}

/// nn.dequantize, ONNX Runtime's QMoE weight layout (kernels/cpu/Dequant.h):
/// q u8 [..., rows, cols·bits/8], scales f32/f16 [..., rows] (per row) or
/// [..., rows, nblocks] (blocks of cols/nblocks columns), zero points u8
/// shaped like the scales with the last dim ceil(last·bits/8), or an empty
/// [0] tensor for none → f32 [..., rows, cols].
StatusOr<Types> inferDequantize(const Types &in, const Attrs &attrs) {
  MOE_RETURN_IF_ERROR(checkArity(in, 3, 3));
  int bits;
  MOE_ASSIGN_OR_RETURN(bits, dequantBits(attrs));
  MOE_RETURN_IF_ERROR(checkDType(in, 0, DType::U8));
  MOE_RETURN_IF_ERROR(checkMinRank(in, 0, 2));
  if (in[1].dtype != DType::F32 && in[1].dtype != DType::F16)
    return Status::error("input 1 (scales) has dtype " +
                         dtypeName(in[1].dtype) + ", expected f32 or f16");
  MOE_RETURN_IF_ERROR(checkDType(in, 2, DType::U8));
  const Shape &q = in[0].shape, &s = in[1].shape, &z = in[2].shape;
  size_t rank = q.size();
  if (s.size() != rank - 1 && s.size() != rank)
    return Status::error("input 1 (scales) has rank " + str(int64_t(s.size())) +
                         ", expected " + str(int64_t(rank - 1)) +
                         " (per row) or " + str(int64_t(rank)) +
                         " (per block)");
  Shape out;
  for (size_t d = 0; d + 1 < rank; ++d) {
    MOE_RETURN_IF_ERROR(
        checkDim(in, 1, d, q[d], "dim " + str(int64_t(d)) + " of input 0"));
    out.push_back(mergeDims(q[d], s[d]));
  }
  int64_t cols = q.back() < 0 ? -1 : q.back() * (8 / bits);
  out.push_back(cols);
  if (s.size() == rank) {
    int64_t blocks = s.back();
    if (blocks == 0 && cols > 0)
      return Status::error("input 1 (scales) has 0 blocks per row");
    if (blocks > 0 && cols >= 0 && cols % blocks != 0)
      return Status::error("input 1 (scales) has " + str(blocks) +
                           " blocks per row, which do not divide the " +
                           str(cols) + " columns");
  }
  // Zero points: packed like q along the scales' last axis, or none.
  Shape zpWant = s;
  if (zpWant.back() >= 0)
    zpWant.back() = (zpWant.back() * bits + 7) / 8;
  bool none = z.size() == 1 && dimsMatch(z[0], 0);
  bool packed = z.size() == zpWant.size();
  for (size_t d = 0; packed && d < z.size(); ++d)
    packed = dimsMatch(z[d], zpWant[d]);
  if (!none && !packed)
    return Status::error("input 2 (zero points) has shape " + formatShape(z) +
                         ", expected " + formatShape(zpWant) +
                         " or [0] (none)");
  return single(DType::F32, out);
}

Status runDequantize(KernelContext &ctx) {
  const Tensor &q = ctx.input(0), &s = ctx.input(1), &z = ctx.input(2);
  Tensor &y = ctx.output(0);
  if (y.numElements() == 0)
    return Status::ok();
  kc::DequantArgs a;
  MOE_ASSIGN_OR_RETURN(a.bits, dequantBits(ctx.attrs()));
  size_t rank = q.rank();
  a.q = q.data<uint8_t>();
  a.batch = productOrUnknown(q.shape(), 0, rank - 2);
  a.rows = q.dim(rank - 2);
  a.cols = y.dim(rank - 1);
  if (s.dtype() == DType::F16)
    a.scalesF16 = s.data<uint16_t>();
  else
    a.scalesF32 = s.data<float>();
  a.nblocks = s.rank() == rank ? s.dim(rank - 1) : 0;
  a.zeroPoints = z.numElements() ? z.data<uint8_t>() : nullptr;
  a.out = y.mutableData<float>();
  return kc::dequantize(a);
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
  add(r, "nn.reduce_sum", reduceInfer(true), reduceRunner(kc::ReduceOp::Sum));
  add(r, "nn.reduce_mean", reduceInfer(false),
      reduceRunner(kc::ReduceOp::Mean));
  add(r, "nn.reduce_max", reduceInfer(true), reduceRunner(kc::ReduceOp::Max));
  add(
      r, "nn.rms_norm",
      [](const Types &in, const Attrs &a) { return inferNorm(in, a, 2); },
      [](KernelContext &ctx) { return runNorm(ctx, false); });
  add(
      r, "nn.layer_norm",
      [](const Types &in, const Attrs &a) { return inferNorm(in, a, 3); },
      [](KernelContext &ctx) { return runNorm(ctx, true); });
  add(r, "nn.dequantize", inferDequantize, runDequantize);
}

} // namespace moe::rt::cpu
