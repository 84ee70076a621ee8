//===- ExpertInventory.h - What the experts of a module weigh ---*- C++ -*-===//
//
// A stable analysis for our passes and for users' plugin passes: every MoE
// layer (`moe.experts` op) of a module in order, with its number of experts
// and the bytes each expert's weights take at its current precision. The
// placement cost model, profiles and importance (issues 5 and 7) build on
// this; their analyses will live beside it under passes/Analysis.
//
// Use from a pass: `auto &inventory = getAnalysis<moe::ExpertInventory>();`
//
//===----------------------------------------------------------------------===//
#ifndef MOE_PASSES_ANALYSIS_EXPERTINVENTORY_H
#define MOE_PASSES_ANALYSIS_EXPERTINVENTORY_H

#include "dialects/moe/MoeDialect.h"

#include "llvm/ADT/SmallVector.h"

#include <string>

namespace mlir::moe {

/// One MoE layer: a `moe.experts` op.
struct ExpertLayer {
  ExpertsOp op;
  /// Position among the module's moe.experts ops, in walk order.
  unsigned index = 0;
  int64_t numExperts = 0;
  /// Bytes of one expert's weights and biases for each expert, at the
  /// precision its #moe.expert asks for (bits 0: as stored), including one
  /// 16-bit scale per quantisation group; 0 for a pruned expert (the plan
  /// stores nothing for it).
  SmallVector<int64_t> expertBytes;

  int64_t totalBytes() const;
};

/// Every MoE layer under an operation (usually the module).
class ExpertInventory {
public:
  explicit ExpertInventory(Operation *root);

  ArrayRef<ExpertLayer> layers() const { return layers_; }
  /// Sum of the bytes of every expert of every layer.
  int64_t totalExpertBytes() const;
  /// Bytes of one expert with `elements` weights stored at `bits` bits per
  /// element and `groupSize` elements per 16-bit scale (0: no scales).
  static int64_t expertBytes(int64_t elements, int64_t bits, int64_t groupSize);

private:
  SmallVector<ExpertLayer> layers_;
};

/// An option value `L:E=VALUE` naming experts: layer L, expert E (each an
/// index, or `*` for every one: -1), and what to give them.
struct ExpertPin {
  int64_t layer = -1, expert = -1;
  std::string value;
  bool matches(int64_t l, int64_t e) const {
    return (layer < 0 || layer == l) && (expert < 0 || expert == e);
  }
};
/// Parses `L:E=VALUE`; fails on anything else (the caller reports it).
FailureOr<ExpertPin> parseExpertPin(StringRef text);

/// A stable identity of the model under `root` (16 hex digits): a hash of
/// every MoE layer's expert count, activation and weight types, and of where
/// its expert weights come from (each `nn.weight`'s name, file name, offset,
/// seed and scale, found through single-operand ops such as transposes). It
/// does not change with the per-expert decisions (#moe.expert: precision,
/// placement, pruning), so a profile recorded with any plan of the model
/// matches the model. `moe-lower-to-plan` stores it as the module attribute
/// `moe.model_id` and the plan's `model_id` metadata.
std::string modelFingerprint(Operation *root);

} // namespace mlir::moe

#endif // MOE_PASSES_ANALYSIS_EXPERTINVENTORY_H
