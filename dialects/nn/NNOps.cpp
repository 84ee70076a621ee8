//===- NNOps.cpp - Operations of the nn dialect ---------------------------===//
//
// Type inference and verifiers. Shapes may hold dynamic dimensions; every
// check here only compares what is known statically.
//
//===----------------------------------------------------------------------===//

#include "dialects/nn/NNDialect.h"

#include "mlir/Dialect/Traits.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/TypeUtilities.h"

using namespace mlir;
using namespace mlir::nn;

FailureOr<int64_t> infer::normalizeAxis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    return failure();
  return axis < 0 ? axis + rank : axis;
}

LogicalResult infer::inferBroadcastType(std::optional<Location> loc, Type lhs,
                                        Type rhs,
                                        SmallVectorImpl<Type> &types) {
  auto l = cast<RankedTensorType>(lhs);
  auto r = cast<RankedTensorType>(rhs);
  if (l.getElementType() != r.getElementType())
    return emitOptionalError(loc, "operands have different element types ",
                             l.getElementType(), " and ", r.getElementType());
  SmallVector<int64_t> shape;
  if (!OpTrait::util::getBroadcastedShape(l.getShape(), r.getShape(), shape))
    return emitOptionalError(loc, "shapes ", l, " and ", r,
                             " do not broadcast");
  types.push_back(RankedTensorType::get(shape, l.getElementType()));
  return success();
}

LogicalResult infer::inferReduceType(std::optional<Location> loc, Type input,
                                     ArrayRef<int64_t> axes, bool keepdims,
                                     SmallVectorImpl<Type> &types) {
  auto t = cast<RankedTensorType>(input);
  int64_t rank = t.getRank();
  SmallVector<bool> reduced(rank, axes.empty());
  for (int64_t axis : axes) {
    FailureOr<int64_t> a = normalizeAxis(axis, rank);
    if (failed(a))
      return emitOptionalError(loc, "axis ", axis, " is out of range for rank ",
                               rank);
    if (reduced[*a])
      return emitOptionalError(loc, "axis ", axis, " is listed twice");
    reduced[*a] = true;
  }
  SmallVector<int64_t> shape;
  for (int64_t i = 0; i < rank; ++i) {
    if (!reduced[i])
      shape.push_back(t.getDimSize(i));
    else if (keepdims)
      shape.push_back(1);
  }
  types.push_back(RankedTensorType::get(shape, t.getElementType()));
  return success();
}

LogicalResult infer::inferCompareType(std::optional<Location> loc, Type lhs,
                                      Type rhs, SmallVectorImpl<Type> &types) {
  if (failed(inferBroadcastType(loc, lhs, rhs, types)))
    return failure();
  auto t = cast<RankedTensorType>(types.back());
  types.back() = t.clone(IntegerType::get(t.getContext(), 1));
  return success();
}

