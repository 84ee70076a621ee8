//===- CudaKernels.cpp - The kernels of the `cuda` device -----------------===//

#include "runtime/cuda/CudaKernels.h"

#include "runtime/Executor.h"
#include "runtime/cpu/KernelUtil.h"
#include "runtime/cpu/MoeAttrs.h"
#include "runtime/cuda/CudaDevice.h"
#include "runtime/cuda/ExpertKernels.h"
#include "runtime/cuda/KernelHelpers.h"

#include "kernels/cuda/CudaCheck.h"
#include "kernels/cuda/Dense.h"
#include "kernels/cuda/Moe.h"
#include "kernels/cuda/Quant.h"

#include "kernels/cpu/Layout.h"
#include "kernels/cpu/Quant.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace moe::rt::cuda {
namespace {

namespace kcu = moe::cuda;
using cpu::normalizeAxis;
using cpu::str;
using Types = std::vector<TensorType>;
using detail::allF32;
using detail::in;
using detail::out;
using detail::product;

// --- elementwise ----------------------------------------------------------

CudaKernel binaryKernel(const std::string &name, kcu::BinaryOp op) {
  CudaKernel k;
  k.name = name;
  k.supports = [](const StepInfo &, const Types &in) -> Status {
    MOE_RETURN_IF_ERROR(allF32(in));
    for (const TensorType &t : in)
      if (t.shape.size() > size_t(kcu::kMaxRank))
        return Status::error("rank above " + str(kcu::kMaxRank));
    return Status::ok();
  };
  k.run = [op](CudaKernelContext &c) {
    return kcu::binary(op, in<float>(c, 0), c.inputs[0].shape(),
                       in<float>(c, 1), c.inputs[1].shape(), out<float>(c, 0),
                       c.outputs[0].shape(), c.device.stream());
  };
  return k;
}

CudaKernel unaryKernel(const std::string &name, kcu::UnaryOp op) {
  CudaKernel k;
  k.name = name;
  k.supports = [](const StepInfo &, const Types &in) { return allF32(in); };
  k.run = [op](CudaKernelContext &c) {
    return kcu::unary(op, in<float>(c, 0), c.inputs[0].numElements(),
                      out<float>(c, 0), c.device.stream());
  };
  return k;
}

CudaKernel geluKernel() {
  CudaKernel k;
  k.name = "nn.gelu";
  k.supports = [](const StepInfo &step, const Types &in) -> Status {
    MOE_RETURN_IF_ERROR(allF32(in));
    std::string approx;
    MOE_ASSIGN_OR_RETURN(approx, step.attrs.getString("approximate", "none"));
    if (approx != "none" && approx != "tanh")
      return Status::error("attribute `approximate` is '" + approx + "'");
    return Status::ok();
  };
  k.run = [](CudaKernelContext &c) -> Status {
    std::string approx;
    MOE_ASSIGN_OR_RETURN(approx,
                         c.step.attrs.getString("approximate", "none"));
    return kcu::unary(approx == "tanh" ? kcu::UnaryOp::GeluTanh
                                       : kcu::UnaryOp::Gelu,
                      in<float>(c, 0), c.inputs[0].numElements(),
                      out<float>(c, 0), c.device.stream());
  };
  return k;
}

// --- dense ----------------------------------------------------------------

CudaKernel softmaxKernel() {
  CudaKernel k;
  k.name = "nn.softmax";
  k.supports = [](const StepInfo &step, const Types &in) -> Status {
    MOE_RETURN_IF_ERROR(allF32(in));
    int64_t axis;
    MOE_ASSIGN_OR_RETURN(axis, step.attrs.getInt("axis", -1));
    int64_t rank = int64_t(in[0].shape.size());
    if (axis != -1 && axis != rank - 1)
      return Status::error("softmax over axis " + str(axis) +
                           " (the CUDA kernel takes the last axis)");
    return Status::ok();
  };
  k.run = [](CudaKernelContext &c) {
    const Tensor &x = c.inputs[0];
    int64_t cols = x.rank() ? x.shape().back() : 1;
    int64_t rows = cols ? x.numElements() / cols : 0;
    return kcu::softmaxRows(x.data<float>(), rows, cols, out<float>(c, 0),
                            c.device.stream());
  };
  return k;
}

/// The reduced axes of a reduce step as one contiguous run [lo, hi).
StatusOr<std::pair<size_t, size_t>> reducedRun(const Attrs &attrs,
                                               size_t rank) {
  std::vector<bool> reduced;
  MOE_ASSIGN_OR_RETURN(reduced, cpu::reducedDims(attrs, rank));
  size_t lo = 0;
  while (lo < rank && !reduced[lo])
    ++lo;
  size_t hi = lo;
  while (hi < rank && reduced[hi])
    ++hi;
  for (size_t d = hi; d < rank; ++d)
    if (reduced[d])
      return Status::error("reduced axes that are not contiguous");
  return std::make_pair(lo, hi);
}

CudaKernel reduceKernel(const std::string &name, bool mean) {
  CudaKernel k;
  k.name = name;
  k.supports = [](const StepInfo &step, const Types &in) -> Status {
    MOE_RETURN_IF_ERROR(allF32(in));
    return reducedRun(step.attrs, in[0].shape.size()).status();
  };
  k.run = [mean](CudaKernelContext &c) -> Status {
    const Tensor &x = c.inputs[0];
    std::pair<size_t, size_t> run;
    MOE_ASSIGN_OR_RETURN(run, reducedRun(c.step.attrs, x.rank()));
    return kcu::reduceMiddle(x.data<float>(), product(x.shape(), 0, run.first),
                             product(x.shape(), run.first, run.second),
                             product(x.shape(), run.second, x.rank()), mean,
                             out<float>(c, 0), c.device.stream());
  };
  return k;
}

CudaKernel transposeKernel() {
  CudaKernel k;
  k.name = "nn.transpose";
  k.supports = [](const StepInfo &, const Types &in) -> Status {
    if (in[0].packed)
      return Status::error("input 0 is a packed (quantised) weight");
    if (in[0].shape.size() > size_t(kcu::kMaxRank))
      return Status::error("rank above " + str(kcu::kMaxRank));
    return Status::ok();
  };
  k.run = [](CudaKernelContext &c) -> Status {
    const Tensor &x = c.inputs[0];
    Shape reverse(x.rank());
    for (size_t i = 0; i < x.rank(); ++i)
      reverse[i] = int64_t(x.rank() - 1 - i);
    Shape perm;
    MOE_ASSIGN_OR_RETURN(perm, c.step.attrs.getInts("perm", reverse));
    return kcu::transpose(x.data(), x.shape(), perm, dtypeSize(x.dtype()),
                          c.outputs[0].mutableData(), c.device.stream());
  };
  return k;
}

CudaKernel linearKernel() {
  CudaKernel k;
  k.name = "nn.linear";
  k.supports = [](const StepInfo &, const Types &in) { return allF32(in); };
  k.run = [](CudaKernelContext &c) {
    const Tensor &x = c.inputs[0], &w = c.inputs[1];
    const float *bias = c.inputs.size() == 3 ? in<float>(c, 2) : nullptr;
    const int64_t rows = product(x.shape(), 0, x.rank() - 1);
    return c.device.blas().linear(x.data(), kcu::GemmType::F32, rows,
                                  w.dim(1), w.data(), kcu::GemmType::F32,
                                  w.dim(0), bias, out<float>(c, 0),
                                  c.device.stream());
  };
  return k;
}

CudaKernel normKernel(const std::string &name, bool layer) {
  CudaKernel k;
  k.name = name;
  k.supports = [](const StepInfo &, const Types &in) { return allF32(in); };
  k.run = [layer](CudaKernelContext &c) -> Status {
    const Tensor &x = c.inputs[0];
    double eps;
    MOE_ASSIGN_OR_RETURN(eps, c.step.attrs.getFloat("eps", 1e-5));
    const int64_t d = x.rank() ? x.shape().back() : 1;
    const float *b =
        layer && c.inputs.size() == 3 ? in<float>(c, 2) : nullptr;
    return kcu::normRows(x.data<float>(), in<float>(c, 1), b, float(eps),
                         layer, d ? x.numElements() / d : 0, d,
                         out<float>(c, 0), c.device.stream());
  };
  return k;
}

CudaKernel matmulKernel() {
  CudaKernel k;
  k.name = "nn.matmul";
  k.supports = [](const StepInfo &, const Types &in) -> Status {
    MOE_RETURN_IF_ERROR(allF32(in));
    if (in[0].shape.size() < 2 || in[1].shape.size() < 2)
      return Status::error("a 1-D operand (the CUDA kernel takes ranks >= 2)");
    return Status::ok();
  };
  k.run = [](CudaKernelContext &c) -> Status {
    const Tensor &a = c.inputs[0], &b = c.inputs[1];
    const size_t ra = a.rank(), rb = b.rank();
    const int64_t m = a.dim(ra - 2), kk = a.dim(ra - 1), n = b.dim(rb - 1);
    const int64_t batchA = product(a.shape(), 0, ra - 2);
    const int64_t batchB = product(b.shape(), 0, rb - 2);
    const int64_t batchC = product(c.outputs[0].shape(), 0,
                                   c.outputs[0].rank() - 2);
    kcu::Blas &blas = c.device.blas();
    kcu::Stream s = c.device.stream();
    float *y = out<float>(c, 0);
    if (batchB == 1) // one b for every row of a: a single GEMM
      return blas.matmul(a.data<float>(), 0, b.data<float>(), 0, y,
                         batchA * m, kk, n, 1, s);
    if (batchA == batchC && batchB == batchC &&
        Shape(a.shape().begin(), a.shape().end() - 2) ==
            Shape(b.shape().begin(), b.shape().end() - 2))
      return blas.matmul(a.data<float>(), m * kk, b.data<float>(), kk * n, y,
                         m, kk, n, batchC, s);
    if (batchA == 1 && batchB == batchC)
      return blas.matmul(a.data<float>(), 0, b.data<float>(), kk * n, y, m,
                         kk, n, batchC, s);
    return Status::error("batch broadcasting of " + formatShape(a.shape()) +
                         " and " + formatShape(b.shape()) +
                         " is not supported by the CUDA kernel");
  };
  return k;
}

// --- layout ---------------------------------------------------------------

Status noPacked(const Types &in) {
  for (size_t i = 0; i < in.size(); ++i)
    if (in[i].packed)
      return Status::error("input " + str(int64_t(i)) +
                           " is a packed (quantised) weight");
  return Status::ok();
}

Status elemSizeOk(DType t) {
  size_t n = dtypeSize(t);
  if (n == 1 || n == 2 || n == 4 || n == 8)
    return Status::ok();
  return Status::error("dtype " + dtypeName(t) + " is not supported");
}

/// The values of a host integer tensor (i64 or i32).
std::vector<int64_t> hostInts(const Tensor &t) {
  std::vector<int64_t> v(size_t(t.numElements()));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = t.dtype() == DType::I32 ? t.data<int32_t>()[i]
                                   : t.data<int64_t>()[i];
  return v;
}

/// Row-major strides of `shape`, in elements.
Shape stridesOf(const Shape &shape) {
  Shape s(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;)
    s[d - 1] = s[d] * shape[d];
  return s;
}

CudaKernel castKernel() {
  CudaKernel k;
  k.name = "nn.cast";
  k.supports = [](const StepInfo &, const Types &in) { return noPacked(in); };
  k.run = [](CudaKernelContext &c) {
    const Tensor &x = c.inputs[0];
    return kcu::cast(x.data(), int(x.dtype()), c.outputs[0].mutableData(),
                     int(c.outputs[0].dtype()), x.numElements(),
                     c.device.stream());
  };
  return k;
}

CudaKernel gatherKernel() {
  CudaKernel k;
  k.name = "nn.gather";
  k.hostInput = [](size_t i) { return i == 1; };
  k.supports = [](const StepInfo &, const Types &in) -> Status {
    MOE_RETURN_IF_ERROR(noPacked(in));
    return elemSizeOk(in[0].dtype);
  };
  k.run = [](CudaKernelContext &c) -> Status {
    const Tensor &data = c.inputs[0];
    int64_t axis;
    MOE_ASSIGN_OR_RETURN(axis, c.step.attrs.getInt("axis", 0));
    MOE_ASSIGN_OR_RETURN(axis, normalizeAxis(axis, data.rank(), "axis"));
    const int64_t len = data.dim(size_t(axis));
    // Checked and made non-negative on the host, then copied over.
    std::vector<int64_t> idx = hostInts(c.inputs[1]);
    for (size_t i = 0; i < idx.size(); ++i) {
      if (idx[i] < -len || idx[i] >= len)
        return Status::error("index " + str(idx[i]) + " at position " +
                             str(int64_t(i)) + " is outside [" + str(-len) +
                             ", " + str(len) + ")");
      if (idx[i] < 0)
        idx[i] += len;
    }
    StatusOr<Tensor> h =
        Tensor::fromVector(DType::I64, {int64_t(idx.size())}, idx);
    if (!h.isOk())
      return h.status();
    StatusOr<Tensor> d = c.device.upload(*h, "gather indices");
    if (!d.isOk())
      return d.status();
    return kcu::gather(data.data(), product(data.shape(), 0, size_t(axis)),
                       len,
                       product(data.shape(), size_t(axis) + 1, data.rank()),
                       d->data<int64_t>(), int64_t(idx.size()),
                       dtypeSize(data.dtype()), c.outputs[0].mutableData(),
                       c.device.stream());
  };
  return k;
}

CudaKernel concatKernel() {
  CudaKernel k;
  k.name = "nn.concat";
  k.supports = [](const StepInfo &, const Types &in) { return noPacked(in); };
  k.run = [](CudaKernelContext &c) -> Status {
    Tensor &y = c.outputs[0];
    int64_t axis;
    MOE_ASSIGN_OR_RETURN(axis, c.step.attrs.getInt("axis"));
    MOE_ASSIGN_OR_RETURN(axis, normalizeAxis(axis, y.rank(), "axis"));
    const size_t es = dtypeSize(y.dtype());
    const int64_t outer = product(y.shape(), 0, size_t(axis));
    const int64_t inner = product(y.shape(), size_t(axis) + 1, y.rank());
    const size_t dpitch = size_t(y.dim(size_t(axis)) * inner) * es;
    size_t at = 0;
    for (const Tensor &x : c.inputs) {
      const size_t width = size_t(x.dim(size_t(axis)) * inner) * es;
      if (width && outer)
        MOE_RETURN_IF_ERROR(kcu::check(
            cudaMemcpy2DAsync(static_cast<uint8_t *>(y.mutableData()) + at,
                              dpitch, x.data(), width, width, size_t(outer),
                              cudaMemcpyDeviceToDevice, c.device.stream()),
            "cudaMemcpy2DAsync(concat)"));
      at += width;
    }
    return Status::ok();
  };
  return k;
}

CudaKernel whereKernel() {
  CudaKernel k;
  k.name = "nn.where";
  k.supports = [](const StepInfo &, const Types &in) -> Status {
    MOE_RETURN_IF_ERROR(noPacked(in));
    return elemSizeOk(in[1].dtype);
  };
  k.run = [](CudaKernelContext &c) {
    const Tensor &cond = c.inputs[0], &x = c.inputs[1], &y = c.inputs[2];
    return kcu::where(cond.data<uint8_t>(), cond.shape(), x.data(), x.shape(),
                      y.data(), y.shape(), dtypeSize(x.dtype()),
                      c.outputs[0].mutableData(), c.outputs[0].shape(),
                      c.device.stream());
  };
  return k;
}

CudaKernel expandKernel() {
  CudaKernel k;
  k.name = "nn.expand";
  k.allocatesOutputs = true;
  k.hostInput = [](size_t i) { return i == 1; };
  k.supports = [](const StepInfo &, const Types &in) -> Status {
    MOE_RETURN_IF_ERROR(noPacked(in));
    return elemSizeOk(in[0].dtype);
  };
  k.run = [](CudaKernelContext &c) -> Status {
    const Tensor &x = c.inputs[0];
    Shape want = hostInts(c.inputs[1]);
    Shape shape = x.shape();
    while (shape.size() < want.size())
      shape.insert(shape.begin(), 1);
    while (want.size() < shape.size())
      want.insert(want.begin(), 1);
    Shape out(shape.size()), strides = stridesOf(shape);
    for (size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] == want[d] || want[d] == 1)
        out[d] = shape[d];
      else if (shape[d] == 1)
        out[d] = want[d];
      else
        return Status::error("cannot expand x " + formatShape(x.shape()) +
                             " to input 1 (shape): dim " + str(int64_t(d)) +
                             " is " + str(shape[d]) + " in x and " +
                             str(want[d]) + " in the shape");
      if (shape[d] == 1)
        strides[d] = 0;
    }
    StatusOr<Tensor> y = c.device.allocate(x.dtype(), out, "output 0");
    if (!y.isOk())
      return y.status();
    c.outputs[0] = std::move(*y);
    return kcu::stridedCopy(x.data(), 0, out, strides, dtypeSize(x.dtype()),
                            c.outputs[0].mutableData(), c.device.stream());
  };
  return k;
}

