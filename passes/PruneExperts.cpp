//===- PruneExperts.cpp - Static and dynamic expert pruning ---------------===//
//
// Static pruning removes experts the calibration profile shows are rarely
// picked; dynamic pruning (token-level skipping, batch-aware caps) is a
// policy of the router, recorded on moe.route and run by its kernel.
// Passes.td has the user-facing description.
//
//===----------------------------------------------------------------------===//

#include "passes/Analysis/ExpertInventory.h"
#include "passes/Analysis/RoutingProfile.h"
#include "passes/Passes.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <numeric>

namespace mlir::moe {
#define GEN_PASS_DEF_PRUNEEXPERTS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// The router of an expert layer: experts(offsets) <- dispatch(ids) <- route.
RouteOp routerOf(ExpertsOp op) {
  auto dispatch = op.getOffsets().getDefiningOp<DispatchOp>();
  if (!dispatch)
    return nullptr;
  return dispatch.getIds().getDefiningOp<RouteOp>();
}

struct PruneExpertsPass
    : public mlir::moe::impl::PruneExpertsBase<PruneExpertsPass> {
  using PruneExpertsBase::PruneExpertsBase;

  LogicalResult fail(const Twine &message) {
    return getOperation().emitError("moe-prune-experts: ") << message;
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = module.getContext();
    bool statically = minShare > 0 || keep > 0;
    if (minShare < 0 || minShare >= 1 || keep < 0) {
      (void)fail("min-share must be in [0, 1) and keep >= 0");
      return signalPassFailure();
    }
    if (!(skipThreshold >= 0 && skipThreshold < 1) ||
        !(protectConfidence >= 0 && protectConfidence <= 1) ||
        !(batchMass >= 0 && batchMass <= 1) || maxExperts < 0) {
      (void)fail("skip-threshold must be in [0, 1), protect-confidence and "
                 "batch-mass in [0, 1], max-experts >= 0");
      return signalPassFailure();
    }
    if (statically && profile.empty()) {
      (void)fail("min-share and keep need a profile (moe-exec --profile)");
      return signalPassFailure();
    }
    llvm::Expected<ExpertPassInputs> inputs =
        loadExpertPassInputs(profile, module);
    if (!inputs) {
      (void)fail(llvm::toString(inputs.takeError()));
      return signalPassFailure();
    }
    const ExpertInventory &inventory = inputs->inventory;
    const std::optional<RoutingProfile> &routing = inputs->routing;
    Builder b(ctx);
    for (const ExpertLayer &layer : inventory.layers()) {
      ExpertsOp op = layer.op;
      RouteOp route = routerOf(op);
      if (!route) {
        op.emitError("moe-prune-experts: layer ")
            << layer.index << ": cannot find its moe.route (expected "
            << "moe.experts <- moe.dispatch <- moe.route)";
        return signalPassFailure();
      }
      int64_t e = layer.numExperts, k = int64_t(route.getK());
      // Dynamic policies.
      route.setSkipThresholdAttr(b.getF64FloatAttr(skipThreshold));
      route.setProtectConfidenceAttr(b.getF64FloatAttr(protectConfidence));
      route.setMaxExpertsAttr(b.getI64IntegerAttr(maxExperts));
      route.setBatchMassAttr(b.getF64FloatAttr(batchMass));
      route.setKeepFirst(keepFirst);
      if (!statically)
        continue;
      // Static: experts by calibration picks, most picked first.
      const LayerRouting &lr = routing->layers[layer.index];
      std::vector<int64_t> order(static_cast<size_t>(e));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t c) {
        return lr.experts[size_t(a)].count > lr.experts[size_t(c)].count;
      });
      SmallVector<bool> removed(static_cast<size_t>(e), false);
      // Experts already pruned stay pruned.
      for (int64_t x = 0; x < e; ++x)
        removed[size_t(x)] = op.getExpert(x).getPruned();
      for (size_t i = 0; i < order.size(); ++i) {
        int64_t x = order[i];
        bool beyondKeep = keep > 0 && int64_t(i) >= keep;
        if (beyondKeep || lr.frequency(x) < minShare)
          removed[size_t(x)] = true;
      }
      // At least k experts remain: the most picked ones come back first.
      int64_t left = llvm::count(removed, false);
      for (size_t i = 0; i < order.size() && left < k; ++i)
        if (removed[size_t(order[i])]) {
          removed[size_t(order[i])] = false;
          ++left;
        }
      SmallVector<Attribute> experts;
      std::string line;
      double removedShare = 0;
      for (int64_t x = 0; x < e; ++x) {
        ExpertAttr old = op.getExpert(x);
        experts.push_back(ExpertAttr::get(ctx, old.getPlacement(),
                                          old.getBits(), old.getGroupSize(),
                                          removed[size_t(x)],
                                          old.getZeroPoints()));
        if (removed[size_t(x)] && !old.getPruned()) {
          ++numPruned;
          removedShare += lr.frequency(x);
          line += (line.empty() ? "" : ", ") + std::to_string(x);
        }
      }
      op.setExpertsAttr(ArrayAttr::get(ctx, experts));
      route.setExcludedAttr(b.getDenseBoolArrayAttr(removed));
      if (report) {
        std::string text;
        llvm::raw_string_ostream os(text);
        os << "layer " << layer.index << ": removed experts ["
           << line << "], " << llvm::format("%.2f", 100 * removedShare)
           << "% of the calibration picks";
        op.emitRemark("moe-prune-experts: ") << os.str();
      }
    }
  }
};

} // namespace
