//===- CudaDevice.cpp - The `cuda` device of the runtime ------------------===//

#include "runtime/cuda/CudaDevice.h"

#include "kernels/cuda/CudaCheck.h"
#include "kernels/cuda/Moe.h"

#include <algorithm>
#include <cstring>
#include <unistd.h>

namespace moe::rt::cuda {

using moe::cuda::check;

namespace {
constexpr uint64_t kHeadroom = uint64_t(512) << 20;
constexpr uint64_t kStagingBytes = uint64_t(16) << 20; // per half
} // namespace

StatusOr<int> cudaDeviceCount() {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError(); // clear the sticky error
    return check(err, "cudaGetDeviceCount").withContext("cuda: no device");
  }
  if (count == 0)
    return Status::error("cuda: no device: cudaGetDeviceCount found none");
  return count;
}

StatusOr<std::shared_ptr<CudaDevice>> CudaDevice::open(int index,
                                                       uint64_t budgetBytes) {
  int count;
  {
    StatusOr<int> n = cudaDeviceCount();
    if (!n.isOk())
      return n.status();
    count = *n;
  }
  if (index < 0 || index >= count)
    return Status::error("cuda: device " + std::to_string(index) +
                         " does not exist (" + std::to_string(count) +
                         " found)");
  std::shared_ptr<CudaDevice> d(new CudaDevice());
  d->info_.index = index;
  MOE_RETURN_IF_ERROR(check(cudaSetDevice(index), "cudaSetDevice"));
  cudaDeviceProp prop;
  MOE_RETURN_IF_ERROR(
      check(cudaGetDeviceProperties(&prop, index), "cudaGetDeviceProperties"));
  d->info_.name = prop.name;
  d->info_.major = prop.major;
  d->info_.minor = prop.minor;
  d->info_.multiprocessors = prop.multiProcessorCount;
  size_t freeBytes = 0, totalBytes = 0;
  MOE_RETURN_IF_ERROR(
      check(cudaMemGetInfo(&freeBytes, &totalBytes), "cudaMemGetInfo"));
  d->info_.freeBytes = freeBytes;
  d->info_.totalBytes = totalBytes;
  uint64_t usable = freeBytes > kHeadroom ? freeBytes - kHeadroom : 0;
  if (budgetBytes == 0)
    budgetBytes = usable;
  else if (budgetBytes > freeBytes)
    return Status::error("cuda: a memory budget of " +
                         formatBytes(budgetBytes) + " exceeds the " +
                         formatBytes(freeBytes) + " free on " + prop.name);
  d->budget_ = std::make_unique<MemoryBudget>(budgetBytes);
  cudaStream_t stream = nullptr;
  MOE_RETURN_IF_ERROR(check(
      cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking),
      "cudaStreamCreateWithFlags"));
  d->stream_ = stream;
  // Keep freed blocks in the stream-ordered pool instead of returning them
  // to the driver at every synchronisation.
  cudaMemPool_t pool;
  MOE_RETURN_IF_ERROR(
      check(cudaDeviceGetDefaultMemPool(&pool, index),
            "cudaDeviceGetDefaultMemPool"));
  uint64_t threshold = UINT64_MAX;
  MOE_RETURN_IF_ERROR(check(
      cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold,
                              &threshold),
      "cudaMemPoolSetAttribute(ReleaseThreshold)"));
  for (int i = 0; i < 2; ++i) {
    MOE_RETURN_IF_ERROR(check(cudaMallocHost(&d->staging_[i], kStagingBytes),
                              "cudaMallocHost(staging)"));
    cudaEvent_t ev;
    MOE_RETURN_IF_ERROR(
        check(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming),
              "cudaEventCreateWithFlags"));
    d->stagingDone_[i] = ev;
  }
  d->stagingBytes_ = kStagingBytes;
  MOE_RETURN_IF_ERROR(check(
      cudaMalloc(reinterpret_cast<void **>(&d->errorFlags_), sizeof(int)),
      "cudaMalloc(error flags)"));
  MOE_RETURN_IF_ERROR(
      check(cudaMemset(d->errorFlags_, 0, sizeof(int)), "cudaMemset(flags)"));
  MOE_RETURN_IF_ERROR(check(
      cudaMallocHost(reinterpret_cast<void **>(&d->hostFlags_), sizeof(int)),
      "cudaMallocHost(error flags)"));
  {
    StatusOr<std::unique_ptr<moe::cuda::Blas>> b = moe::cuda::Blas::create();
    if (!b.isOk())
      return b.status();
    d->blas_ = std::move(*b);
  }
  return d;
}

CudaDevice::~CudaDevice() {
  if (stream_)
    cudaStreamSynchronize(stream_);
  blas_.reset();
  for (int i = 0; i < 2; ++i) {
    if (stagingDone_[i])
      cudaEventDestroy(static_cast<cudaEvent_t>(stagingDone_[i]));
    if (staging_[i])
      cudaFreeHost(staging_[i]);
  }
  if (pinned_)
    cudaFreeHost(pinned_);
  for (const auto &r : hostPins_)
    cudaHostUnregister(reinterpret_cast<void *>(r.first));
  if (errorFlags_)
    cudaFree(errorFlags_);
  if (hostFlags_)
    cudaFreeHost(hostFlags_);
  if (stream_)
    cudaStreamDestroy(stream_);
}

