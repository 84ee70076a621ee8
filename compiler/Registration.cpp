//===- Registration.cpp - Dialects and passes of the compiler -------------===//

#include "compiler/Registration.h"

#include "dialects/moe/MoeDialect.h"
#include "dialects/nn/NNDialect.h"
#include "dialects/plan/PlanDialect.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Transforms/Passes.h"

void moe::compiler::registerDialects(mlir::DialectRegistry &registry) {
  registry.insert<mlir::nn::NNDialect, mlir::moe::MoeDialect,
                  mlir::plan::PlanDialect, mlir::func::FuncDialect,
                  mlir::arith::ArithDialect, mlir::tensor::TensorDialect,
                  mlir::memref::MemRefDialect>();
}

void moe::compiler::registerPasses() {
  mlir::registerTransformsPasses();
  mlir::moe::registerMoePassesAndPipelines();
}
