//===- MoeOps.cpp - Operations of the moe dialect -------------------------===//
//
// Type inference and verifiers. Dimensions that are dynamic are not checked
// here; the runtime kernels check them when shapes are known.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoeDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace mlir::moe;

static bool dimsCompatible(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

/// T·k when T is known, else dynamic.
static int64_t rowsFor(int64_t tokens, int64_t k) {
  if (ShapedType::isDynamic(tokens) || ShapedType::isDynamic(k))
    return ShapedType::kDynamic;
  return tokens * k;
}

//===----------------------------------------------------------------------===//
// RouteOp
//===----------------------------------------------------------------------===//

LogicalResult RouteOp::inferReturnTypes(MLIRContext *ctx,
                                        std::optional<Location> loc,
                                        Adaptor adaptor,
                                        SmallVectorImpl<Type> &types) {
  auto logits = cast<RankedTensorType>(adaptor.getLogits().getType());
  int64_t k = static_cast<int64_t>(adaptor.getK());
  int64_t tokens = logits.getDimSize(0);
  types.push_back(
      RankedTensorType::get({tokens, k}, IntegerType::get(ctx, 64)));
  types.push_back(RankedTensorType::get({tokens, k}, logits.getElementType()));
  return success();
}

LogicalResult RouteOp::verify() {
  int64_t experts = getLogits().getType().getDimSize(1);
  if (!ShapedType::isDynamic(experts) && static_cast<int64_t>(getK()) > experts)
    return emitOpError("k = ")
           << getK() << " exceeds the number of experts " << experts;
  if (auto ex = getExcluded()) {
    if (!ShapedType::isDynamic(experts) &&
        static_cast<int64_t>(ex->size()) != experts)
      return emitOpError("excluded has ")
             << ex->size() << " entries for " << experts << " experts";
    int64_t left = llvm::count(*ex, false);
    if (left < static_cast<int64_t>(getK()))
      return emitOpError("excluded leaves ")
             << left << " experts, fewer than k = " << getK();
  }
  double skip = getSkipThreshold().convertToDouble(),
         protect = getProtectConfidence().convertToDouble(),
         mass = getBatchMass().convertToDouble();
  if (!(skip >= 0 && skip < 1))
    return emitOpError("skip_threshold must be in [0, 1)");
  if (!(protect >= 0 && protect <= 1))
    return emitOpError("protect_confidence must be in [0, 1]");
  if (!(mass >= 0 && mass <= 1))
    return emitOpError("batch_mass must be in [0, 1]");
  if (static_cast<int64_t>(getMaxExperts()) < 0)
    return emitOpError("max_experts must not be negative");
  return success();
}

//===----------------------------------------------------------------------===//
// DispatchOp
//===----------------------------------------------------------------------===//

LogicalResult DispatchOp::inferReturnTypes(MLIRContext *ctx,
                                           std::optional<Location> loc,
                                           Adaptor adaptor,
                                           SmallVectorImpl<Type> &types) {
  auto hidden = cast<RankedTensorType>(adaptor.getHidden().getType());
  auto ids = cast<RankedTensorType>(adaptor.getIds().getType());
  if (!dimsCompatible(hidden.getDimSize(0), ids.getDimSize(0)))
    return emitOptionalError(loc, "hidden has ", hidden.getDimSize(0),
                             " tokens but ids has ", ids.getDimSize(0));
  int64_t tokens = ShapedType::isDynamic(hidden.getDimSize(0))
                       ? ids.getDimSize(0)
                       : hidden.getDimSize(0);
  int64_t rows = rowsFor(tokens, ids.getDimSize(1));
  Type i64 = IntegerType::get(ctx, 64);
  types.push_back(RankedTensorType::get({rows, hidden.getDimSize(1)},
                                        hidden.getElementType()));
  types.push_back(RankedTensorType::get(
      {static_cast<int64_t>(adaptor.getNumExperts()) + 1}, i64));
  types.push_back(RankedTensorType::get({rows}, i64));
  return success();
}

//===----------------------------------------------------------------------===//
// ExpertsOp
//===----------------------------------------------------------------------===//

ExpertAttr ExpertsOp::getExpert(int64_t e) {
  if (auto experts = getExperts())
    return cast<ExpertAttr>((*experts)[e]);
  return ExpertAttr::get(getContext(), Placement::unassigned, 0, 0, false,
                         false);
}

/// Checks that `type` has the expected static dims (dynamic ones pass).
static LogicalResult checkShape(Operation *op, StringRef name,
                                RankedTensorType type,
                                ArrayRef<int64_t> expected) {
  if (type.getRank() != static_cast<int64_t>(expected.size()))
    return op->emitOpError() << name << " must have rank " << expected.size();
  for (auto [i, d] : llvm::enumerate(expected))
    if (!dimsCompatible(type.getDimSize(i), d))
      return op->emitOpError() << name << " has type " << type
                               << " but dimension " << i << " must be " << d;
  return success();
}

LogicalResult ExpertsOp::verify() {
  RankedTensorType w1 = getW1().getType();
  int64_t experts = w1.getDimSize(0);
  int64_t hidden = w1.getDimSize(2);
  if (ShapedType::isDynamic(experts))
    return emitOpError("the number of experts (w1 dimension 0) must be "
                       "static");
  Type elem = getInput().getType().getElementType();
  if (getResult().getType() != getInput().getType())
    return emitOpError("result type ")
           << getResult().getType() << " must equal the input type "
           << getInput().getType();
  bool swiglu = getActivation() == Activation::swiglu;
  if (!swiglu && getSwigluFusion() != 0)
    return emitOpError("swiglu_fusion = ")
           << getSwigluFusion() << " needs activation swiglu, not "
           << stringifyActivation(getActivation());
  if (auto limit = getSwigluLimit(); limit && !(limit->convertToDouble() >= 0))
    return emitOpError("swiglu_limit must be non-negative, got ")
           << limit->convertToDouble();
  bool fused = isFusedSwiglu();
  if (swiglu && !fused && !getW3())
    return emitOpError("swiglu with swiglu_fusion = 0 needs w3 (the linear "
                       "part)");
  if (fused && (getW3() || getB3()))
    return emitOpError("swiglu with swiglu_fusion = ")
           << getSwigluFusion()
           << " takes gate and linear parts from w1; w3 and b3 must be absent";
  // F comes from w2; a fused w1 has 2F rows.
  if (failed(checkShape(*this, "input", getInput().getType(),
                        {ShapedType::kDynamic, hidden})) ||
      failed(checkShape(*this, "offsets", getOffsets().getType(),
                        {experts + 1})) ||
      failed(checkShape(*this, "w2", getW2().getType(),
                        {experts, hidden, ShapedType::kDynamic})))
    return failure();
  int64_t inter = getFfnSize();
  int64_t fc1Rows = w1.getDimSize(1);
  if (fused && !ShapedType::isDynamic(fc1Rows) && fc1Rows % 2 != 0)
    return emitOpError("w1 has type ")
           << w1 << " but a fused swiglu needs an even dimension 1 (2F)";
  int64_t wantRows = ShapedType::isDynamic(inter) ? ShapedType::kDynamic
                     : fused                      ? 2 * inter
                                                  : inter;
  if (failed(checkShape(*this, "w1", w1, {experts, wantRows, hidden})))
    return failure();
  // Whichever of F and w1's rows is known gives the other.
  if (ShapedType::isDynamic(fc1Rows))
    fc1Rows = wantRows;
  if (ShapedType::isDynamic(inter) && !ShapedType::isDynamic(fc1Rows))
    inter = fused ? fc1Rows / 2 : fc1Rows;
  if (getW3() && failed(checkShape(*this, "w3", getW3().getType(),
                                   {experts, inter, hidden})))
    return failure();
  if (getB1() &&
      failed(checkShape(*this, "b1", getB1().getType(), {experts, fc1Rows})))
    return failure();
  if (getB2() &&
      failed(checkShape(*this, "b2", getB2().getType(), {experts, hidden})))
    return failure();
  if (getB3()) {
    if (!getW3())
      return emitOpError("b3 needs w3");
    if (failed(checkShape(*this, "b3", getB3().getType(), {experts, inter})))
      return failure();
  }
  for (Value v : getOperands().drop_front(2))
    if (cast<RankedTensorType>(v.getType()).getElementType() != elem)
      return emitOpError("weights and biases must have the input's element "
                         "type ")
             << elem;
  if (auto attrs = getExperts()) {
    if (static_cast<int64_t>(attrs->size()) != experts)
      return emitOpError("has ") << attrs->size() << " #moe.expert entries for "
                                 << experts << " experts";
  }
  return success();
}

//===----------------------------------------------------------------------===//
// CombineOp
//===----------------------------------------------------------------------===//

LogicalResult CombineOp::inferReturnTypes(MLIRContext *,
                                          std::optional<Location> loc,
                                          Adaptor adaptor,
                                          SmallVectorImpl<Type> &types) {
  auto y = cast<RankedTensorType>(adaptor.getExpertOutput().getType());
  auto perm = cast<RankedTensorType>(adaptor.getPerm().getType());
  auto weights = cast<RankedTensorType>(adaptor.getWeights().getType());
  int64_t rows = rowsFor(weights.getDimSize(0), weights.getDimSize(1));
  if (!dimsCompatible(y.getDimSize(0), perm.getDimSize(0)) ||
      !dimsCompatible(y.getDimSize(0), rows))
    return emitOptionalError(loc, "expert output rows ", y.getDimSize(0),
                             ", perm ", perm.getDimSize(0), " and tokens x k ",
                             rows, " must agree");
  if (y.getElementType() != weights.getElementType())
    return emitOptionalError(loc,
                             "expert output and weights element types differ");
  types.push_back(RankedTensorType::get(
      {weights.getDimSize(0), y.getDimSize(1)}, y.getElementType()));
  return success();
}

//===----------------------------------------------------------------------===//
// AllToAllOp
//===----------------------------------------------------------------------===//

LogicalResult AllToAllOp::inferReturnTypes(MLIRContext *,
                                           std::optional<Location>,
                                           Adaptor adaptor,
                                           SmallVectorImpl<Type> &types) {
  auto rows = cast<RankedTensorType>(adaptor.getRows().getType());
  // Another rank may send a different number of rows.
  types.push_back(RankedTensorType::get(
      {ShapedType::kDynamic, rows.getDimSize(1)}, rows.getElementType()));
  types.push_back(adaptor.getOffsets().getType());
  return success();
}

LogicalResult AllGatherOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location>,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &types) {
  for (Value v : adaptor.getInputs()) {
    auto in = cast<RankedTensorType>(v.getType());
    if (in.getRank() < 1)
      return failure();
    // The other ranks may hold other numbers of rows.
    SmallVector<int64_t> shape(in.getShape());
    shape[0] = ShapedType::kDynamic;
    types.push_back(RankedTensorType::get(shape, in.getElementType()));
  }
  return success();
}

