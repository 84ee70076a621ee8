//===- NNOnnxOps.cpp - ONNX-semantics ops of the nn dialect ---------------===//
//
// Verifiers of the ops in NNOnnxOps.td. Their result types come from the ONNX
// importer and may hold `?` anywhere (or be more static than anything that
// could be inferred), so the checks compare only what is known statically:
// dtypes, ranks, attribute values and the dimensions known on both sides.
//
//===----------------------------------------------------------------------===//

#include "dialects/nn/NNDialect.h"

#include "mlir/IR/TypeUtilities.h"

using namespace mlir;
using namespace mlir::nn;
using infer::dimsCompatible;

static RankedTensorType tensorOf(Value v) {
  return cast<RankedTensorType>(v.getType());
}

/// Checks that `v` is a vector; `length` (when given) must be compatible with
/// its size.
static LogicalResult verifyVector(Operation *op, Value v, StringRef what,
                                  std::optional<int64_t> length = {}) {
  RankedTensorType t = tensorOf(v);
  if (t.getRank() != 1)
    return op->emitOpError() << what << " must be a vector, got " << t;
  if (length && !dimsCompatible(t.getDimSize(0), *length))
    return op->emitOpError()
           << what << " must have " << *length << " elements, got " << t;
  return success();
}

static LogicalResult verifySameElementType(Operation *op, Value from,
                                           Value to) {
  Type a = tensorOf(from).getElementType();
  Type b = tensorOf(to).getElementType();
  if (a != b)
    return op->emitOpError("result element type ")
           << b << " differs from the input's " << a;
  return success();
}

static LogicalResult verifyRank(Operation *op, Value v, int64_t rank,
                                StringRef what = "result") {
  if (tensorOf(v).getRank() != rank)
    return op->emitOpError()
           << what << " must have rank " << rank << ", got " << v.getType();
  return success();
}

/// Checks that dimension `i` of `v` may equal `dim`.
static LogicalResult verifyDim(Operation *op, Value v, int64_t i, int64_t dim,
                               StringRef what = "result") {
  int64_t actual = tensorOf(v).getDimSize(i);
  if (!dimsCompatible(actual, dim))
    return op->emitOpError() << what << " dimension " << i << " is " << actual
                             << " but must be " << dim;
  return success();
}

static LogicalResult verifyReduction(Operation *op, StringRef reduction) {
  if (!llvm::is_contained({"none", "add", "mul", "max", "min"}, reduction))
    return op->emitOpError("reduction must be none, add, mul, max or min, "
                           "got \"")
           << reduction << "\"";
  return success();
}

/// Product of `dims`, or kDynamic when one of them is.
static int64_t product(ArrayRef<int64_t> dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (ShapedType::isDynamic(d))
      return ShapedType::kDynamic;
    n *= d;
  }
  return n;
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

LogicalResult ClipOp::inferReturnTypes(MLIRContext *, std::optional<Location>,
                                       Adaptor adaptor,
                                       SmallVectorImpl<Type> &types) {
  types.push_back(adaptor.getInput().getType());
  return success();
}

