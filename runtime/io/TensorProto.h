//===- TensorProto.h - onnx.TensorProto without protobuf --------*- C++ -*-===//
//
// A hand-written reader and writer of the protobuf wire format of
// onnx.TensorProto, the format of ONNX test data (input_0.pb, ...). It keeps
// moe-exec free of protobuf and libonnx so that the binary can be carried
// alone to a GPU host. The reader bounds-checks every varint and length and
// rejects what it does not understand (external data, segments, strings,
// unsupported element types) with a one-line error; it is fuzzed.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_IO_TENSORPROTO_H
#define MOE_RUNTIME_IO_TENSORPROTO_H

#include "runtime/Tensor.h"

#include <string>
#include <vector>

namespace moe::rt {

/// ONNX TensorProto.DataType numbers of the supported element types.
namespace onnx_dtype {
constexpr int32_t kFloat = 1, kUint8 = 2, kInt8 = 3, kInt32 = 6, kInt64 = 7,
                  kBool = 9, kFloat16 = 10, kDouble = 11, kBfloat16 = 16;
} // namespace onnx_dtype

/// The ONNX data_type of `dtype`.
int32_t toOnnxDataType(DType dtype);
/// The dtype of an ONNX data_type, or an error naming the type.
StatusOr<DType> fromOnnxDataType(int32_t dataType);

/// A decoded TensorProto.
struct NamedTensor {
  std::string name;
  Tensor tensor;
};

/// Parses the serialised TensorProto in [data, data + size).
StatusOr<NamedTensor> parseTensorProto(const uint8_t *data, size_t size);

/// Serialises dims, data_type, name and raw_data (little-endian).
std::string serializeTensorProto(const Tensor &tensor, const std::string &name);

/// Reads and parses a .pb file; errors start with the path.
StatusOr<NamedTensor> readTensorProtoFile(const std::string &path);

/// Writes a .pb file atomically (to `path`.tmp, then renamed).
Status writeTensorProtoFile(const std::string &path, const Tensor &tensor,
                            const std::string &name);

} // namespace moe::rt

#endif // MOE_RUNTIME_IO_TENSORPROTO_H
