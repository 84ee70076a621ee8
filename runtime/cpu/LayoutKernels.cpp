//===- LayoutKernels.cpp - Reshape, transpose, gather, concat, slice, cast ===//

#include "runtime/cpu/KernelUtil.h"
#include "runtime/cpu/Registration.h"

#include <algorithm>

namespace moe::rt::cpu {
namespace kc = kernels::cpu;

namespace {

StatusOr<Shape> reshapeTarget(const Shape &in, const Attrs &attrs) {
  Shape shape;
  MOE_ASSIGN_OR_RETURN(shape, attrs.getInts("shape"));
  int inferred = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (inferred >= 0)
        return Status::error("attribute `shape` has more than one -1");
      inferred = int(i);
    } else if (shape[i] < 0) {
      return Status::error("attribute `shape` has dim " + str(shape[i]));
    } else if (__builtin_mul_overflow(known, shape[i], &known)) {
      return Status::error("attribute `shape` " + formatShape(shape) +
                           " is too large");
    }
  }
  int64_t count = productOrUnknown(in, 0, in.size());
  if (count < 0)
    return shape; // input dims unknown: the -1 stays unknown
  if (inferred >= 0) {
    if (known == 0 || count % known != 0)
      return Status::error("cannot reshape " + formatShape(in) + " to " +
                           formatShape(shape));
    shape[size_t(inferred)] = count / known;
  } else if (known != count) {
    return Status::error("cannot reshape " + formatShape(in) + " (" +
                         str(count) + " elements) to " + formatShape(shape));
  }
  return shape;
}

StatusOr<Types> inferReshape(const Types &in, const Attrs &attrs) {
  MOE_RETURN_IF_ERROR(checkArity(in, 1, 1));
  Shape out;
  MOE_ASSIGN_OR_RETURN(out, reshapeTarget(in[0].shape, attrs));
  return single(in[0].dtype, out);
}

Status runReshape(KernelContext &ctx) {
  Shape shape;
  MOE_ASSIGN_OR_RETURN(shape, reshapeTarget(ctx.input(0).shape(), ctx.attrs()));
  // Tensors are immutable once produced: the output shares the storage.
  Tensor t;
  MOE_ASSIGN_OR_RETURN(t, ctx.input(0).reshaped(shape));
  ctx.setOutput(0, std::move(t));
  return Status::ok();
}

StatusOr<Shape> permutation(const Attrs &attrs, size_t rank) {
  Shape reverse(rank);
  for (size_t i = 0; i < rank; ++i)
    reverse[i] = int64_t(rank - 1 - i);
  Shape perm;
  MOE_ASSIGN_OR_RETURN(perm, attrs.getInts("perm", reverse));
  if (perm.size() != rank)
    return Status::error("attribute `perm` has " + str(int64_t(perm.size())) +
                         " entries for rank " + str(int64_t(rank)));
  std::vector<bool> seen(rank, false);
  for (int64_t &p : perm) {
    MOE_ASSIGN_OR_RETURN(p, normalizeAxis(p, rank, "`perm` entry"));
    if (seen[size_t(p)])
      return Status::error("attribute `perm` is not a permutation");
    seen[size_t(p)] = true;
  }
  return perm;
}

StatusOr<Types> inferTranspose(const Types &in, const Attrs &attrs) {
  MOE_RETURN_IF_ERROR(checkArity(in, 1, 1));
  Shape perm;
  MOE_ASSIGN_OR_RETURN(perm, permutation(attrs, in[0].shape.size()));
  Shape out;
  for (int64_t p : perm)
    out.push_back(in[0].shape[size_t(p)]);
  return single(in[0].dtype, out);
}

Status runTranspose(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  Shape perm;
  MOE_ASSIGN_OR_RETURN(perm, permutation(ctx.attrs(), x.rank()));
  kc::transpose(x.data(), x.shape(), perm, dtypeSize(x.dtype()),
                ctx.output(0).mutableData());
  return Status::ok();
}

