//===- TensorProto.cpp - onnx.TensorProto without protobuf ----------------===//

#include "runtime/io/TensorProto.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "raw_data is little-endian; this codec assumes a LE host");

namespace moe::rt {

int32_t toOnnxDataType(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return onnx_dtype::kFloat;
  case DType::F16:
    return onnx_dtype::kFloat16;
  case DType::BF16:
    return onnx_dtype::kBfloat16;
  case DType::F64:
    return onnx_dtype::kDouble;
  case DType::I64:
    return onnx_dtype::kInt64;
  case DType::I32:
    return onnx_dtype::kInt32;
  case DType::I8:
    return onnx_dtype::kInt8;
  case DType::U8:
    return onnx_dtype::kUint8;
  case DType::I1:
    return onnx_dtype::kBool;
  }
  return 0;
}

StatusOr<DType> fromOnnxDataType(int32_t t) {
  switch (t) {
  case onnx_dtype::kFloat:
    return DType::F32;
  case onnx_dtype::kUint8:
    return DType::U8;
  case onnx_dtype::kInt8:
    return DType::I8;
  case onnx_dtype::kInt32:
    return DType::I32;
  case onnx_dtype::kInt64:
    return DType::I64;
  case onnx_dtype::kBool:
    return DType::I1;
  case onnx_dtype::kFloat16:
    return DType::F16;
  case onnx_dtype::kDouble:
    return DType::F64;
  case onnx_dtype::kBfloat16:
    return DType::BF16;
  }
  static const char *const kNames[] = {
      "UNDEFINED", "FLOAT",     "UINT8",     "INT8",        "UINT16",
      "INT16",     "INT32",     "INT64",     "STRING",      "BOOL",
      "FLOAT16",   "DOUBLE",    "UINT32",    "UINT64",      "COMPLEX64",
      "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ",
      "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4"};
  std::string name = t >= 0 && size_t(t) < sizeof(kNames) / sizeof(kNames[0])
                         ? std::string(kNames[t])
                         : "unknown";
  return Status::error("data_type " + std::to_string(t) + " (" + name +
                       ") is not supported");
}

namespace {

enum WireType { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

/// A bounds-checked cursor over protobuf wire bytes.
class WireReader {
public:
  WireReader(const uint8_t *p, size_t n) : p_(p), end_(p + n), begin_(p) {}
  bool done() const { return p_ == end_; }
  size_t offset() const { return size_t(p_ - begin_); }

  Status varint(uint64_t &v) {
    v = 0;
    for (int i = 0; i < 10; ++i) {
      if (p_ == end_)
        return Status::error("truncated varint at byte " +
                             std::to_string(offset()));
      uint8_t b = *p_++;
      if (i == 9 && b > 1)
        return Status::error("varint overflows 64 bits at byte " +
                             std::to_string(offset()));
      v |= uint64_t(b & 0x7F) << (7 * i);
      if (!(b & 0x80))
        return Status::ok();
    }
    return Status::error("varint longer than 10 bytes at byte " +
                         std::to_string(offset()));
  }

  Status fixed(void *out, size_t n) {
    if (size_t(end_ - p_) < n)
      return Status::error("truncated fixed" + std::to_string(8 * n) +
                           " at byte " + std::to_string(offset()));
    std::memcpy(out, p_, n);
    p_ += n;
    return Status::ok();
  }

  Status bytes(const uint8_t *&data, size_t &len) {
    uint64_t n;
    MOE_RETURN_IF_ERROR(varint(n));
    if (n > uint64_t(end_ - p_))
      return Status::error("length " + std::to_string(n) + " at byte " +
                           std::to_string(offset()) + " runs past the end (" +
                           std::to_string(end_ - p_) + " bytes left)");
    data = p_;
    len = size_t(n);
    p_ += n;
    return Status::ok();
  }

