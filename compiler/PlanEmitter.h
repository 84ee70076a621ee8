//===- PlanEmitter.h - IR in plan form to a plan file -----------*- C++ -*-===//
#ifndef MOE_COMPILER_PLANEMITTER_H
#define MOE_COMPILER_PLANEMITTER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

#include <memory>
#include <string>

namespace moe::compiler {

struct EmitPlanOptions {
  /// The plan file to write (atomically: nothing is left on failure).
  std::string path;
  /// Directory against which relative weight file paths are resolved.
  std::string baseDir = ".";
  /// Written into the plan's `producer` field.
  std::string producer = "moe-opt";
  /// The input the plan was compiled from, recorded in its metadata.
  std::string source;
  /// Load the written plan with the runtime's verifier before keeping it.
  bool verify = true;
  /// Write quantised expert weights as plain f32 holding their dequantised
  /// values (quantise, then dequantise): the reference a packed plan must
  /// reproduce, and a way to study quantisation error without the kernels.
  bool dequantize = false;
};

/// Serialises the entry function (`main`, or the only function) of a module
/// in plan form into a plan file. Diagnostics go to the module's context.
mlir::LogicalResult emitPlan(mlir::ModuleOp module,
                             const EmitPlanOptions &options);

/// A module pass that lowers to the plan dialect if the module is not in plan
/// form yet, then emits the plan; used by `moe-opt --emit-plan FILE`.
std::unique_ptr<mlir::Pass> createEmitPlanPass(EmitPlanOptions options);

} // namespace moe::compiler

#endif // MOE_COMPILER_PLANEMITTER_H