/// ONNX Slice on the device: starts, ends, axes and steps as
/// kernels::cpu::resolveSlice takes them.
Status sliceOnDevice(CudaKernelContext &c, const Shape &starts,
                     const Shape &ends, const std::optional<Shape> &axes,
                     const std::optional<Shape> &steps) {
  const Tensor &x = c.inputs[0];
  const size_t rank = x.rank();
  Shape first, step, count;
  MOE_RETURN_IF_ERROR(kernels::cpu::resolveSlice(x.shape(), starts, ends, axes,
                                                 steps, first, step, count));
  Shape in = stridesOf(x.shape()), strides(rank);
  int64_t offset = 0;
  for (size_t d = 0; d < rank; ++d) {
    offset += first[d] * in[d];
    strides[d] = step[d] * in[d];
  }
  StatusOr<Tensor> y = c.device.allocate(x.dtype(), count, "output 0");
  if (!y.isOk())
    return y.status();
  c.outputs[0] = std::move(*y);
  return kcu::stridedCopy(x.data(), offset, count, strides,
                          dtypeSize(x.dtype()), c.outputs[0].mutableData(),
                          c.device.stream());
}

/// nn.dynamic_slice (starts, ends, axes, steps as host inputs) and nn.slice
/// (as attributes).
CudaKernel sliceKernel(bool dynamic) {
  CudaKernel k;
  k.name = dynamic ? "nn.dynamic_slice" : "nn.slice";
  k.allocatesOutputs = true;
  if (dynamic)
    k.hostInput = [](size_t i) { return i >= 1; };
  k.supports = [](const StepInfo &, const Types &in) -> Status {
    MOE_RETURN_IF_ERROR(noPacked(in));
    return elemSizeOk(in[0].dtype);
  };
  k.run = [dynamic](CudaKernelContext &c) -> Status {
    if (dynamic) {
      std::vector<Shape> v(5);
      for (size_t i = 1; i < c.inputs.size(); ++i)
        v[i] = hostInts(c.inputs[i]);
      return sliceOnDevice(
          c, v[1], v[2],
          c.inputs.size() >= 4 ? std::optional<Shape>(v[3]) : std::nullopt,
          c.inputs.size() >= 5 ? std::optional<Shape>(v[4]) : std::nullopt);
    }
    const Attrs &a = c.step.attrs;
    Shape starts, ends;
    MOE_ASSIGN_OR_RETURN(starts, a.getInts("starts"));
    MOE_ASSIGN_OR_RETURN(ends, a.getInts("ends"));
    std::optional<Shape> axes, steps;
    if (a.has("axes")) {
      MOE_ASSIGN_OR_RETURN(axes, a.getInts("axes"));
    }
    if (a.has("steps")) {
      MOE_ASSIGN_OR_RETURN(steps, a.getInts("steps"));
    }
    return sliceOnDevice(c, starts, ends, axes, steps);
  };
  return k;
}

