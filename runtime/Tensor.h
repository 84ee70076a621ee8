//===- Tensor.h - Dense tensors of the runtime ------------------*- C++ -*-===//
//
// A Tensor is a dtype, a shape and shared storage: either owned (64-byte
// aligned heap memory) or a read-only view into memory kept alive by an
// owner (the mmapped plan file for weights). Copies share the storage; the
// executor treats produced tensors as immutable, so sharing is safe.
//
// A packed weight (group-quantised slices, docs/plan-format.md "Quantised
// weights") is a view whose dtype and shape are the logical ones (f32) and
// whose bytes are described by a shared PackedWeight; only kernels that
// declare packed operands read it.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_TENSOR_H
#define MOE_RUNTIME_TENSOR_H

#include "runtime/DType.h"
#include "runtime/Status.h"

#include "kernels/cpu/Quant.h"

#include <cstring>
#include <memory>
#include <vector>

namespace moe::rt {

/// Storage alignment of owned tensors.
constexpr size_t kTensorAlignment = 64;

/// How the bytes of a packed weight are laid out: one matrix per index of
/// dimension 0, matrix i in `formats[i]` at `offsets[i]` bytes from the
/// tensor's data(), `rows` x `cols` = shape[1] x product(shape[2:]).
struct PackedWeight {
  std::vector<kernels::cpu::QuantFormat> formats;
  std::vector<uint64_t> offsets;
  std::vector<uint64_t> sizes;
  int64_t rows = 0, cols = 0;
};

class Tensor {
public:
  /// An undefined tensor (defined() is false).
  Tensor() = default;

  /// Allocates uninitialised storage. Fails on an unknown dtype, a negative
  /// dim, a size that overflows or memory exhaustion.
  static StatusOr<Tensor> allocate(DType dtype, Shape shape);
  /// Like allocate() but zero-filled.
  static StatusOr<Tensor> zeros(DType dtype, Shape shape);
  /// A read-only view of `data` (which must hold the whole tensor) kept
  /// alive by `owner`.
  static Tensor view(DType dtype, Shape shape, const void *data,
                     std::shared_ptr<const void> owner);
  /// A read-only view of a packed weight of logical type `dtype` x `shape`
  /// (see PackedWeight) kept alive by `owner`.
  static Tensor packedView(DType dtype, Shape shape, const void *data,
                           std::shared_ptr<const void> owner,
                           std::shared_ptr<const PackedWeight> packed);
  /// A writable tensor in device memory (a CUDA allocation) that `owner`
  /// keeps alive; with `packed`, a packed weight's bytes on the device. Its data() is a device address: only device kernels and
  /// copies read it, and the host accessors (toVector, clone) refuse it.
  static Tensor onDevice(DType dtype, Shape shape, void *data,
                         std::shared_ptr<const void> owner,
                         std::shared_ptr<const PackedWeight> packed = nullptr);
  /// An owned tensor holding a copy of `values` (T must match the dtype's
  /// size; for tests and tools).
  template <typename T>
  static StatusOr<Tensor> fromVector(DType dtype, Shape shape,
                                     const std::vector<T> &values);

  bool defined() const { return defined_; }
  bool isView() const { return isView_; }
  /// The storage is device memory (see onDevice()).
  bool isOnDevice() const { return onDevice_; }
  /// The layout of a packed weight; null for ordinary (dense) tensors. The
  /// element accessors below do not apply to packed tensors.
  const PackedWeight *packed() const { return packed_.get(); }
  DType dtype() const { return dtype_; }
  const Shape &shape() const { return shape_; }
  size_t rank() const { return shape_.size(); }
  int64_t dim(size_t i) const { return shape_[i]; }
  int64_t numElements() const { return numElements_; }
  /// Bytes of the dense form (for a packed tensor: of its logical type).
  size_t byteSize() const { return size_t(numElements_) * dtypeSize(dtype_); }

  const void *data() const { return data_; }
  /// Writable storage; must not be used on views.
  void *mutableData() { return data_; }
  template <typename T> const T *data() const {
    return static_cast<const T *>(static_cast<const void *>(data_));
  }
  template <typename T> T *mutableData() {
    return static_cast<T *>(static_cast<void *>(data_));
  }
  /// The elements copied out (T must match the dtype's size); empty for a
  /// device tensor.
  template <typename T> std::vector<T> toVector() const {
    std::vector<T> v(onDevice_ ? 0 : static_cast<size_t>(numElements_));
    if (!v.empty())
      std::memcpy(v.data(), data_, v.size() * sizeof(T));
    return v;
  }

  /// The same storage with another shape of the same element count (not for
  /// packed tensors; device tensors stay on the device).
  StatusOr<Tensor> reshaped(Shape shape) const;
  /// A deep, owned copy (not for packed or device tensors).
  StatusOr<Tensor> clone() const;

private:
  DType dtype_ = DType::F32;
  Shape shape_;
  int64_t numElements_ = 0;
  std::shared_ptr<const void> storage_;
  std::shared_ptr<const PackedWeight> packed_;
  uint8_t *data_ = nullptr;
  bool isView_ = false;
  bool onDevice_ = false;
  bool defined_ = false;
};

/// Element count of a static shape, or an error on a negative dim or
/// overflow (the count times `elemSize` must fit in 2^62 bytes).
StatusOr<int64_t> checkedNumElements(const Shape &shape, size_t elemSize);

template <typename T>
StatusOr<Tensor> Tensor::fromVector(DType dtype, Shape shape,
                                    const std::vector<T> &values) {
  if (dtypeSize(dtype) != sizeof(T))
    return Status::error("element size of " + dtypeName(dtype) +
                         " does not match the C++ type");
  StatusOr<Tensor> t = allocate(dtype, std::move(shape));
  if (!t.isOk())
    return t;
  if (size_t(t->numElements()) != values.size())
    return Status::error("shape " + formatShape(t->shape()) + " holds " +
                         std::to_string(t->numElements()) + " elements, got " +
                         std::to_string(values.size()));
  if (!values.empty())
    std::memcpy(t->mutableData(), values.data(), values.size() * sizeof(T));
  return t;
}

} // namespace moe::rt

#endif // MOE_RUNTIME_TENSOR_H
