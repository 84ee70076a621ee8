//===- KernelsBench.cpp - Decode products against the memory floor --------===//
//
// Measures, in one run, the machine's read bandwidth (the peer every
// memory-bound decode kernel is judged against) and the rate at which the
// CPU kernels stream weights for one token:
//
//  - "gemv": one expert-sized matrix (3584x1024, a Mixtral-like w1 at a
//    quarter width) per product, fp32 and each packed format, the columns
//    split over the threads; a timed sample runs consecutive matrices until
//    it has read about 16 MB, so the threads stay busy;
//  - "experts": the experts kernel (kernels/cpu/Moe.cpp) on one token of a
//    Mixtral-like layer (hidden 1024, 8 SwiGLU experts of width 3584, top-2;
//    w1/w3 [3584, 1024], w2 [1024, 3584]), two different experts per run:
//    the decode step of an MoE layer. GB/s of the touched experts' bytes.
//
//   moe-bench-kernels [--threads N] [--repeat N] [--json FILE]
//                     [--only gemv|experts]
//
// Working set: copies of the weights filling 768 MB in every format, 64-byte
// aligned as in a plan, rotated so that every run reads from memory (the L3
// of the machines this runs on is 32 MB to 480 MiB). The read bandwidth is the median over
// repeats of a vector sum of 512 MiB with all threads.
//
//===----------------------------------------------------------------------===//

#include "kernels/cpu/Matmul.h"
#include "kernels/cpu/Moe.h"
#include "kernels/cpu/Quant.h"
#include "kernels/cpu/QuantFast.h"

#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MOE_BENCH_X86 1
#endif

namespace kc = moe::kernels::cpu;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// Sum of n 64-bit words, vector loads with independent accumulators (so
/// that the loads, not the adds, are the limit).
#ifdef MOE_BENCH_X86
__attribute__((target("avx512f"))) uint64_t sum512(const uint64_t *p,
                                                   size_t n) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm512_add_epi64(a0, _mm512_load_si512(p + i));
    a1 = _mm512_add_epi64(a1, _mm512_load_si512(p + i + 8));
    a2 = _mm512_add_epi64(a2, _mm512_load_si512(p + i + 16));
    a3 = _mm512_add_epi64(a3, _mm512_load_si512(p + i + 24));
  }
  alignas(64) uint64_t t[8];
  _mm512_store_si512(t, _mm512_add_epi64(_mm512_add_epi64(a0, a1),
                                         _mm512_add_epi64(a2, a3)));
  uint64_t s = 0;
  for (uint64_t v : t)
    s += v;
  for (; i < n; ++i)
    s += p[i];
  return s;
}

__attribute__((target("avx2"))) uint64_t sum256(const uint64_t *p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(p + i + 4)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(p + i + 8)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(p + i + 12)));
  }
  alignas(32) uint64_t t[4];
  _mm256_store_si256((__m256i *)t, _mm256_add_epi64(_mm256_add_epi64(a0, a1),
                                                    _mm256_add_epi64(a2, a3)));
  uint64_t s = t[0] + t[1] + t[2] + t[3];
  for (; i < n; ++i)
    s += p[i];
  return s;
}
#endif

uint64_t sumWords(const uint64_t *p, size_t n) {
#ifdef MOE_BENCH_X86
  static const int level = __builtin_cpu_supports("avx512f") ? 2
                           : __builtin_cpu_supports("avx2")  ? 1
                                                             : 0;
  if (level == 2)
    return sum512(p, n);
  if (level == 1)
    return sum256(p, n);
#endif
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    a0 += p[i], a1 += p[i + 1], a2 += p[i + 2], a3 += p[i + 3];
  for (; i < n; ++i)
    a0 += p[i];
  return a0 + a1 + a2 + a3;
}

