//===- RaiseExperts.cpp - Decomposed MoE subgraphs to moe ops -------------===//
//
// Exporters write an MoE layer as plain tensor ops in several forms: a loop
// over experts with NonZero/ScatterND (eager), a gather of the selected
// experts' weights with a batched matmul (batched_mm), or every expert on
// every token weighted by a routing matrix (dense). Rather than one brittle
// matcher per form, this pass
//  1. finds routers: `nn.topk` over a softmax of `x · W_router`
//     (or a softmax over the top-k logits),
//  2. finds where the layer ends: the nearest values that every path from
//     the top-k passes through (post-dominators) whose shape is the tokens',
//  3. finds the expert weights (the weights that value depends on, apart
//     from the router's): 3-D banks [E, a, b], or E groups of 2-D matrices,
//  4. proposes moe.route/dispatch/experts/combine for the few ways these can
//     be arranged (which bank is down, gate/up order, layouts, fused
//     gate/up, activation, renormalisation), and
//  5. keeps a proposal only if it computes the same values as the original
//     subgraph on random activations, run with the runtime kernels
//     (Evaluate.h) — so a rewrite is never wrong, and what is not
//     recognised stays as correct plain nn ops.
//
//===----------------------------------------------------------------------===//

#include "passes/Evaluate.h"
#include "passes/Passes.h"

#include "dialects/moe/MoeDialect.h"
#include "dialects/nn/NNDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringSet.h"

#include <cmath>
#include <random>

