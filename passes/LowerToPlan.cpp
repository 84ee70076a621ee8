//===- LowerToPlan.cpp - nn/moe on tensors to plan on buffers -------------===//
//
// Each op becomes one plan step; the kernel parameters are built per op so
// that the kernel ABI (docs/plan-format.md) is explicit in one place, with
// default-valued attributes materialised.
//
//===----------------------------------------------------------------------===//

#include "kernels/cpu/Quant.h"
#include "passes/Analysis/ExpertInventory.h"
#include "passes/Evaluate.h"
#include "passes/Passes.h"
#include "passes/PlanTypes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/TypeSwitch.h"

namespace mlir::moe {
#define GEN_PASS_DEF_LOWERTOPLAN
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// Builds the parameter dictionary of one kernel call; setting a name twice
/// keeps the last value.
class ParamBuilder {
public:
  explicit ParamBuilder(MLIRContext *ctx) : b(ctx) {}
  void i(StringRef name, int64_t v) { attrs.set(name, b.getI64IntegerAttr(v)); }
  void f(StringRef name, double v) { attrs.set(name, b.getF64FloatAttr(v)); }
  void s(StringRef name, StringRef v) { attrs.set(name, b.getStringAttr(v)); }
  void ints(StringRef name, ArrayRef<int64_t> v) {
    attrs.set(name, b.getDenseI64ArrayAttr(v));
  }
  void floats(StringRef name, ArrayRef<double> v) {
    attrs.set(name, b.getDenseF64ArrayAttr(v));
  }
  DictionaryAttr get() { return attrs.getDictionary(b.getContext()); }

private:
  Builder b;
  NamedAttrList attrs;
};

} // namespace

/// Passes the inherent attributes of `op` through as kernel parameters of the
/// same names (the ONNX-semantics ops, docs/onnx-import.md): integers and
/// booleans as Int, floats as Float, strings, integer and float arrays.
/// Default-valued attributes are present (ODS materialises them); absent
/// optional ones are left to the kernel's default.
static LogicalResult passAttributes(Operation *op, ParamBuilder &p) {
  std::optional<RegisteredOperationName> info = op->getRegisteredInfo();
  if (!info)
    return success();
  for (StringAttr name : info->getAttributeNames()) {
    if (name == "operandSegmentSizes" || name == "resultSegmentSizes")
      continue;
    std::optional<Attribute> value = op->getInherentAttr(name);
    if (!value || !*value)
      continue;
    Attribute a = *value;
    if (auto b = dyn_cast<BoolAttr>(a)) {
      p.i(name, b.getValue());
    } else if (auto i = dyn_cast<IntegerAttr>(a)) {
      p.i(name, i.getValue().getSExtValue());
    } else if (auto f = dyn_cast<FloatAttr>(a)) {
      p.f(name, f.getValueAsDouble());
    } else if (auto s = dyn_cast<StringAttr>(a)) {
      p.s(name, s.getValue());
    } else if (auto ints = dyn_cast<DenseI64ArrayAttr>(a)) {
      p.ints(name, ints.asArrayRef());
    } else if (auto ints = dyn_cast<DenseI32ArrayAttr>(a)) {
      p.ints(name, SmallVector<int64_t>(ints.asArrayRef()));
    } else if (auto floats = dyn_cast<DenseF64ArrayAttr>(a)) {
      p.floats(name, floats.asArrayRef());
    } else if (auto floats = dyn_cast<DenseF32ArrayAttr>(a)) {
      p.floats(name, SmallVector<double>(floats.asArrayRef()));
    } else if (auto array = dyn_cast<ArrayAttr>(a)) {
      if (llvm::all_of(array, llvm::IsaPred<IntegerAttr>)) {
        SmallVector<int64_t> v;
        for (Attribute e : array)
          v.push_back(cast<IntegerAttr>(e).getValue().getSExtValue());
        p.ints(name, v);
      } else if (llvm::all_of(array, llvm::IsaPred<FloatAttr>)) {
        SmallVector<double> v;
        for (Attribute e : array)
          v.push_back(cast<FloatAttr>(e).getValueAsDouble());
        p.floats(name, v);
      } else {
        return op->emitOpError("attribute '")
               << name.getValue()
               << "' mixes kinds; kernel parameters are integer or float "
                  "arrays";
      }
    } else {
      return op->emitOpError("attribute '") << name.getValue() << "' (" << a
                                            << ") cannot be a kernel parameter";
    }
  }
  return success();
}

/// The ranks a moe.experts op is tensor-parallel over (moe-partition's
/// `moe.tensor_parallel`), 1 when it is not.
static int64_t tensorParallelRanks(ExpertsOp op) {
  auto r = op->getAttrOfType<IntegerAttr>("moe.tensor_parallel");
  return r && r.getInt() > 1 ? r.getInt() : 1;
}

