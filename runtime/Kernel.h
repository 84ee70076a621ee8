//===- Kernel.h - Kernel interface of the runtime ---------------*- C++ -*-===//
//
// A kernel is a name (the ABI of docs/plan-format.md), a shape function and
// a CPU implementation. The shape function serves twice: at load time on the
// declared types (dims -1 unknown) it is the kernel's verifier, and at run
// time on concrete shapes it computes the output shapes.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_KERNEL_H
#define MOE_RUNTIME_KERNEL_H

#include "runtime/Tensor.h"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moe::rt {

using AttrKind = moe_plan::AttrKind;

/// One attribute: a name and the payload selected by `kind`.
struct AttrValue {
  std::string name;
  AttrKind kind = AttrKind::Int;
  int64_t i = 0;
  double f = 0;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::string s;
};

/// "int", "float", "ints", "floats", "string".
std::string attrKindName(AttrKind kind);

/// The attributes of a step, with typed getters. A getter fails when the
/// attribute has another kind, or is missing and has no default. An Int is
/// accepted where a Float is asked for.
class Attrs {
public:
  Attrs() = default;
  explicit Attrs(std::vector<AttrValue> values) : values_(std::move(values)) {}

  const AttrValue *find(std::string_view name) const;
  bool has(std::string_view name) const { return find(name) != nullptr; }
  const std::vector<AttrValue> &all() const { return values_; }

  StatusOr<int64_t> getInt(std::string_view name,
                           std::optional<int64_t> def = std::nullopt) const;
  StatusOr<double> getFloat(std::string_view name,
                            std::optional<double> def = std::nullopt) const;
  StatusOr<std::vector<int64_t>>
  getInts(std::string_view name,
          std::optional<std::vector<int64_t>> def = std::nullopt) const;
  StatusOr<std::vector<double>>
  getFloats(std::string_view name,
            std::optional<std::vector<double>> def = std::nullopt) const;
  StatusOr<std::string>
  getString(std::string_view name,
            std::optional<std::string> def = std::nullopt) const;

  /// Builders, for tests and tools; they replace an attribute of that name.
  Attrs &setInt(std::string name, int64_t v);
  Attrs &setFloat(std::string name, double v);
  Attrs &setInts(std::string name, std::vector<int64_t> v);
  Attrs &setFloats(std::string name, std::vector<double> v);
  Attrs &setString(std::string name, std::string v);

private:
  Attrs &set(AttrValue v);
  std::vector<AttrValue> values_;
};

/// A dtype and a shape whose dims may be -1 (unknown); `packed` marks a
/// packed (quantised) weight of that logical type.
struct TensorType {
  DType dtype = DType::F32;
  Shape shape;
  bool packed = false;
};

/// What a kernel is given at run time: input tensors, attributes and the
/// output slots to fill.
class KernelContext {
public:
  KernelContext(std::vector<Tensor> inputs, const Attrs &attrs,
                size_t numOutputs)
      : inputs_(std::move(inputs)), attrs_(attrs), outputs_(numOutputs) {}

  size_t numInputs() const { return inputs_.size(); }
  const Tensor &input(size_t i) const { return inputs_[i]; }
  const Attrs &attrs() const { return attrs_; }
  size_t numOutputs() const { return outputs_.size(); }

  /// Allocates output i (uninitialised).
  Status allocateOutput(size_t i, DType dtype, Shape shape);
  /// Sets output i to an existing tensor (for kernels that alias storage).
  void setOutput(size_t i, Tensor t) { outputs_[i] = std::move(t); }
  Tensor &output(size_t i) { return outputs_[i]; }
  std::vector<Tensor> &outputs() { return outputs_; }

private:
  std::vector<Tensor> inputs_;
  const Attrs &attrs_;
  std::vector<Tensor> outputs_;
};

/// Output types from input types and attributes; errors describe the first
/// problem ("input 1 has dtype i64, expected f32").
using InferFn = std::function<StatusOr<std::vector<TensorType>>(
    const std::vector<TensorType> &inputs, const Attrs &attrs)>;
