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

/// The hybrid device's cache of on-demand experts, shared by every
/// moe.experts step (moe-place-experts reserves one cache of
/// `cache-experts` experts for the model): each slot holds one expert's w1,
/// w2 and w3, and the least recently used slot is refilled.
struct ExpertCache {
  struct Slot {
    int64_t step = -1, expert = -1; ///< what the slot holds
    uint64_t used = 0;
    std::vector<void *> ptr; ///< per input (2: w1, 3: w2, 4: w3)
  };
  std::vector<Slot> slots;
  uint64_t clock = 0, hits = 0, misses = 0;
  std::vector<Tensor> held; ///< the slots' device memory
};

/// `slots` slots, each with `bytes[i]` for input i (rounded up to 256).
StatusOr<std::unique_ptr<ExpertCache>>
makeExpertCache(CudaDevice &device, const std::vector<uint64_t> &bytes,
                int slots);

/// Where the hybrid device keeps one moe.experts step's expert weights.
struct ExpertResidency {
  /// The step's index in the plan (the cache's key, with the expert).
  int64_t step = 0;
  /// Per expert, from the step's `placement` (moe-place-experts): 1 GPU
  /// resident (0, unassigned, too), 2 computed on the CPU, 3 on demand.
  std::vector<int64_t> placement;
  /// Per input of the step (w1, w2, w3 at 2, 3, 4): the host weights
  /// (a plan weight or a value folded at load).
  std::vector<Tensor> host;
  /// device[i][x]: expert x's matrix of input i on the device, for
  /// resident experts (null for the others).
  std::vector<std::vector<const void *>> device;
  /// Per input, the largest slice of an on-demand expert (0: none): what a
  /// cache slot must hold for this step.
  std::vector<uint64_t> onDemandBytes;
  /// The shared cache (null when no step has on-demand experts).
  ExpertCache *cache = nullptr;
  /// The device allocations behind `device`.
  std::vector<Tensor> held;
  /// Signals that the CPU experts' rows have reached the host.
  void *rowsDown = nullptr; // cudaEvent_t
  /// Activation traffic since creation: bytes over PCIe each way (the
  /// cache's weight copies count in h2dBytes too).
  uint64_t h2dBytes = 0, d2hBytes = 0;
  ~ExpertResidency();
};

/// The residency of moe.experts step `step` (plan index `index`) on
/// `device`: uploads the resident experts' slices of w1, w2 and w3 (from
/// `host`, the step's inputs on the host).
StatusOr<std::unique_ptr<ExpertResidency>>
makeResidency(CudaDevice &device, const StepInfo &step, int64_t index,
              const std::vector<Tensor> &host);

/// The moe.experts entry of the kernel table.
CudaKernel expertsKernel();

} // namespace moe::rt::cuda

#endif // MOE_RUNTIME_CUDA_EXPERTKERNELS_H
