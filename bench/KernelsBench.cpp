//===- KernelsBench.cpp - Decode products against the memory floor --------===//
//
// Measures, in one run, the machine's read bandwidth (the peer every
// memory-bound decode kernel is judged against) and the rate at which the
// CPU kernels stream expert-sized weight matrices for one token (GEMV):
// fp32 and each packed format. Prints a table and writes JSON.
//
//   moe-bench-kernels [--threads N] [--repeat N] [--json FILE]
//
// Working set: copies of one 3584x1024 matrix (a Mixtral-like expert at a
// quarter width) filling 768 MB in every format, rotated so that every run
// reads from memory (this machine's L3 reports 480 MiB).
//
//===----------------------------------------------------------------------===//

#include "kernels/cpu/Matmul.h"
#include "kernels/cpu/Quant.h"
#include "kernels/cpu/QuantFast.h"

#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace kc = moe::kernels::cpu;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// Read bandwidth in GB/s: sum of a large buffer with all threads.
double readBandwidth(int repeat) {
  size_t n = size_t(512) << 20 >> 3; // 512 MiB of doubles
  std::vector<double> buf(n, 1.0);
  std::vector<double> times;
  for (int r = 0; r < repeat; ++r) {
    auto t0 = Clock::now();
    double total = tbb::parallel_reduce(
        tbb::blocked_range<size_t>(0, n, 1 << 16), 0.0,
        [&](const tbb::blocked_range<size_t> &range, double acc) {
          double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
          size_t i = range.begin();
          for (; i + 4 <= range.end(); i += 4)
            a0 += buf[i], a1 += buf[i + 1], a2 += buf[i + 2], a3 += buf[i + 3];
          for (; i < range.end(); ++i)
            a0 += buf[i];
          return acc + a0 + a1 + a2 + a3;
        },
        [](double a, double b) { return a + b; });
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    if (total != double(n))
      std::abort();
  }
  return double(n * 8) / median(times) / 1e9;
}

struct Result {
  std::string name;
  double ms, gbps, fraction;
  double bytes;
};

} // namespace

int main(int argc, char **argv) {
  int threads = int(std::thread::hardware_concurrency());
  int repeat = 20;
  std::string json;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (a == "--repeat" && i + 1 < argc)
      repeat = std::atoi(argv[++i]);
    else if (a == "--json" && i + 1 < argc)
      json = argv[++i];
    else {
      std::fprintf(stderr,
                   "usage: moe-bench-kernels [--threads N] [--repeat N] "
                   "[--json FILE]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism,
                            size_t(threads));
  const int64_t rows = 3584, cols = 1024;
  const int64_t workingSet = int64_t(768) << 20;
  double bw = readBandwidth(std::max(3, repeat / 4));
  std::printf("read bandwidth (%d threads): %.1f GB/s\n", threads, bw);
  std::printf("SIMD level for packed weights: %s\n", kc::quantDispatchLevel());

  std::mt19937 rng(1);
  std::normal_distribution<float> dist;
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (float &v : w)
    v = dist(rng);
  std::vector<float> x(static_cast<size_t>(cols)), y(static_cast<size_t>(rows));
  for (float &v : x)
    v = dist(rng);

  struct Format {
    const char *name;
    kc::QuantFormat f;
  };
  const Format formats[] = {{"fp32", {}},
                            {"bf16", {16, 0, true, false}},
                            {"int8 g128 f16", {8, 128, true, false}},
                            {"int4 g128 f16", {4, 128, true, false}},
                            {"int4 g32 f16 zp", {4, 32, true, true}},
                            {"int3 g128 f16", {3, 128, true, false}},
                            {"int2 g64 f16", {2, 64, true, false}}};
  std::vector<Result> results;
  struct Run {
    Format fmt;
    bool int8Activations;
  };
  std::vector<Run> runs;
  for (const Format &fmt : formats)
    runs.push_back({fmt, false});
  // The VNNI path with int8 activations, where the CPU has it.
  if (kc::setQuantInt8Activations(true),
      std::string(kc::quantDispatchLevel()) == "avx512-vnni-int8")
    for (const Format &fmt : formats)
      if (fmt.f.bits == 8 || fmt.f.bits == 4)
        runs.push_back({fmt, true});
  kc::setQuantInt8Activations(false);
  for (const Run &run : runs) {
    const Format &fmt = run.fmt;
    kc::setQuantInt8Activations(run.int8Activations);
    kc::QuantLayout l = kc::quantLayout(fmt.f, rows, cols);
    int64_t stride = (l.totalBytes + 63) / 64 * 64;
    int64_t mats = (workingSet + stride - 1) / stride;
    std::vector<uint8_t> packed(static_cast<size_t>(stride * mats));
    kc::quantizeMatrix(w.data(), rows, cols, fmt.f, packed.data());
    for (int64_t m = 1; m < mats; ++m)
      std::memcpy(packed.data() + m * stride, packed.data(), size_t(stride));
    std::vector<double> times;
    for (int r = 0; r < repeat + 2; ++r) {
      const uint8_t *mat = packed.data() + (r % mats) * stride;
      auto t0 = Clock::now();
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, rows, rows / threads),
                        [&](const tbb::blocked_range<int64_t> &range) {
                          kc::linearPackedSerial(x.data(), 1, cols, mat, fmt.f,
                                                 rows, nullptr, y.data(),
                                                 range.begin(), range.end());
                        });
      double t = std::chrono::duration<double>(Clock::now() - t0).count();
      if (r >= 2)
        times.push_back(t);
    }
    double s = median(times);
    double gbps = double(l.totalBytes) / s / 1e9;
    results.push_back(
        {std::string(fmt.name) + (run.int8Activations ? " x:int8" : ""),
         s * 1e3, gbps, gbps / bw, double(l.totalBytes)});
  }
  kc::setQuantInt8Activations(false);
  std::printf("%-24s %10s %10s %10s %12s\n", "weights", "MB", "ms", "GB/s",
              "of floor");
  for (const Result &r : results)
    std::printf("%-24s %10.1f %10.3f %10.1f %11.0f%%\n", r.name.c_str(),
                r.bytes / 1e6, r.ms, r.gbps, 100 * r.fraction);
  if (!json.empty()) {
    FILE *f = std::fopen(json.c_str(), "w");
    if (!f) {
      std::fprintf(stderr, "moe-bench-kernels: error: cannot write '%s'\n",
                   json.c_str());
      return 1;
    }
    std::fprintf(f,
                 "{\n  \"threads\": %d,\n  \"read_bandwidth_gbps\": %.2f,\n"
                 "  \"simd\": \"%s\",\n  \"gemv_3584x1024\": [\n",
                 threads, bw, kc::quantDispatchLevel());
    for (size_t i = 0; i < results.size(); ++i)
      std::fprintf(f,
                   "    {\"weights\": \"%s\", \"bytes\": %.0f, \"median_ms\": "
                   "%.4f, \"gbps\": %.2f, \"fraction_of_floor\": %.3f}%s\n",
                   results[i].name.c_str(), results[i].bytes, results[i].ms,
                   results[i].gbps, results[i].fraction,
                   i + 1 < results.size() ? "," : "");
    std::fprintf(f, "  ]\n}\n");
    std::fclose(f);
  }
  return 0;
}
