//===- NNDialect.h - The nn dialect -----------------------------*- C++ -*-===//
//
// Dense tensor operations of a transformer (see NNDialect.td).
//
//===----------------------------------------------------------------------===//
#ifndef MOE_DIALECTS_NN_NNDIALECT_H
#define MOE_DIALECTS_NN_NNDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/nn/NNDialect.h.inc"

namespace mlir::nn::infer {
/// Result type of a numpy-broadcasting binary op.
LogicalResult inferBroadcastType(std::optional<Location> loc, Type lhs,
                                 Type rhs, SmallVectorImpl<Type> &types);
/// Result type of a reduction over `axes` (all when empty).
LogicalResult inferReduceType(std::optional<Location> loc, Type input,
                              ArrayRef<int64_t> axes, bool keepdims,
                              SmallVectorImpl<Type> &types);
/// Result type of a comparison: the broadcast shape, of i1.
LogicalResult inferCompareType(std::optional<Location> loc, Type lhs, Type rhs,
                               SmallVectorImpl<Type> &types);
/// Result type of nn.matmul.
LogicalResult inferMatmulType(std::optional<Location> loc, Type lhs, Type rhs,
                              SmallVectorImpl<Type> &types);
/// Result type of nn.linear; `bias` is null when absent.
LogicalResult inferLinearType(std::optional<Location> loc, Type input,
                              Type weight, Type bias,
                              SmallVectorImpl<Type> &types);
/// Normalises a possibly negative axis; fails when out of [-rank, rank).
FailureOr<int64_t> normalizeAxis(int64_t axis, int64_t rank);
/// True when two dimensions may be equal (either is dynamic or they match).
bool dimsCompatible(int64_t a, int64_t b);
/// True when `actual` may stand for `inferred`: both ranked tensors of the
/// same element type and rank whose dimensions are pairwise compatible.
bool typesCompatible(Type inferred, Type actual);
/// `typesCompatible` for every result: what the ops with inferred result
/// types accept as explicitly given result types.
bool isCompatibleReturnTypes(TypeRange inferred, TypeRange actual);
} // namespace mlir::nn::infer

#define GET_OP_CLASSES
#include "dialects/nn/NNOps.h.inc"

#endif // MOE_DIALECTS_NN_NNDIALECT_H
