//===- ExpertKernels.h - moe.experts on the cuda and hybrid devices -*- C++ -*-===//
//
// The cuda device's moe.experts: the decode path (grouped GEMVs from the
// device offsets), the GEMM path (per expert, sized on the host), and the
// hybrid device's split (MoNDE): GPU-resident experts from device memory,
// on-demand experts through a bounded device cache, CPU experts computed on
// the host from host memory at the same time, with only their rows crossing
// PCIe (pinned buffers both ways).
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_CUDA_EXPERTKERNELS_H
#define MOE_RUNTIME_CUDA_EXPERTKERNELS_H

#include "runtime/cuda/CudaKernels.h"

#include <memory>
#include <vector>

namespace moe::rt::cuda {

class CudaDevice;

/// Where the hybrid device keeps one moe.experts step's expert weights.
struct ExpertResidency {
  /// Per expert, from the step's `placement` (moe-place-experts): 1 GPU
  /// resident (0, unassigned, too), 2 computed on the CPU, 3 on demand.
  std::vector<int64_t> placement;
  /// Per input of the step (w1, w2, w3 at 2, 3, 4): the host weights
  /// (a plan weight or a value folded at load).
  std::vector<Tensor> host;
  /// device[i][x]: expert x's matrix of input i on the device, for
  /// resident experts (null for the others).
  std::vector<std::vector<const void *>> device;
  /// A bounded cache of on-demand experts (least recently used goes).
  struct Slot {
    int64_t expert = -1;
    uint64_t used = 0;
    std::vector<void *> ptr; ///< per input, the slot's room for it
  };
  std::vector<Slot> cache;
  uint64_t clock = 0;
  /// The device allocations behind `device` and `cache`.
  std::vector<Tensor> held;
  /// Signals that the CPU experts' rows have reached the host.
  void *rowsDown = nullptr; // cudaEvent_t
  /// Traffic since creation: bytes over PCIe each way (activations, and
  /// on-demand weights up), and cache hits and misses.
  uint64_t h2dBytes = 0, d2hBytes = 0, hits = 0, misses = 0;
  ~ExpertResidency();
};

/// The residency of moe.experts step `step` on `device`: uploads the
/// resident experts' slices of w1, w2 and w3 (from `host`, the step's
/// inputs on the host) and makes `cacheSlots` cache slots (none when no
/// expert is on demand).
StatusOr<std::unique_ptr<ExpertResidency>>
makeResidency(CudaDevice &device, const StepInfo &step,
              const std::vector<Tensor> &host, int cacheSlots);

/// The moe.experts entry of the kernel table.
CudaKernel expertsKernel();

} // namespace moe::rt::cuda

#endif // MOE_RUNTIME_CUDA_EXPERTKERNELS_H
