//===- Evaluate.h - Running tensor-level IR with the runtime kernels -*- C++ -*-===//
//
// An interpreter for functions of nn/moe/arith ops on tensors. Each op runs
// the runtime kernel the lowering would call (same name, same parameters as
// buildKernelParams), so what it computes is what a plan computes. Used by
// `moe-raise-experts` to check a rewrite numerically before committing it.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_PASSES_EVALUATE_H
#define MOE_PASSES_EVALUATE_H

#include "runtime/Kernel.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Operation.h"
#include "mlir/IR/Value.h"
#include "llvm/ADT/DenseMap.h"

#include <string>

namespace mlir::moe {

/// The kernel parameters the lowering gives `op` (moe-lower-to-plan).
FailureOr<DictionaryAttr> buildKernelParams(Operation *op);

/// Runtime attributes from a parameter dictionary.
::moe::rt::Attrs toRuntimeAttrs(DictionaryAttr params);

/// The runtime dtype of an element type, if the runtime has it.
std::optional<::moe::rt::DType> runtimeDType(Type elementType);

/// The element type of a runtime dtype.
Type elementTypeOf(MLIRContext *ctx, ::moe::rt::DType dtype);

/// A tensor holding the elements of a dense attribute.
FailureOr<::moe::rt::Tensor> tensorFromAttr(DenseElementsAttr attr);

/// The documented generator of `nn.weight {seed, scale}` (NNOps.td): fills
/// `count` elements of plan dtype `dtype` (f32, f16, bf16 or f64) at `dst`.
void generateSeededWeights(int64_t seed, double scale, int64_t dtype,
                           uint64_t count, uint8_t *dst);

/// The tensor-parallel cut of a weight (plan.weight `shards` = [dim, halves,
/// parts]): `src` of `shape` ([E, ...]; `elemBytes` bytes an element) to
/// `dst` as [parts·E, ...] with dimension `dim` divided by parts, index
/// r·E + e holding part r of index e (dimension `dim` viewed as [halves,
/// parts, rest], part r is [:, r, :]). dim 0 makes `parts` copies of the
/// whole weight instead (a per-row scale, the same for every part of its
/// row). `dst` holds as many bytes as `src`, or parts times as many for
/// copies.
void cutIntoSlices(const uint8_t *src, uint8_t *dst, ArrayRef<int64_t> shape,
                   int64_t elemBytes, int64_t dim, int64_t halves,
                   int64_t parts);

class Evaluator {
public:
  /// Relative `nn.weight` files are resolved against `baseDir`.
  explicit Evaluator(std::string baseDir) : baseDir_(std::move(baseDir)) {}

  /// Uses `t` for `v` instead of computing it.
  void bind(Value v, ::moe::rt::Tensor t) { values_[v] = std::move(t); }

  /// Computes `v` from its definition (recursively); fails with `error()`
  /// set when it reaches an unbound block argument, an op without a kernel,
  /// a kernel error, or more weight bytes than the budget.
  FailureOr<::moe::rt::Tensor> eval(Value v);

  /// Forgets every computed value except weights and constants.
  void reset();
  /// Forgets everything, weights included, and restarts the weight budget.
  void clear() {
    values_.clear();
    constants_.clear();
    weightBytes_ = 0;
  }

  const std::string &error() const { return error_; }
  void setWeightBudget(uint64_t bytes) { budget_ = bytes; }

private:
  LogicalResult evalOp(Operation *op);
  LogicalResult fail(const std::string &message) {
    error_ = message;
    return failure();
  }

  std::string baseDir_;
  llvm::DenseMap<Value, ::moe::rt::Tensor> values_;
  llvm::DenseMap<Value, ::moe::rt::Tensor> constants_;
  std::string error_;
  uint64_t budget_ = uint64_t(4) << 30;
  uint64_t weightBytes_ = 0;
};

} // namespace mlir::moe

#endif // MOE_PASSES_EVALUATE_H