/// Read bandwidth in GB/s: the median of `repeat` sums of 512 MiB.
double readBandwidth(int repeat) {
  size_t n = size_t(512) << 20 >> 3;
  uint64_t *buf = static_cast<uint64_t *>(std::aligned_alloc(64, n * 8));
  tbb::parallel_for(tbb::blocked_range<size_t>(0, n, 1 << 16),
                    [&](const tbb::blocked_range<size_t> &r) {
                      for (size_t i = r.begin(); i < r.end(); ++i)
                        buf[i] = 1;
                    });
  std::vector<double> times;
  for (int r = 0; r < repeat; ++r) {
    auto t0 = Clock::now();
    uint64_t total = tbb::parallel_reduce(
        tbb::blocked_range<size_t>(0, n, 1 << 16), uint64_t(0),
        [&](const tbb::blocked_range<size_t> &range, uint64_t acc) {
          return acc + sumWords(buf + range.begin(), range.size());
        },
        [](uint64_t a, uint64_t b) { return a + b; });
    times.push_back(seconds(t0));
    if (total != n)
      std::abort();
  }
  std::free(buf);
  return double(n * 8) / median(times) / 1e9;
}

struct Result {
  std::string kind, name;
  double ms, gbps, fraction;
  double bytes;
};

struct Format {
  const char *name;
  kc::QuantFormat f;
};

const Format kFormats[] = {{"fp32", {}},
                           {"bf16", {16, 0, true, false}},
                           {"int8 g128 f16", {8, 128, true, false}},
                           {"int8 g32 f32 zp", {8, 32, false, true}},
                           {"int4 g128 f16", {4, 128, true, false}},
                           {"int4 g32 f16 zp", {4, 32, true, true}},
                           {"int3 g128 f16", {3, 128, true, false}},
                           {"int2 g64 f16", {2, 64, true, false}}};

constexpr int64_t kWorkingSet = int64_t(768) << 20;

/// Bytes at a 64-byte aligned address, as a plan's weights are.
struct AlignedBytes {
  std::vector<uint8_t> storage;
  uint8_t *data = nullptr;
  explicit AlignedBytes(int64_t n) : storage(size_t(n) + 64) {
    data = storage.data() +
           (64 - reinterpret_cast<uintptr_t>(storage.data()) % 64) % 64;
  }
};

/// Copies of one packed matrix filling the working set.
struct Copies {
  int64_t stride = 0, count = 0;
  AlignedBytes bytes;
  Copies(const std::vector<float> &w, int64_t rows, int64_t cols,
         const kc::QuantFormat &f)
      : stride((kc::quantLayout(f, rows, cols).totalBytes + 63) / 64 * 64),
        count((kWorkingSet + stride - 1) / stride), bytes(stride * count) {
    kc::quantizeMatrix(w.data(), rows, cols, f, bytes.data);
    for (int64_t m = 1; m < count; ++m)
      std::memcpy(bytes.data + m * stride, bytes.data, size_t(stride));
  }
  const uint8_t *at(int64_t i) const {
    return bytes.data + (i % count) * stride;
  }
};

Result gemv(const Format &fmt, bool int8, int threads, int repeat,
            const std::vector<float> &w, const std::vector<float> &x) {
  const int64_t rows = 3584, cols = 1024;
  Copies mats(w, rows, cols, fmt.f);
  const double bytes = double(kc::quantLayout(fmt.f, rows, cols).totalBytes);
  const int64_t perSample =
      std::max<int64_t>(1, int64_t(16e6 / bytes)); // ~16 MB per sample
  std::vector<float> y(static_cast<size_t>(rows));
  std::vector<double> times;
  int64_t next = 0;
  for (int r = 0; r < repeat + 2; ++r) {
    auto t0 = Clock::now();
    for (int64_t m = 0; m < perSample; ++m) {
      const uint8_t *mat = mats.at(next++);
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, rows, rows / threads),
                        [&](const tbb::blocked_range<int64_t> &range) {
                          kc::linearPackedSerial(x.data(), 1, cols, mat, fmt.f,
                                                 rows, nullptr, y.data(),
                                                 range.begin(), range.end());
                        });
    }
    if (r >= 2)
      times.push_back(seconds(t0) / double(perSample));
  }
  double s = median(times);
  return {"gemv", std::string(fmt.name) + (int8 ? " x:int8" : ""), s * 1e3,
          bytes / s / 1e9, 0, bytes};
}

