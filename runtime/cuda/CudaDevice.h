//===- CudaDevice.h - The `cuda` device of the runtime ----------*- C++ -*-===//
//
// One GPU as the executor sees it: a stream the steps run on in order,
// device memory under a budget (stream-ordered cudaMallocAsync/FreeAsync,
// so freeing never waits), pinned host staging for every host↔device copy,
// events, and the cuBLASLt handle. Tensors it allocates are device tensors
// (Tensor::isOnDevice) that keep the device alive and give their bytes back
// to the budget when the last copy goes. Every CUDA call is checked; errors
// are Status values naming the call. No CUDA header leaks out of here.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_CUDA_CUDADEVICE_H
#define MOE_RUNTIME_CUDA_CUDADEVICE_H

#include "runtime/DeviceMemory.h"
#include "runtime/Tensor.h"

#include "kernels/cuda/Blas.h"
#include "kernels/cuda/Stream.h"

#include <memory>
#include <mutex>
#include <utility>
#include <vector>
#include <string>

namespace moe::rt::cuda {

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  uint64_t totalBytes = 0, freeBytes = 0;
  int major = 0, minor = 0, multiprocessors = 0;
};

/// The number of CUDA devices, or why there is none usable ("cuda: no
/// device: cudaGetDeviceCount failed: cudaErrorNoDevice (...)").
StatusOr<int> cudaDeviceCount();

class CudaDevice : public std::enable_shared_from_this<CudaDevice> {
public:
  /// Opens device `index` with a memory budget of `budgetBytes` (0: the
  /// device's free memory less 512 MiB of headroom).
  static StatusOr<std::shared_ptr<CudaDevice>> open(int index,
                                                    uint64_t budgetBytes = 0);
  ~CudaDevice();
  CudaDevice(const CudaDevice &) = delete;
  CudaDevice &operator=(const CudaDevice &) = delete;

  const CudaDeviceInfo &info() const { return info_; }
  moe::cuda::Stream stream() const { return stream_; }
  moe::cuda::Blas &blas() { return *blas_; }
  MemoryBudget &memory() { return *budget_; }
  const MemoryBudget &memory() const { return *budget_; }

  /// A device tensor (uninitialised), charged to the budget as `what`.
  StatusOr<Tensor> allocate(DType dtype, Shape shape, const std::string &what);
  /// Device bytes for scratch use, freed (stream-ordered) with the tensor.
  StatusOr<Tensor> scratch(uint64_t bytes, const std::string &what);
  /// A device copy of host tensor `host`, through pinned staging; returns
  /// once the copy is enqueued. A packed weight's bytes are copied as they
  /// are (its PackedWeight is shared): kernels read its slices in place.
  StatusOr<Tensor> upload(const Tensor &host, const std::string &what);
  /// A host copy of device tensor `dev`; waits for the stream.
  StatusOr<Tensor> download(const Tensor &dev);
  /// Waits for everything enqueued so far.
  Status synchronize();
  /// Copies `bytes` host bytes to device address `dst` in stream order and
  /// returns once enqueued. From inside a pinHost() range it is one DMA
  /// (the range must stay valid until the copy ends); from elsewhere it
  /// goes through the pinned staging (`src` may then be reused at once).
  Status copyToDevice(void *dst, const void *src, uint64_t bytes);
  /// Page-locks host bytes [p, p + bytes) (read-only for the device) for
  /// direct copies: the hybrid device pins its on-demand experts, which
  /// would otherwise cross PCIe at the speed of a single-threaded memcpy
  /// into the staging. Pages pinned before are skipped; the pins last as
  /// long as the device. An error (the system refused to lock the memory)
  /// leaves copies from the range on the staging path.
  Status pinHost(const void *p, uint64_t bytes);
  /// Pinned host memory of at least `bytes`, reused between calls (its
  /// contents are not kept); callers on the device's stream only.
  StatusOr<void *> pinned(uint64_t bytes);
  /// Device flags that kernels set on finding bad data without stopping the
  /// stream (moe::cuda::kErrorExpertId); read and cleared by takeErrors().
  int *errorFlags() const { return errorFlags_; }
  /// Waits for the stream, then the flags set since the last call as an
  /// error (clearing them), or ok.
  Status takeErrors();
  /// Clears the flags (in stream order): a run starts with none.
  Status clearErrors();

private:
  CudaDevice() = default;

  CudaDeviceInfo info_;
  moe::cuda::Stream stream_ = nullptr;
  std::unique_ptr<moe::cuda::Blas> blas_;
  std::unique_ptr<MemoryBudget> budget_;
  /// Two pinned staging halves for uploads, each with the event of the
  /// copy that last read it.
  void *staging_[2] = {nullptr, nullptr};
  void *stagingDone_[2] = {nullptr, nullptr}; // cudaEvent_t
  uint64_t stagingBytes_ = 0;
  void *pinned_ = nullptr;
  uint64_t pinnedBytes_ = 0;
  int *errorFlags_ = nullptr;
  int *hostFlags_ = nullptr; // pinned
  /// Page-aligned [begin, end) ranges registered by pinHost, sorted.
  std::vector<std::pair<uintptr_t, uintptr_t>> hostPins_;
  /// Whether [p, p + bytes) lies in the pinned ranges (mutex_ held).
  bool pinnedHost(const void *p, uint64_t bytes) const;
  std::mutex mutex_;
};

} // namespace moe::rt::cuda

#endif // MOE_RUNTIME_CUDA_CUDADEVICE_H
