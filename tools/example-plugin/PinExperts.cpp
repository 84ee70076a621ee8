//===- PinExperts.cpp - Example pass plugin: pin experts to a placement ---===//
//
// A pass that users load into moe-opt with --load-pass-plugin. It sets the
// placement of the listed experts of every `moe.experts` op, keeping the
// other properties of each expert; or, given `gpu-budget` (bytes), it is a
// toy placement policy: experts go to the GPU in layer and index order while
// their bytes (from the ExpertInventory analysis) fit, the rest to the CPU,
// pruned experts nowhere; with `device-profile` it also reports what our
// cost model (passes/Analysis/CostModel.h) predicts for each layer, every
// expert picked alike at batch 1. It shows the shape of a plugin: a pass written
// against our installed headers, using our analyses, registered by the
// plugin entry point, linked against nothing (moe-opt exports the symbols).
//
//   moe-opt model.mlir --load-pass-plugin=libMoePinExpertsPlugin.so \
//       --pass-pipeline='builtin.module(moe-pin-experts{experts=0,3
//       placement=gpu})'
//   moe-opt model.mlir --load-pass-plugin=libMoePinExpertsPlugin.so \
//       --pass-pipeline='builtin.module(moe-pin-experts{gpu-budget=1000000})'
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoeDialect.h"
#include "passes/Analysis/CostModel.h"
#include "passes/Analysis/ExpertInventory.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Tools/Plugins/PassPlugin.h"
#include "llvm/Config/llvm-config.h"

#include <cstdio>

using namespace mlir;

namespace {

struct PinExpertsPass
    : public PassWrapper<PinExpertsPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(PinExpertsPass)

  PinExpertsPass() = default;
  PinExpertsPass(const PinExpertsPass &other) : PassWrapper(other) {}

  StringRef getArgument() const final { return "moe-pin-experts"; }
  StringRef getDescription() const final {
    return "pin the listed experts of every moe.experts op to a placement "
           "(example plugin)";
  }
  void getDependentDialects(DialectRegistry &registry) const final {
    registry.insert<mlir::moe::MoeDialect>();
  }

  /// The toy policy: GPU while the budget lasts, then CPU.
  void placeUnderBudget() {
    auto &inventory = getAnalysis<mlir::moe::ExpertInventory>();
    int64_t left = gpuBudget;
    for (const mlir::moe::ExpertLayer &layer : inventory.layers()) {
      mlir::moe::ExpertsOp op = layer.op;
      SmallVector<Attribute> attrs;
      for (int64_t e = 0; e < layer.numExperts; ++e) {
        mlir::moe::ExpertAttr old = op.getExpert(e);
        mlir::moe::Placement where = mlir::moe::Placement::cpu;
        if (old.getPruned()) {
          where = mlir::moe::Placement::unassigned;
        } else if (layer.expertBytes[e] <= left) {
          where = mlir::moe::Placement::gpu;
          left -= layer.expertBytes[e];
        }
        attrs.push_back(mlir::moe::ExpertAttr::get(op.getContext(), where,
                                             old.getBits(), old.getGroupSize(),
                                             old.getPruned(),
                                             old.getZeroPoints()));
      }
      op.setExpertsAttr(ArrayAttr::get(op.getContext(), attrs));
      if (!deviceProfile.empty() && failed(reportPrediction(layer)))
        return signalPassFailure();
    }
    markAllAnalysesPreserved(); // Placement does not change any byte count.
  }

  /// The cost model's expected step time of a layer as placed, every expert
  /// taking an equal share of the picks at batch 1 (top-1).
  LogicalResult reportPrediction(const mlir::moe::ExpertLayer &layer) {
    llvm::Expected<::moe::cost::DeviceProfile> device =
        ::moe::cost::readDeviceProfile(deviceProfile);
    if (!device)
      return getOperation().emitError("moe-pin-experts: ")
             << llvm::toString(device.takeError());
    mlir::moe::ExpertsOp op = layer.op;
    std::vector<::moe::cost::ExpertShape> shapes;
    std::vector<::moe::cost::ExpertLoad> loads;
    std::vector<::moe::cost::Where> where;
    for (int64_t e = 0; e < layer.numExperts; ++e) {
      shapes.push_back({layer.expertBytes[e], 2.0 * layer.expertBytes[e] / 4,
                        0});
      loads.push_back(::moe::cost::ExpertLoad::fromShare(
          1.0 / double(layer.numExperts), 1.0, 1));
      where.push_back(op.getExpert(e).getPlacement() ==
                              mlir::moe::Placement::gpu
                          ? ::moe::cost::Where::Gpu
                          : ::moe::cost::Where::Cpu);
    }
    double us =
        1e6 * ::moe::cost::layerSeconds(*device, shapes, loads, where);
    char text[64];
    std::snprintf(text, sizeof(text), "%.2f", us);
    op.emitRemark("moe-pin-experts: predicted ") << text << " us per step";
    return success();
  }

  void runOnOperation() final {
    if (gpuBudget >= 0)
      return placeUnderBudget();
    std::optional<mlir::moe::Placement> where = mlir::moe::symbolizePlacement(placement);
    if (!where) {
      getOperation().emitError("moe-pin-experts: unknown placement '")
          << placement << "' (unassigned, gpu, cpu, on_demand)";
      return signalPassFailure();
    }
    WalkResult result = getOperation().walk([&](mlir::moe::ExpertsOp op) {
      int64_t count = op.getNumExperts();
      SmallVector<Attribute> attrs;
      for (int64_t e = 0; e < count; ++e)
        attrs.push_back(op.getExpert(e));
      for (int64_t e : experts) {
        if (e < 0 || e >= count) {
          op.emitOpError("moe-pin-experts: expert ")
              << e << " does not exist (" << count << " experts)";
          return WalkResult::interrupt();
        }
        auto old = cast<mlir::moe::ExpertAttr>(attrs[e]);
        attrs[e] = mlir::moe::ExpertAttr::get(op.getContext(), *where, old.getBits(),
                                        old.getGroupSize(), old.getPruned(),
                                        old.getZeroPoints());
      }
      op.setExpertsAttr(ArrayAttr::get(op.getContext(), attrs));
      return WalkResult::advance();
    });
    if (result.wasInterrupted())
      signalPassFailure();
  }

  ListOption<int64_t> experts{*this, "experts",
                              llvm::cl::desc("expert indices to pin")};
  Option<int64_t> gpuBudget{
      *this, "gpu-budget",
      llvm::cl::desc("place experts on the GPU while their bytes fit in this "
                     "budget, the rest on the CPU (ignores experts=)"),
      llvm::cl::init(-1)};
  Option<std::string> deviceProfile{
      *this, "device-profile",
      llvm::cl::desc("with gpu-budget: report the cost model's predicted time "
                     "per layer for this device profile (JSON)"),
      llvm::cl::init("")};
  Option<std::string> placement{
      *this, "placement", llvm::cl::desc("unassigned, gpu, cpu or on_demand"),
      llvm::cl::init("gpu")};
};

} // namespace

extern "C" LLVM_ATTRIBUTE_WEAK PassPluginLibraryInfo mlirGetPassPluginInfo() {
  return {MLIR_PLUGIN_API_VERSION, "MoePinExperts", LLVM_VERSION_STRING,
          []() { PassRegistration<PinExpertsPass>(); }};
}
