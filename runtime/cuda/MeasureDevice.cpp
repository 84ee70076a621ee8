//===- MeasureDevice.cpp - `moe-exec --measure-device` --------------------===//

#include "runtime/cuda/MeasureDevice.h"

#include "runtime/HostMeasure.h"
#include "runtime/cuda/CudaDevice.h"

#include "kernels/cuda/CudaCheck.h"
#include "kernels/cuda/Measure.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

namespace moe::rt::cuda {

using moe::cuda::check;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// Two events around enqueued work, destroyed on every path out.
struct Timer {
  cudaEvent_t start = nullptr, stop = nullptr;
  ~Timer() {
    if (start)
      cudaEventDestroy(start);
    if (stop)
      cudaEventDestroy(stop);
  }
  Status create() {
    MOE_RETURN_IF_ERROR(check(cudaEventCreate(&start), "cudaEventCreate"));
    return check(cudaEventCreate(&stop), "cudaEventCreate");
  }
  /// Seconds taken on `stream` by `work`.
  template <typename F> StatusOr<double> time(cudaStream_t stream, F work) {
    MOE_RETURN_IF_ERROR(check(cudaEventRecord(start, stream), "cudaEventRecord"));
    MOE_RETURN_IF_ERROR(work());
    MOE_RETURN_IF_ERROR(check(cudaEventRecord(stop, stream), "cudaEventRecord"));
    MOE_RETURN_IF_ERROR(
        check(cudaEventSynchronize(stop), "cudaEventSynchronize"));
    float ms = 0;
    MOE_RETURN_IF_ERROR(
        check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime"));
    return double(ms) * 1e-3;
  }
};

template <typename F>
StatusOr<double> medianOf(int repeat, F once) {
  std::vector<double> s;
  for (int r = 0; r < repeat; ++r) {
    StatusOr<double> t = once();
    if (!t.isOk())
      return t;
    s.push_back(*t);
  }
  return median(s);
}

std::string num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

} // namespace

StatusOr<double> measureHbmReadBandwidth(CudaDevice &device) {
  const CudaDeviceInfo &info = device.info();
  cudaStream_t stream = device.stream();
  Timer timer;
  MOE_RETURN_IF_ERROR(timer.create());
  uint64_t bytes = std::min<uint64_t>(uint64_t(2) << 30,
                                      info.freeBytes / 4 / 16 * 16);
  StatusOr<Tensor> buf = device.scratch(bytes, "HBM probe");
  if (!buf.isOk())
    return buf.status();
  unsigned blocks = unsigned(info.multiprocessors) * 8;
  StatusOr<Tensor> partials =
      device.scratch(uint64_t(blocks) * sizeof(float), "HBM probe sums");
  if (!partials.isOk())
    return partials.status();
  MOE_RETURN_IF_ERROR(check(cudaMemsetAsync(buf->mutableData(), 0, bytes,
                                            stream),
                            "cudaMemsetAsync(HBM probe)"));
  auto once = [&]() {
    return timer.time(stream, [&] {
      return moe::cuda::readAll(buf->data(), bytes,
                                partials->mutableData<float>(), blocks,
                                stream);
    });
  };
  MOE_RETURN_IF_ERROR(once().status()); // warm up
  StatusOr<double> s = medianOf(10, once);
  if (!s.isOk())
    return s.status();
  return double(bytes) / *s;
}

StatusOr<DeviceMeasurements> measureDeviceProfile(bool progress) {
  auto say = [&](const char *what) {
    if (progress)
      std::fprintf(stderr, "\r\033[Kmoe-exec: measuring %s", what);
  };
  std::shared_ptr<CudaDevice> device;
  {
    StatusOr<std::shared_ptr<CudaDevice>> d = CudaDevice::open(0);
    if (!d.isOk())
      return d.status();
    device = std::move(*d);
  }
  cudaStream_t stream = device->stream();
  Timer timer;
  MOE_RETURN_IF_ERROR(timer.create());
  const CudaDeviceInfo &info = device->info();

  // HBM: a streaming read of a buffer far larger than the L2 cache.
  say("HBM read bandwidth");
  double hbm;
  {
    StatusOr<double> r = measureHbmReadBandwidth(*device);
    if (!r.isOk())
      return r.status();
    hbm = *r;
  }

  // PCIe with pinned host memory, both ways, and a small copy's latency.
  say("PCIe bandwidth");
  const uint64_t pcieBytes = uint64_t(256) << 20;
  double h2d, d2h, latency;
  {
    StatusOr<void *> host = device->pinned(pcieBytes);
    if (!host.isOk())
      return host.status();
    StatusOr<Tensor> dev = device->scratch(pcieBytes, "PCIe probe");
    if (!dev.isOk())
      return dev.status();
    auto copy = [&](bool toDevice, uint64_t bytes) {
      return timer.time(stream, [&] {
        return check(
            toDevice ? cudaMemcpyAsync(dev->mutableData(), *host, bytes,
                                       cudaMemcpyHostToDevice, stream)
                     : cudaMemcpyAsync(*host, dev->data(), bytes,
                                       cudaMemcpyDeviceToHost, stream),
            "cudaMemcpyAsync(PCIe probe)");
      });
    };
    MOE_RETURN_IF_ERROR(copy(true, pcieBytes).status());
    StatusOr<double> s = medianOf(5, [&] { return copy(true, pcieBytes); });
    if (!s.isOk())
      return s.status();
    h2d = double(pcieBytes) / *s;
    s = medianOf(5, [&] { return copy(false, pcieBytes); });
    if (!s.isOk())
      return s.status();
    d2h = double(pcieBytes) / *s;
    // Latency: a 4-byte copy and the wait for it, as the host sees it.
    s = medianOf(101, [&]() -> StatusOr<double> {
      auto start = std::chrono::steady_clock::now();
      MOE_RETURN_IF_ERROR(check(cudaMemcpyAsync(dev->mutableData(), *host, 4,
                                                cudaMemcpyHostToDevice, stream),
                                "cudaMemcpyAsync(latency probe)"));
      MOE_RETURN_IF_ERROR(check(cudaStreamSynchronize(stream),
                                "cudaStreamSynchronize(latency probe)"));
      return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                           start)
          .count();
    });
    if (!s.isOk())
      return s.status();
    latency = *s;
  }

