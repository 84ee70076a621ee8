//===- CudaExecutor.h - Running a loaded plan on a GPU ----------*- C++ -*-===//
//
// Runs a plan on the `cuda` device: the steps in plan order on the device's
// stream, each where CudaKernels.h places it (a CUDA kernel, a reshape of
// device storage, or shape arithmetic on the host), moving a value between
// host and device only when a step needs it where it is not. Weights and
// the values folded at load (computed once on the host, as the CPU
// executor does) are copied to the device once, at creation, under the
// device's memory budget. Inputs and outputs are host tensors.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_CUDA_CUDAEXECUTOR_H
#define MOE_RUNTIME_CUDA_CUDAEXECUTOR_H

#include "runtime/Executor.h"
#include "runtime/cuda/CudaKernels.h"
#include "runtime/cuda/ExpertKernels.h"

#include <functional>
#include <memory>
#include <mutex>

namespace moe::rt::cuda {

class CudaDevice;

struct CudaExecutorOptions {
  /// The CUDA device's index.
  int device = 0;
  /// Device bytes the plan may use: weights, activations, scratch (0: the
  /// device's free memory less 512 MiB).
  uint64_t memoryBudget = 0;
  /// Host threads for the steps that run on the host and for folding.
  int hostThreads = 0;
  /// Time every step (stepMillis()); waits for the stream after each.
  bool profile = false;
  /// The hybrid device (MoNDE): moe.experts steps keep each expert where
  /// its `placement` (moe-place-experts) says: GPU-resident experts in
  /// device memory, CPU experts in host memory computed on the host at the
  /// same time as the GPU ones, on-demand experts through a cache of
  /// `cacheExperts` device slots. Everything else runs as on `cuda`.
  bool hybrid = false;
  int cacheExperts = 2;
  /// MoE layers of at most this many tokens (and T·k ≤ 32, E ≤ 64) run as
  /// decode: grouped GEMVs from the offsets on the device, with no wait for
  /// the host; larger ones as cuBLASLt GEMMs sized on the host. Measured on
  /// an H200 (Mixtral-sized bf16 layer, docs/cuda.md): decode 0.284 against
  /// GEMMs 0.302 ms at T=1, but 0.93 against 0.60 ms at T=4. 0: never.
  int decodeMaxTokens = 1;
  /// Called after each step that `observes` accepts, with host copies of
  /// its inputs and outputs (downloaded when they are on the device, which
  /// waits for the stream): the routing profiler watches moe.route and
  /// moe.dispatch. Steps run one at a time, so it needs no locking here.
  std::function<void(size_t step, const std::vector<Tensor> &inputs,
                     const std::vector<Tensor> &outputs)>
      observer;
  std::function<bool(const StepInfo &)> observes;
};

/// The hybrid device's traffic since creation, summed over the steps.
struct HybridStats {
  uint64_t h2dBytes = 0, d2hBytes = 0, cacheHits = 0, cacheMisses = 0;
  uint64_t residentExperts = 0, cpuExperts = 0, onDemandExperts = 0;
};

class CudaExecutor : public Runner {
public:
  /// Checks that every step can run on the device (checkCudaSupport, before
  /// any CUDA call), opens the device, folds the constant steps on the host
  /// and copies the weights the device steps read to the device.
  static StatusOr<std::unique_ptr<CudaExecutor>>
  create(const LoadedPlan &plan, const CudaExecutorOptions &options = {});
  ~CudaExecutor() override;

  Status checkInputs(const std::vector<Tensor> &inputs) const override;
  /// Runs the program (one run at a time; concurrent callers wait).
  StatusOr<std::vector<Tensor>>
  run(const std::vector<Tensor> &inputs) const override;
  /// Like run(), but inputs may already be device tensors (they are not
  /// copied), and with `outputsOnDevice` the outputs stay on the device
  /// (no copy back): for chaining plans and for timing the device alone.
  StatusOr<std::vector<Tensor>> runDevice(const std::vector<Tensor> &inputs,
                                          bool outputsOnDevice) const;
  /// The device, for uploads and synchronisation around runDevice().
  CudaDevice &device() const { return *device_; }
  int numThreads() const override;
  std::vector<double> stepMillis() const override;
  void resetProfile() const override;
  const LoadedPlan &plan() const override { return plan_; }

  /// The device's name ("NVIDIA H200"), for reports.
  std::string deviceName() const;
  /// Bytes of weights held on the device, and the budget's peak so far.
  uint64_t weightBytesOnDevice() const { return weightBytes_; }
  uint64_t peakDeviceBytes() const;
  /// Where each step runs.
  const std::vector<CudaPlacement> &placements() const { return placement_; }
  /// The hybrid device's traffic and placements (zeros on `cuda`).
  HybridStats hybridStats() const;

private:
  CudaExecutor(const LoadedPlan &plan, const CudaExecutorOptions &options)
      : plan_(plan), options_(options) {}
  struct RunState;
  Status runStep(size_t index, RunState &state) const;
  /// Calls the observer on step `index` with host copies of its operands.
  Status observe(size_t index, RunState &state) const;

  const LoadedPlan &plan_;
  CudaExecutorOptions options_;
  std::shared_ptr<CudaDevice> device_;
  /// Folds the constants and runs the host steps' kernels.
  std::unique_ptr<Executor> host_;
  std::vector<CudaPlacement> placement_;
  /// Per step, its kernel table entry (null for host-only kernels), looked
  /// up once at creation rather than by name at every run.
  std::vector<const CudaKernel *> kernels_;
  /// Device copies of the weights and folded values device steps read.
  std::vector<Tensor> deviceConstants_;
  /// Per step, on the hybrid device: its experts' residency (moe.experts),
  /// and the on-demand cache they share.
  std::vector<std::unique_ptr<ExpertResidency>> residency_;
  std::unique_ptr<ExpertCache> cache_;
  uint64_t weightBytes_ = 0;
  mutable std::mutex mutex_;
  mutable std::vector<double> stepMs_;
  mutable uint64_t profiledRuns_ = 0;
};

} // namespace moe::rt::cuda

#endif // MOE_RUNTIME_CUDA_CUDAEXECUTOR_H