/// Fills `p` with the kernel parameters of `op`; fails with a diagnostic on
/// something the runtime kernel cannot express.
static LogicalResult buildParams(Operation *op, ParamBuilder &p) {
  return TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](nn::GeluOp o) -> LogicalResult {
        p.s("approximate", o.getApproximate());
        return success();
      })
      .Case([&](nn::SoftmaxOp o) -> LogicalResult {
        p.i("axis", o.getAxis());
        return success();
      })
      .Case<nn::ReduceSumOp, nn::ReduceMeanOp, nn::ReduceMaxOp>(
          [&](auto o) -> LogicalResult {
            p.ints("axes", o.getAxes());
            p.i("keepdims", o.getKeepdims());
            return success();
          })
      .Case<nn::RmsNormOp, nn::LayerNormOp>([&](auto o) -> LogicalResult {
        p.f("eps", o.getEps().convertToDouble());
        return success();
      })
      .Case([&](nn::ReshapeOp o) -> LogicalResult {
        // Resolve -1 statically when the inferred type knows it, so that the
        // runtime only infers what is truly dynamic.
        SmallVector<int64_t> shape(o.getShape());
        ArrayRef<int64_t> inferred = o.getType().getShape();
        for (auto [i, d] : llvm::enumerate(shape))
          if (d == -1 && !ShapedType::isDynamic(inferred[i]))
            d = inferred[i];
        p.ints("shape", shape);
        return success();
      })
      .Case([&](nn::TransposeOp o) -> LogicalResult {
        p.ints("perm", o.getPerm());
        return success();
      })
      .Case([&](nn::GatherOp o) -> LogicalResult {
        p.i("axis", o.getAxis());
        return success();
      })
      .Case([&](nn::ConcatOp o) -> LogicalResult {
        p.i("axis", o.getAxis());
        return success();
      })
      .Case([&](nn::SliceOp o) -> LogicalResult {
        size_t n = o.getStarts().size();
        SmallVector<int64_t> axes, steps(n, 1);
        if (auto a = o.getAxes())
          axes.assign(a->begin(), a->end());
        else
          for (size_t i = 0; i < n; ++i)
            axes.push_back(static_cast<int64_t>(i));
        if (auto s = o.getSteps())
          steps.assign(s->begin(), s->end());
        p.ints("starts", o.getStarts());
        p.ints("ends", o.getEnds());
        p.ints("axes", axes);
        p.ints("steps", steps);
        return success();
      })
      .Case([&](nn::CastOp o) -> LogicalResult {
        Type to = o.getType().getElementType();
        std::optional<int64_t> dtype = getPlanDType(to);
        if (!dtype)
          return o.emitOpError("cannot cast to ")
                 << to << ": the runtime has no such element type";
        p.i("to", *dtype);
        return success();
      })
      .Case([&](RouteOp o) -> LogicalResult {
        if (o.getScoring() == Scoring::sparsemixer)
          return o.emitOpError("sparsemixer scoring has no runtime kernel "
                               "yet");
        p.i("k", o.getK());
        p.s("scoring", stringifyScoring(o.getScoring()));
        p.i("normalize", o.getNormalize());
        // Pruning parameters only when set: an unpruned plan stays as it was.
        if (auto ex = o.getExcluded()) {
          SmallVector<int64_t> flags(ex->begin(), ex->end());
          p.ints("excluded", flags);
        }
        if (o.getSkipThreshold().convertToDouble() > 0) {
          p.f("skip_threshold", o.getSkipThreshold().convertToDouble());
          p.f("protect_confidence",
              o.getProtectConfidence().convertToDouble());
        }
        if (static_cast<int64_t>(o.getMaxExperts()) > 0)
          p.i("max_experts", static_cast<int64_t>(o.getMaxExperts()));
        if (o.getBatchMass().convertToDouble() > 0)
          p.f("batch_mass", o.getBatchMass().convertToDouble());
        if (o.getKeepFirst())
          p.i("keep_first", 1);
        return success();
      })
      .Case([&](DispatchOp o) -> LogicalResult {
        p.i("num_experts", o.getNumExperts());
        return success();
      })
      .Case([&](ExpertsOp o) -> LogicalResult {
        int64_t e = o.getNumExperts();
        p.i("num_experts", e);
        p.s("activation", stringifyActivation(o.getActivation()));
        p.f("activation_alpha", o.getActivationAlpha().convertToDouble());
        p.f("activation_beta", o.getActivationBeta().convertToDouble());
        p.i("has_swiglu_limit", o.getSwigluLimit().has_value());
        if (auto limit = o.getSwigluLimit())
          p.f("swiglu_limit", limit->convertToDouble());
        p.i("swiglu_fusion", static_cast<int64_t>(o.getSwigluFusion()));
        p.i("has_w3", o.getW3() != nullptr);
        p.i("has_b1", o.getB1() != nullptr);
        p.i("has_b2", o.getB2() != nullptr);
        p.i("has_b3", o.getB3() != nullptr);
        // moe-partition's assignment: `replicas` lists each expert's ranks
        // (nodes, in a hybrid step), `replica_offsets` [E + 1] where each
        // expert's start in it, and `owners` the first of each. With an
        // exchange, the tokens are the rank's own and travel to their
        // experts' ranks (a sender spreads over an expert's replicas).
        // Without one (a plan partitioned for one rank) they change nothing.
        // Tensor parallel (moe-partition): the weights are cut into
        // `tp_ranks` slices of F (collectShards); rank r computes its
        // slice of every expert.
        int64_t tp = tensorParallelRanks(o);
        if (tp > 1)
          p.i("tp_ranks", tp);
        // (A tensor-parallel step without an exchange has no expert ranks:
        // every rank holds a slice of each expert.)
        bool exchange = o->hasAttr("moe.exchange");
        if (auto ranks = o->getAttrOfType<ArrayAttr>("moe.expert_ranks");
            ranks && (tp == 1 || exchange)) {
          SmallVector<int64_t> owners, replicas, replicaOffsets{0};
          for (Attribute a : ranks) {
            auto r = dyn_cast<DenseI64ArrayAttr>(a);
            if (!r || r.empty())
              return o.emitOpError("moe.expert_ranks must give every expert "
                                   "at least one rank");
            owners.push_back(r[0]);
            llvm::append_range(replicas, r.asArrayRef());
            replicaOffsets.push_back(static_cast<int64_t>(replicas.size()));
          }
          if (static_cast<int64_t>(owners.size()) != e)
            return o.emitOpError("moe.expert_ranks has ")
                   << owners.size() << " entries for " << e << " experts";
          p.ints("owners", owners);
          p.ints("replicas", replicas);
          p.ints("replica_offsets", replicaOffsets);
        }
        if (auto ex = o->getAttrOfType<DictionaryAttr>("moe.exchange")) {
          auto ranks = ex.getAs<IntegerAttr>("ranks");
          auto schedule = ex.getAs<StringAttr>("schedule");
          auto chunks = ex.getAs<IntegerAttr>("chunks");
          auto perNode = ex.getAs<IntegerAttr>("ranks_per_node");
          if (!ranks || !schedule || !chunks)
            return o.emitOpError("moe.exchange needs ranks, schedule and "
                                 "chunks");
          if (perNode && perNode.getInt() > 0)
            p.i("exchange_ranks_per_node", perNode.getInt());
          if (auto peers = ex.getAs<IntegerAttr>("peers_of_nodes");
              peers && peers.getInt() > 0) {
            if (peers.getInt() != tp)
              return o.emitOpError("a hybrid exchange among peers of nodes "
                                   "of ")
                     << peers.getInt() << " ranks needs its experts cut "
                     << "into as many slices (moe.tensor_parallel), not "
                     << tp;
            p.i("exchange_peers_of", peers.getInt());
          }
          if (!o->hasAttr("moe.expert_ranks"))
            return o.emitOpError("an exchange needs moe.expert_ranks");
          p.i("exchange_ranks", ranks.getInt());
          p.s("exchange_schedule", schedule.getValue());
          p.i("exchange_chunks", chunks.getInt());
        }
        SmallVector<int64_t> pruned, placement, bits;
        for (int64_t i = 0; i < e; ++i) {
          ExpertAttr expert = o.getExpert(i);

          pruned.push_back(expert.getPruned());
          placement.push_back(static_cast<int64_t>(expert.getPlacement()));
          bits.push_back(expert.getBits());
        }
        p.ints("pruned", pruned);
        p.ints("placement", placement);
        p.ints("bits", bits);
        return success();
      })
      .Case([&](nn::SqueezeOp o) -> LogicalResult {
        // Without axes, squeeze the dims of static size 1 when the result
        // rank shows that no `?` dim is squeezed: the kernel then needs no
        // value of a dynamic dim to know the result rank.
        if (failed(passAttributes(o, p)))
          return failure();
        ArrayRef<int64_t> in = o.getInput().getType().getShape();
        SmallVector<int64_t> ones;
        for (auto [i, d] : llvm::enumerate(in))
          if (d == 1)
            ones.push_back(static_cast<int64_t>(i));
        if (o.getAxes().empty() &&
            static_cast<int64_t>(in.size() - ones.size()) ==
                o.getType().getRank())
          p.ints("axes", ones);
        return success();
      })
      .Case([&](nn::SplitOp o) -> LogicalResult {
        p.i("num_outputs", o.getNumResults());
        return passAttributes(o, p);
      })
      .Case([&](nn::ConstantOfShapeOp o) -> LogicalResult {
        Type elem = o.getType().getElementType();
        std::optional<int64_t> dtype = getPlanDType(elem);
        if (!dtype)
          return o.emitOpError("the runtime has no element type ") << elem;
        p.i("dtype", *dtype);
        return passAttributes(o, p);
      })
      .Default([&](Operation *op) { return passAttributes(op, p); });
}