bool infer::dimsCompatible(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

bool infer::typesCompatible(Type inferred, Type actual) {
  if (inferred == actual)
    return true;
  auto a = dyn_cast<RankedTensorType>(inferred);
  auto b = dyn_cast<RankedTensorType>(actual);
  if (!a || !b || a.getElementType() != b.getElementType() ||
      a.getRank() != b.getRank())
    return false;
  return llvm::all_of_zip(a.getShape(), b.getShape(), dimsCompatible);
}

bool infer::isCompatibleReturnTypes(TypeRange inferred, TypeRange actual) {
  return inferred.size() == actual.size() &&
         llvm::all_of_zip(inferred, actual, typesCompatible);
}

using infer::dimsCompatible;

//===----------------------------------------------------------------------===//
// Result types in the assembly
//===----------------------------------------------------------------------===//
//
// Ops with inferred result types print `-> type` after their operand types
// only when the result type differs from the inferred one (an importer may
// know more, or less, than inference), so that such IR round-trips.

using InferFn = function_ref<LogicalResult(std::optional<Location>,
                                           SmallVectorImpl<Type> &)>;

static ParseResult parseInferredResult(OpAsmParser &parser, ArrayRef<Type> from,
                                       Type &result, InferFn infer) {
  if (succeeded(parser.parseOptionalArrow()))
    return parser.parseType(result);
  SMLoc at = parser.getNameLoc();
  if (!llvm::all_of(from,
                    [](Type t) { return !t || isa<RankedTensorType>(t); }))
    return parser.emitError(at, "operands must be ranked tensors");
  SmallVector<Type> types;
  if (failed(infer(parser.getEncodedSourceLoc(at), types)))
    return failure();
  result = types.front();
  return success();
}

static void printInferredResult(OpAsmPrinter &p, Type result, InferFn infer) {
  SmallVector<Type> types;
  if (succeeded(infer(std::nullopt, types)) && types.front() == result)
    return;
  p << " -> " << result;
}

static ParseResult parseSameResult(OpAsmParser &parser, Type input,
                                   Type &result) {
  return parseInferredResult(parser, {input}, result,
                             [&](auto, SmallVectorImpl<Type> &types) {
                               types.push_back(input);
                               return success();
                             });
}
static void printSameResult(OpAsmPrinter &p, Operation *, Type input,
                            Type result) {
  if (input != result)
    p << " -> " << result;
}

static ParseResult parseBroadcastResult(OpAsmParser &parser, Type lhs, Type rhs,
                                        Type &result) {
  return parseInferredResult(
      parser, {lhs, rhs}, result, [&](auto loc, auto &t) {
        return infer::inferBroadcastType(loc, lhs, rhs, t);
      });
}
static void printBroadcastResult(OpAsmPrinter &p, Operation *, Type lhs,
                                 Type rhs, Type result) {
  printInferredResult(p, result, [&](auto loc, auto &t) {
    return infer::inferBroadcastType(loc, lhs, rhs, t);
  });
}

static ParseResult parseCompareResult(OpAsmParser &parser, Type lhs, Type rhs,
                                      Type &result) {
  return parseInferredResult(parser, {lhs, rhs}, result,
                             [&](auto loc, auto &t) {
                               return infer::inferCompareType(loc, lhs, rhs, t);
                             });
}
static void printCompareResult(OpAsmPrinter &p, Operation *, Type lhs, Type rhs,
                               Type result) {
  printInferredResult(p, result, [&](auto loc, auto &t) {
    return infer::inferCompareType(loc, lhs, rhs, t);
  });
}

/// The broadcast of the three operands of nn.where, of `x`'s element type.
static LogicalResult inferWhereType(std::optional<Location> loc, Type cond,
                                    Type x, Type y,
                                    SmallVectorImpl<Type> &types) {
  auto c = cast<RankedTensorType>(cond);
  if (failed(infer::inferBroadcastType(loc, x, y, types)))
    return failure();
  auto xy = cast<RankedTensorType>(types.back());
  SmallVector<int64_t> shape;
  if (!OpTrait::util::getBroadcastedShape(c.getShape(), xy.getShape(), shape))
    return emitOptionalError(loc, "condition ", c, " does not broadcast with ",
                             xy);
  types.back() = xy.clone(shape);
  return success();
}

LogicalResult WhereOp::inferReturnTypes(MLIRContext *,
                                        std::optional<Location> loc,
                                        Adaptor adaptor,
                                        SmallVectorImpl<Type> &types) {
  return inferWhereType(loc, adaptor.getCondition().getType(),
                        adaptor.getX().getType(), adaptor.getY().getType(),
                        types);
}

static ParseResult parseWhereResult(OpAsmParser &parser, Type cond, Type x,
                                    Type y, Type &result) {
  return parseInferredResult(
      parser, {cond, x, y}, result,
      [&](auto loc, auto &t) { return inferWhereType(loc, cond, x, y, t); });
}
static void printWhereResult(OpAsmPrinter &p, Operation *, Type cond, Type x,
                             Type y, Type result) {
  printInferredResult(p, result, [&](auto loc, auto &t) {
    return inferWhereType(loc, cond, x, y, t);
  });
}

static ParseResult parseMatmulResult(OpAsmParser &parser, Type lhs, Type rhs,
                                     Type &result) {
  return parseInferredResult(parser, {lhs, rhs}, result,
                             [&](auto loc, auto &t) {
                               return infer::inferMatmulType(loc, lhs, rhs, t);
                             });
}
static void printMatmulResult(OpAsmPrinter &p, Operation *, Type lhs, Type rhs,
                              Type result) {
  printInferredResult(p, result, [&](auto loc, auto &t) {
    return infer::inferMatmulType(loc, lhs, rhs, t);
  });
}

static ParseResult parseLinearResult(OpAsmParser &parser, Type input,
                                     Type weight, Type bias, Type &result) {
  return parseInferredResult(
      parser, {input, weight, bias}, result, [&](auto loc, auto &t) {
        return infer::inferLinearType(loc, input, weight, bias, t);
      });
}
static void printLinearResult(OpAsmPrinter &p, Operation *, Type input,
                              Type weight, Type bias, Type result) {
  printInferredResult(p, result, [&](auto loc, auto &t) {
    return infer::inferLinearType(loc, input, weight, bias, t);
  });
}

//===----------------------------------------------------------------------===//
// WeightOp
//===----------------------------------------------------------------------===//

LogicalResult WeightOp::verify() {
  if (getName().empty())
    return emitOpError("weight name must not be empty");
  bool hasFile = getFile().has_value();
  bool hasSeed = getSeed().has_value();
  if (hasFile == hasSeed)
    return emitOpError("weight '")
           << getName() << "' needs exactly one source: `file` or `seed`";
  if (hasFile && getFile()->empty())
    return emitOpError("weight '") << getName() << "' has an empty file path";
  if (getOffsetAttr().getInt() < 0)
    return emitOpError("weight '")
           << getName() << "' has negative offset " << getOffsetAttr().getInt();
  Type elem = getType().getElementType();
  if (hasSeed && !isa<FloatType>(elem))
    return emitOpError("weight '")
           << getName() << "': the generator makes float weights, not " << elem;
  if (!elem.isIntOrFloat())
    return emitOpError("weight '")
           << getName() << "' has unsupported element type " << elem;
  return success();
}

//===----------------------------------------------------------------------===//
// Matrix products
//===----------------------------------------------------------------------===//

LogicalResult infer::inferMatmulType(std::optional<Location> loc, Type lhs,
                                     Type rhs, SmallVectorImpl<Type> &types) {
  auto a = cast<RankedTensorType>(lhs);
  auto b = cast<RankedTensorType>(rhs);
  if (a.getRank() < 2 || b.getRank() < 2)
    return emitOptionalError(loc, "operands must have rank >= 2, got ",
                             a.getRank(), " and ", b.getRank());
  if (a.getElementType() != b.getElementType())
    return emitOptionalError(loc, "operands have different element types");
  int64_t k1 = a.getDimSize(a.getRank() - 1);
  int64_t k2 = b.getDimSize(b.getRank() - 2);
  if (!dimsCompatible(k1, k2))
    return emitOptionalError(loc, "contraction dimensions differ: ", k1, " vs ",
                             k2);
  SmallVector<int64_t> batch;
  if (!OpTrait::util::getBroadcastedShape(a.getShape().drop_back(2),
                                          b.getShape().drop_back(2), batch))
    return emitOptionalError(loc, "batch dimensions do not broadcast");
  batch.push_back(a.getDimSize(a.getRank() - 2));
  batch.push_back(b.getDimSize(b.getRank() - 1));
  types.push_back(RankedTensorType::get(batch, a.getElementType()));
  return success();
}

LogicalResult infer::inferLinearType(std::optional<Location> loc, Type input,
                                     Type weight, Type bias,
                                     SmallVectorImpl<Type> &types) {
  auto x = cast<RankedTensorType>(input);
  auto w = cast<RankedTensorType>(weight);
  if (x.getRank() < 1 || w.getRank() != 2)
    return emitOptionalError(loc, "expected input of rank >= 1 and weight of "
                                  "rank 2 ([out, in])");
  if (!dimsCompatible(x.getDimSize(x.getRank() - 1), w.getDimSize(1)))
    return emitOptionalError(loc, "input features ",
                             x.getDimSize(x.getRank() - 1),
                             " do not match weight [out, in] ", w);
  if (x.getElementType() != w.getElementType())
    return emitOptionalError(loc, "input and weight element types differ");
  if (bias) {
    auto b = cast<RankedTensorType>(bias);
    if (b.getRank() != 1 || !dimsCompatible(b.getDimSize(0), w.getDimSize(0)))
      return emitOptionalError(
          loc, "bias ", b, " must be a vector of the weight's out dimension");
  }
  SmallVector<int64_t> shape(x.getShape());
  shape.back() = w.getDimSize(0);
  types.push_back(RankedTensorType::get(shape, x.getElementType()));
  return success();
}

LogicalResult MatmulOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &types) {
  return infer::inferMatmulType(loc, adaptor.getLhs().getType(),
                                adaptor.getRhs().getType(), types);
}