  Status skip(uint32_t wireType) {
    uint64_t v;
    const uint8_t *d;
    size_t n;
    switch (wireType) {
    case kVarint:
      return varint(v);
    case kFixed64:
      return fixed(&v, 8);
    case kFixed32:
      return fixed(&v, 4);
    case kLen:
      return bytes(d, n);
    }
    return Status::error("unsupported wire type " + std::to_string(wireType) +
                         " at byte " + std::to_string(offset()));
  }

private:
  const uint8_t *p_, *end_, *begin_;
};

/// Reads a repeated varint field, packed or not, appending to `out`.
Status readVarints(WireReader &r, uint32_t wireType, std::vector<uint64_t> &out) {
  if (wireType == kVarint) {
    uint64_t v;
    MOE_RETURN_IF_ERROR(r.varint(v));
    out.push_back(v);
    return Status::ok();
  }
  const uint8_t *d;
  size_t n;
  MOE_RETURN_IF_ERROR(r.bytes(d, n));
  WireReader packed(d, n);
  while (!packed.done()) {
    uint64_t v;
    MOE_RETURN_IF_ERROR(packed.varint(v));
    out.push_back(v);
  }
  return Status::ok();
}

/// Reads a repeated fixed-width field (4 or 8 bytes), packed or not.
template <typename T>
Status readFixed(WireReader &r, uint32_t wireType, std::vector<T> &out) {
  if (wireType != kLen) {
    T v;
    MOE_RETURN_IF_ERROR(r.fixed(&v, sizeof(T)));
    out.push_back(v);
    return Status::ok();
  }
  const uint8_t *d;
  size_t n;
  MOE_RETURN_IF_ERROR(r.bytes(d, n));
  if (n % sizeof(T) != 0)
    return Status::error("packed field of " + std::to_string(n) +
                         " bytes is not a multiple of " +
                         std::to_string(sizeof(T)));
  size_t old = out.size();
  out.resize(old + n / sizeof(T));
  if (n)
    std::memcpy(out.data() + old, d, n);
  return Status::ok();
}

struct Fields {
  std::vector<uint64_t> dims;
  int32_t dataType = 0;
  std::string name;
  bool hasRaw = false;
  const uint8_t *raw = nullptr;
  size_t rawSize = 0;
  std::vector<float> floats;
  std::vector<double> doubles;
  std::vector<uint64_t> int32s, int64s, uint64s;
};

Status parseFields(const uint8_t *data, size_t size, Fields &f) {
  WireReader r(data, size);
  while (!r.done()) {
    size_t at = r.offset();
    uint64_t key;
    MOE_RETURN_IF_ERROR(r.varint(key));
    uint64_t field = key >> 3;
    uint32_t wt = uint32_t(key & 7);
    if (field == 0 || field > 0x1FFFFFFF)
      return Status::error("invalid field number " + std::to_string(field) +
                           " at byte " + std::to_string(at));
    auto expect = [&](bool ok, const char *what) -> Status {
      if (ok)
        return Status::ok();
      return Status::error("field " + std::string(what) + " has wire type " +
                           std::to_string(wt) + " at byte " +
                           std::to_string(at));
    };
    const uint8_t *d;
    size_t n;
    uint64_t v;
    switch (field) {
    case 1: // dims
      MOE_RETURN_IF_ERROR(expect(wt == kVarint || wt == kLen, "dims"));
      MOE_RETURN_IF_ERROR(readVarints(r, wt, f.dims));
      break;
    case 2: // data_type
      MOE_RETURN_IF_ERROR(expect(wt == kVarint, "data_type"));
      MOE_RETURN_IF_ERROR(r.varint(v));
      f.dataType = int32_t(uint32_t(v)); // int32 on the wire: low 32 bits
      break;
    case 3:
      return Status::error("segmented tensors (field segment) are not "
                           "supported");
    case 4: // float_data
      MOE_RETURN_IF_ERROR(expect(wt == kFixed32 || wt == kLen, "float_data"));
      MOE_RETURN_IF_ERROR(readFixed(r, wt, f.floats));
      break;
    case 5: // int32_data
      MOE_RETURN_IF_ERROR(expect(wt == kVarint || wt == kLen, "int32_data"));
      MOE_RETURN_IF_ERROR(readVarints(r, wt, f.int32s));
      break;
    case 6:
      return Status::error("string tensors (string_data) are not supported");
    case 7: // int64_data
      MOE_RETURN_IF_ERROR(expect(wt == kVarint || wt == kLen, "int64_data"));
      MOE_RETURN_IF_ERROR(readVarints(r, wt, f.int64s));
      break;
    case 8: // name
      MOE_RETURN_IF_ERROR(expect(wt == kLen, "name"));
      MOE_RETURN_IF_ERROR(r.bytes(d, n));
      f.name.assign(reinterpret_cast<const char *>(d), n);
      break;
    case 9: // raw_data
      MOE_RETURN_IF_ERROR(expect(wt == kLen, "raw_data"));
      MOE_RETURN_IF_ERROR(r.bytes(f.raw, f.rawSize));
      f.hasRaw = true;
      break;
    case 10: // double_data
      MOE_RETURN_IF_ERROR(expect(wt == kFixed64 || wt == kLen, "double_data"));
      MOE_RETURN_IF_ERROR(readFixed(r, wt, f.doubles));
      break;
    case 11: // uint64_data
      MOE_RETURN_IF_ERROR(expect(wt == kVarint || wt == kLen, "uint64_data"));
      MOE_RETURN_IF_ERROR(readVarints(r, wt, f.uint64s));
      break;
    case 13:
      return Status::error("external data (field external_data) is not "
                           "supported; save the tensor with its data inline");
    case 14: // data_location
      MOE_RETURN_IF_ERROR(expect(wt == kVarint, "data_location"));
      MOE_RETURN_IF_ERROR(r.varint(v));
      if (v != 0)
        return Status::error("data_location is EXTERNAL; save the tensor with "
                             "its data inline");
      break;
    default:
      MOE_RETURN_IF_ERROR(r.skip(wt));
    }
  }
  return Status::ok();
}

/// Copies typed int32_data into the tensor, checking each value's range.
Status storeInt32s(const std::vector<uint64_t> &src, DType dtype, Tensor &t) {
  int64_t lo = 0, hi = 0;
  switch (dtype) {
  case DType::I32:
    lo = INT32_MIN, hi = INT32_MAX;
    break;
  case DType::I8:
    lo = -128, hi = 127;
    break;
  case DType::U8:
    lo = 0, hi = 255;
    break;
  case DType::I1:
    lo = 0, hi = 1;
    break;
  default: // f16 / bf16 bits
    lo = 0, hi = 65535;
  }
  auto *out = static_cast<uint8_t *>(t.mutableData());
  size_t es = dtypeSize(dtype);
  for (size_t i = 0; i < src.size(); ++i) {
    int64_t v = int32_t(uint32_t(src[i]));
    if (v < lo || v > hi)
      return Status::error("int32_data[" + std::to_string(i) + "] = " +
                           std::to_string(v) + " is out of range for " +
                           dtypeName(dtype));
    if (es == 4) {
      int32_t x = int32_t(v);
      std::memcpy(out + 4 * i, &x, 4);
    } else if (es == 2) {
      uint16_t x = uint16_t(v);
      std::memcpy(out + 2 * i, &x, 2);
    } else {
      out[i] = uint8_t(v);
    }
  }
  return Status::ok();
}

} // namespace

StatusOr<NamedTensor> parseTensorProto(const uint8_t *data, size_t size) {
  Fields f;
  MOE_RETURN_IF_ERROR(parseFields(data, size, f));
  if (f.dataType == 0)
    return Status::error("data_type is missing (UNDEFINED)");
  StatusOr<DType> dtype = fromOnnxDataType(f.dataType);
  if (!dtype.isOk())
    return dtype.status();
  Shape shape;
  for (uint64_t d : f.dims) {
    if (int64_t(d) < 0)
      return Status::error("dims has negative entry " +
                           std::to_string(int64_t(d)));
    shape.push_back(int64_t(d));
  }
  StatusOr<int64_t> count = checkedNumElements(shape, dtypeSize(*dtype));
  if (!count.isOk())
    return count.status();
  uint64_t n = uint64_t(*count);
  std::string type = formatType(*dtype, shape);

  // Which typed field the dtype uses, and how many values each field holds.
  const char *field = nullptr;
  size_t typedCount = 0;
  switch (*dtype) {
  case DType::F32:
    field = "float_data", typedCount = f.floats.size();
    break;
  case DType::F64:
    field = "double_data", typedCount = f.doubles.size();
    break;
  case DType::I64:
    field = "int64_data", typedCount = f.int64s.size();
    break;
  default:
    field = "int32_data", typedCount = f.int32s.size();
  }
  size_t totalTyped = f.floats.size() + f.doubles.size() + f.int32s.size() +
                      f.int64s.size() + f.uint64s.size();
  if (totalTyped != typedCount)
    return Status::error("a " + type + " tensor may only use " + field +
                         " or raw_data");
  if (f.hasRaw && typedCount)
    return Status::error("the tensor has both raw_data and " +
                         std::string(field));

  NamedTensor out;
  out.name = f.name;
  size_t bytes = size_t(n) * dtypeSize(*dtype);
  if (f.hasRaw) {
    if (f.rawSize != bytes)
      return Status::error("raw_data has " + std::to_string(f.rawSize) +
                           " bytes, a " + type + " tensor needs " +
                           std::to_string(bytes));
  } else if (typedCount != n) {
    return Status::error(std::string(field) + " has " +
                         std::to_string(typedCount) + " values, a " + type +
                         " tensor needs " + std::to_string(n));
  }
  StatusOr<Tensor> t = Tensor::allocate(*dtype, shape);
  if (!t.isOk())
    return t.status();
  if (f.hasRaw) {
    if (bytes)
      std::memcpy(t->mutableData(), f.raw, bytes);
  } else if (*dtype == DType::F32) {
    if (bytes)
      std::memcpy(t->mutableData(), f.floats.data(), bytes);
  } else if (*dtype == DType::F64) {
    if (bytes)
      std::memcpy(t->mutableData(), f.doubles.data(), bytes);
  } else if (*dtype == DType::I64) {
    auto *p = t->mutableData<int64_t>();
    for (size_t i = 0; i < n; ++i)
      p[i] = int64_t(f.int64s[i]);
  } else {
    MOE_RETURN_IF_ERROR(storeInt32s(f.int32s, *dtype, *t));
  }
  out.tensor = std::move(*t);
  return out;
}

namespace {
void putVarint(std::string &out, uint64_t v) {
  while (v >= 0x80) {
    out += char(uint8_t(v) | 0x80);
    v >>= 7;
  }
  out += char(uint8_t(v));
}
void putKey(std::string &out, uint32_t field, uint32_t wireType) {
  putVarint(out, (uint64_t(field) << 3) | wireType);
}
} // namespace

std::string serializeTensorProto(const Tensor &tensor,
                                 const std::string &name) {
  std::string out;
  for (int64_t d : tensor.shape()) {
    putKey(out, 1, kVarint);
    putVarint(out, uint64_t(d));
  }
  putKey(out, 2, kVarint);
  putVarint(out, uint64_t(toOnnxDataType(tensor.dtype())));
  if (!name.empty()) {
    putKey(out, 8, kLen);
    putVarint(out, name.size());
    out += name;
  }
  putKey(out, 9, kLen);
  putVarint(out, tensor.byteSize());
  out.append(static_cast<const char *>(tensor.data()), tensor.byteSize());
  return out;
}

StatusOr<NamedTensor> readTensorProtoFile(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Status::error(path + ": cannot open: " + std::strerror(errno));
  std::string bytes;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return Status::error(path + ": cannot read: " + std::strerror(err));
    }
    if (n == 0)
      break;
    bytes.append(buf, size_t(n));
  }
  ::close(fd);
  StatusOr<NamedTensor> t = parseTensorProto(
      reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size());
  if (!t.isOk())
    return t.status().withContext(path);
  return t;
}

Status writeTensorProtoFile(const std::string &path, const Tensor &tensor,
                            const std::string &name) {
  std::string bytes = serializeTensorProto(tensor, name);
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return Status::error(tmp + ": cannot create: " + std::strerror(errno));
  const char *p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::error(tmp + ": cannot write: " + std::strerror(err));
    }
    p += n;
    left -= size_t(n);
  }
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::error(path + ": cannot write: " + std::strerror(err));
  }
  return Status::ok();
}

} // namespace moe::rt