static MemRefType toBuffer(Type type) {
  auto t = cast<RankedTensorType>(type);
  return MemRefType::get(t.getShape(), t.getElementType());
}

static bool isTensorLevel(Operation *op) {
  return isa<nn::NNDialect, MoeDialect>(op->getDialect());
}

/// Inserts `plan.free` after the last use of every buffer made by a step,
/// except the function's results.
static void insertFrees(func::FuncOp func) {
  Block &body = func.getBody().front();
  DenseMap<Operation *, unsigned> position;
  for (auto [i, op] : llvm::enumerate(body))
    position[&op] = i;
  DenseMap<Operation *, SmallVector<Value>> freeAfter;
  for (Operation &op : body) {
    if (!isa<plan::CallOp, plan::CopyOp>(op))
      continue;
    for (Value v : op.getResults()) {
      Operation *last = &op;
      bool returned = false;
      for (Operation *user : v.getUsers()) {
        if (isa<func::ReturnOp>(user))
          returned = true;
        else if (position[user] > position[last])
          last = user;
      }
      if (!returned)
        freeAfter[last].push_back(v);
    }
  }
  OpBuilder b(func.getContext());
  for (Operation &op : llvm::make_early_inc_range(body)) {
    auto it = freeAfter.find(&op);
    if (it == freeAfter.end())
      continue;
    b.setInsertionPointAfter(&op);
    b.create<plan::FreeOp>(op.getLoc(), it->second);
  }
}

