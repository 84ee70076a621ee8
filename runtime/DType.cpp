//===- DType.cpp - Element types of runtime tensors -----------------------===//

#include "runtime/DType.h"

namespace moe::rt {

namespace {
struct DTypeInfo {
  DType dtype;
  const char *name;
  size_t size;
  bool isFloat;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::F32, "f32", 4, true}, {DType::F16, "f16", 2, true},
    {DType::BF16, "bf16", 2, true}, {DType::F64, "f64", 8, true},
    {DType::I64, "i64", 8, false}, {DType::I32, "i32", 4, false},
    {DType::I8, "i8", 1, false},   {DType::U8, "u8", 1, false},
    {DType::I1, "i1", 1, false},
};

const DTypeInfo *info(DType dtype) {
  for (const DTypeInfo &i : kDTypes)
    if (i.dtype == dtype)
      return &i;
  return nullptr;
}
} // namespace

bool isKnownDType(DType dtype) { return info(dtype) != nullptr; }

size_t dtypeSize(DType dtype) {
  const DTypeInfo *i = info(dtype);
  return i ? i->size : 0;
}

std::string dtypeName(DType dtype) {
  const DTypeInfo *i = info(dtype);
  return i ? i->name : "dtype(" + std::to_string(int(dtype)) + ")";
}

std::optional<DType> parseDType(std::string_view name) {
  for (const DTypeInfo &i : kDTypes)
    if (name == i.name)
      return i.dtype;
  return std::nullopt;
}

bool isFloatDType(DType dtype) {
  const DTypeInfo *i = info(dtype);
  return i && i->isFloat;
}

std::string formatShape(const Shape &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += shape[i] < 0 ? "?" : std::to_string(shape[i]);
  }
  return s + "]";
}

std::string formatType(DType dtype, const Shape &shape) {
  std::string s;
  for (int64_t d : shape)
    s += (d < 0 ? std::string("?") : std::to_string(d)) + "x";
  return s + dtypeName(dtype);
}

} // namespace moe::rt
