//===- ExpertInventory.cpp - What the experts of a module weigh -----------===//

#include "passes/Analysis/ExpertInventory.h"

#include "dialects/nn/NNDialect.h"

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

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
      if (expert.getPruned())
        layer.expertBytes.push_back(0); // nothing stored (an absent slice)
      else if (expert.getBits() == 0)
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

FailureOr<ExpertPin> mlir::moe::parseExpertPin(StringRef text) {
  auto [where, value] = text.split('=');
  auto [l, e] = where.split(':');
  auto index = [](StringRef x, int64_t &v) {
    if (x.trim() == "*") {
      v = -1;
      return true;
    }
    return !x.trim().getAsInteger(10, v) && v >= 0;
  };
  ExpertPin pin;
  if (value.trim().empty() || e.empty() || !index(l, pin.layer) ||
      !index(e, pin.expert))
    return failure();
  pin.value = value.trim().str();
  return pin;
}

std::string mlir::moe::modelFingerprint(Operation *root) {
  // FNV-1a over a textual description: stable across runs and builds.
  std::string text;
  llvm::raw_string_ostream os(text);
  root->walk([&](ExpertsOp op) {
    os << "layer " << op.getNumExperts() << ' '
       << stringifyActivation(op.getActivation()) << ';';
    for (Value v : op.getOperands().drop_front(2)) {
      os << v.getType() << ':';
      Value cur = v;
      for (int depth = 0; depth < 8; ++depth) {
        Operation *def = cur.getDefiningOp();
        if (!def)
          break;
        if (auto w = dyn_cast<nn::WeightOp>(def)) {
          os << "weight " << w.getName() << ' '
             << llvm::sys::path::filename(w.getFile().value_or("")) << ' '
             << w.getOffset() << ' ' << w.getSeed().value_or(~uint64_t(0)) << ' '
             << llvm::format("%.17g", w.getScale().convertToDouble());
          break;
        }
        os << def->getName() << ' ';
        if (def->getNumOperands() != 1)
          break;
        cur = def->getOperand(0);
      }
      os << ';';
    }
  });
  os.flush();
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  std::string out;
  llvm::raw_string_ostream hex(out);
  hex << llvm::format_hex_no_prefix(h, 16);
  return hex.str();
}