LogicalResult LinearOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &types) {
  Value bias = adaptor.getBias();
  return infer::inferLinearType(loc, adaptor.getInput().getType(),
                                adaptor.getWeight().getType(),
                                bias ? bias.getType() : Type(), types);
}

//===----------------------------------------------------------------------===//
// Elementwise, softmax, norms
//===----------------------------------------------------------------------===//

LogicalResult GeluOp::inferReturnTypes(MLIRContext *, std::optional<Location>,
                                       Adaptor adaptor,
                                       SmallVectorImpl<Type> &types) {
  types.push_back(adaptor.getInput().getType());
  return success();
}

LogicalResult SoftmaxOp::inferReturnTypes(MLIRContext *,
                                          std::optional<Location>,
                                          Adaptor adaptor,
                                          SmallVectorImpl<Type> &types) {
  types.push_back(adaptor.getInput().getType());
  return success();
}

LogicalResult GeluOp::verify() {
  if (getApproximate() != "none" && getApproximate() != "tanh")
    return emitOpError("approximate must be \"none\" or \"tanh\", got \"")
           << getApproximate() << "\"";
  return success();
}

LogicalResult SoftmaxOp::verify() {
  if (failed(infer::normalizeAxis(getAxis(), getType().getRank())))
    return emitOpError("axis ")
           << static_cast<int64_t>(getAxis()) << " is out of range for rank "
           << getType().getRank();
  return success();
}