/// One token through a Mixtral-like layer: 2 of 8 SwiGLU experts.
Result expertsDecode(const Format &fmt, bool int8, int repeat,
                     const std::vector<float> &w13,
                     const std::vector<float> &w2) {
  const int64_t H = 1024, F = 3584, E = 8;
  kc::QuantLayout l13 = kc::quantLayout(fmt.f, F, H),
                  l2 = kc::quantLayout(fmt.f, H, F);
  auto aligned = [](int64_t b) { return (b + 63) / 64 * 64; };
  const int64_t s13 = aligned(l13.totalBytes), s2 = aligned(l2.totalBytes);
  // One bank per weight and layer copy; an expert's matrices are copies.
  const int64_t layerBytes = E * (2 * s13 + s2);
  const int64_t layers = std::max<int64_t>(2, (kWorkingSet + layerBytes - 1) /
                                                  layerBytes);
  AlignedBytes w1p(layers * E * s13), w3p(layers * E * s13),
      w2p(layers * E * s2);
  kc::quantizeMatrix(w13.data(), F, H, fmt.f, w1p.data);
  kc::quantizeMatrix(w13.data() + F * H, F, H, fmt.f, w3p.data);
  kc::quantizeMatrix(w2.data(), H, F, fmt.f, w2p.data);
  for (int64_t i = 1; i < layers * E; ++i) {
    std::memcpy(w1p.data + i * s13, w1p.data, size_t(s13));
    std::memcpy(w3p.data + i * s13, w3p.data, size_t(s13));
    std::memcpy(w2p.data + i * s2, w2p.data, size_t(s2));
  }
  std::vector<uint64_t> off13(static_cast<size_t>(E)),
      off2(static_cast<size_t>(E));
  for (int64_t e = 0; e < E; ++e)
    off13[size_t(e)] = uint64_t(e * s13), off2[size_t(e)] = uint64_t(e * s2);
  std::vector<kc::QuantFormat> formats(size_t(E), fmt.f);
  const bool dense = fmt.f.bits == 0;

  kc::ExpertActivation act;
  act.kind = kc::Activation::Swiglu;
  act.fusion = 0;
  std::mt19937 rng(5);
  std::normal_distribution<float> dist;
  std::vector<float> x(size_t(2 * H)), y(size_t(2 * H));
  std::vector<double> times;
  for (int r = 0; r < repeat + 2; ++r) {
    const int64_t layer = r % layers;
    // A new token and a new pair of experts each run.
    for (float &v : x)
      v = dist(rng);
    int64_t a = int64_t(rng() % E), b = int64_t(rng() % (E - 1));
    b += b >= a;
    std::vector<int64_t> offsets(size_t(E + 1), 0);
    for (int64_t e = 0; e < E; ++e)
      offsets[size_t(e + 1)] = offsets[size_t(e)] + (e == a || e == b);
    kc::ExpertWeights wts;
    const uint8_t *b1 = w1p.data + layer * E * s13,
                  *b3 = w3p.data + layer * E * s13,
                  *b2 = w2p.data + layer * E * s2;
    if (dense) {
      wts.w1 = reinterpret_cast<const float *>(b1);
      wts.w3 = reinterpret_cast<const float *>(b3);
      wts.w2 = reinterpret_cast<const float *>(b2);
    } else {
      wts.w1p = {b1, off13.data(), formats.data()};
      wts.w3p = {b3, off13.data(), formats.data()};
      wts.w2p = {b2, off2.data(), formats.data()};
    }
    auto t0 = Clock::now();
    moe::rt::Status st = kc::experts(x.data(), 2, H, offsets.data(), E, F, wts,
                                     act, nullptr, y.data());
    double t = seconds(t0);
    if (!st.isOk()) {
      std::fprintf(stderr, "moe-bench-kernels: experts: %s\n",
                   st.message().c_str());
      std::exit(1);
    }
    if (r >= 2)
      times.push_back(t);
  }
  double s = median(times);
  double bytes = double(2 * (2 * l13.totalBytes + l2.totalBytes));
  return {"experts", std::string(fmt.name) + (int8 ? " x:int8" : ""), s * 1e3,
          bytes / s / 1e9, 0, bytes};
}

} // namespace

