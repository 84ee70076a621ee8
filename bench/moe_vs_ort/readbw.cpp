// readbw.cpp - read bandwidth with vector loads: a cross-check of moe-bench-kernels.
//
//   g++ -O3 -march=native -pthread readbw.cpp -o readbw
//   readbw [MiB (1024)] [threads (2)] [repeat (10)]
//
// Each thread sums its contiguous part of one buffer into 4 independent 64-byte vector
// accumulators (GCC vector extensions: AVX-512, AVX2 or SSE, whatever -march gives), so
// the loop is limited by loads, not by the latency of dependent additions. Prints
// "read bandwidth (N threads): X GB/s" (the median over the repeats) and "best X GB/s".
// Built and run by bench/moe_vs_ort/run.sh.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

typedef float v16 __attribute__((vector_size(64)));

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? size_t(std::atol(argv[1])) : 1024;
  int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  int repeat = argc > 3 ? std::atoi(argv[3]) : 10;
  if (mib < 1 || threads < 1 || repeat < 1) {
    std::fprintf(stderr, "usage: readbw [MiB] [threads] [repeat]\n");
    return 2;
  }
  const size_t lanes = 64; // floats per loop iteration: 4 vectors
  size_t n = (mib << 20) / sizeof(float) / (lanes * threads) * (lanes * threads);
  float *buf = static_cast<float *>(std::aligned_alloc(64, n * sizeof(float)));
  if (!buf)
    return 1;
  std::vector<std::thread> init;
  for (int t = 0; t < threads; ++t) // first touch by the thread that reads it
    init.emplace_back([=] {
      for (size_t i = n / threads * t; i < n / threads * (t + 1); ++i)
        buf[i] = 1.0f;
    });
  for (auto &th : init)
    th.join();
  std::vector<double> seconds;
  std::vector<float> sums(threads);
  for (int r = 0; r < repeat; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const float *p = buf + n / threads * t;
        size_t m = n / threads;
        const v16 *v = reinterpret_cast<const v16 *>(p);
        v16 a0 = {}, a1 = {}, a2 = {}, a3 = {};
        for (size_t i = 0; i < m / 16; i += 4) {
          a0 += v[i];
          a1 += v[i + 1];
          a2 += v[i + 2];
          a3 += v[i + 3];
        }
        v16 a = (a0 + a1) + (a2 + a3);
        float s = 0;
        for (int j = 0; j < 16; ++j)
          s += a[j];
        sums[t] = s;
      });
    for (auto &th : pool)
      th.join();
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    for (float s : sums) // keeps the loads; every element is 1
      if (std::fabs(double(s) - double(n / threads)) > 1e-3 * double(n / threads))
        std::abort();
  }
  std::vector<double> sorted = seconds;
  std::sort(sorted.begin(), sorted.end());
  double bytes = double(n) * sizeof(float);
  std::printf("read bandwidth (%d threads): %.1f GB/s\nbest %.1f GB/s over %d runs of %zu MiB\n",
              threads, bytes / sorted[sorted.size() / 2] / 1e9, bytes / sorted[0] / 1e9, repeat,
              mib);
  std::free(buf);
  return 0;
}
