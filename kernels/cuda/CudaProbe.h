//===- CudaProbe.h - CUDA device discovery and a smoke kernel ---*- C++ -*-===//
//
// The first piece of the CUDA backend: finding devices, and one elementwise
// kernel that proves the toolchain, the launch path and error reporting work
// end to end. The cuBLASLt expert kernels and the `cuda` device of the
// runtime build on this (issue 6). No CUDA header leaks out of this header,
// so CPU-only code can include it.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CUDA_CUDAPROBE_H
#define MOE_KERNELS_CUDA_CUDAPROBE_H

#include "runtime/Status.h"

#include <cstddef>
#include <string>

namespace moe::cuda {

/// Number of usable CUDA devices (0 when there is no driver or no GPU; that
/// is not an error). The name of device 0 goes to `name` when there is one.
int deviceCount(std::string *name = nullptr);

/// y = x * sigmoid(x) on device 0 for `n` host floats, through device memory.
/// Every CUDA call is checked and named in the error.
rt::Status siluOnDevice(const float *x, float *y, size_t n);

} // namespace moe::cuda

#endif // MOE_KERNELS_CUDA_CUDAPROBE_H
