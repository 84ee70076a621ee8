//===- CudaCheck.h - CUDA and cuBLASLt errors as Status ---------*- C++ -*-===//
//
// Every CUDA call of the backend goes through check(): a failure becomes a
// Status naming the call and CUDA's own name and text for the error.
// Included by CUDA-side sources only (it brings in CUDA's headers).
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CUDA_CUDACHECK_H
#define MOE_KERNELS_CUDA_CUDACHECK_H

#include "runtime/Status.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <string>

namespace moe::cuda {

inline rt::Status check(cudaError_t err, const char *call) {
  if (err == cudaSuccess)
    return rt::Status::ok();
  return rt::Status::error(std::string(call) + " failed: " +
                           cudaGetErrorName(err) + " (" +
                           cudaGetErrorString(err) + ")");
}

inline rt::Status check(cublasStatus_t st, const char *call) {
  if (st == CUBLAS_STATUS_SUCCESS)
    return rt::Status::ok();
  return rt::Status::error(std::string(call) + " failed: " +
                           cublasLtGetStatusName(st) + " (" +
                           cublasLtGetStatusString(st) + ")");
}

/// The launch error of the kernel just launched, if any.
inline rt::Status checkLaunch(const char *kernel) {
  return check(cudaGetLastError(), kernel);
}

/// Blocks of `threads` covering n items (at least one block).
inline unsigned blocksFor(long long n, unsigned threads) {
  long long b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : b);
}

} // namespace moe::cuda

#endif // MOE_KERNELS_CUDA_CUDACHECK_H
