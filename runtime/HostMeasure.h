//===- HostMeasure.h - Measuring the host for device profiles ---*- C++ -*-===//
//
// The host half of `moe-exec --measure-device`: how fast the CPU streams
// memory and computes expert GEMMs, measured with the runtime's own TBB
// pool and kernels, so that the placement cost model prices CPU-computed
// experts with this machine's numbers. No device API here.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_HOSTMEASURE_H
#define MOE_RUNTIME_HOSTMEASURE_H

#include "runtime/Status.h"

#include <cstdint>

namespace moe::rt {

/// Bytes per second that all cores read from a buffer of `bytes` (make it
/// several times the last-level cache: BENCHMARKING.md's 480 MiB L3 trap),
/// the median of `repeat` passes.
StatusOr<double> measureHostReadBandwidth(uint64_t bytes, int repeat);

/// Floating-point operations per second of the CPU expert kernel
/// (kernels::cpu::linear, f32) on a compute-bound [rows, k] x [n, k]ᵀ
/// product, the median of `repeat` calls.
StatusOr<double> measureHostGemmRate(int64_t rows, int64_t k, int64_t n,
                                     int repeat);

} // namespace moe::rt

#endif // MOE_RUNTIME_HOSTMEASURE_H
