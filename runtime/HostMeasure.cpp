//===- HostMeasure.cpp - Measuring the host for device profiles -----------===//

#include "runtime/HostMeasure.h"

#include "kernels/cpu/Matmul.h"

#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <vector>

namespace moe::rt {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct FreeDeleter {
  void operator()(void *p) const { std::free(p); }
};

} // namespace

StatusOr<double> measureHostReadBandwidth(uint64_t bytes, int repeat) {
  if (bytes < 4096 || repeat < 1)
    return Status::error("host read bandwidth: at least 4096 bytes and one "
                         "pass");
  const size_t n = size_t(bytes / sizeof(float)) / 64 * 64;
  std::unique_ptr<float, FreeDeleter> buf(
      static_cast<float *>(std::aligned_alloc(64, n * sizeof(float))));
  if (!buf)
    return Status::error("host read bandwidth: out of memory for " +
                         std::to_string(bytes) + " bytes");
  float *p = buf.get();
  // First touch in parallel, as the reads will be.
  tbb::parallel_for(tbb::blocked_range<size_t>(0, n / 64),
                    [&](const tbb::blocked_range<size_t> &r) {
                      for (size_t b = r.begin(); b < r.end(); ++b)
                        std::fill(p + b * 64, p + b * 64 + 64, 1.0f);
                    });
  std::vector<double> seconds;
  for (int r = 0; r < repeat; ++r) {
    auto start = std::chrono::steady_clock::now();
    // Sixteen independent sums per 64-float block keep the loop bound by
    // the loads, not by dependent additions.
    double sum = tbb::parallel_reduce(
        tbb::blocked_range<size_t>(0, n / 64), 0.0,
        [&](const tbb::blocked_range<size_t> &range, double acc) {
          float lanes[16] = {};
          for (size_t b = range.begin(); b < range.end(); ++b) {
            const float *q = p + b * 64;
            for (int i = 0; i < 64; ++i)
              lanes[i % 16] += q[i];
          }
          for (float l : lanes)
            acc += double(l);
          return acc;
        },
        [](double a, double b) { return a + b; });
    seconds.push_back(std::chrono::duration<double>(
                          std::chrono::steady_clock::now() - start)
                          .count());
    if (std::fabs(sum - double(n)) > 1e-3 * double(n))
      return Status::error("host read bandwidth: the sum is wrong");
  }
  return double(n * sizeof(float)) / median(seconds);
}

StatusOr<double> measureHostGemmRate(int64_t rows, int64_t k, int64_t n,
                                     int repeat) {
  if (rows < 1 || k < 1 || n < 1 || repeat < 1)
    return Status::error("host GEMM rate: dimensions and repeat must be "
                         "positive");
  std::vector<float> x(size_t(rows * k), 0.5f), w(size_t(n * k), 0.25f),
      y(size_t(rows * n));
  kernels::cpu::linear(x.data(), rows, k, w.data(), n, nullptr, y.data());
  std::vector<double> seconds;
  for (int r = 0; r < repeat; ++r) {
    auto start = std::chrono::steady_clock::now();
    kernels::cpu::linear(x.data(), rows, k, w.data(), n, nullptr, y.data());
    seconds.push_back(std::chrono::duration<double>(
                          std::chrono::steady_clock::now() - start)
                          .count());
  }
  if (std::fabs(y[0] - 0.125f * float(k)) > 1e-3f * float(k))
    return Status::error("host GEMM rate: the product is wrong");
  return 2.0 * double(rows) * double(k) * double(n) / median(seconds);
}

} // namespace moe::rt