// --- mixture of experts ---------------------------------------------------

CudaKernel routeKernel() {
  CudaKernel k;
  k.name = "moe.route";
  k.supports = [](const StepInfo &, const Types &in) { return allF32(in); };
  // Expert pruning (static, token-level or batch-level) routes on the host
  // with the CPU kernel: its [T, E] logits come down, its ids and weights
  // go up. The batch-level policies need the whole batch at once anyway.
  k.onHost = [](const StepInfo &step) {
    for (const char *a : {"skip_threshold", "max_experts", "batch_mass"}) {
      const AttrValue *v = step.attrs.find(a);
      if (v && (v->i != 0 || v->f != 0))
        return true;
    }
    const AttrValue *ex = step.attrs.find("excluded");
    return ex && std::any_of(ex->ints.begin(), ex->ints.end(),
                             [](int64_t x) { return x != 0; });
  };
  k.run = [](CudaKernelContext &c) -> Status {
    const Tensor &logits = c.inputs[0];
    int64_t k2, normalize;
    MOE_ASSIGN_OR_RETURN(k2, c.step.attrs.getInt("k"));
    MOE_ASSIGN_OR_RETURN(normalize, c.step.attrs.getInt("normalize", 0));
    kernels::cpu::Scoring scoring;
    MOE_ASSIGN_OR_RETURN(scoring, cpu::routeScoring(c.step.attrs));
    return kcu::route(logits.data<float>(), logits.dim(0), logits.dim(1), k2,
                      scoring == kernels::cpu::Scoring::Sigmoid,
                      normalize != 0, out<int64_t>(c, 0), out<float>(c, 1),
                      c.device.stream());
  };
  return k;
}

