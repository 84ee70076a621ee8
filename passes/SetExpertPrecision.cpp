//===- SetExpertPrecision.cpp - One weight precision for every expert -----===//

#include "passes/Passes.h"

namespace mlir::moe {
#define GEN_PASS_DEF_SETEXPERTPRECISION
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {
struct SetExpertPrecisionPass
    : public mlir::moe::impl::SetExpertPrecisionBase<SetExpertPrecisionPass> {
  using SetExpertPrecisionBase::SetExpertPrecisionBase;

  void runOnOperation() override {
    int64_t group = bits == 0 ? 0 : groupSize.getValue();
    // ExpertAttr's own verifier has the rules; report them on the module.
    if (failed(ExpertAttr::verify(
            [&] {
              return getOperation().emitError("moe-set-expert-precision: ");
            },
            Placement::unassigned, bits, group, false,
            zeroPoints && group != 0)))
      return signalPassFailure();
    getOperation().walk([&](ExpertsOp op) {
      SmallVector<Attribute> experts;
      for (int64_t e = 0; e < op.getNumExperts(); ++e) {
        ExpertAttr old = op.getExpert(e);
        experts.push_back(ExpertAttr::get(op.getContext(), old.getPlacement(),
                                          bits, group, old.getPruned(),
                                          zeroPoints && group != 0));
      }
      op.setExpertsAttr(ArrayAttr::get(op.getContext(), experts));
    });
  }
};
} // namespace