/// The shape function of a kernel whose output count is the one its step
/// declares (nn.split): like InferFn, also given that count (nullopt when
/// the caller does not know it).
using CountedInferFn = std::function<StatusOr<std::vector<TensorType>>(
    const std::vector<TensorType> &inputs, const Attrs &attrs,
    std::optional<size_t> numOutputs)>;
/// Runs the kernel; the outputs are allocated already with the shapes the
/// InferFn gave, unless the kernel is registered with allocatesOutputs.
///
/// Output shapes that depend on input values (a shape tensor, k, NonZero):
/// the InferFn returns the right rank with -1 for such dims, at load time
/// and at run time alike, and the kernel is registered with
/// allocatesOutputs; its RunFn reads the values, computes the shapes and
/// allocates (or aliases) its outputs. runCpu() then checks every output
/// against the InferFn's types (dtype, rank, known dims).
using RunFn = std::function<Status(KernelContext &ctx)>;

struct KernelDef {
  std::string name;
  InferFn infer;
  RunFn cpu;
  /// When set, cpu() sets its outputs itself (setOutput/allocateOutput).
  bool allocatesOutputs = false;
  /// Which inputs may be packed (quantised) weights, given the attributes;
  /// null: none. cpu() must then read those inputs through Tensor::packed().
  /// (Default initialisers keep `{name, infer, cpu, false}` warning-free.)
  std::function<bool(size_t input, const Attrs &attrs)> acceptsPacked =
      nullptr;
  /// Those inputs in words, for messages ("w1, w2 and w3").
  std::string packedInputs = {};
  /// When set, verify() and runCpu() call it instead of `infer`, with the
  /// number of outputs the step declares (kernels with a variable output
  /// count: nn.split).
  CountedInferFn inferCounted = nullptr;
};

/// What a plan declares for one Call: operand types and attributes.
struct KernelSignature {
  std::vector<TensorType> inputs;
  std::vector<TensorType> outputs;
  const Attrs *attrs = nullptr;
};

/// Kernels by name.
class KernelRegistry {
public:
  /// All built-in kernels of the ABI.
  static const KernelRegistry &builtin();

  /// Adds a kernel; fails if the name is taken.
  Status add(KernelDef def);
  const KernelDef *find(std::string_view name) const;
  std::vector<std::string> names() const;

  /// Rejects a packed input that the kernel does not declare (acceptsPacked).
  static Status checkPacked(const KernelDef &def,
                            const std::vector<TensorType> &inputs,
                            const Attrs &attrs);

  /// Checks the packed inputs (checkPacked), runs the kernel's shape function
  /// on the declared input types and checks that the declared outputs agree
  /// (count, dtype, rank, known dims).
  static Status verify(const KernelDef &def, const KernelSignature &sig);

  /// The kernel's output types for these input types: `inferCounted` (given
  /// `numOutputs`) when the kernel has one, else `infer`.
  static StatusOr<std::vector<TensorType>>
  inferOutputs(const KernelDef &def, const std::vector<TensorType> &inputs,
               const Attrs &attrs,
               std::optional<size_t> numOutputs = std::nullopt);

  /// Runs the kernel on concrete inputs: computes the output shapes, allocates
  /// the outputs (unless the kernel does), calls the CPU implementation and
  /// checks the outputs against the computed types. `numOutputs` is the
  /// count the step declares (needed by nn.split without its `split`
  /// input and without a `num_outputs` attribute).
  static StatusOr<std::vector<Tensor>>
  runCpu(const KernelDef &def, std::vector<Tensor> inputs, const Attrs &attrs,
         std::optional<size_t> numOutputs = std::nullopt);

private:
  std::map<std::string, KernelDef, std::less<>> kernels_;
};

/// True when every known dim of `actual` equals the same dim of `declared`
/// and ranks agree; -1 in either is free.
bool shapesCompatible(const Shape &declared, const Shape &actual);

} // namespace moe::rt

#endif // MOE_RUNTIME_KERNEL_H