/// Shared check of rms_norm/layer_norm: a per-feature parameter vector.
static LogicalResult verifyNormParam(Operation *op, RankedTensorType x,
                                     Value param, StringRef what) {
  auto p = cast<RankedTensorType>(param.getType());
  if (x.getRank() < 1)
    return op->emitOpError("input must have rank >= 1");
  if (p.getRank() != 1 ||
      !dimsCompatible(p.getDimSize(0), x.getDimSize(x.getRank() - 1)))
    return op->emitOpError()
           << what << " " << p << " must be a vector of the last dimension of "
           << x;
  if (p.getElementType() != x.getElementType())
    return op->emitOpError() << what << " element type differs from input";
  return success();
}

LogicalResult RmsNormOp::inferReturnTypes(MLIRContext *,
                                          std::optional<Location>,
                                          Adaptor adaptor,
                                          SmallVectorImpl<Type> &types) {
  types.push_back(adaptor.getInput().getType());
  return success();
}

LogicalResult RmsNormOp::verify() {
  if (getEps().isNegative())
    return emitOpError("eps must be >= 0");
  return verifyNormParam(*this, getInput().getType(), getWeight(), "weight");
}

LogicalResult LayerNormOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location>,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &types) {
  types.push_back(adaptor.getInput().getType());
  return success();
}