StatusOr<Types> inferGather(const Types &in, const Attrs &attrs) {
  MOE_RETURN_IF_ERROR(checkArity(in, 2, 2));
  if (in[1].dtype != DType::I64 && in[1].dtype != DType::I32)
    return Status::error("input 1 has dtype " + dtypeName(in[1].dtype) +
                         ", expected i64 or i32");
  MOE_RETURN_IF_ERROR(checkMinRank(in, 0, 1));
  int64_t axis;
  MOE_ASSIGN_OR_RETURN(axis, attrs.getInt("axis", 0));
  MOE_ASSIGN_OR_RETURN(axis, normalizeAxis(axis, in[0].shape.size(),
                                           "attribute `axis`"));
  const Shape &d = in[0].shape;
  Shape out(d.begin(), d.begin() + axis);
  out.insert(out.end(), in[1].shape.begin(), in[1].shape.end());
  out.insert(out.end(), d.begin() + axis + 1, d.end());
  return single(in[0].dtype, out);
}

Status runGather(KernelContext &ctx) {
  const Tensor &data = ctx.input(0), &idx = ctx.input(1);
  int64_t axis;
  MOE_ASSIGN_OR_RETURN(axis, ctx.attrs().getInt("axis", 0));
  MOE_ASSIGN_OR_RETURN(axis, normalizeAxis(axis, data.rank(), "axis"));
  bool i64 = idx.dtype() == DType::I64;
  return kc::gather(data.data(), productOrUnknown(data.shape(), 0, size_t(axis)),
                    data.dim(size_t(axis)),
                    productOrUnknown(data.shape(), size_t(axis) + 1, data.rank()),
                    i64 ? idx.data<int64_t>() : nullptr,
                    i64 ? nullptr : idx.data<int32_t>(), idx.numElements(),
                    dtypeSize(data.dtype()), ctx.output(0).mutableData());
}

StatusOr<Types> inferConcat(const Types &in, const Attrs &attrs) {
  MOE_RETURN_IF_ERROR(checkArity(in, 1, size_t(1) << 20));
  MOE_RETURN_IF_ERROR(checkMinRank(in, 0, 1));
  size_t rank = in[0].shape.size();
  int64_t axis;
  MOE_ASSIGN_OR_RETURN(axis, attrs.getInt("axis"));
  MOE_ASSIGN_OR_RETURN(axis, normalizeAxis(axis, rank, "attribute `axis`"));
  Shape out = in[0].shape;
  for (size_t i = 1; i < in.size(); ++i) {
    MOE_RETURN_IF_ERROR(checkDType(in, i, in[0].dtype));
    MOE_RETURN_IF_ERROR(checkRank(in, i, rank));
    for (size_t d = 0; d < rank; ++d) {
      int64_t di = in[i].shape[d];
      if (int64_t(d) == axis) {
        if (out[d] >= 0 && di >= 0 &&
            __builtin_add_overflow(out[d], di, &out[d]))
          return Status::error("concatenated dim " + str(axis) +
                               " is too large");
        if (di < 0)
          out[d] = -1;
        continue;
      }
      MOE_RETURN_IF_ERROR(checkDim(in, i, d, out[d], "other inputs"));
      out[d] = mergeDims(out[d], di);
    }
  }
  return single(in[0].dtype, out);
}

Status runConcat(KernelContext &ctx) {
  const Tensor &x0 = ctx.input(0);
  int64_t axis;
  MOE_ASSIGN_OR_RETURN(axis, ctx.attrs().getInt("axis"));
  MOE_ASSIGN_OR_RETURN(axis, normalizeAxis(axis, x0.rank(), "axis"));
  std::vector<const void *> ptrs;
  std::vector<int64_t> lens;
  for (size_t i = 0; i < ctx.numInputs(); ++i) {
    ptrs.push_back(ctx.input(i).data());
    lens.push_back(ctx.input(i).dim(size_t(axis)));
  }
  kc::concat(ptrs, lens, productOrUnknown(x0.shape(), 0, size_t(axis)),
             productOrUnknown(x0.shape(), size_t(axis) + 1, x0.rank()),
             dtypeSize(x0.dtype()), ctx.output(0).mutableData());
  return Status::ok();
}

/// The ONNX Slice of `shape`: the first index, the step and the count of
/// every dim (count -1 where the dim is unknown and sliced).
struct SlicePlan {
  Shape first, step, count;
};

