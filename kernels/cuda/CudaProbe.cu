//===- CudaProbe.cu - CUDA device discovery and a smoke kernel ------------===//

#include "kernels/cuda/CudaProbe.h"

#include <cuda_runtime.h>

namespace moe::cuda {
namespace {

/// Turns a CUDA error into a Status naming the call.
rt::Status check(cudaError_t err, const char *call) {
  if (err == cudaSuccess)
    return rt::Status::ok();
  return rt::Status::error(std::string(call) + " failed: " +
                           cudaGetErrorName(err) + " (" +
                           cudaGetErrorString(err) + ")");
}

__global__ void siluKernel(const float *x, float *y, size_t n) {
  size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i < n) {
    float v = x[i];
    y[i] = v / (1.0f + __expf(-v));
  }
}

} // namespace

int deviceCount(std::string *name) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError(); // Clear the sticky "no driver" error.
    return 0;
  }
  if (count > 0 && name) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
      *name = prop.name;
  }
  return count;
}

rt::Status siluOnDevice(const float *x, float *y, size_t n) {
  if (n == 0)
    return rt::Status::ok();
  /// Frees the device buffers on every path out.
  struct DeviceBuffers {
    float *x = nullptr;
    float *y = nullptr;
    ~DeviceBuffers() {
      if (x)
        cudaFree(x);
      if (y)
        cudaFree(y);
    }
  } d;
  size_t bytes = n * sizeof(float);
  MOE_RETURN_IF_ERROR(check(cudaMalloc(&d.x, bytes), "cudaMalloc"));
  MOE_RETURN_IF_ERROR(check(cudaMalloc(&d.y, bytes), "cudaMalloc"));
  MOE_RETURN_IF_ERROR(check(cudaMemcpy(d.x, x, bytes, cudaMemcpyHostToDevice),
                            "cudaMemcpy(host to device)"));
  unsigned blocks = static_cast<unsigned>((n + 255) / 256);
  siluKernel<<<blocks, 256>>>(d.x, d.y, n);
  MOE_RETURN_IF_ERROR(check(cudaGetLastError(), "siluKernel launch"));
  return check(cudaMemcpy(y, d.y, bytes, cudaMemcpyDeviceToHost),
               "cudaMemcpy(device to host)");
}

} // namespace moe::cuda