LogicalResult LayerNormOp::verify() {
  if (getEps().isNegative())
    return emitOpError("eps must be >= 0");
  if (failed(
          verifyNormParam(*this, getInput().getType(), getWeight(), "weight")))
    return failure();
  if (getBias())
    return verifyNormParam(*this, getInput().getType(), getBias(), "bias");
  return success();
}

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

LogicalResult ReshapeOp::inferReturnTypes(MLIRContext *,
                                          std::optional<Location> loc,
                                          Adaptor adaptor,
                                          SmallVectorImpl<Type> &types) {
  auto x = cast<RankedTensorType>(adaptor.getInput().getType());
  ArrayRef<int64_t> shape = adaptor.getShape();
  int inferred = -1;
  int64_t known = 1;
  for (auto [i, d] : llvm::enumerate(shape)) {
    if (d == -1) {
      if (inferred >= 0)
        return emitOptionalError(loc, "shape has more than one -1");
      inferred = static_cast<int>(i);
    } else if (d < 0) {
      return emitOptionalError(loc, "shape has invalid dimension ", d);
    } else {
      known *= d;
    }
  }
  SmallVector<int64_t> result(shape);
  if (x.hasStaticShape()) {
    int64_t total = x.getNumElements();
    if (inferred >= 0) {
      if (known == 0 || total % known != 0)
        return emitOptionalError(loc, "cannot reshape ", total,
                                 " elements into the given shape");
      result[inferred] = total / known;
    } else if (known != total) {
      return emitOptionalError(loc, "cannot reshape ", x, " (", total,
                               " elements) into ", known, " elements");
    }
  } else if (inferred >= 0) {
    result[inferred] = ShapedType::kDynamic;
  }
  types.push_back(RankedTensorType::get(result, x.getElementType()));
  return success();
}

LogicalResult TransposeOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &types) {
  auto x = cast<RankedTensorType>(adaptor.getInput().getType());
  ArrayRef<int64_t> perm = adaptor.getPerm();
  if (static_cast<int64_t>(perm.size()) != x.getRank())
    return emitOptionalError(loc, "perm has ", perm.size(),
                             " entries for rank ", x.getRank());
  SmallVector<bool> seen(perm.size(), false);
  SmallVector<int64_t> shape;
  for (int64_t p : perm) {
    if (p < 0 || p >= x.getRank() || seen[p])
      return emitOptionalError(loc, "perm is not a permutation");
    seen[p] = true;
    shape.push_back(x.getDimSize(p));
  }
  types.push_back(RankedTensorType::get(shape, x.getElementType()));
  return success();
}

LogicalResult GatherOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &types) {
  auto data = cast<RankedTensorType>(adaptor.getData().getType());
  auto idx = cast<RankedTensorType>(adaptor.getIndices().getType());
  FailureOr<int64_t> axis =
      infer::normalizeAxis(adaptor.getAxis(), data.getRank());
  if (failed(axis))
    return emitOptionalError(loc, "axis ",
                             static_cast<int64_t>(adaptor.getAxis()),
                             " is out of range for rank ", data.getRank());
  SmallVector<int64_t> shape(data.getShape().take_front(*axis));
  llvm::append_range(shape, idx.getShape());
  llvm::append_range(shape, data.getShape().drop_front(*axis + 1));
  types.push_back(RankedTensorType::get(shape, data.getElementType()));
  return success();
}

