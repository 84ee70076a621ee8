//===- Tensor.cpp - Dense tensors of the runtime --------------------------===//

#include "runtime/Tensor.h"

#include <cstdlib>

namespace moe::rt {

StatusOr<int64_t> checkedNumElements(const Shape &shape, size_t elemSize) {
  constexpr uint64_t kMaxBytes = uint64_t(1) << 62;
  uint64_t limit = kMaxBytes / (elemSize ? elemSize : 1);
  uint64_t n = 1;
  bool zero = false;
  for (int64_t d : shape) {
    if (d < 0)
      return Status::error("shape " + formatShape(shape) +
                           " has a dynamic or negative dim");
    if (d == 0)
      zero = true;
  }
  if (zero)
    return int64_t(0);
  for (int64_t d : shape) {
    if (uint64_t(d) > limit / n)
      return Status::error("shape " + formatShape(shape) + " is too large");
    n *= uint64_t(d);
  }
  return int64_t(n);
}

StatusOr<Tensor> Tensor::allocate(DType dtype, Shape shape) {
  if (!isKnownDType(dtype))
    return Status::error("cannot allocate a tensor of unknown " +
                         dtypeName(dtype));
  StatusOr<int64_t> n = checkedNumElements(shape, dtypeSize(dtype));
  if (!n.isOk())
    return n.status();
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numElements_ = *n;
  size_t bytes = t.byteSize();
  // aligned_alloc needs a multiple of the alignment; never ask for 0.
  size_t rounded = (bytes + kTensorAlignment - 1) / kTensorAlignment *
                   kTensorAlignment;
  if (rounded == 0)
    rounded = kTensorAlignment;
  void *p = std::aligned_alloc(kTensorAlignment, rounded);
  if (!p)
    return Status::error("out of memory allocating " + std::to_string(bytes) +
                         " bytes for a " + formatType(dtype, t.shape_) +
                         " tensor");
  t.storage_ = std::shared_ptr<void>(p, [](void *q) { std::free(q); });
  t.data_ = static_cast<uint8_t *>(p);
  t.defined_ = true;
  return t;
}

StatusOr<Tensor> Tensor::zeros(DType dtype, Shape shape) {
  StatusOr<Tensor> t = allocate(dtype, std::move(shape));
  if (t.isOk() && t->byteSize())
    std::memset(t->mutableData(), 0, t->byteSize());
  return t;
}

Tensor Tensor::view(DType dtype, Shape shape, const void *data,
                    std::shared_ptr<const void> owner) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  int64_t n = 1;
  for (int64_t d : t.shape_)
    n *= d;
  t.numElements_ = n;
  t.storage_ = std::move(owner);
  // Views are read-only by contract; the pointer is non-const only so that
  // one Tensor type serves both kinds.
  t.data_ = const_cast<uint8_t *>(static_cast<const uint8_t *>(data));
  t.isView_ = true;
  t.defined_ = true;
  return t;
}

Tensor Tensor::onDevice(DType dtype, Shape shape, void *data,
                        std::shared_ptr<const void> owner,
                        std::shared_ptr<const PackedWeight> packed) {
  Tensor t = view(dtype, std::move(shape), data, std::move(owner));
  t.packed_ = std::move(packed);
  t.isView_ = false;
  t.onDevice_ = true;
  return t;
}

Tensor Tensor::packedView(DType dtype, Shape shape, const void *data,
                          std::shared_ptr<const void> owner,
                          std::shared_ptr<const PackedWeight> packed) {
  Tensor t = view(dtype, std::move(shape), data, std::move(owner));
  t.packed_ = std::move(packed);
  return t;
}

StatusOr<Tensor> Tensor::reshaped(Shape shape) const {
  if (packed_)
    return Status::error("cannot reshape a packed (quantised) weight");
  StatusOr<int64_t> n = checkedNumElements(shape, dtypeSize(dtype_));
  if (!n.isOk())
    return n.status();
  if (*n != numElements_)
    return Status::error("cannot reshape " + formatShape(shape_) + " (" +
                         std::to_string(numElements_) + " elements) to " +
                         formatShape(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

StatusOr<Tensor> Tensor::clone() const {
  if (packed_)
    return Status::error("cannot copy a packed (quantised) weight");
  if (onDevice_)
    return Status::error("cannot copy a device tensor on the host");
  StatusOr<Tensor> t = allocate(dtype_, shape_);
  if (t.isOk() && byteSize())
    std::memcpy(t->mutableData(), data_, byteSize());
  return t;
}

} // namespace moe::rt
