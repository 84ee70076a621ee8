//===- Measure.cu - Kernels that measure the GPU --------------------------===//

#include "kernels/cuda/Measure.h"

#include "kernels/cuda/CudaCheck.h"

namespace moe::cuda {
namespace {

__global__ void readKernel(const float4 *p, size_t n, float *partials) {
  float acc = 0;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    float4 v = p[i];
    acc += (v.x + v.y) + (v.z + v.w);
  }
  for (int o = 16; o > 0; o /= 2)
    acc += __shfl_xor_sync(0xffffffffu, acc, o);
  __shared__ float warps[32];
  if (threadIdx.x % 32 == 0)
    warps[threadIdx.x / 32] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0;
    for (unsigned w = 0; w < blockDim.x / 32; ++w)
      s += warps[w];
    partials[blockIdx.x] = s;
  }
}

__global__ void nothingKernel() {}

} // namespace

rt::Status readAll(const void *data, size_t bytes, float *partials,
                   unsigned blocks, Stream stream) {
  if (bytes % 16 != 0)
    return rt::Status::error("readAll: bytes must be a multiple of 16");
  readKernel<<<blocks, 512, 0, stream>>>(static_cast<const float4 *>(data),
                                         bytes / 16, partials);
  return checkLaunch("readKernel launch");
}

rt::Status emptyKernel(Stream stream) {
  nothingKernel<<<1, 1, 0, stream>>>();
  return checkLaunch("nothingKernel launch");
}

} // namespace moe::cuda
