//===- Partition.cpp - Parallel layout and AllToAll schedule per layer ----===//
//
// Chooses, per MoE layer, the layout and AllToAll schedule the traffic model
// predicts fastest for a topology, assigns experts to ranks balancing the
// profile's load, and inserts moe.all_to_all. Passes.td has the details.
//
//===----------------------------------------------------------------------===//

#include "passes/Analysis/ExpertInventory.h"
#include "passes/Analysis/RoutingProfile.h"
#include "passes/Analysis/TrafficModel.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

namespace mlir::moe {
#define GEN_PASS_DEF_PARTITION
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;
namespace tr = ::moe::traffic;

namespace {

struct PartitionPass : public mlir::moe::impl::PartitionBase<PartitionPass> {
  using PartitionBase::PartitionBase;

  LogicalResult fail(const Twine &message) {
    return getOperation().emitError("moe-partition: ") << message;
  }
  void runOnOperation() override;
};

/// Experts onto `bins` bins (ranks, or nodes for the hybrid): the most loaded
/// first, each to the least loaded bin; an expert above 1.5 times a bin's
/// fair share is replicated on ceil(load / share) bins, its load split.
std::vector<std::vector<int64_t>> assign(const std::vector<double> &load,
                                         int64_t bins) {
  size_t e = load.size();
  std::vector<std::vector<int64_t>> where(e);
  double total = std::accumulate(load.begin(), load.end(), 0.0);
  double share = total / double(bins);
  std::vector<size_t> order(e);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return load[a] > load[b]; });
  std::vector<double> binLoad(static_cast<size_t>(bins), 0.0);
  for (size_t x : order) {
    int64_t copies = 1;
    if (share > 0 && load[x] > 1.5 * share)
      copies = std::min<int64_t>(bins, int64_t(std::ceil(load[x] / share)));
    for (int64_t c = 0; c < copies; ++c) {
      size_t best = 0;
      for (size_t b = 1; b < binLoad.size(); ++b) {
        bool used = std::find(where[x].begin(), where[x].end(),
                              int64_t(b)) != where[x].end();
        bool bestUsed = std::find(where[x].begin(), where[x].end(),
                                  int64_t(best)) != where[x].end();
        if (bestUsed || (!used && binLoad[b] < binLoad[best]))
          best = b;
      }
      where[x].push_back(int64_t(best));
      binLoad[best] += load[x] / double(copies);
    }
    std::sort(where[x].begin(), where[x].end());
  }
  return where;
}

