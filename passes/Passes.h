//===- Passes.h - Passes of the MoE compiler --------------------*- C++ -*-===//
#ifndef MOE_PASSES_PASSES_H
#define MOE_PASSES_PASSES_H

#include "dialects/moe/MoeDialect.h"
#include "dialects/nn/NNDialect.h"
#include "dialects/plan/PlanDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

#include <memory>
#include <optional>
#include <string>

namespace mlir::moe {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

/// Why the expert weights of `op` cannot be cut into `parts` slices of F
/// (tensor-parallel and hybrid layouts; moe-lower-to-plan cuts them), or
/// nullopt when they can: F must divide, each quantised expert's w2 slice
/// must hold whole groups, and w1, w2, w3, b1 and b3 must be nn.weight ops
/// that only `op` uses.
std::optional<std::string> tensorParallelObstacle(ExpertsOp op, int64_t parts);

/// Options of the default compilation pipeline (`--moe-compile`).
struct CompilePipelineOptions
    : public PassPipelineOptions<CompilePipelineOptions> {
  Option<std::string> device{*this, "device",
                             llvm::cl::desc("device of every step: cpu or "
                                            "cuda"),
                             llvm::cl::init("cpu")};
  Option<int64_t> expertBits{
      *this, "expert-bits",
      llvm::cl::desc("store every expert's weights with this many bits (8, 4, "
                     "3, 2; 0 keeps each expert's own precision)"),
      llvm::cl::init(0)};
  Option<int64_t> expertGroupSize{
      *this, "expert-group-size",
      llvm::cl::desc("quantisation group size with expert-bits: 32, 64, 128"),
      llvm::cl::init(128)};
  Option<double> expertAvgBits{
      *this, "expert-avg-bits",
      llvm::cl::desc("give each expert its own format (moe-assign-precision) "
                     "so that expert weights average this many bits"),
      llvm::cl::init(0.0)};
  Option<int64_t> expertBudgetBytes{
      *this, "expert-budget-bytes",
      llvm::cl::desc("like expert-avg-bits, with the budget in bytes of "
                     "expert weights"),
      llvm::cl::init(0)};
  Option<std::string> precisionProfile{
      *this, "precision-profile",
      llvm::cl::desc("routing profile (moe-exec --profile) for "
                     "expert-avg-bits"),
      llvm::cl::init("")};
  Option<std::string> quantScale{
      *this, "quant-scale",
      llvm::cl::desc("scale dtype of quantised expert weights: f16 or f32"),
      llvm::cl::init("f16")};
  Option<bool> quantZeroPoints{
      *this, "quant-zero-points",
      llvm::cl::desc("store 8-bit zero points with quantised expert weights"),
      llvm::cl::init(false)};
  Option<std::string> partitionTopology{
      *this, "partition-topology",
      llvm::cl::desc("partition the experts over the ranks of this topology "
                     "(moe-partition; run with mpirun -np RANKS)"),
      llvm::cl::init("")};
  Option<std::string> partitionLayout{
      *this, "partition-layout",
      llvm::cl::desc("with partition-topology: auto, ep, tp or hybrid"),
      llvm::cl::init("auto")};
  Option<int64_t> partitionTokens{
      *this, "partition-tokens",
      llvm::cl::desc("with partition-topology: tokens per rank and step"),
      llvm::cl::init(1024)};
  Option<std::string> partitionProfile{
      *this, "partition-profile",
      llvm::cl::desc("with partition-topology: routing profile for the "
                     "experts' loads"),
      llvm::cl::init("")};
};

/// Builds the default flow: cleanup, then lowering to the plan dialect.
void buildCompilePipeline(OpPassManager &pm,
                          const CompilePipelineOptions &options);

/// Registers every pass and the `moe-compile` pipeline.
void registerMoePassesAndPipelines();

} // namespace mlir::moe

#endif // MOE_PASSES_PASSES_H