StatusOr<Tensor> CudaDevice::scratch(uint64_t bytes, const std::string &what) {
  return allocate(DType::U8, {int64_t(bytes)}, what);
}

StatusOr<Tensor> CudaDevice::allocate(DType dtype, Shape shape,
                                      const std::string &what) {
  StatusOr<int64_t> n = checkedNumElements(shape, dtypeSize(dtype));
  if (!n.isOk())
    return n.status();
  // Every allocation is at least 256 bytes, the pool's granularity.
  uint64_t bytes = std::max<uint64_t>(256, uint64_t(*n) * dtypeSize(dtype));
  MOE_RETURN_IF_ERROR(budget_->reserve(bytes, what));
  void *p = nullptr;
  Status st = check(cudaMallocAsync(&p, bytes, stream_), "cudaMallocAsync");
  if (!st.isOk()) {
    budget_->release(bytes);
    return st.withContext(what);
  }
  std::shared_ptr<CudaDevice> self = shared_from_this();
  std::shared_ptr<void> owner(p, [self, bytes](void *q) {
    cudaFreeAsync(q, self->stream_);
    self->budget_->release(bytes);
  });
  return Tensor::onDevice(dtype, std::move(shape), p, std::move(owner));
}

bool CudaDevice::pinnedHost(const void *p, uint64_t bytes) const {
  // Within one registration: a copy across two is refused by CUDA.
  const uintptr_t at = reinterpret_cast<uintptr_t>(p);
  for (const auto &r : hostPins_)
    if (r.first <= at && at + bytes <= r.second)
      return true;
  return false;
}

Status CudaDevice::pinHost(const void *p, uint64_t bytes) {
  if (bytes == 0)
    return Status::ok();
  std::lock_guard<std::mutex> lock(mutex_);
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  uintptr_t begin = reinterpret_cast<uintptr_t>(p) / page * page;
  uintptr_t end =
      (reinterpret_cast<uintptr_t>(p) + bytes + page - 1) / page * page;
  // Pinned ranges that overlap or touch this one are merged into one
  // registration (two matrices of a plan may share a page), after the
  // copies from them have finished.
  for (const auto &r : hostPins_)
    if (r.first <= begin && end <= r.second)
      return Status::ok(); // pinned already
  std::vector<std::pair<uintptr_t, uintptr_t>> keep;
  bool merged = false;
  for (const auto &r : hostPins_) {
    if (r.second < begin || r.first > end) {
      keep.push_back(r);
      continue;
    }
    if (!merged)
      MOE_RETURN_IF_ERROR(check(cudaStreamSynchronize(stream_),
                                "cudaStreamSynchronize(before re-pinning)"));
    merged = true;
    cudaHostUnregister(reinterpret_cast<void *>(r.first));
    begin = std::min(begin, r.first);
    end = std::max(end, r.second);
  }
  hostPins_ = std::move(keep);
  void *q = reinterpret_cast<void *>(begin);
  // Plan weights may be a read-only mapping: ask for read-only first.
  cudaError_t err = cudaHostRegister(q, end - begin, cudaHostRegisterReadOnly);
  if (err != cudaSuccess) {
    cudaGetLastError();
    err = cudaHostRegister(q, end - begin, cudaHostRegisterDefault);
  }
  if (err != cudaSuccess) {
    cudaGetLastError(); // not sticky: copies from here use the staging
    const std::string call =
        "cudaHostRegister(" + std::to_string(end - begin) + " bytes)";
    return check(err, call.c_str());
  }
  const std::pair<uintptr_t, uintptr_t> range(begin, end);
  hostPins_.insert(
      std::upper_bound(hostPins_.begin(), hostPins_.end(), range), range);
  return Status::ok();
}

Status CudaDevice::copyToDevice(void *dst, const void *src,
                                uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (pinnedHost(src, bytes)) {
    if (cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_) ==
        cudaSuccess)
      return Status::ok();
    // Refused (a registration CUDA does not accept for this copy): the
    // error is not sticky; clear it and take the staging below, and stop
    // trying direct copies.
    cudaGetLastError();
    MOE_RETURN_IF_ERROR(check(cudaStreamSynchronize(stream_),
                              "cudaStreamSynchronize(before unpinning)"));
    for (const auto &r : hostPins_)
      cudaHostUnregister(reinterpret_cast<void *>(r.first));
    hostPins_.clear();
  }
  uint64_t done = 0;
  int half = 0;
  while (done < bytes) {
    uint64_t n = std::min(stagingBytes_, bytes - done);
    auto ev = static_cast<cudaEvent_t>(stagingDone_[half]);
    // The previous copy out of this half must have finished.
    MOE_RETURN_IF_ERROR(check(cudaEventSynchronize(ev),
                              "cudaEventSynchronize(staging)"));
    std::memcpy(staging_[half], static_cast<const uint8_t *>(src) + done, n);
    MOE_RETURN_IF_ERROR(check(
        cudaMemcpyAsync(static_cast<uint8_t *>(dst) + done, staging_[half], n,
                        cudaMemcpyHostToDevice, stream_),
        "cudaMemcpyAsync(host to device)"));
    MOE_RETURN_IF_ERROR(
        check(cudaEventRecord(ev, stream_), "cudaEventRecord(staging)"));
    done += n;
    half ^= 1;
  }
  return Status::ok();
}