LogicalResult AllGatherOp::verify() {
  if (getInputs().empty())
    return emitOpError("needs at least one input");
  int64_t rows = ShapedType::kDynamic;
  for (Value v : getInputs()) {
    auto t = cast<RankedTensorType>(v.getType());
    if (t.getRank() < 1)
      return emitOpError("needs inputs of rank 1 or more (the rows are "
                         "dimension 0)");
    int64_t r = t.getDimSize(0);
    if (!ShapedType::isDynamic(r) && !ShapedType::isDynamic(rows) && r != rows)
      return emitOpError("inputs have ")
             << rows << " and " << r << " rows; they must travel together";
    if (!ShapedType::isDynamic(r))
      rows = r;
  }
  return success();
}

LogicalResult ReduceScatterOp::inferReturnTypes(MLIRContext *,
                                                std::optional<Location>,
                                                Adaptor adaptor,
                                                SmallVectorImpl<Type> &types) {
  auto in = cast<RankedTensorType>(adaptor.getInput().getType());
  auto like = cast<RankedTensorType>(adaptor.getLike().getType());
  if (like.getRank() < 1)
    return failure(); // `like` gives the rows: dimension 0
  int64_t rows = like.getDimSize(0);
  types.push_back(RankedTensorType::get({rows, in.getDimSize(1)},
                                        in.getElementType()));
  return success();
}

#define GET_OP_CLASSES
#include "dialects/moe/MoeOps.cpp.inc"
