//===- WireScan.cpp - Where tensor bytes lie inside an ONNX file ----------===//

#include "frontends/onnx/WireScan.h"

namespace moe::onnx_frontend {
namespace {

// Field numbers of onnx.proto3 (stable since ONNX 1.0).
constexpr uint32_t kModelGraph = 7;
constexpr uint32_t kGraphNode = 1;
constexpr uint32_t kGraphInitializer = 5;
constexpr uint32_t kNodeAttribute = 5;
constexpr uint32_t kAttributeName = 1;
constexpr uint32_t kAttributeTensor = 5;
constexpr uint32_t kTensorRawData = 9;

enum WireType : uint32_t { Varint = 0, Fixed64 = 1, Bytes = 2, Fixed32 = 5 };

/// A bounded reader over [pos, end) of the whole buffer `base`.
class Reader {
public:
  Reader(const uint8_t *base, uint64_t pos, uint64_t end)
      : base_(base), pos_(pos), end_(end) {}

  bool done() const { return pos_ >= end_; }
  uint64_t pos() const { return pos_; }

  bool varint(uint64_t &v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= end_)
        return false;
      uint8_t byte = base_[pos_++];
      v |= uint64_t(byte & 0x7f) << shift;
      if (!(byte & 0x80))
        return true;
    }
    return false;
  }

  /// Reads a field key; `len` and `start` describe a length-delimited body.
  bool field(uint32_t &number, uint32_t &type, uint64_t &start,
             uint64_t &len) {
    uint64_t key;
    if (!varint(key) || key >> 32)
      return false;
    number = uint32_t(key >> 3);
    type = uint32_t(key & 7);
    if (number == 0)
      return false;
    switch (type) {
    case Varint: {
      uint64_t ignored;
      return varint(ignored);
    }
    case Fixed64:
      return skip(8);
    case Fixed32:
      return skip(4);
    case Bytes:
      if (!varint(len) || len > end_ - pos_)
        return false;
      start = pos_;
      pos_ += len;
      return true;
    default: // groups (3, 4) are not used by ONNX
      return false;
    }
  }

private:
  bool skip(uint64_t n) {
    if (n > end_ - pos_)
      return false;
    pos_ += n;
    return true;
  }

  const uint8_t *base_;
  uint64_t pos_, end_;
};

/// The raw_data of the TensorProto at [start, start + len).
bool scanTensor(const uint8_t *base, uint64_t start, uint64_t len,
                std::optional<ByteRange> &raw) {
  Reader r(base, start, start + len);
  while (!r.done()) {
    uint32_t number, type;
    uint64_t s = 0, l = 0;
    if (!r.field(number, type, s, l))
      return false;
    if (number == kTensorRawData && type == Bytes)
      raw = ByteRange{s, l};
  }
  return true;
}

bool scanNode(const uint8_t *base, uint64_t start, uint64_t len,
              std::optional<ByteRange> &valueRaw) {
  Reader r(base, start, start + len);
  while (!r.done()) {
    uint32_t number, type;
    uint64_t s = 0, l = 0;
    if (!r.field(number, type, s, l))
      return false;
    if (number != kNodeAttribute || type != Bytes)
      continue;
    Reader a(base, s, s + l);
    std::string name;
    std::optional<ByteRange> raw;
    while (!a.done()) {
      uint32_t n2, t2;
      uint64_t s2 = 0, l2 = 0;
      if (!a.field(n2, t2, s2, l2))
        return false;
      if (n2 == kAttributeName && t2 == Bytes)
        name.assign(reinterpret_cast<const char *>(base + s2), l2);
      else if (n2 == kAttributeTensor && t2 == Bytes &&
               !scanTensor(base, s2, l2, raw))
        return false;
    }
    if (name == "value" && raw)
      valueRaw = raw;
  }
  return true;
}

} // namespace

bool scanRawData(const uint8_t *data, size_t size, RawDataMap &out,
                 std::string &error) {
  out = RawDataMap();
  Reader model(data, 0, size);
  while (!model.done()) {
    uint32_t number, type;
    uint64_t s = 0, l = 0;
    if (!model.field(number, type, s, l)) {
      error = "malformed protobuf at byte " + std::to_string(model.pos());
      return false;
    }
    if (number != kModelGraph || type != Bytes)
      continue;
    // A repeated message field may appear more than once (merged): keep the
    // counters across occurrences as protobuf's merge semantics do.
    Reader graph(data, s, s + l);
    while (!graph.done()) {
      uint32_t n2, t2;
      uint64_t s2 = 0, l2 = 0;
      if (!graph.field(n2, t2, s2, l2)) {
        error = "malformed graph at byte " + std::to_string(graph.pos());
        return false;
      }
      if (t2 != Bytes)
        continue;
      if (n2 == kGraphInitializer) {
        std::optional<ByteRange> raw;
        if (!scanTensor(data, s2, l2, raw)) {
          error = "malformed initializer at byte " + std::to_string(s2);
          return false;
        }
        out.initializers.push_back(raw);
      } else if (n2 == kGraphNode) {
        std::optional<ByteRange> raw;
        if (!scanNode(data, s2, l2, raw)) {
          error = "malformed node at byte " + std::to_string(s2);
          return false;
        }
        if (raw)
          out.constants[out.nodeCount] = *raw;
        ++out.nodeCount;
      }
    }
  }
  return true;
}

} // namespace moe::onnx_frontend