  // Launch cost: back-to-back empty kernels.
  say("kernel launch cost");
  double launch;
  {
    const int launches = 1000;
    StatusOr<double> s = timer.time(stream, [&]() -> Status {
      for (int i = 0; i < launches; ++i)
        MOE_RETURN_IF_ERROR(moe::cuda::emptyKernel(stream));
      return Status::ok();
    });
    if (!s.isOk())
      return s.status();
    launch = *s / launches;
  }

  // GEMM rate of the expert GEMMs as the executor runs them (f32 inputs,
  // f32 accumulation) and with bf16 inputs.
  say("GEMM rate");
  double f32Rate, bf16Rate;
  {
    const int64_t m = 4096, k = 4096, n = 4096;
    StatusOr<Tensor> x = device->scratch(uint64_t(m * k) * 4, "GEMM probe x");
    StatusOr<Tensor> w = device->scratch(uint64_t(n * k) * 4, "GEMM probe w");
    StatusOr<Tensor> y = device->scratch(uint64_t(m * n) * 4, "GEMM probe y");
    for (StatusOr<Tensor> *t : {&x, &w, &y})
      if (!t->isOk())
        return t->status();
    MOE_RETURN_IF_ERROR(check(
        cudaMemsetAsync(x->mutableData(), 0, uint64_t(m * k) * 4, stream),
        "cudaMemsetAsync(GEMM probe)"));
    MOE_RETURN_IF_ERROR(check(
        cudaMemsetAsync(w->mutableData(), 0, uint64_t(n * k) * 4, stream),
        "cudaMemsetAsync(GEMM probe)"));
    auto gemm = [&](moe::cuda::GemmType t) {
      return timer.time(stream, [&] {
        return device->blas().linear(x->data(), t, m, k, w->data(), t, n,
                                     nullptr, y->mutableData<float>(), stream);
      });
    };
    double flops = 2.0 * double(m) * double(k) * double(n);
    MOE_RETURN_IF_ERROR(gemm(moe::cuda::GemmType::F32).status());
    StatusOr<double> s =
        medianOf(5, [&] { return gemm(moe::cuda::GemmType::F32); });
    if (!s.isOk())
      return s.status();
    f32Rate = flops / *s;
    MOE_RETURN_IF_ERROR(gemm(moe::cuda::GemmType::BF16).status());
    s = medianOf(5, [&] { return gemm(moe::cuda::GemmType::BF16); });
    if (!s.isOk())
      return s.status();
    bf16Rate = flops / *s;
  }

  say("host read bandwidth");
  StatusOr<double> hostRead =
      measureHostReadBandwidth(uint64_t(2) << 30, 5);
  if (!hostRead.isOk())
    return hostRead.status();
  say("host GEMM rate");
  StatusOr<double> hostGemm = measureHostGemmRate(256, 4096, 4096, 5);
  if (!hostGemm.isOk())
    return hostGemm.status();
  if (progress)
    std::fprintf(stderr, "\r\033[K");

  DeviceMeasurements m;
  m.name = info.name;
  m.memoryBytes = double(info.totalBytes);
  m.hbmReadBytesPerSecond = hbm;
  m.f32FlopsPerSecond = f32Rate;
  m.bf16FlopsPerSecond = bf16Rate;
  m.launchSeconds = launch;
  m.h2dBytesPerSecond = h2d;
  m.d2hBytesPerSecond = d2h;
  m.pcieLatencySeconds = latency;
  m.hostReadBytesPerSecond = *hostRead;
  m.hostFlopsPerSecond = *hostGemm;
  return m;
}

std::string deviceProfileJson(const DeviceMeasurements &m) {
  return "{\n  \"format\": \"moe-device-profile\",\n"
         "  \"version\": 1,\n"
         "  \"name\": \"" + m.name +
         " (measured by moe-exec --measure-device)\",\n"
         "  \"gpu\": {\n"
         "    \"memory_bytes\": " + std::to_string(uint64_t(m.memoryBytes)) +
         ",\n    \"hbm_read_bytes_per_s\": " + num(m.hbmReadBytesPerSecond) +
         ",\n    \"flops_per_s\": " + num(m.f32FlopsPerSecond) +
         ",\n    \"bf16_flops_per_s\": " + num(m.bf16FlopsPerSecond) +
         ",\n    \"launch_s\": " + num(m.launchSeconds) +
         "\n  },\n  \"pcie\": {\n"
         "    \"h2d_bytes_per_s\": " + num(m.h2dBytesPerSecond) +
         ",\n    \"d2h_bytes_per_s\": " + num(m.d2hBytesPerSecond) +
         ",\n    \"latency_s\": " + num(m.pcieLatencySeconds) +
         "\n  },\n  \"cpu\": {\n"
         "    \"read_bytes_per_s\": " + num(m.hostReadBytesPerSecond) +
         ",\n    \"flops_per_s\": " + num(m.hostFlopsPerSecond) +
         "\n  }\n}\n";
}

StatusOr<std::string> measureDevice(bool progress) {
  StatusOr<DeviceMeasurements> m = measureDeviceProfile(progress);
  if (!m.isOk())
    return m.status();
  return deviceProfileJson(*m);
}

} // namespace moe::rt::cuda
