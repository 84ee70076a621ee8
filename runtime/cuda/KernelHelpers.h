//===- KernelHelpers.h - Shared helpers of the cuda kernel table -*- C++ -*-===//
//
// Internal to runtime/cuda: operand checks and typed accessors used by the
// kernel table (CudaKernels.cpp) and the expert kernels (ExpertKernels.cpp).
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_CUDA_KERNELHELPERS_H
#define MOE_RUNTIME_CUDA_KERNELHELPERS_H

#include "runtime/cpu/KernelUtil.h"
#include "runtime/cuda/CudaKernels.h"

#include <cstdint>
#include <vector>

namespace moe::rt::cuda::detail {

/// Inputs first..last are dense f32 (not packed).
inline Status allF32(const std::vector<TensorType> &in, size_t first = 0,
                     size_t last = SIZE_MAX) {
  for (size_t i = first; i < in.size() && i <= last; ++i) {
    if (in[i].packed)
      return Status::error("input " + cpu::str(int64_t(i)) +
                           " is a packed (quantised) weight");
    if (in[i].dtype != DType::F32)
      return Status::error("input " + cpu::str(int64_t(i)) + " has dtype " +
                           dtypeName(in[i].dtype) +
                           "; the CUDA kernel takes f32");
  }
  return Status::ok();
}

template <typename T> const T *in(CudaKernelContext &c, size_t i) {
  return c.inputs[i].data<T>();
}
template <typename T> T *out(CudaKernelContext &c, size_t i) {
  return c.outputs[i].mutableData<T>();
}

inline int64_t product(const Shape &s, size_t begin, size_t end) {
  int64_t n = 1;
  for (size_t i = begin; i < end; ++i)
    n *= s[i];
  return n;
}

} // namespace moe::rt::cuda::detail

#endif // MOE_RUNTIME_CUDA_KERNELHELPERS_H