int main(int argc, char **argv) {
  int threads = int(std::thread::hardware_concurrency());
  int repeat = 20;
  std::string json, only;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (a == "--repeat" && i + 1 < argc)
      repeat = std::atoi(argv[++i]);
    else if (a == "--json" && i + 1 < argc)
      json = argv[++i];
    else if (a == "--only" && i + 1 < argc)
      only = argv[++i];
    else {
      std::fprintf(stderr,
                   "usage: moe-bench-kernels [--threads N] [--repeat N] "
                   "[--json FILE] [--only gemv|experts]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism,
                            size_t(threads));
  double bw = readBandwidth(std::max(5, repeat / 4));
  std::printf("read bandwidth (%d threads): %.1f GB/s\n", threads, bw);
  std::printf("SIMD level for packed weights: %s\n", kc::quantDispatchLevel());

  std::mt19937 rng(1);
  std::normal_distribution<float> dist;
  auto random = [&](size_t n) {
    std::vector<float> v(n);
    for (float &e : v)
      e = dist(rng);
    return v;
  };
  std::vector<float> w = random(3584 * 1024), x = random(1024);
  std::vector<float> w13 = random(2 * 3584 * 1024), w2 = random(1024 * 3584);

  struct Run {
    Format fmt;
    bool int8Activations;
  };
  std::vector<Run> runs;
  for (const Format &fmt : kFormats)
    runs.push_back({fmt, false});
  // The VNNI path with int8 activations, where the CPU has it.
  if (kc::setQuantInt8Activations(true),
      std::string(kc::quantDispatchLevel()) == "avx512-vnni-int8")
    for (const Format &fmt : kFormats)
      if (fmt.f.bits == 8 || fmt.f.bits == 4)
        runs.push_back({fmt, true});
  kc::setQuantInt8Activations(false);

  std::vector<Result> results;
  for (const char *kind : {"gemv", "experts"}) {
    if (!only.empty() && only != kind)
      continue;
    for (const Run &run : runs) {
      kc::setQuantInt8Activations(run.int8Activations);
      Result res = std::string(kind) == "gemv"
                       ? gemv(run.fmt, run.int8Activations, threads, repeat, w, x)
                       : expertsDecode(run.fmt, run.int8Activations, repeat,
                                       w13, w2);
      res.fraction = res.gbps / bw;
      results.push_back(res);
      std::printf("%-8s %-24s %8.2f MB %9.3f ms %8.1f GB/s %6.0f%%\n",
                  res.kind.c_str(), res.name.c_str(), res.bytes / 1e6, res.ms,
                  res.gbps, 100 * res.fraction);
      std::fflush(stdout);
    }
  }
  kc::setQuantInt8Activations(false);
  if (!json.empty()) {
    FILE *f = std::fopen(json.c_str(), "w");
    if (!f) {
      std::fprintf(stderr, "moe-bench-kernels: error: cannot write '%s'\n",
                   json.c_str());
      return 1;
    }
    std::fprintf(f,
                 "{\n  \"threads\": %d,\n  \"read_bandwidth_gbps\": %.2f,\n"
                 "  \"simd\": \"%s\",\n  \"results\": [\n",
                 threads, bw, kc::quantDispatchLevel());
    for (size_t i = 0; i < results.size(); ++i)
      std::fprintf(f,
                   "    {\"case\": \"%s\", \"weights\": \"%s\", \"bytes\": "
                   "%.0f, \"median_ms\": %.4f, \"gbps\": %.2f, "
                   "\"fraction_of_floor\": %.3f}%s\n",
                   results[i].kind.c_str(), results[i].name.c_str(),
                   results[i].bytes, results[i].ms, results[i].gbps,
                   results[i].fraction, i + 1 < results.size() ? "," : "");
    std::fprintf(f, "  ]\n}\n");
    std::fclose(f);
  }
  return 0;
}