StatusOr<SlicePlan> planSlice(const Shape &shape, const Attrs &attrs) {
  size_t rank = shape.size();
  Shape starts, ends, axes, steps;
  MOE_ASSIGN_OR_RETURN(starts, attrs.getInts("starts"));
  MOE_ASSIGN_OR_RETURN(ends, attrs.getInts("ends"));
  Shape defaultAxes;
  for (size_t i = 0; i < starts.size(); ++i)
    defaultAxes.push_back(int64_t(i));
  MOE_ASSIGN_OR_RETURN(axes, attrs.getInts("axes", defaultAxes));
  MOE_ASSIGN_OR_RETURN(steps, attrs.getInts("steps", Shape(starts.size(), 1)));
  if (ends.size() != starts.size() || axes.size() != starts.size() ||
      steps.size() != starts.size())
    return Status::error("attributes `starts`, `ends`, `axes`, `steps` have "
                         "different lengths");
  SlicePlan plan{Shape(rank, 0), Shape(rank, 1), shape};
  std::vector<bool> seen(rank, false);
  for (size_t i = 0; i < starts.size(); ++i) {
    int64_t axis;
    MOE_ASSIGN_OR_RETURN(axis, normalizeAxis(axes[i], rank, "slice axis"));
    if (seen[size_t(axis)])
      return Status::error("attribute `axes` repeats axis " + str(axes[i]));
    seen[size_t(axis)] = true;
    if (steps[i] == 0)
      return Status::error("attribute `steps` has a 0");
    size_t a = size_t(axis);
    plan.step[a] = steps[i];
    if (shape[a] < 0) {
      plan.count[a] = -1;
      continue;
    }
    MOE_RETURN_IF_ERROR(kc::resolveSliceAxis(shape[a], starts[i], ends[i],
                                             steps[i], plan.first[a],
                                             plan.count[a]));
  }
  return plan;
}

StatusOr<Types> inferSlice(const Types &in, const Attrs &attrs) {
  MOE_RETURN_IF_ERROR(checkArity(in, 1, 1));
  SlicePlan plan;
  MOE_ASSIGN_OR_RETURN(plan, planSlice(in[0].shape, attrs));
  return single(in[0].dtype, plan.count);
}

Status runSlice(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  SlicePlan plan;
  MOE_ASSIGN_OR_RETURN(plan, planSlice(x.shape(), ctx.attrs()));
  kc::slice(x.data(), x.shape(), plan.first, plan.step, plan.count,
            dtypeSize(x.dtype()), ctx.output(0).mutableData());
  return Status::ok();
}

StatusOr<DType> castTarget(const Attrs &attrs) {
  int64_t to;
  MOE_ASSIGN_OR_RETURN(to, attrs.getInt("to"));
  if (to < 0 || to > 127 || !isKnownDType(DType(int8_t(to))))
    return Status::error("attribute `to` = " + str(to) +
                         " is not a dtype");
  return DType(int8_t(to));
}

StatusOr<Types> inferCast(const Types &in, const Attrs &attrs) {
  MOE_RETURN_IF_ERROR(checkArity(in, 1, 1));
  DType to;
  MOE_ASSIGN_OR_RETURN(to, castTarget(attrs));
  return single(to, in[0].shape);
}

Status runCast(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  Tensor &y = ctx.output(0);
  return kc::cast(x.data(), scalarType(x.dtype()), y.mutableData(),
                  scalarType(y.dtype()), x.numElements());
}

void add(KernelRegistry &r, std::string name, InferFn infer, RunFn run,
         bool aliasing = false) {
  Status st =
      r.add({std::move(name), std::move(infer), std::move(run), aliasing});
  (void)st;
}

} // namespace

void registerLayoutKernels(KernelRegistry &r) {
  add(r, "nn.reshape", inferReshape, runReshape, /*aliasing=*/true);
  add(r, "nn.transpose", inferTranspose, runTranspose);
  add(r, "nn.gather", inferGather, runGather);
  add(r, "nn.concat", inferConcat, runConcat);
  add(r, "nn.slice", inferSlice, runSlice);
  add(r, "nn.cast", inferCast, runCast);
}

} // namespace moe::rt::cpu
