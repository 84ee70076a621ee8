//===- Pipelines.cpp - Registration of passes and pipelines ---------------===//

#include "passes/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void moe::buildCompilePipeline(OpPassManager &pm,
                               const CompilePipelineOptions &options) {
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addPass(createRaiseExperts());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  if (options.expertAvgBits > 0 || options.expertBudgetBytes > 0) {
    AssignPrecisionOptions assign;
    assign.budgetBits = options.expertAvgBits;
    assign.budgetBytes = options.expertBudgetBytes;
    assign.profile = options.precisionProfile;
    assign.quantScale = options.quantScale;
    pm.addPass(createAssignPrecision(assign));
  } else if (options.expertBits != 0) {
    SetExpertPrecisionOptions precision;
    precision.bits = options.expertBits;
    precision.groupSize = options.expertGroupSize;
    pm.addPass(createSetExpertPrecision(precision));
  }
  if (!options.partitionTopology.empty()) {
    PartitionOptions partition;
    partition.topology = options.partitionTopology;
    partition.layout = options.partitionLayout;
    partition.tokens = options.partitionTokens;
    partition.profile = options.partitionProfile;
    pm.addPass(createPartition(partition));
  }
  LowerToPlanOptions lower;
  lower.device = options.device;
  lower.quantScale = options.quantScale;
  lower.quantZeroPoints = options.quantZeroPoints;
  pm.addPass(createLowerToPlan(lower));
}

void moe::registerMoePassesAndPipelines() {
  registerMoePasses();
  PassPipelineRegistration<CompilePipelineOptions>(
      "moe-compile",
      "The default compilation flow: cleanup, raising of decomposed MoE "
      "layers (moe-raise-experts), then lowering to a plan "
      "(add --emit-plan FILE to write it)",
      buildCompilePipeline);
}
