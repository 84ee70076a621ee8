//===- Registration.h - Dialects and passes of the compiler -----*- C++ -*-===//
#ifndef MOE_COMPILER_REGISTRATION_H
#define MOE_COMPILER_REGISTRATION_H

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace moe::compiler {

/// Inserts our dialects (nn, moe, plan) and the upstream ones we use.
void registerDialects(mlir::DialectRegistry &registry);

/// Registers our passes, pipelines and the upstream passes moe-opt offers.
void registerPasses();

} // namespace moe::compiler

#endif // MOE_COMPILER_REGISTRATION_H