LogicalResult ConcatOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &types) {
  if (adaptor.getInputs().empty())
    return emitOptionalError(loc, "needs at least one operand");
  auto first = cast<RankedTensorType>(adaptor.getInputs().front().getType());
  FailureOr<int64_t> axis =
      infer::normalizeAxis(adaptor.getAxis(), first.getRank());
  if (failed(axis))
    return emitOptionalError(loc, "axis ",
                             static_cast<int64_t>(adaptor.getAxis()),
                             " is out of range");
  SmallVector<int64_t> shape(first.getShape());
  for (Value v : adaptor.getInputs().drop_front()) {
    auto t = cast<RankedTensorType>(v.getType());
    if (t.getRank() != first.getRank() ||
        t.getElementType() != first.getElementType())
      return emitOptionalError(loc, "operands differ in rank or element type");
    for (int64_t i = 0; i < t.getRank(); ++i) {
      if (i == *axis) {
        shape[i] = (ShapedType::isDynamic(shape[i]) || t.isDynamicDim(i))
                       ? ShapedType::kDynamic
                       : shape[i] + t.getDimSize(i);
      } else if (!dimsCompatible(shape[i], t.getDimSize(i))) {
        return emitOptionalError(loc, "operands differ in dimension ", i);
      } else if (ShapedType::isDynamic(shape[i])) {
        shape[i] = t.getDimSize(i);
      }
    }
  }
  types.push_back(RankedTensorType::get(shape, first.getElementType()));
  return success();
}

LogicalResult SliceOp::inferReturnTypes(MLIRContext *,
                                        std::optional<Location> loc,
                                        Adaptor adaptor,
                                        SmallVectorImpl<Type> &types) {
  auto x = cast<RankedTensorType>(adaptor.getInput().getType());
  ArrayRef<int64_t> starts = adaptor.getStarts();
  ArrayRef<int64_t> ends = adaptor.getEnds();
  size_t n = starts.size();
  if (ends.size() != n)
    return emitOptionalError(loc, "starts and ends differ in length");
  SmallVector<int64_t> axes, steps(n, 1);
  if (auto a = adaptor.getAxes()) {
    if (a->size() != n)
      return emitOptionalError(loc, "axes and starts differ in length");
    axes.assign(a->begin(), a->end());
  } else {
    for (size_t i = 0; i < n; ++i)
      axes.push_back(static_cast<int64_t>(i));
  }
  if (auto s = adaptor.getSteps()) {
    if (s->size() != n)
      return emitOptionalError(loc, "steps and starts differ in length");
    steps.assign(s->begin(), s->end());
  }
  SmallVector<int64_t> shape(x.getShape());
  SmallVector<bool> seen(x.getRank(), false);
  for (size_t i = 0; i < n; ++i) {
    FailureOr<int64_t> axis = infer::normalizeAxis(axes[i], x.getRank());
    if (failed(axis) || seen[*axis])
      return emitOptionalError(loc, "axis ", axes[i],
                               " is out of range or repeated");
    seen[*axis] = true;
    if (steps[i] == 0)
      return emitOptionalError(loc, "step must not be 0");
    int64_t dim = x.getDimSize(*axis);
    if (ShapedType::isDynamic(dim)) {
      shape[*axis] = ShapedType::kDynamic;
      continue;
    }
    // ONNX Slice clamping rules.
    int64_t start = starts[i] < 0 ? starts[i] + dim : starts[i];
    int64_t end = ends[i] < 0 ? ends[i] + dim : ends[i];
    if (steps[i] > 0) {
      start = std::clamp<int64_t>(start, 0, dim);
      end = std::clamp<int64_t>(end, 0, dim);
      shape[*axis] = end > start ? (end - start + steps[i] - 1) / steps[i] : 0;
    } else {
      start = std::clamp<int64_t>(start, 0, dim - 1);
      end = std::clamp<int64_t>(end, -1, dim - 1);
      shape[*axis] =
          start > end ? (start - end + (-steps[i]) - 1) / (-steps[i]) : 0;
    }
  }
  types.push_back(RankedTensorType::get(shape, x.getElementType()));
  return success();
}

#define GET_OP_CLASSES
#include "dialects/nn/NNOps.cpp.inc"
