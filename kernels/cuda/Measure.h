//===- Measure.h - Kernels that measure the GPU -----------------*- C++ -*-===//
//
// For `moe-exec --measure-device`: a streaming read of device memory (the
// HBM read bandwidth) and an empty kernel (the launch cost).
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CUDA_MEASURE_H
#define MOE_KERNELS_CUDA_MEASURE_H

#include "kernels/cuda/Stream.h"
#include "runtime/Status.h"

#include <cstddef>

namespace moe::cuda {

/// Reads `bytes` (a multiple of 16) at `data` once, with 16-byte loads,
/// and writes one partial sum per block to `partials` (`blocks` floats).
rt::Status readAll(const void *data, size_t bytes, float *partials,
                   unsigned blocks, Stream stream);

/// Launches a kernel that does nothing.
rt::Status emptyKernel(Stream stream);

} // namespace moe::cuda

#endif // MOE_KERNELS_CUDA_MEASURE_H