namespace {
/// Per-slice precision of an expert weight to quantise at emission.
struct QuantSpec {
  SmallVector<int64_t> bits, groups;
  SmallVector<bool> zeroPoints;
  bool operator==(const QuantSpec &o) const {
    return bits == o.bits && groups == o.groups && zeroPoints == o.zeroPoints;
  }
};

struct QuantOptions {
  std::string scale = "f16";
  bool zeroPoints = false;
};
} // namespace

/// Finds the expert weights that moe.experts ops ask to quantise.
static LogicalResult
collectQuantSpecs(func::FuncOp func, bool allZeroPoints,
                  DenseMap<Operation *, QuantSpec> &specs) {
  WalkResult result = func.walk([&](ExpertsOp op) {
    QuantSpec spec;
    bool any = false, anyAbsent = false;
    for (int64_t e = 0; e < op.getNumExperts(); ++e) {
      ExpertAttr expert = op.getExpert(e);
      // A pruned expert stores nothing (its rows give zeros unread).
      if (expert.getPruned()) {
        anyAbsent = true;
        spec.bits.push_back(::moe::kernels::cpu::kAbsentBits);
        spec.groups.push_back(0);
        spec.zeroPoints.push_back(false);
        continue;
      }
      bool quantised = llvm::is_contained({16, 8, 4, 3, 2}, expert.getBits());
      any |= quantised;
      spec.bits.push_back(quantised ? expert.getBits() : 0);
      spec.groups.push_back(quantised ? expert.getGroupSize() : 0);
      spec.zeroPoints.push_back(quantised && expert.getBits() != 16 &&
                                (allZeroPoints || expert.getZeroPoints()));
      if (quantised && expert.getBits() != 16 && expert.getGroupSize() == 0) {
        op.emitOpError("expert ")
            << e << " asks for " << expert.getBits()
            << "-bit weights without a group_size (32, 64 or 128)";
        return WalkResult::interrupt();
      }
    }
    if (!any && !anyAbsent)
      return WalkResult::advance();
    // A tensor-parallel op's weights hold one slice per rank and expert
    // (index r·E + e), each at its expert's precision.
    int64_t tp = tensorParallelRanks(op);
    auto repeat = [&](auto &v) {
      auto once = v;
      for (int64_t r = 1; r < tp; ++r)
        v.append(once.begin(), once.end());
    };
    repeat(spec.bits);
    repeat(spec.groups);
    repeat(spec.zeroPoints);
    // Dropping pruned experts' bytes needs the same weights quantisation
    // does; when they are computed, the experts simply stay stored.
    auto qualifies = [&](Value w) {
      auto weight = w.getDefiningOp<nn::WeightOp>();
      return weight && weight.getType().getElementType().isF32() &&
             llvm::all_of(w.getUsers(),
                          [&](Operation *u) { return u == op.getOperation(); });
    };
    if (!any && !llvm::all_of(SmallVector<Value>{op.getW1(), op.getW2(),
                                                 op.getW3()},
                              [&](Value w) { return !w || qualifies(w); }))
      return WalkResult::advance();
    for (Value w : {op.getW1(), op.getW2(), op.getW3()}) {
      if (!w)
        continue;
      auto weight = w.getDefiningOp<nn::WeightOp>();
      if (!weight || !weight.getType().getElementType().isF32()) {
        op.emitOpError("quantised experts need their weights as f32 "
                       "nn.weight ops");
        return WalkResult::interrupt();
      }
      for (Operation *user : w.getUsers())
        if (user != op.getOperation()) {
          op.emitOpError("weight '")
              << weight.getName()
              << "' is quantised for this op but also used by '"
              << user->getName() << "'";
          return WalkResult::interrupt();
        }
      auto [it, inserted] = specs.try_emplace(weight, spec);
      if (!inserted && !(it->second == spec)) {
        op.emitOpError("weight '")
            << weight.getName() << "' is asked for two different precisions";
        return WalkResult::interrupt();
      }
    }
    return WalkResult::advance();
  });
  return failure(result.wasInterrupted());
}

