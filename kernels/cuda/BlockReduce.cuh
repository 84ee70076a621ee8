//===- BlockReduce.cuh - Block-wide reductions for CUDA kernels -*- C++ -*-===//
//
// Sum and max over a thread block (blockDim.x a multiple of 32, at most
// 1024), every thread getting the result. Each call uses `scratch` (32
// floats of shared memory) and may be called again right after.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CUDA_BLOCKREDUCE_CUH
#define MOE_KERNELS_CUDA_BLOCKREDUCE_CUH

namespace moe::cuda {

template <typename Op>
__device__ __forceinline__ float blockReduce(float v, float *scratch, Op op,
                                             float identity) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int o = 16; o > 0; o /= 2)
    v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads(); // a previous call's readers are done with scratch
  if (lane == 0)
    scratch[warp] = v;
  __syncthreads();
  float r = identity;
  for (unsigned w = 0; w < blockDim.x / 32; ++w)
    r = op(r, scratch[w]);
  return r;
}

__device__ __forceinline__ float blockSum(float v, float *scratch) {
  return blockReduce(
      v, scratch, [](float a, float b) { return a + b; }, 0.0f);
}

__device__ __forceinline__ float blockMax(float v, float *scratch) {
  return blockReduce(
      v, scratch, [](float a, float b) { return fmaxf(a, b); }, -INFINITY);
}

} // namespace moe::cuda

#endif // MOE_KERNELS_CUDA_BLOCKREDUCE_CUH
