//===- PlanDialect.h - The plan dialect -------------------------*- C++ -*-===//
//
// The executable level (see PlanDialect.td).
//
//===----------------------------------------------------------------------===//
#ifndef MOE_DIALECTS_PLAN_PLANDIALECT_H
#define MOE_DIALECTS_PLAN_PLANDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/plan/PlanDialect.h.inc"
#include "dialects/plan/PlanEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/plan/PlanAttrs.h.inc"

#define GET_OP_CLASSES
#include "dialects/plan/PlanOps.h.inc"

#endif // MOE_DIALECTS_PLAN_PLANDIALECT_H