/// The weights tensorParallelObstacle() and collectShards() cut: w1 and b1
/// (fused SwiGLU, concatenated: both halves alike), w3 and b3 along F, w2
/// along its last dimension. b2 is not cut: slice 0 adds it.
namespace {
struct Cut {
  Value v;
  const char *name;
  int64_t dim, halves;
};
} // namespace

static SmallVector<Cut> cutsOf(ExpertsOp op) {
  int64_t halves = op.getSwigluFusion() == 2 ? 2 : 1;
  SmallVector<Cut> cuts;
  for (Cut c : {Cut{op.getW1(), "w1", 1, halves}, Cut{op.getW2(), "w2", 2, 1},
                Cut{op.getW3(), "w3", 1, 1}, Cut{op.getB1(), "b1", 1, halves},
                Cut{op.getB3(), "b3", 1, 1}})
    if (c.v)
      cuts.push_back(c);
  return cuts;
}

/// Where one cut weight's bytes come from, and how each source is cut: the
/// weight itself (an nn.weight), or the inputs of the nn.dequantize that
/// makes it (codes, scales and zero points; nn.weight or arith.constant).
namespace {
struct CutSources {
  SmallVector<std::pair<Operation *, SmallVector<int64_t, 3>>> sources;
  /// The nn.dequantize whose result is cut, with its new type.
  Operation *dequantize = nullptr;
  RankedTensorType dequantizedType;
};
} // namespace

/// The sources of cut `c` into `parts`, or why it cannot be cut.
static FailureOr<CutSources> cutSources(const Cut &c, int64_t parts,
                                        std::string &why) {
  CutSources out;
  auto holds = [&](Value v) {
    Operation *def = v.getDefiningOp();
    return def && isa<nn::WeightOp, arith::ConstantOp>(def) && v.hasOneUse();
  };
  const std::string alone =
      std::string("tensor parallel: ") + c.name +
      " must be an nn.weight used by this op alone, or made by an "
      "nn.dequantize of such weights (or constants), so that it can be cut "
      "into one slice per rank";
  if (!c.v.hasOneUse()) {
    why = alone;
    return failure();
  }
  if (auto w = c.v.getDefiningOp<nn::WeightOp>()) {
    out.sources.push_back({w, {c.dim, c.halves, parts}});
    return out;
  }
  auto dq = c.v.getDefiningOp<nn::DequantizeOp>();
  if (!dq) {
    why = alone;
    return failure();
  }
  RankedTensorType y = dq.getType(), q = dq.getInput().getType(),
                   sc = dq.getScales().getType(),
                   zp = dq.getZeroPoints().getType();
  const int64_t bits = dq.getBits();
  auto fail = [&](const Twine &what) -> FailureOr<CutSources> {
    why = (Twine("tensor parallel: ") + c.name + " (dequantised in the "
           "model) " + what).str();
    return failure();
  };
  if (!y.hasStaticShape() || !q.hasStaticShape() || !sc.hasStaticShape() ||
      !zp.hasStaticShape() || y.getRank() != 3)
    return fail("needs static shapes");
  if (!holds(dq.getInput()) || !holds(dq.getScales()))
    return fail("needs its codes and scales as nn.weight or constants used "
                "by its nn.dequantize alone");
  const bool zeroPoints = zp.getNumElements() > 0;
  if (zeroPoints && !holds(dq.getZeroPoints()))
    return fail("needs its zero points as an nn.weight or constant used by "
                "its nn.dequantize alone");
  out.sources.push_back({dq.getInput().getDefiningOp(),
                         {c.dim, c.halves, parts}});
  if (c.dim == 1) {
    // Rows: every input is cut alike.
    out.sources.push_back({dq.getScales().getDefiningOp(),
                           {1, c.halves, parts}});
    if (zeroPoints)
      out.sources.push_back({dq.getZeroPoints().getDefiningOp(),
                             {1, c.halves, parts}});
  } else {
    // Columns, the packed axis: whole bytes of codes and whole blocks.
    const int64_t cols = y.getDimSize(2);
    if ((cols / parts * bits) % 8 != 0)
      return fail("cannot cut its " + std::to_string(bits) +
                  "-bit codes of " + std::to_string(cols) +
                  " columns into " + std::to_string(parts) + " whole bytes");
    if (sc.getRank() == 2) {
      // One block per row: every part keeps the row's scale.
      out.sources.push_back({dq.getScales().getDefiningOp(), {0, 1, parts}});
      if (zeroPoints)
        return fail("has one zero point per row, packed; cutting it is not "
                    "supported");
    } else {
      const int64_t blocks = sc.getDimSize(2);
      if (blocks % parts != 0)
        return fail("has " + std::to_string(blocks) +
                    " blocks per row, which do not split into " +
                    std::to_string(parts));
      out.sources.push_back({dq.getScales().getDefiningOp(), {2, 1, parts}});
      if (zeroPoints) {
        if ((blocks / parts * bits) % 8 != 0 || zp.getDimSize(2) % parts != 0)
          return fail("has packed zero points that do not split into " +
                      std::to_string(parts) + " whole bytes");
        out.sources.push_back({dq.getZeroPoints().getDefiningOp(),
                               {2, 1, parts}});
      }
    }
  }
  SmallVector<int64_t> shape(y.getShape());
  shape[0] *= parts;
  shape[size_t(c.dim)] /= parts;
  out.dequantize = dq;
  out.dequantizedType = RankedTensorType::get(shape, y.getElementType());
  return out;
}