CudaKernel dispatchKernel() {
  CudaKernel k;
  k.name = "moe.dispatch";
  k.supports = [](const StepInfo &, const Types &in) {
    return allF32(in, 0, 0);
  };
  k.run = [](CudaKernelContext &c) -> Status {
    const Tensor &hidden = c.inputs[0], &ids = c.inputs[1];
    int64_t e;
    MOE_ASSIGN_OR_RETURN(e, cpu::expertCount(c.step.attrs));
    // Decode: the experts run from the offsets on the device; nothing
    // waits, and a bad id is reported when the run ends. Beyond
    // decodeMaxTokens the offsets come to the host for the GEMMs.
    if (ids.dim(0) <= c.decodeMaxTokens &&
        kcu::decodeOnDevice(ids.numElements(), e))
      return kcu::dispatch(hidden.data<float>(), hidden.dim(0),
                           hidden.dim(1), ids.data<int64_t>(), ids.dim(1), e,
                           out<float>(c, 0), out<int64_t>(c, 1),
                           out<int64_t>(c, 2), nullptr,
                           c.device.errorFlags(), c.device.stream());
    void *pinned;
    MOE_ASSIGN_OR_RETURN(pinned,
                         c.device.pinned(uint64_t(e + 2) * sizeof(int64_t)));
    auto *hostOffsets = static_cast<int64_t *>(pinned);
    MOE_RETURN_IF_ERROR(kcu::dispatch(
        hidden.data<float>(), hidden.dim(0), hidden.dim(1),
        ids.data<int64_t>(), ids.dim(1), e, out<float>(c, 0),
        out<int64_t>(c, 1), out<int64_t>(c, 2), hostOffsets, nullptr,
        c.device.stream()));
    std::vector<int64_t> offsets(hostOffsets, hostOffsets + e + 1);
    StatusOr<Tensor> h = Tensor::fromVector(DType::I64, {e + 1}, offsets);
    if (!h.isOk())
      return h.status();
    c.hostOutputs.resize(c.outputs.size());
    c.hostOutputs[1] = std::move(*h);
    return Status::ok();
  };
  return k;
}