namespace mlir::moe {
#define GEN_PASS_DEF_RAISEEXPERTS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;
namespace rt = ::moe::rt;

namespace {

bool isOp(Operation *op, StringRef name) {
  return op && op->getName().getStringRef() == name;
}

/// Looks through casts that do not change the type.
Value skipCasts(Value v) {
  while (Operation *def = v.getDefiningOp()) {
    if (!isOp(def, "nn.cast") || def->getOperand(0).getType() != v.getType())
      break;
    v = def->getOperand(0);
  }
  return v;
}

bool isReshapeLike(Operation *op) {
  return isOp(op, "nn.reshape") || isOp(op, "nn.dynamic_reshape") ||
         isOp(op, "nn.flatten") || isOp(op, "nn.squeeze") ||
         isOp(op, "nn.unsqueeze") ||
         (isOp(op, "nn.cast") &&
          op->getOperand(0).getType() == op->getResult(0).getType());
}

std::optional<int64_t> constantInt(Value v) {
  auto c = v.getDefiningOp<arith::ConstantOp>();
  if (!c)
    return std::nullopt;
  auto dense = dyn_cast<DenseIntElementsAttr>(c.getValue());
  if (!dense || dense.getNumElements() != 1)
    return std::nullopt;
  return (*dense.getValues<APInt>().begin()).getSExtValue();
}

struct Router {
  Operation *topk = nullptr;
  Value logits; ///< [..., E]
  Value x;      ///< the router's input [..., H]
  Value cut;    ///< where random activations are fed: x before reshapes
  int64_t k = 0, experts = 0, hidden = 0;
  bool normalizeGuess = false;
};

std::optional<Router> findRouter(Operation *topk) {
  Router r;
  r.topk = topk;
  std::optional<int64_t> k = constantInt(topk->getOperand(1));
  if (!k || *k <= 0)
    return std::nullopt;
  r.k = *k;
  Value in = skipCasts(topk->getOperand(0));
  Operation *def = in.getDefiningOp();
  Value values = topk->getResult(0);
  if (isOp(def, "nn.softmax")) {
    r.logits = skipCasts(def->getOperand(0));
    // Renormalised when the top-k probabilities are divided by their sum.
    for (Operation *user : values.getUsers())
      if (isOp(user, "nn.div") && user->getOperand(0) == values)
        if (Operation *sum = user->getOperand(1).getDefiningOp())
          if (isOp(sum, "nn.reduce_sum") && sum->getOperand(0) == values)
            r.normalizeGuess = true;
  } else {
    // softmax over the top-k logits = softmax, top-k, renormalise.
    r.logits = in;
    bool softmaxAfter = llvm::any_of(values.getUsers(), [](Operation *u) {
      return isOp(u, "nn.softmax");
    });
    if (!softmaxAfter)
      return std::nullopt;
    r.normalizeGuess = true;
  }
  auto lt = dyn_cast<RankedTensorType>(r.logits.getType());
  if (!lt || lt.getRank() < 1 || ShapedType::isDynamic(lt.getShape().back()))
    return std::nullopt;
  r.experts = lt.getShape().back();
  if (r.k > r.experts)
    return std::nullopt;
  Operation *mm = skipCasts(r.logits).getDefiningOp();
  if (!isOp(mm, "nn.matmul") && !isOp(mm, "nn.linear"))
    return std::nullopt;
  r.x = mm->getOperand(0);
  auto xt = dyn_cast<RankedTensorType>(r.x.getType());
  if (!xt || !xt.getElementType().isF32() || xt.getRank() < 1 ||
      ShapedType::isDynamic(xt.getShape().back()))
    return std::nullopt;
  r.hidden = xt.getShape().back();
  r.cut = r.x;
  while (Operation *d = r.cut.getDefiningOp()) {
    if (!isReshapeLike(d))
      break;
    r.cut = d->getOperand(0);
  }
  return r;
}

/// Values every path from `topk` to the end of the block passes through,
/// nearest first, up to the next router.
SmallVector<Value> postDominators(Operation *topk, size_t limit) {
  Block *block = topk->getBlock();
  llvm::SetVector<Operation *> slice;
  slice.insert(topk);
  for (size_t i = 0; i < slice.size(); ++i)
    for (Value r : slice[i]->getResults())
      for (Operation *user : r.getUsers())
        if (user->getBlock() == block)
          slice.insert(user);
  llvm::DenseMap<Value, unsigned> open;
  auto addResults = [&](Operation *op) {
    for (Value r : op->getResults()) {
      unsigned uses = unsigned(std::distance(r.use_begin(), r.use_end()));
      if (uses)
        open[r] = uses;
    }
  };
  addResults(topk);
  SmallVector<Value> result;
  for (Operation *op = topk->getNextNode(); op && result.size() < limit;
       op = op->getNextNode()) {
    if (!slice.contains(op))
      continue;
    if (isOp(op, "nn.topk"))
      break;
    for (Value operand : op->getOperands()) {
      auto it = open.find(operand);
      if (it != open.end() && --it->second == 0)
        open.erase(it);
    }
    addResults(op);
    if (open.size() == 1 && op->getNumResults() == 1 &&
        open.begin()->first == op->getResult(0))
      result.push_back(op->getResult(0));
  }
  return result;
}

/// A bank of expert weights: one [E, a, b] tensor, or E [a, b] matrices.
struct Bank {
  Value whole;
  SmallVector<Value> parts;
  int64_t a = 0, b = 0;
};

/// One way to arrange the banks into moe.experts.
struct Hypothesis {
  int down = -1;
  bool downT = false;
  SmallVector<int> ups; ///< gate first (one bank when fused or ungated)
  SmallVector<bool> upsT;
  int64_t fusion = 0;
  Activation act = Activation::silu;
  bool normalize = true;
};

class Raiser {
public:
  Raiser(func::FuncOp func, std::string baseDir, uint64_t budget)
      : func_(func), eval_(std::move(baseDir)) {
    eval_.setWeightBudget(budget);
  }

  /// Raises one router; true when it was rewritten.
  bool raise(const Router &router);
  const std::string &why() const { return why_; }

private:
  bool collectBanks(Value v, const Router &r, SmallVector<Bank> &banks,
                    llvm::StringSet<> &opNames);
  bool makeInputs(const Router &r, Value v);
  Value buildBank(OpBuilder &b, Location loc, const Bank &bank, bool transpose,
                  SmallVectorImpl<Operation *> &created);
  Value build(const Router &r, Value v, ArrayRef<Bank> banks,
              const Hypothesis &h, SmallVectorImpl<Operation *> &created);
  bool check(Value candidate);
  SmallVector<Hypothesis> hypotheses(const Router &r, ArrayRef<Bank> banks,
                                     const llvm::StringSet<> &opNames);

