//===- ExpertInventory.cpp - What the experts of a module weigh -----------===//

#include "passes/Analysis/ExpertInventory.h"

#include "mlir/IR/BuiltinTypes.h"

using namespace mlir;
using namespace mlir::moe;

int64_t ExpertLayer::totalBytes() const {
  int64_t total = 0;
  for (int64_t b : expertBytes)
    total += b;
  return total;
}

int64_t ExpertInventory::expertBytes(int64_t elements, int64_t bits,
                                     int64_t groupSize) {
  int64_t bytes = (elements * bits + 7) / 8;
  if (groupSize > 0)
    bytes += (elements + groupSize - 1) / groupSize * 2;
  return bytes;
}

ExpertInventory::ExpertInventory(Operation *root) {
  unsigned index = 0;
  root->walk([&](ExpertsOp op) {
    ExpertLayer layer;
    layer.op = op;
    layer.index = index++;
    layer.numExperts = op.getNumExperts();
    // Elements and stored bit width of one expert's slice of each operand.
    int64_t storedBits = 0, elements = 0;
    for (Value v : op.getOperands().drop_front(2)) {
      auto type = cast<RankedTensorType>(v.getType());
      int64_t perExpert = type.getNumElements() / layer.numExperts;
      elements += perExpert;
      storedBits += perExpert * type.getElementTypeBitWidth();
    }
    for (int64_t e = 0; e < layer.numExperts; ++e) {
      ExpertAttr expert = op.getExpert(e);
      if (expert.getBits() == 0)
        layer.expertBytes.push_back((storedBits + 7) / 8);
      else
        layer.expertBytes.push_back(
            expertBytes(elements, expert.getBits(), expert.getGroupSize()));
    }
    layers_.push_back(std::move(layer));
  });
}

int64_t ExpertInventory::totalExpertBytes() const {
  int64_t total = 0;
  for (const ExpertLayer &layer : layers_)
    total += layer.totalBytes();
  return total;
}