CudaKernel combineKernel() {
  CudaKernel k;
  k.name = "moe.combine";
  k.supports = [](const StepInfo &, const Types &in) -> Status {
    MOE_RETURN_IF_ERROR(allF32(in, 0, 0));
    return allF32(in, 2, 2);
  };
  k.run = [](CudaKernelContext &c) -> Status {
    const Tensor &y = c.inputs[0], &perm = c.inputs[1], &w = c.inputs[2];
    StatusOr<Tensor> scratch = c.device.scratch(
        uint64_t(std::max<int64_t>(w.numElements(), 1)) * sizeof(int64_t),
        "moe.combine scratch");
    if (!scratch.isOk())
      return scratch.status();
    return kcu::combine(y.data<float>(), y.dim(0), y.dim(1),
                        perm.data<int64_t>(), w.data<float>(), w.dim(0),
                        w.dim(1), out<float>(c, 0),
                        scratch->mutableData<int64_t>(), c.device.stream());
  };
  return k;
}

CudaKernel aliasKernel(const std::string &name, bool shapeInputs) {
  CudaKernel k;
  k.name = name;
  k.placement = CudaPlacement::Alias;
  if (shapeInputs)
    k.hostInput = [](size_t i) { return i >= 1; };
  k.supports = [](const StepInfo &, const Types &in) -> Status {
    if (!in.empty() && in[0].packed)
      return Status::error("input 0 is a packed (quantised) weight");
    return Status::ok();
  };
  return k;
}