std::optional<std::string> mlir::moe::tensorParallelObstacle(ExpertsOp op,
                                                             int64_t parts) {
  int64_t f = op.getFfnSize();
  if (ShapedType::isDynamic(f) || f % parts != 0)
    return "cannot cut FFN size " + std::to_string(f) + " into " +
           std::to_string(parts) + " tensor-parallel slices";
  for (int64_t e = 0; e < op.getNumExperts(); ++e) {
    ExpertAttr expert = op.getExpert(e);
    int64_t g = expert.getGroupSize();
    if (!expert.getPruned() && llvm::is_contained({8, 4, 3, 2}, expert.getBits()) &&
        g > 0 && (f / parts) % g != 0)
      return "expert " + std::to_string(e) +
             ": a tensor-parallel slice of w2 holds " +
             std::to_string(f / parts) + " of its " + std::to_string(f) +
             " columns, not a whole number of its " + std::to_string(g) +
             "-column quantisation groups";
  }
  std::string why;
  for (const Cut &c : cutsOf(op))
    if (failed(cutSources(c, parts, why)))
      return why;
  return std::nullopt;
}

/// The weights of tensor-parallel moe.experts ops (and hybrid ones, cut over
/// a node's ranks), cut into one slice of F per rank when the plan is
/// written: nn.weight sources get plan.weight `shards`, constants are cut
/// in the plan, and a cut nn.dequantize gets its new result type.
static LogicalResult
collectShards(func::FuncOp func,
              DenseMap<Operation *, SmallVector<int64_t, 3>> &shards,
              DenseMap<Operation *, Type> &resultTypes) {
  WalkResult result = func.walk([&](ExpertsOp op) {
    int64_t n = tensorParallelRanks(op);
    if (n == 1)
      return WalkResult::advance();
    if (std::optional<std::string> why = tensorParallelObstacle(op, n)) {
      op.emitOpError(*why);
      return WalkResult::interrupt();
    }
    std::string why;
    for (const Cut &c : cutsOf(op)) {
      FailureOr<CutSources> src = cutSources(c, n, why);
      if (failed(src)) {
        op.emitOpError(why);
        return WalkResult::interrupt();
      }
      for (auto &[source, spec] : src->sources)
        shards[source] = spec;
      if (src->dequantize)
        resultTypes[src->dequantize] = src->dequantizedType;
    }
    return WalkResult::advance();
  });
  return failure(result.wasInterrupted());
}

/// A constant cut as plan.weight `shards` says (cutIntoSlices).
static DenseElementsAttr cutConstant(DenseElementsAttr value,
                                     ArrayRef<int64_t> spec) {
  auto type = cast<RankedTensorType>(value.getType());
  SmallVector<int64_t> shape(type.getShape());
  shape[0] *= spec[2];
  if (spec[0] > 0)
    shape[size_t(spec[0])] /= spec[2];
  auto cutType = RankedTensorType::get(shape, type.getElementType());
  if (value.isSplat())
    return value.resizeSplat(cutType);
  ArrayRef<char> raw = value.getRawData();
  int64_t elemBytes = int64_t(raw.size()) / type.getNumElements();
  std::vector<char> out(size_t(cutType.getNumElements() * elemBytes));
  cutIntoSlices(reinterpret_cast<const uint8_t *>(raw.data()),
                reinterpret_cast<uint8_t *>(out.data()), type.getShape(),
                elemBytes, spec[0], spec[1], spec[2]);
  return DenseElementsAttr::getFromRawBuffer(cutType, out);
}

