//===- Kernel.cpp - Kernel interface of the runtime -----------------------===//

#include "runtime/Kernel.h"
#include "runtime/cpu/Registration.h"

#include <algorithm>

namespace moe::rt {

std::string attrKindName(AttrKind kind) {
  switch (kind) {
  case AttrKind::Int:
    return "int";
  case AttrKind::Float:
    return "float";
  case AttrKind::Ints:
    return "ints";
  case AttrKind::Floats:
    return "floats";
  case AttrKind::String:
    return "string";
  }
  return "kind(" + std::to_string(int(kind)) + ")";
}

const AttrValue *Attrs::find(std::string_view name) const {
  for (const AttrValue &v : values_)
    if (v.name == name)
      return &v;
  return nullptr;
}

namespace {
Status wrongKind(const AttrValue &v, const char *expected) {
  return Status::error("attribute `" + v.name + "` is " +
                       attrKindName(v.kind) + ", expected " + expected);
}
Status missing(std::string_view name) {
  return Status::error("missing attribute `" + std::string(name) + "`");
}
} // namespace

StatusOr<int64_t> Attrs::getInt(std::string_view name,
                                std::optional<int64_t> def) const {
  const AttrValue *v = find(name);
  if (!v)
    return def ? StatusOr<int64_t>(*def) : StatusOr<int64_t>(missing(name));
  if (v->kind != AttrKind::Int)
    return wrongKind(*v, "int");
  return v->i;
}

StatusOr<double> Attrs::getFloat(std::string_view name,
                                 std::optional<double> def) const {
  const AttrValue *v = find(name);
  if (!v)
    return def ? StatusOr<double>(*def) : StatusOr<double>(missing(name));
  if (v->kind == AttrKind::Int)
    return double(v->i);
  if (v->kind != AttrKind::Float)
    return wrongKind(*v, "float");
  return v->f;
}

StatusOr<std::vector<int64_t>>
Attrs::getInts(std::string_view name,
               std::optional<std::vector<int64_t>> def) const {
  using R = StatusOr<std::vector<int64_t>>;
  const AttrValue *v = find(name);
  if (!v)
    return def ? R(*def) : R(missing(name));
  if (v->kind != AttrKind::Ints)
    return wrongKind(*v, "ints");
  return v->ints;
}

StatusOr<std::vector<double>>
Attrs::getFloats(std::string_view name,
                 std::optional<std::vector<double>> def) const {
  using R = StatusOr<std::vector<double>>;
  const AttrValue *v = find(name);
  if (!v)
    return def ? R(*def) : R(missing(name));
  if (v->kind != AttrKind::Floats)
    return wrongKind(*v, "floats");
  return v->floats;
}

StatusOr<std::string>
Attrs::getString(std::string_view name, std::optional<std::string> def) const {
  using R = StatusOr<std::string>;
  const AttrValue *v = find(name);
  if (!v)
    return def ? R(*def) : R(missing(name));
  if (v->kind != AttrKind::String)
    return wrongKind(*v, "string");
  return v->s;
}

Attrs &Attrs::set(AttrValue v) {
  for (AttrValue &old : values_)
    if (old.name == v.name) {
      old = std::move(v);
      return *this;
    }
  values_.push_back(std::move(v));
  return *this;
}

Attrs &Attrs::setInt(std::string name, int64_t x) {
  AttrValue v;
  v.name = std::move(name);
  v.kind = AttrKind::Int;
  v.i = x;
  return set(std::move(v));
}

Attrs &Attrs::setFloat(std::string name, double x) {
  AttrValue v;
  v.name = std::move(name);
  v.kind = AttrKind::Float;
  v.f = x;
  return set(std::move(v));
}

Attrs &Attrs::setInts(std::string name, std::vector<int64_t> x) {
  AttrValue v;
  v.name = std::move(name);
  v.kind = AttrKind::Ints;
  v.ints = std::move(x);
  return set(std::move(v));
}

Attrs &Attrs::setFloats(std::string name, std::vector<double> x) {
  AttrValue v;
  v.name = std::move(name);
  v.kind = AttrKind::Floats;
  v.floats = std::move(x);
  return set(std::move(v));
}

Attrs &Attrs::setString(std::string name, std::string x) {
  AttrValue v;
  v.name = std::move(name);
  v.kind = AttrKind::String;
  v.s = std::move(x);
  return set(std::move(v));
}

Status KernelContext::allocateOutput(size_t i, DType dtype, Shape shape) {
  if (i >= outputs_.size())
    return Status::error("output " + std::to_string(i) + " does not exist");
  StatusOr<Tensor> t = Tensor::allocate(dtype, std::move(shape));
  if (!t.isOk())
    return t.status();
  outputs_[i] = std::move(*t);
  return Status::ok();
}

bool shapesCompatible(const Shape &declared, const Shape &actual) {
  if (declared.size() != actual.size())
    return false;
  for (size_t i = 0; i < declared.size(); ++i)
    if (declared[i] >= 0 && actual[i] >= 0 && declared[i] != actual[i])
      return false;
  return true;
}

const KernelRegistry &KernelRegistry::builtin() {
  static const KernelRegistry registry = [] {
    KernelRegistry r;
    cpu::registerDenseKernels(r);
    cpu::registerElementwiseKernels(r);
    cpu::registerIndexKernels(r);
    cpu::registerLayoutKernels(r);
    cpu::registerMoeKernels(r);
    return r;
  }();
  return registry;
}

Status KernelRegistry::add(KernelDef def) {
  if (kernels_.count(def.name))
    return Status::error("kernel `" + def.name + "` is registered twice");
  std::string name = def.name;
  kernels_.emplace(std::move(name), std::move(def));
  return Status::ok();
}

const KernelDef *KernelRegistry::find(std::string_view name) const {
  auto it = kernels_.find(name);
  return it == kernels_.end() ? nullptr : &it->second;
}

std::vector<std::string> KernelRegistry::names() const {
  std::vector<std::string> out;
  for (const auto &kv : kernels_)
    out.push_back(kv.first);
  return out;
}

Status KernelRegistry::checkPacked(const KernelDef &def,
                                   const std::vector<TensorType> &inputs,
                                   const Attrs &attrs) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].packed || (def.acceptsPacked && def.acceptsPacked(i, attrs)))
      continue;
    std::string what = "input " + std::to_string(i) +
                       " is a packed (quantised) weight; `" + def.name + "` ";
    if (!def.acceptsPacked)
      return Status::error(what + "takes plain tensors");
    return Status::error(what + "takes packed weights only as " +
                         def.packedInputs);
  }
  return Status::ok();
}

