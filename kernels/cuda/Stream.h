//===- Stream.h - The CUDA stream type without CUDA headers -----*- C++ -*-===//
//
// Kernel entry points take the stream they run on. cudaStream_t is
// `CUstream_st *`; naming it here keeps CUDA's headers out of every file
// that only calls the kernels.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CUDA_STREAM_H
#define MOE_KERNELS_CUDA_STREAM_H

struct CUstream_st;

namespace moe::cuda {
using Stream = CUstream_st *;
} // namespace moe::cuda

#endif // MOE_KERNELS_CUDA_STREAM_H
