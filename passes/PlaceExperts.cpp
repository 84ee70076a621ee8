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
  int64_t largest = 0, totalBytes = 0;
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
      largest = std::max(largest, s.bytes);
      totalBytes += s.bytes;
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
  // Budget holding every expert: all resident (unless pinned elsewhere).
  bool everything = budget >= totalBytes;
  int64_t cache = 0;
  if (!everything && cacheExperts > 0 &&
      budget >= int64_t(cacheExperts) * largest)
    cache = int64_t(cacheExperts) * largest;
  int64_t left = budget - cache;
  for (Layer &l : layers)
    for (size_t x = 0; x < l.where.size(); ++x)
      if (l.pinned[x] && l.where[x] == cost::Where::Gpu)
        left -= l.shapes[x].bytes;
  if (left < 0) {
    (void)fail("the experts pinned to the GPU need more than the budget of " +
               Twine(budget) + " bytes");
    return signalPassFailure();
  }
  auto seconds = [&](const Layer &l, size_t x, cost::Where w) {
    return cost::expertSeconds(*dev, l.shapes[x], l.loads[x], w);
  };
  // Start: each free expert off the GPU where it is cheaper.
  for (Layer &l : layers)
    for (size_t x = 0; x < l.where.size(); ++x)
      if (!l.pinned[x])
        l.where[x] = (cache > 0 && seconds(l, x, cost::Where::OnDemand) <
                                       seconds(l, x, cost::Where::Cpu))
                         ? cost::Where::OnDemand
                         : cost::Where::Cpu;
  // Per layer, the GPU and CPU sides.
  std::vector<double> gpuSide(layers.size()), cpuSide(layers.size());
  auto recompute = [&](size_t li) {
    const Layer &l = layers[li];
    double g = 0, c = 0;
    for (size_t x = 0; x < l.where.size(); ++x)
      (l.where[x] == cost::Where::Cpu ? c : g) += seconds(l, x, l.where[x]);
    gpuSide[li] = g;
    cpuSide[li] = c;
  };
  for (size_t li = 0; li < layers.size(); ++li)
    recompute(li);
  // Greedy: the move to the GPU that saves the most per byte, while it fits.
  while (true) {
    double bestScore = -1, bestUse = -1;
    size_t bestL = 0, bestX = 0;
    bool found = false;
    for (size_t li = 0; li < layers.size(); ++li) {
      const Layer &l = layers[li];
      double now = std::max(gpuSide[li], cpuSide[li]);
      for (size_t x = 0; x < l.where.size(); ++x) {
        if (l.pinned[x] || l.where[x] == cost::Where::Gpu ||
            l.shapes[x].bytes > left)
          continue;
        double cur = seconds(l, x, l.where[x]);
        double g = gpuSide[li] + seconds(l, x, cost::Where::Gpu) -
                   (l.where[x] == cost::Where::OnDemand ? cur : 0.0);
        double c = cpuSide[li] - (l.where[x] == cost::Where::Cpu ? cur : 0.0);
        double saved = now - std::max(g, c);
        if (saved < 0 && !everything)
          continue;
        double score = saved / double(std::max<int64_t>(l.shapes[x].bytes, 1));
        double use = l.loads[x].useProbability;
        if (!found || score > bestScore ||
            (score == bestScore && use > bestUse)) {
          found = true;
          bestScore = score;
          bestUse = use;
          bestL = li;
          bestX = x;
        }
      }
    }
    if (!found)
      break;
    layers[bestL].where[bestX] = cost::Where::Gpu;
    left -= layers[bestL].shapes[bestX].bytes;
    recompute(bestL);
  }
  // Off the GPU: CPU or on demand, given the rest of the layer.
  if (cache > 0)
    for (size_t li = 0; li < layers.size(); ++li) {
      Layer &l = layers[li];
      for (size_t x = 0; x < l.where.size(); ++x) {
        if (l.pinned[x] || l.where[x] == cost::Where::Gpu)
          continue;
        cost::Where other = l.where[x] == cost::Where::Cpu
                                ? cost::Where::OnDemand
                                : cost::Where::Cpu;
        double before = std::max(gpuSide[li], cpuSide[li]);
        cost::Where keep = l.where[x];
        l.where[x] = other;
        recompute(li);
        if (std::max(gpuSide[li], cpuSide[li]) >= before) {
          l.where[x] = keep;
          recompute(li);
        }
      }
    }

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