const std::map<std::string, CudaKernel> &table() {
  static const std::map<std::string, CudaKernel> kernels = [] {
    std::map<std::string, CudaKernel> m;
    auto add = [&](CudaKernel k) { m.emplace(k.name, std::move(k)); };
    using B = kcu::BinaryOp;
    using U = kcu::UnaryOp;
    add(binaryKernel("nn.add", B::Add));
    add(binaryKernel("nn.sub", B::Sub));
    add(binaryKernel("nn.mul", B::Mul));
    add(binaryKernel("nn.div", B::Div));
    add(binaryKernel("nn.pow", B::Pow));
    add(binaryKernel("nn.max", B::Max));
    add(binaryKernel("nn.min", B::Min));
    add(unaryKernel("nn.neg", U::Neg));
    add(unaryKernel("nn.sqrt", U::Sqrt));
    add(unaryKernel("nn.reciprocal", U::Reciprocal));
    add(unaryKernel("nn.exp", U::Exp));
    add(unaryKernel("nn.log", U::Log));
    add(unaryKernel("nn.tanh", U::Tanh));
    add(unaryKernel("nn.sigmoid", U::Sigmoid));
    add(unaryKernel("nn.silu", U::Silu));
    add(unaryKernel("nn.relu", U::Relu));
    add(unaryKernel("nn.abs", U::Abs));
    add(unaryKernel("nn.sin", U::Sin));
    add(unaryKernel("nn.cos", U::Cos));
    add(unaryKernel("nn.rsqrt", U::Rsqrt));
    add(geluKernel());
    add(softmaxKernel());
    add(reduceKernel("nn.reduce_mean", true));
    add(reduceKernel("nn.reduce_sum", false));
    add(transposeKernel());
    add(castKernel());
    add(gatherKernel());
    add(concatKernel());
    add(whereKernel());
    add(expandKernel());
    add(sliceKernel(true));
    add(sliceKernel(false));
    add(matmulKernel());
    add(linearKernel());
    add(normKernel("nn.rms_norm", false));
    add(normKernel("nn.layer_norm", true));
    add(routeKernel());
    add(dispatchKernel());
    add(expertsKernel());
    add(combineKernel());
    add(aliasKernel("nn.reshape", false));
    add(aliasKernel("nn.flatten", false));
    add(aliasKernel("nn.dynamic_reshape", true));
    add(aliasKernel("nn.squeeze", true));
    add(aliasKernel("nn.unsqueeze", true));
    CudaKernel shape;
    shape.name = "nn.shape";
    shape.placement = CudaPlacement::Host;
    add(shape);
    return m;
  }();
  return kernels;
}

