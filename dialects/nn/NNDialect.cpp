//===- NNDialect.cpp - The nn dialect -------------------------------------===//

#include "dialects/nn/NNDialect.h"

using namespace mlir;
using namespace mlir::nn;

#include "dialects/nn/NNDialect.cpp.inc"

void NNDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/nn/NNOps.cpp.inc"
      >();
}