/// Folds each expert-parallel exchange (moe.all_to_all, moe.experts,
/// moe.all_to_all combine) into its moe.experts op, which the runtime runs as
/// one step: the exchanges of a pipelined schedule overlap the compute. The
/// exchange goes into `moe.exchange` on the op (ranks, schedule, chunks).
static LogicalResult foldExchanges(func::FuncOp func) {
  SmallVector<AllToAllOp> dispatches;
  WalkResult result = func.walk([&](AllToAllOp op) {
    if (op.getCombine())
      return WalkResult::advance();
    auto fail = [&](const Twine &why) {
      op.emitOpError("cannot be lowered: ") << why;
      return WalkResult::interrupt();
    };
    if (!op.getResultRows().hasOneUse() || !op.getResultOffsets().hasOneUse())
      return fail("its results must feed exactly one moe.experts op");
    auto experts = dyn_cast<ExpertsOp>(*op.getResultRows().user_begin());
    if (!experts || experts.getInput() != op.getResultRows() ||
        experts.getOffsets() != op.getResultOffsets())
      return fail("its results must be the rows and offsets of a moe.experts "
                  "op");
    if (!experts.getResult().hasOneUse())
      return fail("the moe.experts op it feeds must have one use, the "
                  "combine exchange");
    auto back = dyn_cast<AllToAllOp>(*experts.getResult().user_begin());
    if (!back || !back.getCombine() || back.getOffsets() != op.getOffsets() ||
        back.getRanks() != op.getRanks() ||
        back.getSchedule() != op.getSchedule() ||
        back.getChunks() != op.getChunks() ||
        back.getRanksPerNode() != op.getRanksPerNode() ||
        back.getPeersOfNodes() != op.getPeersOfNodes() ||
        !back.getResultOffsets().use_empty())
      return fail("the moe.experts op it feeds must be followed by the "
                  "matching combine exchange (same offsets, ranks, schedule, "
                  "chunks and ranks per node)");
    dispatches.push_back(op);
    return WalkResult::advance();
  });
  if (result.wasInterrupted())
    return failure();
  for (AllToAllOp op : dispatches) {
    auto experts = cast<ExpertsOp>(*op.getResultRows().user_begin());
    auto back = cast<AllToAllOp>(*experts.getResult().user_begin());
    Builder b(op.getContext());
    NamedAttrList exchange;
    exchange.append("ranks", op.getRanksAttr());
    exchange.append("schedule",
                    b.getStringAttr(stringifySchedule(op.getSchedule())));
    exchange.append("chunks", op.getChunksAttr());
    exchange.append("ranks_per_node", op.getRanksPerNodeAttr());
    exchange.append("peers_of_nodes", op.getPeersOfNodesAttr());
    experts->setAttr("moe.exchange", exchange.getDictionary(op.getContext()));
    experts->setOperand(0, op.getRows());
    experts->setOperand(1, op.getOffsets());
    back.getResultRows().replaceAllUsesWith(experts.getResult());
    back.erase();
    op.erase();
  }
  // A combine exchange left over has no dispatch exchange.
  result = func.walk([&](AllToAllOp op) {
    op.emitOpError("cannot be lowered: a combine exchange must follow a "
                   "moe.experts op fed by a dispatch exchange");
    return WalkResult::interrupt();
  });
  return failure(result.wasInterrupted());
}