bool integerOnly(const LoadedPlan &plan, const StepInfo &step) {
  for (const std::vector<uint32_t> *ids : {&step.inputs, &step.outputs})
    for (uint32_t v : *ids)
      if (isFloatDType(plan.values()[v].dtype))
        return false;
  return true;
}

} // namespace

bool cudaReadsPacked(const StepInfo &step, size_t input,
                     const std::vector<kernels::cpu::QuantFormat> &formats) {
  if (step.kernelName != "moe.experts" || input < 2 || input > 4)
    return false;
  for (const kernels::cpu::QuantFormat &f : formats)
    if (f.bits != kernels::cpu::kAbsentBits &&
        !kernels::cpu::isValidQuantFormat(f))
      return false;
  return true;
}

const CudaKernel *findCudaKernel(const std::string &kernel) {
  auto it = table().find(kernel);
  return it == table().end() ? nullptr : &it->second;
}

std::vector<std::string> cudaKernelNames() {
  std::vector<std::string> names;
  for (const auto &[name, k] : table())
    names.push_back(name);
  return names;
}

StatusOr<CudaPlacement> cudaPlacement(const LoadedPlan &plan, size_t index,
                                      const std::vector<bool> &foldable) {
  const StepInfo &step = plan.steps()[index];
  if (step.kind != StepKind::Call || foldable[index])
    return CudaPlacement::Host;
  std::string where = "step " + str(int64_t(index)) + " `" + step.kernelName +
                      "`";
  // Shape and index arithmetic stays on the host, where its (tiny) values
  // are read.
  if (integerOnly(plan, step))
    return CudaPlacement::Host;
  const CudaKernel *k = findCudaKernel(step.kernelName);
  if (!k)
    return Status::error(where + ": no CUDA kernel");
  if (k->supports) {
    Types in;
    for (size_t i = 0; i < step.inputs.size(); ++i) {
      const ValueInfo &info = plan.values()[step.inputs[i]];
      TensorType t{info.dtype, info.shape, false};
      if (info.kind == ValueKind::Weight) {
        const WeightInfo &w = plan.weights()[size_t(info.weight)];
        std::vector<kernels::cpu::QuantFormat> formats;
        for (const WeightSliceInfo &slice : w.slices)
          formats.push_back(slice.format);
        t.packed = w.packed() && !cudaReadsPacked(step, i, formats);
      }
      in.push_back(t);
    }
    // An input computed at load from QMoE codes (nn.dequantize) is packed
    // in the plan's group formats, which only moe.experts reads on the
    // device (as w1, w2, w3).
    for (size_t i = 0; i < step.inputs.size(); ++i)
      for (size_t s = 0; s < index; ++s)
        if (foldable[s] && plan.steps()[s].kernelName == "nn.dequantize" &&
            std::find(plan.steps()[s].outputs.begin(),
                      plan.steps()[s].outputs.end(),
                      step.inputs[i]) != plan.steps()[s].outputs.end())
          in[i].packed = !cudaReadsPacked(step, i, {});
    Status st = k->supports(step, in);
    if (!st.isOk())
      return st.withContext(where + ": no CUDA kernel for this step");
  }
  if (k->onHost && k->onHost(step))
    return CudaPlacement::Host;
  return k->placement;
}

Status checkCudaSupport(const LoadedPlan &plan) {
  std::vector<bool> foldable = foldableSteps(plan);
  Status first = Status::ok();
  // The other steps that cannot run, by kernel, so that one message says
  // all that is missing.
  std::map<std::string, int> others;
  for (size_t i = 0; i < plan.steps().size(); ++i) {
    StatusOr<CudaPlacement> p = cudaPlacement(plan, i, foldable);
    if (p.isOk())
      continue;
    if (first.isOk())
      first = p.status();
    else
      ++others[plan.steps()[i].kernelName];
  }
  if (first.isOk() || others.empty())
    return first;
  std::string list;
  int total = 0;
  for (const auto &[name, count] : others) {
    list += (list.empty() ? "" : ", ") + name;
    if (count > 1)
      list += " x" + std::to_string(count);
    total += count;
  }
  return Status::error(first.message() + " (and " + std::to_string(total) +
                       " more step" + (total > 1 ? "s" : "") + ": " + list +
                       ")");
}

} // namespace moe::rt::cuda