LogicalResult ClipOp::verify() {
  Type elem = getInput().getType().getElementType();
  for (auto [bound, what] : {std::pair(getMin(), "min"), {getMax(), "max"}}) {
    RankedTensorType t = tensorOf(bound);
    if (t.getRank() != 0 || t.getElementType() != elem)
      return emitOpError() << what << " must be a rank-0 tensor of " << elem
                           << ", got " << t;
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Shapes as tensors
//===----------------------------------------------------------------------===//

LogicalResult ShapeOp::verify() {
  int64_t rank = getInput().getType().getRank();
  auto clampIndex = [&](int64_t i) {
    return std::clamp<int64_t>(i < 0 ? i + rank : i, 0, rank);
  };
  int64_t start = clampIndex(getStart());
  int64_t end = getEnd() ? clampIndex(*getEnd()) : rank;
  if (failed(verifyRank(*this, getResult(), 1)))
    return failure();
  return verifyDim(*this, getResult(), 0, std::max<int64_t>(end - start, 0));
}

LogicalResult ConstantOfShapeOp::verify() {
  RankedTensorType result = getType();
  if (failed(verifyVector(*this, getShape(), "shape", result.getRank())))
    return failure();
  double value = getValue().convertToDouble();
  if (isa<IntegerType>(result.getElementType())) {
    if (value != std::trunc(value))
      return emitOpError("value ")
             << value << " is not an integer but the result is "
             << result.getElementType();
    if (result.getElementType().isInteger(1) && value != 0 && value != 1)
      return emitOpError("value ") << value << " is not 0 or 1 for i1";
  }
  return success();
}

LogicalResult RangeOp::verify() {
  if (getStart().getType().getRank() != 0)
    return emitOpError("start, limit and delta must have rank 0, got ")
           << getStart().getType();
  return verifyRank(*this, getResult(), 1);
}

//===----------------------------------------------------------------------===//
// Data movement with run-time shapes
//===----------------------------------------------------------------------===//

LogicalResult ExpandOp::verify() {
  if (failed(verifyVector(*this, getShape(), "shape")) ||
      failed(verifySameElementType(*this, getInput(), getResult())))
    return failure();
  RankedTensorType x = getInput().getType(), y = getType();
  int64_t n = getShape().getType().getDimSize(0);
  if (!ShapedType::isDynamic(n)) {
    if (failed(verifyRank(*this, getResult(), std::max(x.getRank(), n))))
      return failure();
  } else if (y.getRank() < x.getRank()) {
    return emitOpError("result rank ")
           << y.getRank() << " is below the input's " << x.getRank();
  }
  // Aligned from the right, an input dimension other than 1 survives.
  int64_t offset = y.getRank() - x.getRank();
  for (int64_t i = 0; i < x.getRank(); ++i) {
    int64_t d = x.getDimSize(i);
    if (d != 1 && !dimsCompatible(d, y.getDimSize(i + offset)))
      return emitOpError("result dimension ")
             << i + offset << " (" << y.getDimSize(i + offset)
             << ") does not broadcast from input dimension " << i << " (" << d
             << ")";
  }
  return success();
}

LogicalResult TileOp::verify() {
  RankedTensorType x = getInput().getType(), y = getType();
  if (failed(verifyVector(*this, getRepeats(), "repeats", x.getRank())) ||
      failed(verifySameElementType(*this, getInput(), getResult())) ||
      failed(verifyRank(*this, getResult(), x.getRank())))
    return failure();
  for (int64_t i = 0; i < x.getRank(); ++i) {
    int64_t in = x.getDimSize(i), out = y.getDimSize(i);
    if (ShapedType::isDynamic(in) || ShapedType::isDynamic(out))
      continue;
    if (in == 0 ? out != 0 : out % in != 0)
      return emitOpError("result dimension ")
             << i << " (" << out << ") is not a multiple of the input's (" << in
             << ")";
  }
  return success();
}

LogicalResult DynamicReshapeOp::verify() {
  RankedTensorType x = getInput().getType(), y = getType();
  if (failed(verifyVector(*this, getShape(), "shape", y.getRank())) ||
      failed(verifySameElementType(*this, getInput(), getResult())))
    return failure();
  if (getAllowzero() != 0 && getAllowzero() != 1)
    return emitOpError("allowzero must be 0 or 1, got ")
           << static_cast<int64_t>(getAllowzero());
  if (x.hasStaticShape() && y.hasStaticShape() &&
      x.getNumElements() != y.getNumElements())
    return emitOpError("cannot reshape ")
           << x << " (" << x.getNumElements() << " elements) into " << y;
  return success();
}

/// Normalises `axes` for `rank`; fails (naming `op`) on an axis out of range
/// or listed twice.
static FailureOr<SmallVector<bool>>
axisSet(Operation *op, ArrayRef<int64_t> axes, int64_t rank) {
  SmallVector<bool> listed(rank, false);
  for (int64_t axis : axes) {
    FailureOr<int64_t> a = infer::normalizeAxis(axis, rank);
    if (failed(a))
      return op->emitOpError("axis ")
             << axis << " is out of range for rank " << rank;
    if (listed[*a])
      return op->emitOpError("axis ") << axis << " is listed twice";
    listed[*a] = true;
  }
  return listed;
}

LogicalResult SqueezeOp::verify() {
  if (failed(verifySameElementType(*this, getInput(), getResult())))
    return failure();
  RankedTensorType x = getInput().getType(), y = getType();
  if (getAxes().empty()) {
    // Every dimension of size 1 goes; a `?` may or may not be 1.
    int64_t ones = llvm::count(x.getShape(), 1);
    int64_t maybe = llvm::count_if(x.getShape(), [](int64_t d) {
      return d == 1 || ShapedType::isDynamic(d);
    });
    if (y.getRank() > x.getRank() - ones || y.getRank() < x.getRank() - maybe)
      return emitOpError("result rank ")
             << y.getRank() << " does not fit squeezing " << x;
    return success();
  }
  FailureOr<SmallVector<bool>> listed = axisSet(*this, getAxes(), x.getRank());
  if (failed(listed))
    return failure();
  int64_t rank = x.getRank() - static_cast<int64_t>(getAxes().size());
  if (failed(verifyRank(*this, getResult(), rank)))
    return failure();
  int64_t j = 0;
  for (int64_t i = 0; i < x.getRank(); ++i) {
    if ((*listed)[i]) {
      if (!dimsCompatible(x.getDimSize(i), 1))
        return emitOpError("squeezed dimension ")
               << i << " has size " << x.getDimSize(i) << ", not 1";
    } else if (failed(verifyDim(*this, getResult(), j++, x.getDimSize(i)))) {
      return failure();
    }
  }
  return success();
}

LogicalResult UnsqueezeOp::verify() {
  if (failed(verifySameElementType(*this, getInput(), getResult())))
    return failure();
  RankedTensorType x = getInput().getType();
  int64_t rank = x.getRank() + static_cast<int64_t>(getAxes().size());
  if (failed(verifyRank(*this, getResult(), rank)))
    return failure();
  FailureOr<SmallVector<bool>> listed = axisSet(*this, getAxes(), rank);
  if (failed(listed))
    return failure();
  int64_t j = 0;
  for (int64_t i = 0; i < rank; ++i)
    if (failed(verifyDim(*this, getResult(), i,
                         (*listed)[i] ? 1 : x.getDimSize(j++))))
      return failure();
  return success();
}

LogicalResult FlattenOp::verify() {
  RankedTensorType x = getInput().getType();
  int64_t rank = x.getRank(), axis = getAxis();
  if (axis < -rank || axis > rank)
    return emitOpError("axis ")
           << axis << " is out of range [" << -rank << ", " << rank << "]";
  if (axis < 0)
    axis += rank;
  if (failed(verifySameElementType(*this, getInput(), getResult())) ||
      failed(verifyRank(*this, getResult(), 2)) ||
      failed(verifyDim(*this, getResult(), 0,
                       product(x.getShape().take_front(axis)))))
    return failure();
  return verifyDim(*this, getResult(), 1,
                   product(x.getShape().drop_front(axis)));
}

LogicalResult DynamicSliceOp::verify() {
  int64_t n = ShapedType::kDynamic;
  for (auto [v, what] : {std::pair(getStarts(), "starts"),
                         {getEnds(), "ends"},
                         {getAxes(), "axes"},
                         {getSteps(), "steps"}}) {
    if (failed(verifyVector(*this, v, what, n)))
      return failure();
    if (ShapedType::isDynamic(n))
      n = tensorOf(v).getDimSize(0);
  }
  RankedTensorType x = getInput().getType(), y = getType();
  if (failed(verifySameElementType(*this, getInput(), getResult())) ||
      failed(verifyRank(*this, getResult(), x.getRank())))
    return failure();
  for (int64_t i = 0; i < x.getRank(); ++i) {
    int64_t in = x.getDimSize(i), out = y.getDimSize(i);
    if (!ShapedType::isDynamic(in) && !ShapedType::isDynamic(out) && out > in)
      return emitOpError("result dimension ")
             << i << " (" << out << ") exceeds the input's (" << in << ")";
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Gathers and scatters
//===----------------------------------------------------------------------===//

LogicalResult GatherNDOp::verify() {
  RankedTensorType data = getData().getType(), idx = getIndices().getType();
  int64_t r = data.getRank(), q = idx.getRank(), b = getBatchDims();
  if (r < 1 || q < 1)
    return emitOpError("data and indices must have rank >= 1");
  if (b < 0 || b >= std::min(r, q))
    return emitOpError("batch_dims ")
           << b << " must be in [0, " << std::min(r, q) << ")";
  if (failed(verifySameElementType(*this, getData(), getResult())))
    return failure();
  for (int64_t i = 0; i < b; ++i)
    if (!dimsCompatible(data.getDimSize(i), idx.getDimSize(i)))
      return emitOpError("batch dimension ")
             << i << " differs between data and indices";
  int64_t k = idx.getDimSize(q - 1);
  if (ShapedType::isDynamic(k))
    return success();
  if (k < 1 || k > r - b)
    return emitOpError("index tuples have ")
           << k << " entries; expected 1 to " << r - b;
  SmallVector<int64_t> shape(data.getShape().take_front(b));
  llvm::append_range(shape, idx.getShape().slice(b, q - 1 - b));
  llvm::append_range(shape, data.getShape().drop_front(b + k));
  if (failed(
          verifyRank(*this, getResult(), static_cast<int64_t>(shape.size()))))
    return failure();
  for (auto [i, d] : llvm::enumerate(shape))
    if (failed(verifyDim(*this, getResult(), i, d)))
      return failure();
  return success();
}

LogicalResult
ScatterElementsOp::inferReturnTypes(MLIRContext *, std::optional<Location>,
                                    Adaptor adaptor,
                                    SmallVectorImpl<Type> &types) {
  types.push_back(adaptor.getData().getType());
  return success();
}

LogicalResult ScatterElementsOp::verify() {
  RankedTensorType data = getData().getType(), idx = getIndices().getType(),
                   upd = getUpdates().getType();
  if (failed(infer::normalizeAxis(getAxis(), data.getRank())))
    return emitOpError("axis ")
           << static_cast<int64_t>(getAxis()) << " is out of range for rank "
           << data.getRank();
  if (failed(verifyReduction(*this, getReduction())))
    return failure();
  if (idx.getRank() != data.getRank())
    return emitOpError("indices must have the rank of data (")
           << data.getRank() << "), got " << idx;
  if (upd.getElementType() != data.getElementType() ||
      failed(verifyCompatibleShape(upd, idx)))
    return emitOpError("updates ")
           << upd << " must have the shape of indices and the element type of "
           << "data";
  return success();
}

LogicalResult ScatterNDOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location>,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &types) {
  types.push_back(adaptor.getData().getType());
  return success();
}

LogicalResult ScatterNDOp::verify() {
  RankedTensorType data = getData().getType(), idx = getIndices().getType(),
                   upd = getUpdates().getType();
  if (failed(verifyReduction(*this, getReduction())))
    return failure();
  if (upd.getElementType() != data.getElementType())
    return emitOpError("updates element type ")
           << upd.getElementType() << " differs from data's "
           << data.getElementType();
  int64_t q = idx.getRank();
  if (q < 1)
    return emitOpError("indices must have rank >= 1");
  int64_t k = idx.getDimSize(q - 1);
  if (ShapedType::isDynamic(k))
    return success();
  if (k < 1 || k > data.getRank())
    return emitOpError("index tuples have ")
           << k << " entries; expected 1 to " << data.getRank();
  SmallVector<int64_t> shape(idx.getShape().drop_back());
  llvm::append_range(shape, data.getShape().drop_front(k));
  if (upd.getRank() != static_cast<int64_t>(shape.size()) ||
      !llvm::all_of_zip(upd.getShape(), shape, dimsCompatible))
    return emitOpError("updates ")
           << upd << " must have shape indices[:-1] + data[" << k << ":]";
  return success();
}

LogicalResult NonZeroOp::verify() {
  if (failed(verifyRank(*this, getResult(), 2)))
    return failure();
  return verifyDim(*this, getResult(), 0, getInput().getType().getRank());
}

LogicalResult OneHotOp::verify() {
  RankedTensorType idx = getIndices().getType(), depth = getDepth().getType();
  if (depth.getRank() > 1 ||
      (depth.getRank() == 1 && !dimsCompatible(depth.getDimSize(0), 1)))
    return emitOpError("depth must have rank 0 or shape [1], got ") << depth;
  if (failed(verifyVector(*this, getValues(), "values", 2)) ||
      failed(verifySameElementType(*this, getValues(), getResult())))
    return failure();
  int64_t rank = idx.getRank() + 1;
  FailureOr<int64_t> axis = infer::normalizeAxis(getAxis(), rank);
  if (failed(axis))
    return emitOpError("axis ")
           << static_cast<int64_t>(getAxis())
           << " is out of range for the result rank " << rank;
  if (failed(verifyRank(*this, getResult(), rank)))
    return failure();
  int64_t j = 0;
  for (int64_t i = 0; i < rank; ++i)
    if (i != *axis &&
        failed(verifyDim(*this, getResult(), i, idx.getDimSize(j++))))
      return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// Top-k, split
//===----------------------------------------------------------------------===//

LogicalResult TopKOp::verify() {
  RankedTensorType x = getInput().getType();
  if (failed(verifyVector(*this, getK(), "k", 1)))
    return failure();
  FailureOr<int64_t> axis = infer::normalizeAxis(getAxis(), x.getRank());
  if (failed(axis))
    return emitOpError("axis ") << static_cast<int64_t>(getAxis())
                                << " is out of range for rank " << x.getRank();
  if (getLargest() != 0 && getLargest() != 1)
    return emitOpError("largest must be 0 or 1, got ")
           << static_cast<int64_t>(getLargest());
  if (getSorted() != 0 && getSorted() != 1)
    return emitOpError("sorted must be 0 or 1, got ")
           << static_cast<int64_t>(getSorted());
  if (failed(verifySameElementType(*this, getInput(), getValues())))
    return failure();
  for (Value r : {getValues(), getIndices()}) {
    StringRef what = r == getValues() ? "values" : "indices";
    if (failed(verifyRank(*this, r, x.getRank(), what)))
      return failure();
    for (int64_t i = 0; i < x.getRank(); ++i) {
      int64_t in = x.getDimSize(i), out = tensorOf(r).getDimSize(i);
      if (i != *axis && failed(verifyDim(*this, r, i, in, what)))
        return failure();
      if (i == *axis && !ShapedType::isDynamic(in) &&
          !ShapedType::isDynamic(out) && out > in)
        return emitOpError()
               << what << " has " << out << " elements along the axis; the "
               << "input only " << in;
    }
  }
  if (failed(
          verifyCompatibleShape(getValues().getType(), getIndices().getType())))
    return emitOpError("values and indices differ in shape");
  return success();
}

LogicalResult SplitOp::verify() {
  RankedTensorType x = getInput().getType();
  auto n = static_cast<int64_t>(getNumResults());
  if (n < 1)
    return emitOpError("needs at least one result");
  if (getSplit() && failed(verifyVector(*this, getSplit(), "split", n)))
    return failure();
  FailureOr<int64_t> axis = infer::normalizeAxis(getAxis(), x.getRank());
  if (failed(axis))
    return emitOpError("axis ") << static_cast<int64_t>(getAxis())
                                << " is out of range for rank " << x.getRank();
  int64_t d = x.getDimSize(*axis);
  // Without `split`: parts of ceil(d / n), the last one what remains.
  int64_t chunk = ShapedType::isDynamic(d) ? 0 : (d + n - 1) / n;
  bool known = !ShapedType::isDynamic(d);
  int64_t sum = 0;
  for (auto [i, r] : llvm::enumerate(getResults())) {
    if (failed(verifySameElementType(*this, getInput(), r)) ||
        failed(verifyRank(*this, r, x.getRank())))
      return failure();
    for (int64_t j = 0; j < x.getRank(); ++j)
      if (j != *axis && failed(verifyDim(*this, r, j, x.getDimSize(j))))
        return failure();
    int64_t part = tensorOf(r).getDimSize(*axis);
    if (ShapedType::isDynamic(part)) {
      known = false;
      continue;
    }
    sum += part;
    int64_t expected =
        static_cast<int64_t>(i) + 1 < n ? chunk : d - chunk * (n - 1);
    if (!getSplit() && !ShapedType::isDynamic(d) && expected >= 0 &&
        part != expected)
      return emitOpError("part ")
             << i << " has " << part << " elements along the axis; splitting "
             << d << " into " << n << " gives " << expected;
  }
  if (known && sum != d)
    return emitOpError("parts sum to ")
           << sum << " elements along the axis, not " << d;
  return success();
}

//===----------------------------------------------------------------------===//
// Quantised weights
//===----------------------------------------------------------------------===//

LogicalResult DequantizeOp::verify() {
  int64_t bits = getBits();
  if (bits != 2 && bits != 4 && bits != 8)
    return emitOpError("bits must be 2, 4 or 8, got ") << bits;
  RankedTensorType q = getInput().getType(), s = getScales().getType(),
                   zp = getZeroPoints().getType(), y = getType();
  int64_t rank = q.getRank();
  if (rank < 2)
    return emitOpError("input must have rank >= 2 ([..., rows, packed "
                       "cols]), got ")
           << q;
  if (failed(verifyRank(*this, getResult(), rank)))
    return failure();
  for (int64_t i = 0; i + 1 < rank; ++i)
    if (failed(verifyDim(*this, getResult(), i, q.getDimSize(i))))
      return failure();
  int64_t cols = y.getDimSize(rank - 1);
  if (!ShapedType::isDynamic(cols) &&
      failed(verifyDim(*this, getInput(), rank - 1, (cols * bits + 7) / 8,
                       "input")))
    return failure();
  if (s.getRank() != rank - 1 && s.getRank() != rank)
    return emitOpError("scales must be [..., rows] or [..., rows, blocks], "
                       "got ")
           << s;
  for (int64_t i = 0; i + 1 < rank; ++i)
    if (failed(verifyDim(*this, getScales(), i, q.getDimSize(i), "scales")))
      return failure();
  if (s.getRank() == rank) {
    int64_t blocks = s.getDimSize(rank - 1);
    if (!ShapedType::isDynamic(blocks) && !ShapedType::isDynamic(cols) &&
        (blocks == 0 || cols % blocks != 0))
      return emitOpError("scales have ")
             << blocks << " blocks per row, which do not divide " << cols
             << " columns";
  }
  bool empty = zp.getRank() == 1 && dimsCompatible(zp.getDimSize(0), 0);
  bool packed = zp.getRank() == s.getRank() &&
                llvm::all_of_zip(zp.getShape().drop_back(),
                                 s.getShape().drop_back(), dimsCompatible);
  if (!empty && !packed)
    return emitOpError("zero_points must be empty ([0]) or shaped like the "
                       "scales packed along the last axis, got ")
           << zp;
  return success();
}