StatusOr<Tensor> CudaDevice::upload(const Tensor &host,
                                    const std::string &what) {
  if (host.isOnDevice())
    return host;
  if (const PackedWeight *p = host.packed()) {
    uint64_t bytes = 0;
    for (size_t i = 0; i < p->offsets.size(); ++i)
      bytes = std::max<uint64_t>(bytes, p->offsets[i] + p->sizes[i]);
    StatusOr<Tensor> raw = scratch(bytes, what);
    if (!raw.isOk())
      return raw;
    MOE_RETURN_IF_ERROR(
        copyToDevice(raw->mutableData(), host.data(), bytes).withContext(what));
    // The device tensor keeps the raw allocation alive.
    auto owner = std::make_shared<Tensor>(*raw);
    auto layout = std::make_shared<const PackedWeight>(*p);
    return Tensor::onDevice(host.dtype(), host.shape(), raw->mutableData(),
                            std::move(owner), std::move(layout));
  }
  StatusOr<Tensor> d = allocate(host.dtype(), host.shape(), what);
  if (!d.isOk())
    return d;
  MOE_RETURN_IF_ERROR(
      copyToDevice(d->mutableData(), host.data(), host.byteSize()).withContext(what));
  return d;
}

StatusOr<Tensor> CudaDevice::download(const Tensor &dev) {
  if (!dev.isOnDevice())
    return dev;
  StatusOr<Tensor> h = Tensor::allocate(dev.dtype(), dev.shape());
  if (!h.isOk())
    return h;
  uint64_t bytes = h->byteSize();
  if (bytes == 0)
    return h;
  std::lock_guard<std::mutex> lock(mutex_);
  // Through one staging half at a time: copy, wait, move out.
  uint64_t done = 0;
  while (done < bytes) {
    uint64_t n = std::min(stagingBytes_, bytes - done);
    MOE_RETURN_IF_ERROR(check(
        cudaMemcpyAsync(staging_[0],
                        static_cast<const uint8_t *>(dev.data()) + done, n,
                        cudaMemcpyDeviceToHost, stream_),
        "cudaMemcpyAsync(device to host)"));
    MOE_RETURN_IF_ERROR(check(cudaStreamSynchronize(stream_),
                              "cudaStreamSynchronize(download)"));
    std::memcpy(static_cast<uint8_t *>(h->mutableData()) + done, staging_[0],
                n);
    done += n;
  }
  return h;
}

Status CudaDevice::synchronize() {
  return check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
}

Status CudaDevice::takeErrors() {
  MOE_RETURN_IF_ERROR(check(cudaMemcpyAsync(hostFlags_, errorFlags_,
                                            sizeof(int),
                                            cudaMemcpyDeviceToHost, stream_),
                            "cudaMemcpyAsync(error flags)"));
  MOE_RETURN_IF_ERROR(check(cudaStreamSynchronize(stream_),
                            "cudaStreamSynchronize(error flags)"));
  int flags = *hostFlags_;
  if (flags == 0)
    return Status::ok();
  MOE_RETURN_IF_ERROR(check(cudaMemsetAsync(errorFlags_, 0, sizeof(int),
                                            stream_),
                            "cudaMemsetAsync(error flags)"));
  if (flags & moe::cuda::kErrorExpertId)
    return Status::error("moe.dispatch: an expert id outside [-1, E) "
                         "(found on the device)");
  return Status::error("a device kernel reported error flags " +
                       std::to_string(flags));
}

Status CudaDevice::clearErrors() {
  return check(cudaMemsetAsync(errorFlags_, 0, sizeof(int), stream_),
               "cudaMemsetAsync(error flags)");
}

StatusOr<void *> CudaDevice::pinned(uint64_t bytes) {
  if (bytes <= pinnedBytes_)
    return pinned_;
  MOE_RETURN_IF_ERROR(check(cudaStreamSynchronize(stream_),
                            "cudaStreamSynchronize(pinned)"));
  if (pinned_)
    cudaFreeHost(pinned_);
  pinned_ = nullptr;
  pinnedBytes_ = 0;
  uint64_t size = std::max<uint64_t>(bytes, 4096);
  MOE_RETURN_IF_ERROR(
      check(cudaMallocHost(&pinned_, size), "cudaMallocHost(pinned)"));
  pinnedBytes_ = size;
  return pinned_;
}

} // namespace moe::rt::cuda