Status KernelRegistry::verify(const KernelDef &def,
                              const KernelSignature &sig) {
  static const Attrs kNoAttrs;
  MOE_RETURN_IF_ERROR(
      checkPacked(def, sig.inputs, sig.attrs ? *sig.attrs : kNoAttrs));
  StatusOr<std::vector<TensorType>> inferred =
      inferOutputs(def, sig.inputs, sig.attrs ? *sig.attrs : kNoAttrs,
                   sig.outputs.size());
  if (!inferred.isOk())
    return inferred.status();
  if (inferred->size() != sig.outputs.size())
    return Status::error("has " + std::to_string(sig.outputs.size()) +
                         " outputs, expected " +
                         std::to_string(inferred->size()));
  for (size_t i = 0; i < sig.outputs.size(); ++i) {
    const TensorType &want = (*inferred)[i], &got = sig.outputs[i];
    if (want.dtype != got.dtype)
      return Status::error("output " + std::to_string(i) + " has dtype " +
                           dtypeName(got.dtype) + ", expected " +
                           dtypeName(want.dtype));
    if (!shapesCompatible(got.shape, want.shape))
      return Status::error("output " + std::to_string(i) + " has shape " +
                           formatShape(got.shape) + ", expected " +
                           formatShape(want.shape));
  }
  return Status::ok();
}

StatusOr<std::vector<TensorType>>
KernelRegistry::inferOutputs(const KernelDef &def,
                             const std::vector<TensorType> &inputs,
                             const Attrs &attrs,
                             std::optional<size_t> numOutputs) {
  if (def.inferCounted)
    return def.inferCounted(inputs, attrs, numOutputs);
  return def.infer(inputs, attrs);
}

StatusOr<std::vector<Tensor>>
KernelRegistry::runCpu(const KernelDef &def, std::vector<Tensor> inputs,
                       const Attrs &attrs, std::optional<size_t> numOutputs) {
  std::vector<TensorType> types;
  for (const Tensor &t : inputs)
    types.push_back({t.dtype(), t.shape(), t.packed() != nullptr});
  MOE_RETURN_IF_ERROR(checkPacked(def, types, attrs));
  StatusOr<std::vector<TensorType>> outTypes =
      inferOutputs(def, types, attrs, numOutputs);
  if (!outTypes.isOk())
    return outTypes.status();
  KernelContext ctx(std::move(inputs), attrs, outTypes->size());
  if (!def.allocatesOutputs)
    for (size_t i = 0; i < outTypes->size(); ++i) {
      const Shape &shape = (*outTypes)[i].shape;
      if (std::find(shape.begin(), shape.end(), -1) != shape.end())
        return Status::error("the shape of output " + std::to_string(i) +
                             " is unknown (" + formatShape(shape) + ")");
      MOE_RETURN_IF_ERROR(
          ctx.allocateOutput(i, (*outTypes)[i].dtype, (*outTypes)[i].shape));
    }
  MOE_RETURN_IF_ERROR(def.cpu(ctx));
  // Kernels that allocate their outputs computed the value-dependent dims:
  // the result must still be what the shape function promised.
  for (size_t i = 0; i < ctx.numOutputs(); ++i) {
    const Tensor &t = ctx.output(i);
    const TensorType &want = (*outTypes)[i];
    if (!t.defined())
      return Status::error("kernel did not produce output " +
                           std::to_string(i));
    if (t.dtype() != want.dtype)
      return Status::error("kernel produced output " + std::to_string(i) +
                           " of dtype " + dtypeName(t.dtype()) +
                           ", expected " + dtypeName(want.dtype));
    if (!shapesCompatible(want.shape, t.shape()))
      return Status::error("kernel produced output " + std::to_string(i) +
                           " of shape " + formatShape(t.shape()) +
                           ", expected " + formatShape(want.shape));
  }
  return std::move(ctx.outputs());
}

} // namespace moe::rt