static LogicalResult lowerFunction(func::FuncOp func, plan::Device device,
                                   const QuantOptions &quant) {
  if (func.isExternal())
    return success();
  FunctionType type = func.getFunctionType();
  bool tensors =
      llvm::all_of(type.getInputs(), llvm::IsaPred<RankedTensorType>) &&
      llvm::all_of(type.getResults(), llvm::IsaPred<RankedTensorType>);
  bool buffers = llvm::all_of(type.getInputs(), llvm::IsaPred<MemRefType>) &&
                 llvm::all_of(type.getResults(), llvm::IsaPred<MemRefType>);
  if (buffers && !func.getBody().front().getOps<plan::CallOp>().empty())
    return success(); // Already in plan form.
  if (!tensors)
    return func.emitOpError("arguments and results must all be ranked "
                            "tensors to lower to a plan");
  if (!func.getBody().hasOneBlock())
    return func.emitOpError("must have a single block to lower to a plan");

  if (failed(foldExchanges(func)))
    return failure();
  DenseMap<Operation *, SmallVector<int64_t, 3>> shards;
  DenseMap<Operation *, Type> cutResultTypes;
  if (failed(collectShards(func, shards, cutResultTypes)))
    return failure();
  DenseMap<Operation *, QuantSpec> quantSpecs;
  if (failed(collectQuantSpecs(func, quant.zeroPoints, quantSpecs)))
    return failure();

  Block &body = func.getBody().front();
  MLIRContext *ctx = func.getContext();
  OpBuilder b(ctx);
  IRMapping map;
  for (BlockArgument arg : body.getArguments()) {
    arg.setType(toBuffer(arg.getType()));
    map.map(arg, arg);
  }
  SmallVector<Operation *> oldOps;
  for (Operation &op : body)
    oldOps.push_back(&op);

  for (Operation *op : oldOps) {
    b.setInsertionPoint(op);
    Location loc = op->getLoc();
    auto mapped = [&](ValueRange values) {
      SmallVector<Value> out;
      for (Value v : values)
        out.push_back(map.lookup(v));
      return out;
    };
    if (auto w = dyn_cast<nn::WeightOp>(op)) {
      MemRefType type = toBuffer(w.getType());
      DenseI64ArrayAttr shardsAttr;
      if (auto it = shards.find(w); it != shards.end()) {
        // [E, .., D, ..] stored as [n·E, .., D / n, ..].
        int64_t d = it->second[0], n = it->second[2];
        SmallVector<int64_t> shape(type.getShape());
        shape[0] *= n;
        if (d > 0) // else n copies
          shape[size_t(d)] /= n;
        type = MemRefType::get(shape, type.getElementType());
        shardsAttr = b.getDenseI64ArrayAttr(it->second);
      }
      auto nw = b.create<plan::WeightOp>(
          loc, type, w.getNameAttr(), w.getFileAttr(), w.getOffsetAttr(),
          w.getSeedAttr(), w.getScaleAttr(),
          /*bits=*/nullptr, /*group_sizes=*/nullptr,
          /*quant_scale=*/nullptr, /*zero_points=*/nullptr, shardsAttr);
      auto spec = quantSpecs.find(w);
      if (spec != quantSpecs.end()) {
        nw.setBitsAttr(b.getDenseI64ArrayAttr(spec->second.bits));
        nw.setGroupSizesAttr(b.getDenseI64ArrayAttr(spec->second.groups));
        nw.setQuantScale(quant.scale);
        if (llvm::is_contained(spec->second.zeroPoints, true))
          nw.setZeroPointsAttr(
              b.getDenseBoolArrayAttr(spec->second.zeroPoints));
      }
      map.map(w.getResult(), nw.getResult());
      continue;
    }
    if (auto c = dyn_cast<arith::ConstantOp>(op)) {
      auto value = dyn_cast<ElementsAttr>(c.getValue());
      if (!value || !isa<RankedTensorType>(c.getType()))
        return c.emitOpError("only tensor constants can be lowered to a "
                             "plan; scalar constants have no buffer");
      if (auto it = shards.find(c); it != shards.end()) {
        auto dense = dyn_cast<DenseElementsAttr>(value);
        if (!dense)
          return c.emitOpError("a tensor-parallel cut needs a dense "
                               "constant");
        value = cutConstant(dense, it->second);
      }
      auto nc = b.create<plan::ConstantOp>(
          loc, toBuffer(cast<ShapedType>(value.getType())), value);
      map.map(c.getResult(), nc.getResult());
      continue;
    }
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      b.create<func::ReturnOp>(loc, mapped(ret.getOperands()));
      continue;
    }
    if (!isTensorLevel(op))
      return op->emitOpError("has no runtime kernel; cannot lower it to a "
                             "plan");
    ParamBuilder params(ctx);
    if (failed(buildParams(op, params)))
      return failure();
    SmallVector<Type> resultTypes;
    for (Type t : op->getResultTypes()) {
      // A dequantised weight that is cut for tensor parallelism.
      Type cut = cutResultTypes.lookup(op);
      resultTypes.push_back(toBuffer(cut ? cut : t));
    }
    auto call = b.create<plan::CallOp>(
        loc, resultTypes, b.getStringAttr(op->getName().getStringRef()),
        mapped(op->getOperands()), params.get(),
        plan::DeviceAttr::get(ctx, device));
    for (auto [from, to] : llvm::zip(op->getResults(), call.getResults()))
      map.map(from, to);
  }
  for (Operation *op : llvm::reverse(oldOps)) {
    op->dropAllUses();
    op->erase();
  }
  SmallVector<Type> inputs, results;
  for (Type t : type.getInputs())
    inputs.push_back(toBuffer(t));
  for (Type t : type.getResults())
    results.push_back(toBuffer(t));
  func.setFunctionType(FunctionType::get(ctx, inputs, results));
  insertFrees(func);
  return success();
}

namespace {
struct LowerToPlanPass
    : public mlir::moe::impl::LowerToPlanBase<LowerToPlanPass> {
  using LowerToPlanBase::LowerToPlanBase;

  void runOnOperation() override {
    std::optional<plan::Device> dev = plan::symbolizeDevice(device);
    if (!dev) {
      getOperation().emitError("moe-lower-to-plan: unknown device '")
          << device << "' (expected cpu or cuda)";
      return signalPassFailure();
    }
    if (quantScale != "f16" && quantScale != "f32") {
      getOperation().emitError("moe-lower-to-plan: quant-scale must be f16 "
                               "or f32, not '")
          << quantScale << "'";
      return signalPassFailure();
    }
    // The model's identity, computed while the moe.experts ops still exist:
    // profiles recorded with the plan carry it (docs/profile-format.md).
    ModuleOp module = getOperation();
    if (!module->hasAttr("moe.model_id"))
      module->setAttr("moe.model_id",
                      StringAttr::get(module.getContext(),
                                      modelFingerprint(module)));
    QuantOptions quant{quantScale, quantZeroPoints};
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (failed(lowerFunction(func, *dev, quant)))
        return signalPassFailure();
  }
};
} // namespace

FailureOr<DictionaryAttr> mlir::moe::buildKernelParams(Operation *op) {
  ParamBuilder params(op->getContext());
  if (failed(buildParams(op, params)))
    return failure();
  return params.get();
}