void PartitionPass::runOnOperation() {
  ModuleOp module = getOperation();
  MLIRContext *ctx = module.getContext();
  if (topology.empty()) {
    (void)fail("needs topology (a JSON file, docs/partitioning.md)");
    return signalPassFailure();
  }
  std::optional<tr::Layout> onlyLayout;
  if (layout == "ep")
    onlyLayout = tr::Layout::ExpertParallel;
  else if (layout == "tp")
    onlyLayout = tr::Layout::TensorParallel;
  else if (layout == "hybrid")
    onlyLayout = tr::Layout::Hybrid;
  else if (layout != "auto") {
    (void)fail("layout must be auto, ep, tp or hybrid, not '" + layout + "'");
    return signalPassFailure();
  }
  std::optional<tr::Schedule> onlySchedule;
  if (schedule == "direct")
    onlySchedule = tr::Schedule::Direct;
  else if (schedule == "hierarchical")
    onlySchedule = tr::Schedule::Hierarchical;
  else if (schedule != "auto") {
    (void)fail("schedule must be auto, direct or hierarchical, not '" +
               schedule + "'");
    return signalPassFailure();
  }
  if (!llvm::is_contained({0, 1, 2, 4, 8}, int64_t(chunks))) {
    (void)fail("chunks must be 0 (the fastest), 1, 2, 4 or 8, not " +
               std::to_string(chunks));
    return signalPassFailure();
  }
  if (computeModel != "roofline" && computeModel != "serial") {
    (void)fail("compute-model must be roofline or serial, not '" +
               computeModel + "'");
    return signalPassFailure();
  }
  if (!(minPipelineGain >= 0 && minPipelineGain < 1)) {
    (void)fail("min-pipeline-gain must be in [0, 1)");
    return signalPassFailure();
  }
  if (!(memoryBytesPerRank >= 0)) {
    (void)fail("memory-bytes-per-s must not be negative");
    return signalPassFailure();
  }
  if (tokens < 1 || !(flopsPerRank > 0) || !(activationBytes > 0)) {
    (void)fail("tokens, flops-per-rank and activation-bytes must be positive");
    return signalPassFailure();
  }
  llvm::Expected<tr::Topology> topo = tr::readTopology(topology);
  if (!topo) {
    (void)fail(llvm::toString(topo.takeError()));
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
  std::string summary; // for the plan's metadata (--describe)
  for (const ExpertLayer &layer : inventory.layers()) {
    ExpertsOp op = layer.op;
    auto dispatch = op.getOffsets().getDefiningOp<DispatchOp>();
    RouteOp route = dispatch ? dispatch.getIds().getDefiningOp<RouteOp>()
                             : RouteOp();
    if (!dispatch || !route || dispatch.getRows() != op.getInput()) {
      op.emitError("moe-partition: layer ")
          << layer.index << ": expected moe.route -> moe.dispatch -> "
          << "moe.experts";
      return signalPassFailure();
    }
    auto in = cast<RankedTensorType>(op.getInput().getType());
    auto w2 = cast<RankedTensorType>(op.getW2().getType());
    tr::LayerShape shape;
    shape.tokensPerRank = tokens;
    shape.hidden = in.getDimSize(1);
    shape.ffn = w2.getDimSize(2);
    shape.topK = int64_t(route.getK());
    shape.numExperts = layer.numExperts;
    shape.activationBytes = activationBytes;
    shape.flopsPerSecond = flopsPerRank;
    shape.matricesPerExpert = op.getW3() ? 3 : 2;
    shape.memoryBytesPerSecond = memoryBytesPerRank;
    shape.serialCompute = computeModel == "serial";
    if (!layer.expertBytes.empty())
      shape.expertBytes = double(layer.totalBytes()) /
                          double(layer.expertBytes.size());
    std::vector<tr::Prediction> all = tr::predictAll(*topo, shape);
    // The runtime gathers a tensor-parallel layer's tokens with MPI's own
    // collectives, neither relayed by node nor chunked: only that candidate
    // can run.
    // A hybrid layer's exchange runs among peers (one rank per node), which
    // no node relay helps: direct only, chunked or not. Both layouts need
    // weights that can be cut (over the ranks, or a node's ranks).
    std::optional<std::string> noTp, noHybrid;
    if (topo->ranks > 1)
      noTp = tensorParallelObstacle(op, topo->ranks);
    if (topo->ranksPerNode > 1)
      noHybrid = tensorParallelObstacle(op, topo->ranksPerNode);
    llvm::erase_if(all, [&](const tr::Prediction &p) {
      if (p.layout == tr::Layout::TensorParallel)
        return noTp || p.schedule != tr::Schedule::Direct || p.chunks != 1;
      if (p.layout == tr::Layout::Hybrid)
        return noHybrid || p.schedule != tr::Schedule::Direct;
      return false;
    });
    std::vector<tr::Prediction> allowed;
    for (const tr::Prediction &p : all)
      if ((!onlyLayout || p.layout == *onlyLayout) &&
          (!onlySchedule || p.schedule == *onlySchedule) &&
          (chunks == 0 || p.chunks == chunks))
        allowed.push_back(p);
    if (allowed.empty()) {
      std::string why;
      if (onlyLayout == tr::Layout::TensorParallel && noTp)
        why = ": " + *noTp;
      else if (onlyLayout == tr::Layout::Hybrid && noHybrid)
        why = ": " + *noHybrid;
      op.emitError("moe-partition: layer ")
          << layer.index << ": no candidate fits (layout " << layout
          << ", schedule " << schedule << ", chunks " << int64_t(chunks)
          << ", "
          << topo->ranks << " ranks, "
          << topo->ranksPerNode << " per node)" << why;
      return signalPassFailure();
    }
    const tr::Prediction &best = allowed[tr::choose(allowed, minPipelineGain)];
    // Expert loads: calibration picks, else alike.
    std::vector<double> load(static_cast<size_t>(layer.numExperts), 1.0);
    if (routing)
      for (int64_t x = 0; x < layer.numExperts; ++x)
        load[size_t(x)] = double(routing->layers[layer.index].experts[size_t(x)]
                                     .count);
    int64_t bins = best.layout == tr::Layout::Hybrid ? topo->nodes()
                                                     : topo->ranks;
    SmallVector<Attribute> ranksOf;
    if (best.layout == tr::Layout::TensorParallel) {
      // Every rank holds a slice of every expert.
      SmallVector<int64_t> everyone(static_cast<size_t>(topo->ranks));
      std::iota(everyone.begin(), everyone.end(), 0);
      for (int64_t x = 0; x < layer.numExperts; ++x)
        ranksOf.push_back(b.getDenseI64ArrayAttr(everyone));
    } else {
      // Hybrid: the nodes of each expert, whose ranks each hold a slice.
      for (const std::vector<int64_t> &r : assign(load, bins))
        ranksOf.push_back(b.getDenseI64ArrayAttr(r));
    }
    // The rejected candidates: the fastest of every other layout and
    // schedule (`all` is fastest first), and the chosen one unchunked.
    SmallVector<Attribute> rejected;
    SmallVector<std::pair<tr::Layout, tr::Schedule>> seen{
        {best.layout, best.schedule}};
    for (const tr::Prediction &p : all) {
      std::pair<tr::Layout, tr::Schedule> key{p.layout, p.schedule};
      if (llvm::is_contained(seen, key)) {
        if (key == seen.front() && best.chunks > 1 && p.chunks == 1)
          rejected.push_back(b.getStringAttr(p.describe()));
        continue;
      }
      seen.push_back(key);
      rejected.push_back(b.getStringAttr(p.describe()));
    }
    NamedAttrList info;
    info.append("layout", b.getStringAttr(tr::layoutName(best.layout)));
    info.append("schedule", b.getStringAttr(tr::scheduleName(best.schedule)));
    info.append("chunks", b.getI64IntegerAttr(best.chunks));
    info.append("ranks", b.getI64IntegerAttr(topo->ranks));
    info.append("predicted_us", b.getF64FloatAttr(best.seconds * 1e6));
    info.append("rejected", b.getArrayAttr(rejected));
    op->setAttr("moe.partition", info.getDictionary(ctx));
    summary += (summary.empty() ? "" : "; ") + std::string("layer ") +
               std::to_string(layer.index) + ": " + best.describe() +
               " on " + std::to_string(topo->ranks) + " ranks";
    if (!rejected.empty()) {
      summary += " (rejected:";
      for (Attribute r : rejected)
        summary += " " + cast<StringAttr>(r).str() + ",";
      summary.back() = ')';
    }
    op->setAttr("moe.expert_ranks", b.getArrayAttr(ranksOf));
    if (report)
      op.emitRemark("moe-partition: ")
          << best.describe() << " on " << topo->ranks << " ranks";
    // Tensor parallel: every rank computes its slice of every expert
    // (moe-lower-to-plan slices the weights) on every rank's tokens, which
    // are gathered before moe.dispatch; the partial outputs are summed and
    // each rank keeps its own rows.
    if (best.layout == tr::Layout::TensorParallel && topo->ranks > 1) {
      auto combine = [&]() -> CombineOp {
        if (!op.getResult().hasOneUse())
          return CombineOp();
        auto c = dyn_cast<CombineOp>(*op.getResult().user_begin());
        return c && c.getPerm() == dispatch.getPerm() ? c : CombineOp();
      }();
      if (!combine) {
        op.emitError("moe-partition: layer ")
            << layer.index << ": a tensor-parallel layer needs moe.experts "
            << "to feed exactly one moe.combine of its dispatch";
        return signalPassFailure();
      }
      OpBuilder ob(dispatch);
      IntegerAttr ranks = ob.getI64IntegerAttr(topo->ranks);
      // One gather for the three (one count exchange, one transfer).
      auto gather = ob.create<AllGatherOp>(
          op.getLoc(),
          ValueRange{dispatch.getHidden(), dispatch.getIds(),
                     combine.getWeights()},
          ranks);
      Value hidden = gather.getResult(0), ids = gather.getResult(1),
            weights = gather.getResult(2);
      auto all = ob.create<DispatchOp>(dispatch.getLoc(), hidden, ids,
                                       dispatch.getNumExpertsAttr());
      op->setOperand(0, all.getRows());
      op->setOperand(1, all.getOffsets());
      op.getResult().setType(all.getRows().getType());
      ob.setInsertionPoint(combine);
      auto sum = ob.create<CombineOp>(combine.getLoc(), op.getResult(),
                                      all.getPerm(), weights);
      auto mine = ob.create<ReduceScatterOp>(combine.getLoc(), sum.getResult(),
                                             dispatch.getHidden(), ranks);
      combine.getResult().replaceAllUsesWith(mine.getResult());
      combine.erase();
      if (dispatch->use_empty())
        dispatch.erase();
      op->setAttr("moe.tensor_parallel", ranks);
    }
    // Routing layouts exchange the dispatched rows.
    if (best.layout != tr::Layout::TensorParallel && topo->ranks > 1) {
      OpBuilder ob(op);
      Schedule sched = best.schedule == tr::Schedule::Hierarchical
                           ? Schedule::hierarchical
                       : best.chunks > 1 ? Schedule::pipelined
                                         : Schedule::direct;
      const bool hybrid = best.layout == tr::Layout::Hybrid;
      IntegerAttr perNode = ob.getI64IntegerAttr(hybrid ? 0 : topo->ranksPerNode);
      IntegerAttr peers = ob.getI64IntegerAttr(hybrid ? topo->ranksPerNode : 0);
      // Result types are inferred: another rank may send a different
      // number of rows, so the row count becomes dynamic.
      auto a2a = ob.create<AllToAllOp>(
          op.getLoc(), op.getInput(), op.getOffsets(),
          ob.getI64IntegerAttr(topo->ranks),
          ScheduleAttr::get(ctx, sched),
          ob.getI64IntegerAttr(best.chunks), perNode, UnitAttr(), peers);
      op->setOperand(0, a2a.getResultRows());
      op->setOperand(1, a2a.getResultOffsets());
      op.getResult().setType(a2a.getResultRows().getType()); // = its input
      // ... and the computed rows go back to the ranks that sent them.
      ob.setInsertionPointAfter(op);
      auto back = ob.create<AllToAllOp>(
          op.getLoc(), op.getResult(), dispatch.getOffsets(),
          ob.getI64IntegerAttr(topo->ranks), ScheduleAttr::get(ctx, sched),
          ob.getI64IntegerAttr(best.chunks), perNode, ob.getUnitAttr(), peers);
      op.getResult().replaceAllUsesExcept(back.getResultRows(), back);
      if (hybrid && topo->ranksPerNode > 1)
        op->setAttr("moe.tensor_parallel", peers);
    }
  }
  module->setAttr("moe.partition", b.getStringAttr(summary));
}

} // namespace
