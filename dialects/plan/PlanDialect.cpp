//===- PlanDialect.cpp - The plan dialect ---------------------------------===//

#include "dialects/plan/PlanDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::plan;

#include "dialects/plan/PlanDialect.cpp.inc"
#include "dialects/plan/PlanEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/plan/PlanAttrs.cpp.inc"

void PlanDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialects/plan/PlanAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "dialects/plan/PlanOps.cpp.inc"
      >();
}

LogicalResult WeightOp::verify() {
  std::optional<ArrayRef<int64_t>> bits = getBits();
  std::optional<ArrayRef<int64_t>> groups = getGroupSizes();
  if (bits.has_value() != groups.has_value())
    return emitOpError("`bits` and `group_sizes` go together");
  if (getQuantScale() != "f16" && getQuantScale() != "f32")
    return emitOpError("quant_scale must be \"f16\" or \"f32\", got \"")
           << getQuantScale() << "\"";
  if (!bits && getZeroPoints())
    return emitOpError("`zero_points` need `bits`");
  MemRefType type = getType();
  if (std::optional<ArrayRef<int64_t>> shards = getShards()) {
    if (shards->size() != 3)
      return emitOpError("`shards` must be [dimension, halves, parts]");
    int64_t d = (*shards)[0], o = (*shards)[1], n = (*shards)[2];
    if (d < 0 || d >= type.getRank() || (o != 1 && o != 2) || n < 1)
      return emitOpError("`shards` = [")
             << d << ", " << o << ", " << n << "] does not fit " << type
             << " (dimension 0 to rank - 1, halves 1 or 2, parts >= 1)";
    if (type.getDimSize(0) % n != 0 || type.getDimSize(d) % o != 0)
      return emitOpError("`shards` = [")
             << d << ", " << o << ", " << n << "]: " << type
             << " is not a weight cut into " << n << " parts";
  }
  if (!bits)
    return success();
  if (type.getRank() < 2 || !type.getElementType().isF32())
    return emitOpError("only f32 weights of rank >= 2 can be quantised, not ")
           << type;
  int64_t slices = type.getDimSize(0);
  if (static_cast<int64_t>(bits->size()) != slices ||
      static_cast<int64_t>(groups->size()) != slices)
    return emitOpError("needs one `bits` and `group_sizes` entry per index "
                       "of dimension 0 (")
           << slices << ")";
  std::optional<ArrayRef<bool>> zps = getZeroPoints();
  if (zps && static_cast<int64_t>(zps->size()) != slices)
    return emitOpError("needs one `zero_points` entry per index of "
                       "dimension 0 (")
           << slices << ")";
  for (int64_t i = 0; i < slices; ++i) {
    int64_t b = (*bits)[i], g = (*groups)[i];
    if (b == 1 && g == 0 && !(zps && (*zps)[i]))
      continue; // absent: a pruned expert, nothing stored
    if (zps && (*zps)[i] && (b == 0 || b == 16))
      return emitOpError("slice ") << i << ": zero points need bits 8, 4, 3 "
                                          "or 2";
    if (b == 0 || (b == 16 && g == 0))
      continue;
    if (!llvm::is_contained({8, 4, 3, 2}, b))
      return emitOpError("slice ")
             << i << ": bits " << b << " is not 0, 16, 8, 4, 3, 2 or 1 "
                      "(absent)";
    if (!llvm::is_contained({32, 64, 128}, g))
      return emitOpError("slice ")
             << i << ": group size " << g << " is not 32, 64 or 128";
  }
  return success();
}

LogicalResult ConstantOp::verify() {
  auto value = cast<ShapedType>(getValue().getType());
  MemRefType type = getType();
  if (value.getShape() != type.getShape() ||
      value.getElementType() != type.getElementType())
    return emitOpError("value of type ")
           << value << " does not match the buffer type " << type;
  return success();
}

/// A parameter is a primitive the plan can store: integer, float, string,
/// or an array of integers or of floats.
static bool isPlanParam(Attribute attr) {
  if (isa<IntegerAttr, FloatAttr, StringAttr, DenseI64ArrayAttr,
          DenseF64ArrayAttr>(attr))
    return true;
  if (auto array = dyn_cast<ArrayAttr>(attr))
    return llvm::all_of(array,
                        [](Attribute a) { return isa<IntegerAttr>(a); }) ||
           llvm::all_of(array, [](Attribute a) { return isa<FloatAttr>(a); });
  return false;
}

LogicalResult CallOp::verify() {
  if (getKernel().empty())
    return emitOpError("kernel name must not be empty");
  for (NamedAttribute param : getParams())
    if (!isPlanParam(param.getValue()))
      return emitOpError("parameter '")
             << param.getName().getValue() << "' of kernel '" << getKernel()
             << "' is " << param.getValue()
             << ", not an integer, float, string or array of them";
  return success();
}

LogicalResult CopyOp::verify() {
  MemRefType from = getSource().getType();
  MemRefType to = getResult().getType();
  if (from.getElementType() != to.getElementType() ||
      failed(verifyCompatibleShape(from.getShape(), to.getShape())))
    return emitOpError("cannot copy ") << from << " into " << to;
  return success();
}

LogicalResult FreeOp::verify() {
  for (Value buffer : getBuffers()) {
    Operation *def = buffer.getDefiningOp();
    if (!isa_and_nonnull<CallOp, CopyOp>(def))
      return emitOpError("can only free buffers produced by plan.call or "
                         "plan.copy");
  }
  return success();
}

#define GET_OP_CLASSES
#include "dialects/plan/PlanOps.cpp.inc"
