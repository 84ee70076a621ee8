//===- PlaceExperts.cpp - Hot experts on the GPU, cold ones on the CPU ----===//
//
// MoNDE's placement: under a GPU memory budget, each expert is GPU-resident,
// computed on the CPU where its weights are, or streamed to the GPU on
// demand, whichever the cost model predicts makes its layer's step fastest.
// Passes.td has the user-facing description.
//
//===----------------------------------------------------------------------===//

#include "passes/Analysis/CostModel.h"
#include "passes/Analysis/ExpertInventory.h"
#include "passes/Analysis/RoutingProfile.h"
#include "passes/Passes.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>

namespace mlir::moe {
#define GEN_PASS_DEF_PLACEEXPERTS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;
namespace cost = ::moe::cost;

namespace {

struct PlaceExpertsPass
    : public mlir::moe::impl::PlaceExpertsBase<PlaceExpertsPass> {
  using PlaceExpertsBase::PlaceExpertsBase;

  LogicalResult fail(const Twine &message) {
    return getOperation().emitError("moe-place-experts: ") << message;
  }

  void runOnOperation() override;
};

std::optional<cost::Where> parseWhere(StringRef s) {
  if (s == "gpu")
    return cost::Where::Gpu;
  if (s == "cpu")
    return cost::Where::Cpu;
  if (s == "on_demand")
    return cost::Where::OnDemand;
  return std::nullopt;
}

Placement toPlacement(cost::Where w) {
  switch (w) {
  case cost::Where::Gpu:
    return Placement::gpu;
  case cost::Where::Cpu:
    return Placement::cpu;
  case cost::Where::OnDemand:
    return Placement::on_demand;
  }
  return Placement::unassigned;
}

void PlaceExpertsPass::runOnOperation() {
  ModuleOp module = getOperation();
  MLIRContext *ctx = module.getContext();
  if (deviceProfile.empty()) {
    (void)fail("needs device-profile (a JSON file, docs/placement.md)");
    return signalPassFailure();
  }
  if (!(batch > 0) || cacheExperts < 0) {
    (void)fail("batch must be positive and cache-experts >= 0");
    return signalPassFailure();
  }
  llvm::Expected<cost::DeviceProfile> dev = cost::readDeviceProfile(deviceProfile);
  if (!dev) {
    (void)fail(llvm::toString(dev.takeError()));
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

  // Shapes, loads and pins of every expert.
  struct Layer {
    ExpertsOp op;
    std::vector<cost::ExpertShape> shapes;
    std::vector<cost::ExpertLoad> loads;
    std::vector<cost::Where> where;
    std::vector<bool> pinned;
    int64_t topK = 1;
  };
  std::vector<Layer> layers;
  for (const ExpertLayer &il : inventory.layers()) {
    Layer l;
    ExpertsOp op = il.op;
    l.op = op;
    int64_t e = il.numExperts;
    // Weights per expert (for the FLOPs) and its hidden size.
    int64_t elements = 0;
    for (Value v : op.getOperands().drop_front(2))
      elements += cast<RankedTensorType>(v.getType()).getNumElements() / e;
    int64_t hidden =
        cast<RankedTensorType>(op.getInput().getType()).getDimSize(1);
    const LayerRouting *lr = routing ? &routing->layers[il.index] : nullptr;
    l.topK = lr ? lr->topK : 1;
    if (!lr)
      if (auto dispatch = op.getOffsets().getDefiningOp<DispatchOp>())
        if (auto route = dispatch.getIds().getDefiningOp<RouteOp>())
          l.topK = int64_t(route.getK());
    for (int64_t x = 0; x < e; ++x) {
      cost::ExpertShape s;
      s.bytes = il.expertBytes[size_t(x)];
      s.flopsPerToken = 2.0 * double(elements);
      s.hidden = ShapedType::isDynamic(hidden) ? 0 : hidden;
      double share = lr ? lr->frequency(x) : 1.0 / double(e);
      if (op.getExpert(x).getPruned())
        share = 0;
      l.shapes.push_back(s);
      l.loads.push_back(cost::ExpertLoad::fromShare(share, batch, l.topK));
    }
    l.where.assign(size_t(e), cost::Where::Cpu);
    l.pinned.assign(size_t(e), false);
    layers.push_back(std::move(l));
  }

  // Pins.
  for (const std::string &text : pins) {
    FailureOr<ExpertPin> pin = parseExpertPin(text);
    std::optional<cost::Where> w =
        succeeded(pin) ? parseWhere(pin->value) : std::nullopt;
    if (!w) {
      (void)fail("pin '" + text + "': expected L:E=gpu|cpu|on_demand (L, E "
                 "an index or *)");
      return signalPassFailure();
    }
    bool any = false;
    for (size_t l = 0; l < layers.size(); ++l)
      for (size_t x = 0; x < layers[l].where.size(); ++x)
        if (pin->matches(int64_t(l), int64_t(x))) {
          layers[l].where[x] = *w;
          layers[l].pinned[x] = true;
          any = true;
        }
    if (!any) {
      (void)fail("pin '" + text + "' matches no expert");
      return signalPassFailure();
    }
  }

  int64_t budget = gpuBudgetBytes >= 0 ? int64_t(gpuBudgetBytes)
                                       : int64_t(dev->gpuMemoryBytes);
  // The choice itself is shared with code without LLVM (CostCore.h).
  std::vector<cost::PlacementLayer> core(layers.size());
  for (size_t li = 0; li < layers.size(); ++li) {
    core[li].shapes = layers[li].shapes;
    core[li].loads = layers[li].loads;
    core[li].where = layers[li].where;
    core[li].pinned = layers[li].pinned;
  }
  cost::PlacementResult placed =
      cost::placeExperts(*dev, core, budget, cacheExperts);
  if (!placed.error.empty()) {
    (void)fail(placed.error);
    return signalPassFailure();
  }
  for (size_t li = 0; li < layers.size(); ++li)
    layers[li].where = core[li].where;
  const int64_t cache = placed.cacheBytes;
  const std::vector<double> &gpuSide = placed.gpuSide, &cpuSide = placed.cpuSide;

  // Record.
  Builder b(ctx);
  SmallVector<double> layerUs;
  int64_t gpuBytes = 0;
  for (size_t li = 0; li < layers.size(); ++li) {
    Layer &l = layers[li];
    SmallVector<Attribute> experts;
    std::string line;
    for (size_t x = 0; x < l.where.size(); ++x) {
      ExpertAttr old = l.op.getExpert(int64_t(x));
      experts.push_back(ExpertAttr::get(ctx, toPlacement(l.where[x]),
                                        old.getBits(), old.getGroupSize(),
                                        old.getPruned(), old.getZeroPoints()));
      if (l.where[x] == cost::Where::Gpu)
        gpuBytes += l.shapes[x].bytes;
      line += std::string(x ? ", " : "") + cost::whereName(l.where[x]);
    }
    l.op.setExpertsAttr(ArrayAttr::get(ctx, experts));
    double us = 1e6 * std::max(gpuSide[li], cpuSide[li]);
    layerUs.push_back(us);
    if (report) {
      std::string text;
      llvm::raw_string_ostream os(text);
      os << line << "; predicted " << llvm::format("%.1f", us)
         << " us per step (GPU side " << llvm::format("%.1f", 1e6 * gpuSide[li])
         << ", CPU side " << llvm::format("%.1f", 1e6 * cpuSide[li]) << ")";
      l.op.emitRemark("moe-place-experts: ") << os.str();
    }
  }
  NamedAttrList info;
  info.append("budget_bytes", b.getI64IntegerAttr(budget));
  info.append("gpu_bytes", b.getI64IntegerAttr(gpuBytes));
  info.append("cache_bytes", b.getI64IntegerAttr(cache));
  info.append("batch", b.getF64FloatAttr(batch));
  info.append("predicted_layer_us", b.getDenseF64ArrayAttr(layerUs));
  module->setAttr("moe.placement", info.getDictionary(ctx));
}

} // namespace