  func::FuncOp func_;
  Evaluator eval_;
  std::string why_;
  /// Random activations for the cut and the original's results on them.
  SmallVector<SmallVector<rt::Tensor>> inputs_;
  SmallVector<rt::Tensor> expected_;
  Value cut_;
  SmallVector<Value> leaves_;
  bool needsArgs_ = false;
};

/// Random data for value `v` (float: N(0, 1); integer: in [0, bound) where
/// bound comes from the gathers that index with it), with every dynamic dim
/// but the first 1 and the first `tokens`.
FailureOr<rt::Tensor> randomTensor(Value v, int64_t tokens, std::mt19937 &gen) {
  auto type = cast<RankedTensorType>(v.getType());
  std::optional<rt::DType> d = runtimeDType(type.getElementType());
  if (!d)
    return failure();
  rt::Shape shape;
  bool first = true;
  for (int64_t dim : type.getShape()) {
    shape.push_back(ShapedType::isDynamic(dim) ? (first ? tokens : 1) : dim);
    if (ShapedType::isDynamic(dim))
      first = false;
  }
  rt::StatusOr<rt::Tensor> t = rt::Tensor::allocate(*d, shape);
  if (!t.isOk())
    return failure();
  int64_t n = t->numElements();
  if (*d == rt::DType::F32) {
    std::normal_distribution<float> normal(0.f, 1.f);
    for (int64_t i = 0; i < n; ++i)
      t->mutableData<float>()[i] = normal(gen);
  } else if (*d == rt::DType::I64 || *d == rt::DType::I32) {
    int64_t bound = 2;
    for (OpOperand &use : v.getUses()) {
      Operation *user = use.getOwner();
      if (isOp(user, "nn.gather") && use.getOperandNumber() == 1) {
        auto data = cast<RankedTensorType>(user->getOperand(0).getType());
        int64_t axis = 0;
        if (auto a = user->getAttrOfType<IntegerAttr>("axis"))
          axis = a.getInt();
        if (axis < 0)
          axis += data.getRank();
        if (axis >= 0 && axis < data.getRank() &&
            !ShapedType::isDynamic(data.getDimSize(axis)))
          bound = data.getDimSize(axis);
      }
    }
    std::uniform_int_distribution<int64_t> pick(0, bound - 1);
    for (int64_t i = 0; i < n; ++i) {
      if (*d == rt::DType::I64)
        t->mutableData<int64_t>()[i] = pick(gen);
      else
        t->mutableData<int32_t>()[i] = int32_t(pick(gen));
    }
  } else {
    return failure();
  }
  return std::move(*t);
}

bool Raiser::collectBanks(Value v, const Router &r, SmallVector<Bank> &banks,
                          llvm::StringSet<> &opNames) {
  // Backward slice of v, stopping at the cut. What is reached only through
  // nn.shape (shapes of the residual stream, ...) contributes no weights.
  llvm::SetVector<Operation *> slice;
  SmallVector<std::pair<Value, bool>> work{{v, false}};
  llvm::DenseSet<std::pair<Value, unsigned>> seen;
  while (!work.empty()) {
    auto [cur, viaShape] = work.pop_back_val();
    if (cur == r.cut || !seen.insert({cur, unsigned(viaShape)}).second)
      continue;
    Operation *def = cur.getDefiningOp();
    if (!def) {
      // Exports often take shapes from values before the layer's input:
      // then the whole prefix is evaluated from random model inputs.
      needsArgs_ = true;
      continue;
    }
    if (!viaShape)
      slice.insert(def);
    bool shape = viaShape || isOp(def, "nn.shape");
    for (Value operand : def->getOperands())
      work.push_back({operand, shape});
  }
  // The router's own weights are not expert weights.
  llvm::DenseSet<Operation *> routerOps;
  SmallVector<Value> rwork{r.logits};
  while (!rwork.empty()) {
    Value cur = rwork.pop_back_val();
    Operation *def = cur.getDefiningOp();
    if (!def || cur == r.cut || !routerOps.insert(def).second)
      continue;
    for (Value operand : def->getOperands())
      rwork.push_back(operand);
  }
  // Weights in order of first use.
  llvm::DenseMap<Operation *, unsigned> position;
  unsigned pos = 0;
  for (Operation &op : func_.getBody().front())
    position[&op] = pos++;
  SmallVector<std::pair<unsigned, Value>> weights;
  for (Operation *op : slice) {
    opNames.insert(op->getName().getStringRef());
    auto w = dyn_cast<nn::WeightOp>(op);
    if (!w || routerOps.contains(op))
      continue;
    auto t = w.getType();
    if (!t.getElementType().isF32() || (t.getRank() != 2 && t.getRank() != 3))
      continue;
    unsigned first = ~0u;
    for (Operation *user : w->getUsers())
      if (slice.contains(user))
        first = std::min(first, position[user]);
    weights.push_back({first, w.getResult()});
  }
  llvm::sort(weights, [](auto &x, auto &y) { return x.first < y.first; });
  SmallVector<Value> w3d, w2d;
  for (auto &[p, w] : weights) {
    auto t = cast<RankedTensorType>(w.getType());
    if (t.getRank() == 3 && t.getDimSize(0) == r.experts)
      w3d.push_back(w);
    else if (t.getRank() == 2)
      w2d.push_back(w);
  }
  // 3-D banks win: exporters also leave 2-D float constants in the layer
  // (zero accumulators of the tokens' shape, ...), which are not experts.
  if (!w3d.empty()) {
    for (Value w : w3d) {
      auto t = cast<RankedTensorType>(w.getType());
      banks.push_back(Bank{w, {}, t.getDimSize(1), t.getDimSize(2)});
    }
  } else if (w3d.empty() && !w2d.empty() &&
             w2d.size() % size_t(r.experts) == 0) {
    size_t roles = w2d.size() / size_t(r.experts);
    for (size_t j = 0; j < roles; ++j) {
      Bank bank;
      for (int64_t e = 0; e < r.experts; ++e)
        bank.parts.push_back(w2d[size_t(e) * roles + j]);
      auto t = cast<RankedTensorType>(bank.parts[0].getType());
      bank.a = t.getDimSize(0);
      bank.b = t.getDimSize(1);
      for (Value p : bank.parts)
        if (p.getType() != t) {
          why_ = "the per-expert weights differ in shape";
          return false;
        }
      banks.push_back(bank);
    }
  } else {
    why_ = "no expert weight banks found (" + std::to_string(w3d.size()) +
           " 3-D with " + std::to_string(r.experts) + " experts, " +
           std::to_string(w2d.size()) + " 2-D weights)";
    return false;
  }
  if (banks.size() != 2 && banks.size() != 3) {
    why_ = "found " + std::to_string(banks.size()) + " expert weight banks";
    return false;
  }
  return true;
}

SmallVector<Hypothesis> Raiser::hypotheses(const Router &r,
                                           ArrayRef<Bank> banks,
                                           const llvm::StringSet<> &opNames) {
  int64_t h = r.hidden;
  SmallVector<Activation> acts;
  if (opNames.contains("nn.sigmoid") || opNames.contains("nn.silu"))
    acts.push_back(Activation::silu);
  if (opNames.contains("nn.gelu")) {
    acts.push_back(Activation::gelu);
    acts.push_back(Activation::gelu_tanh);
  }
  if (opNames.contains("nn.relu"))
    acts.push_back(Activation::relu);
  if (acts.empty())
    acts.push_back(Activation::silu);
  SmallVector<Hypothesis> out;
  int n = int(banks.size());
  // The bank used last is the likeliest down projection.
  for (int d = n - 1; d >= 0; --d) {
    for (bool downT : {false, true}) {
      int64_t f;
      if (!downT && banks[d].a == h)
        f = banks[d].b; // [H, F]: out, in
      else if (downT && banks[d].b == h)
        f = banks[d].a; // [F, H]: in, out
      else
        continue;
      SmallVector<int> rest;
      for (int i = 0; i < n; ++i)
        if (i != d)
          rest.push_back(i);
      // Layout of an up bank: out-of-in (direct) when b == H.
      auto upOptions = [&](int i) {
        SmallVector<std::pair<bool, int64_t>> o;
        if (banks[i].b == h)
          o.push_back({false, banks[i].a});
        if (banks[i].a == h)
          o.push_back({true, banks[i].b});
        return o;
      };
      for (bool norm : {r.normalizeGuess, !r.normalizeGuess}) {
        if (rest.size() == 1) {
          for (auto [t, width] : upOptions(rest[0])) {
            if (width == 2 * f) {
              for (int64_t fusion : {2, 1})
                out.push_back(Hypothesis{d, downT, {rest[0]}, {t}, fusion,
                                         Activation::swiglu, norm});
            } else if (width == f) {
              for (Activation a : acts)
                out.push_back(
                    Hypothesis{d, downT, {rest[0]}, {t}, 0, a, norm});
            }
          }
        } else {
          for (auto order : {std::pair{rest[0], rest[1]},
                             std::pair{rest[1], rest[0]}})
            for (auto [t0, w0] : upOptions(order.first))
              for (auto [t1, w1] : upOptions(order.second))
                if (w0 == f && w1 == f)
                  for (Activation a : acts)
                    out.push_back(Hypothesis{d, downT,
                                             {order.first, order.second},
                                             {t0, t1}, 0, a, norm});
        }
      }
    }
  }
  return out;
}

/// Random inputs on which the original subgraph runs (exports that bake
/// data-dependent sizes only run on some inputs): activations for the cut,
/// or, when the layer reads values from before it, random model inputs.
bool Raiser::makeInputs(const Router &r, Value v) {
  inputs_.clear();
  expected_.clear();
  cut_ = r.cut;
  SmallVector<Value> leaves;
  if (needsArgs_)
    for (BlockArgument arg : func_.getArguments())
      leaves.push_back(arg);
  else
    leaves.push_back(r.cut);
  std::mt19937 gen(1234);
  const int64_t tokenChoices[] = {3, 4, 2, 5, 6, 1, 7, 8};
  std::string lastError;
  for (int attempt = 0; attempt < 48 && inputs_.size() < 2; ++attempt) {
    int64_t tokens = tokenChoices[attempt % 8];
    SmallVector<rt::Tensor> bound;
    for (Value leaf : leaves) {
      FailureOr<rt::Tensor> t = randomTensor(leaf, tokens, gen);
      if (failed(t)) {
        why_ = "cannot make random data for the layer's inputs";
        return false;
      }
      bound.push_back(*t);
    }
    eval_.reset();
    for (auto [leaf, t] : llvm::zip(leaves, bound))
      eval_.bind(leaf, t);
    FailureOr<rt::Tensor> out = eval_.eval(v);
    if (failed(out)) {
      lastError = eval_.error();
      continue;
    }
    inputs_.push_back(bound);
    expected_.push_back(*out);
  }
  leaves_ = leaves;
  if (inputs_.empty()) {
    why_ = "the original layer could not be evaluated: " + lastError;
    return false;
  }
  return true;
}

bool Raiser::check(Value candidate) {
  for (size_t i = 0; i < inputs_.size(); ++i) {
    eval_.reset();
    for (auto [leaf, t] : llvm::zip(leaves_, inputs_[i]))
      eval_.bind(leaf, t);
    FailureOr<rt::Tensor> got = eval_.eval(candidate);
    if (failed(got))
      return false;
    const rt::Tensor &want = expected_[i];
    if (got->shape() != want.shape() || got->dtype() != rt::DType::F32)
      return false;
    const float *g = got->data<float>(), *w = want.data<float>();
    double maxRef = 0, maxErr = 0;
    for (int64_t j = 0; j < want.numElements(); ++j) {
      maxRef = std::max(maxRef, double(std::fabs(w[j])));
      maxErr = std::max(maxErr, double(std::fabs(g[j] - w[j])));
    }
    if (!(maxErr <= 1e-4 * maxRef + 1e-6))
      return false;
  }
  return true;
}

Operation *createNN(OpBuilder &b, Location loc, StringRef name,
                    ValueRange operands, Type result,
                    ArrayRef<NamedAttribute> attrs,
                    SmallVectorImpl<Operation *> &created) {
  OperationState st(loc, name);
  st.addOperands(operands);
  st.addTypes(result);
  st.addAttributes(attrs);
  Operation *op = b.create(st);
  created.push_back(op);
  return op;
}

Value Raiser::buildBank(OpBuilder &b, Location loc, const Bank &bank,
                        bool transpose,
                        SmallVectorImpl<Operation *> &created) {
  Type f32 = b.getF32Type();
  if (bank.whole) {
    if (!transpose)
      return bank.whole;
    auto t = cast<RankedTensorType>(bank.whole.getType());
    auto type =
        RankedTensorType::get({t.getDimSize(0), bank.b, bank.a}, f32);
    return createNN(b, loc, "nn.transpose", bank.whole, type,
                    {b.getNamedAttr("perm", b.getDenseI64ArrayAttr({0, 2, 1}))},
                    created)
        ->getResult(0);
  }
  int64_t rows = transpose ? bank.b : bank.a, cols = transpose ? bank.a : bank.b;
  SmallVector<Value> parts;
  for (Value p : bank.parts) {
    Value m = p;
    if (transpose)
      m = createNN(b, loc, "nn.transpose", p,
                   RankedTensorType::get({rows, cols}, f32),
                   {b.getNamedAttr("perm", b.getDenseI64ArrayAttr({1, 0}))},
                   created)
              ->getResult(0);
    parts.push_back(
        createNN(b, loc, "nn.reshape", m,
                 RankedTensorType::get({1, rows, cols}, f32),
                 {b.getNamedAttr("shape",
                                 b.getDenseI64ArrayAttr({1, rows, cols}))},
                 created)
            ->getResult(0));
  }
  return createNN(b, loc, "nn.concat", parts,
                  RankedTensorType::get({int64_t(parts.size()), rows, cols},
                                        f32),
                  {b.getNamedAttr("axis", b.getI64IntegerAttr(0))}, created)
      ->getResult(0);
}

Value Raiser::build(const Router &r, Value v, ArrayRef<Bank> banks,
                    const Hypothesis &h,
                    SmallVectorImpl<Operation *> &created) {
  Operation *at = v.getDefiningOp();
  OpBuilder b(at);
  Location loc = at->getLoc();
  Type f32 = b.getF32Type();
  int64_t dyn = ShapedType::kDynamic;
  auto flat = [&](Value x, int64_t width) -> Value {
    auto t = cast<RankedTensorType>(x.getType());
    if (t.getRank() == 2)
      return x;
    int64_t rows = t.hasStaticShape() ? t.getNumElements() / width : dyn;
    return createNN(b, loc, "nn.reshape", x,
                    RankedTensorType::get({rows, width}, t.getElementType()),
                    {b.getNamedAttr("shape",
                                    b.getDenseI64ArrayAttr({-1, width}))},
                    created)
        ->getResult(0);
  };
  Value x = flat(r.x, r.hidden);
  Value logits = flat(r.logits, r.experts);
  auto route = b.create<RouteOp>(loc, logits, uint64_t(r.k), Scoring::softmax,
                                 h.normalize);
  created.push_back(route);
  auto dispatch =
      b.create<DispatchOp>(loc, x, route.getIds(), uint64_t(r.experts));
  created.push_back(dispatch);
  Value w2 = buildBank(b, loc, banks[h.down], h.downT, created);
  Value w1 = buildBank(b, loc, banks[h.ups[0]], h.upsT[0], created);
  Value w3 = h.ups.size() > 1 ? buildBank(b, loc, banks[h.ups[1]], h.upsT[1],
                                          created)
                              : Value();
  auto experts = b.create<ExpertsOp>(
      loc, dispatch.getRows().getType(), dispatch.getRows(),
      dispatch.getOffsets(), w1, w2, w3, Value(), Value(), Value(), h.act,
      APFloat(1.0), APFloat(0.0), FloatAttr(), uint64_t(h.fusion),
      ArrayAttr());
  created.push_back(experts);
  auto combine = b.create<CombineOp>(loc, experts.getResult(),
                                     dispatch.getPerm(), route.getWeights());
  created.push_back(combine);
  Value out = combine.getResult();
  auto vt = cast<RankedTensorType>(v.getType());
  if (out.getType() == vt)
    return out;
  SmallVector<int64_t> shape;
  for (int64_t d : vt.getShape())
    shape.push_back(ShapedType::isDynamic(d) ? -1 : d);
  if (vt.getRank() == 2)
    shape = {-1, r.hidden};
  if (llvm::count(shape, -1) <= 1)
    return createNN(b, loc, "nn.reshape", out, vt,
                    {b.getNamedAttr("shape", b.getDenseI64ArrayAttr(shape))},
                    created)
        ->getResult(0);
  auto ct = cast<RankedTensorType>(r.cut.getType());
  if (ct.getRank() != vt.getRank())
    return Value();
  Value shapeOf =
      createNN(b, loc, "nn.shape", r.cut,
               RankedTensorType::get({ct.getRank()}, b.getI64Type()),
               {b.getNamedAttr("start", b.getI64IntegerAttr(0)),
                b.getNamedAttr("end", b.getI64IntegerAttr(ct.getRank()))},
               created)
          ->getResult(0);
  (void)f32;
  return createNN(b, loc, "nn.dynamic_reshape", ValueRange{out, shapeOf}, vt,
                  {b.getNamedAttr("allowzero", b.getI64IntegerAttr(0))},
                  created)
      ->getResult(0);
}

bool Raiser::raise(const Router &r) {
  // Weights are cached per layer only, so memory stays bounded by the
  // weights one layer's check reads (verify-budget-mb).
  eval_.clear();
  SmallVector<Value> candidates = postDominators(r.topk, 16);
  int tried = 0;
  why_ = "no value after the router has the tokens' shape";
  for (Value v : candidates) {
    auto vt = dyn_cast<RankedTensorType>(v.getType());
    // The tokens' shape; exporters often lose static dims (checked at
    // evaluation time instead).
    if (!vt || !vt.getElementType().isF32() || vt.getRank() < 2 ||
        vt.getRank() > 3 ||
        (!ShapedType::isDynamic(vt.getShape().back()) &&
         vt.getShape().back() != r.hidden))
      continue;
    if (++tried > 4)
      break;
    SmallVector<Bank> banks;
    llvm::StringSet<> opNames;
    needsArgs_ = false;
    if (!collectBanks(v, r, banks, opNames))
      continue;
    if (!makeInputs(r, v))
      continue;
    SmallVector<Hypothesis> hyps = hypotheses(r, banks, opNames);
    why_ = "none of " + std::to_string(hyps.size()) +
           " arrangements of the expert weights reproduces the layer";
    for (const Hypothesis &h : hyps) {
      SmallVector<Operation *> created;
      Value result = build(r, v, banks, h, created);
      if (result && check(result)) {
        v.replaceAllUsesWith(result);
        return true;
      }
      for (Operation *op : llvm::reverse(created))
        op->erase();
    }
  }
  return false;
}

/// Removes ops without uses of our dialects and arith (all side-effect free).
void eraseDeadOps(func::FuncOp func) {
  bool changed = true;
  while (changed) {
    changed = false;
    for (Operation &op :
         llvm::make_early_inc_range(llvm::reverse(func.getBody().front()))) {
      if (!op.use_empty() || op.hasTrait<OpTrait::IsTerminator>())
        continue;
      Dialect *d = op.getDialect();
      if (!isa_and_nonnull<nn::NNDialect, MoeDialect, arith::ArithDialect>(d))
        continue;
      op.erase();
      changed = true;
    }
  }
}

struct RaiseExpertsPass
    : public mlir::moe::impl::RaiseExpertsBase<RaiseExpertsPass> {
  using RaiseExpertsBase::RaiseExpertsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::string dir = weightsDir;
    if (dir.empty())
      if (auto a = module->getAttrOfType<StringAttr>("moe.weights_dir"))
        dir = a.str();
    if (dir.empty())
      dir = ".";
    for (auto func : module.getOps<func::FuncOp>()) {
      if (func.isExternal() || !func.getBody().hasOneBlock())
        continue;
      SmallVector<Operation *> topks;
      func.walk([&](Operation *op) {
        if (isOp(op, "nn.topk"))
          topks.push_back(op);
      });
      Raiser raiser(func, dir, uint64_t(verifyBudgetMb) << 20);
      bool any = false;
      for (Operation *topk : topks) {
        std::optional<Router> r = findRouter(topk);
        if (!r)
          continue;
        if (raiser.raise(*r)) {
          any = true;
          ++numRaised;
        } else if (report) {
          topk->emitRemark("MoE layer not raised: ") << raiser.why();
        }
      }
      if (any)
        eraseDeadOps(func);
    }
  }
};

} // namespace
