//===- MoeDialect.cpp - The moe dialect -----------------------------------===//

#include "dialects/moe/MoeDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::moe;

#include "dialects/moe/MoeDialect.cpp.inc"
#include "dialects/moe/MoeEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/moe/MoeAttrs.cpp.inc"

void MoeDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialects/moe/MoeAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "dialects/moe/MoeOps.cpp.inc"
      >();
}

LogicalResult ExpertAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                 Placement placement, int64_t bits,
                                 int64_t groupSize, bool pruned,
                                 bool zeroPoints) {
  if (!llvm::is_contained({0, 16, 8, 4, 3, 2}, bits))
    return emitError() << "expert bits must be one of 0 (as stored), 16, 8, "
                          "4, 3, 2; got "
                       << bits;
  if (!llvm::is_contained({0, 32, 64, 128}, groupSize))
    return emitError() << "expert group_size must be one of 0, 32, 64, 128; "
                          "got "
                       << groupSize;
  if (groupSize != 0 && (bits == 0 || bits == 16))
    return emitError() << "group_size " << groupSize
                       << " needs a quantised precision (bits 8, 4, 3 or 2)";
  if (zeroPoints && groupSize == 0)
    return emitError() << "zero_points need a quantised precision (bits 8, "
                          "4, 3 or 2 with a group_size)";
  return success();
}
