//===- WireScan.h - Where tensor bytes lie inside an ONNX file --*- C++ -*-===//
//
// Protobuf parsing copies `raw_data` into memory and forgets where it was.
// The importer keeps weights as references into the model file, so it needs
// the byte offset of every initializer's (and every Constant node's)
// `raw_data` field. This reads just enough of the protobuf wire format to
// find them; anything malformed is an error, never a read past the end.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_FRONTENDS_ONNX_WIRESCAN_H
#define MOE_FRONTENDS_ONNX_WIRESCAN_H

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace moe::onnx_frontend {

/// A byte range of the model file.
struct ByteRange {
  uint64_t offset = 0;
  uint64_t size = 0;
};

struct RawDataMap {
  /// Per initializer of the main graph, in order: its raw_data, if any.
  std::vector<std::optional<ByteRange>> initializers;
  /// Per node index of the main graph: the raw_data of its `value` tensor
  /// attribute (Constant nodes), if any.
  std::map<size_t, ByteRange> constants;
  /// Nodes of the main graph seen.
  size_t nodeCount = 0;
};

/// Scans a serialized ModelProto. Returns false and sets `error` when the
/// bytes are not well-formed protobuf.
bool scanRawData(const uint8_t *data, size_t size, RawDataMap &out,
                 std::string &error);

} // namespace moe::onnx_frontend

#endif // MOE_FRONTENDS_ONNX_WIRESCAN_H
