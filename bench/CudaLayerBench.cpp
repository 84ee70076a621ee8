//===- CudaLayerBench.cpp - A Mixtral-shaped MoE layer on the cuda device -===//
//
//   moe-cuda-bench [--hidden 4096] [--ffn 14336] [--experts 8] [--k 2]
//                  [--tokens 1,4,16,64,256,1024,4096] [--dtype bf16|f32]
//                  [--repeat 20] [--warmup 5] [--device cuda|cpu]
//                  [--hbm-bytes-per-s X] [--json FILE]
//
// Builds one MoE layer plan (router nn.linear → moe.route (softmax, top-k,
// normalised) → moe.dispatch → moe.experts (SwiGLU with w1, w3; bf16 banks
// as the compiler writes them with expert-bits=16, or f32) → moe.combine)
// with random weights, then times the plan for each token count with the
// inputs already on the device and the outputs left there (CUDA events
// around each run; median of --repeat). For each T it reports the distinct
// experts the tokens touched, their bytes and the byte floor: those bytes ÷
// the HBM read bandwidth measured in the same run (or --hbm-bytes-per-s).
// --device cpu runs the same plan on the CPU executor (a check of the
// harness on machines without a GPU; no floor is printed then).
//
//===----------------------------------------------------------------------===//

#include "test/unit/runtime/PlanBuilder.h"

#include "runtime/Executor.h"
#include "runtime/cuda/CudaDevice.h"
#include "runtime/cuda/CudaExecutor.h"
#include "runtime/cuda/MeasureDevice.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

using namespace moe;
using moe::rt::Attrs;
using moe::rt::DType;
using moe::rt::Status;
using moe::rt::StatusOr;
using moe::rt::Tensor;

namespace {

struct Options {
  int64_t hidden = 4096, ffn = 14336, experts = 8, k = 2;
  std::vector<int64_t> tokens = {1, 4, 16, 64, 256, 1024, 4096};
  bool bf16 = true;
  int repeat = 20, warmup = 5;
  std::string device = "cuda";
  double hbm = 0;
  std::string json;
};

int usage(const char *why) {
  std::fprintf(stderr,
               "moe-cuda-bench: error: %s\nusage: moe-cuda-bench [--hidden "
               "N] [--ffn N] [--experts N] [--k N] [--tokens T,T,...] "
               "[--dtype bf16|f32] [--repeat N] [--warmup N] [--device "
               "cuda|cpu] [--hbm-bytes-per-s X] [--json FILE]\n",
               why);
  return 2;
}

/// Uniform floats in [-a, a) from a fast generator (billions of them for a
/// Mixtral-sized layer).
std::vector<float> randomWeights(size_t n, float a, uint64_t seed) {
  std::vector<float> v(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (float &f : v) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    f = (float(x >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * a;
  }
  return v;
}

StatusOr<std::unique_ptr<rt::LoadedPlan>> buildPlan(const Options &o,
                                                    std::string &path) {
  const int64_t H = o.hidden, F = o.ffn, E = o.experts, K = o.k;
  test::PlanBuilder pb;
  uint32_t x = pb.input("hidden", DType::F32, {-1, H});
  uint32_t router =
      pb.weightF32("router", {E, H}, randomWeights(size_t(E * H), 0.05f, 1));
  auto bank = [&](const std::string &name, rt::Shape shape, uint64_t seed) {
    size_t n = size_t(shape[0] * shape[1] * shape[2]);
    // Scaled so that activations stay O(1) through the layer.
    std::vector<float> w = randomWeights(n, 1.0f / float(shape[2]), seed);
    if (!o.bf16)
      return pb.weightF32(name, shape, w);
    return pb.weightPacked(name, shape, w,
                           std::vector<kernels::cpu::QuantFormat>(
                               size_t(shape[0]), {16, 0, true, false}));
  };
  uint32_t w1 = bank("w1", {E, F, H}, 2);
  uint32_t w2 = bank("w2", {E, H, F}, 3);
  uint32_t w3 = bank("w3", {E, F, H}, 4);
  uint32_t logits = pb.call1("nn.linear", {x, router}, DType::F32, {-1, E});
  auto routed = pb.call("moe.route", {logits},
                        {{DType::I64, {-1, K}}, {DType::F32, {-1, K}}},
                        Attrs().setInt("k", K).setString("scoring", "softmax")
                            .setInt("normalize", 1));
  pb.free({logits});
  auto d = pb.call("moe.dispatch", {x, routed[0]},
                   {{DType::F32, {-1, H}}, {DType::I64, {E + 1}},
                    {DType::I64, {-1}}},
                   Attrs().setInt("num_experts", E));
  uint32_t y = pb.call1("moe.experts", {d[0], d[1], w1, w2, w3}, DType::F32,
                        {-1, H},
                        Attrs().setInt("num_experts", E)
                            .setString("activation", "silu")
                            .setInt("has_w3", 1));
  pb.free({d[0], d[1]});
  uint32_t out = pb.call1("moe.combine", {y, d[2], routed[1]}, DType::F32,
                          {-1, H});
  pb.free({y, d[2], routed[1]});
  pb.output(out);
  pb.output(routed[0]);
  path = test::tempPath("cuda-bench.moeplan");
  MOE_RETURN_IF_ERROR(pb.write(path));
  rt::LoadOptions lo;
  lo.verifyWeights = false;
  return rt::loadPlan(path, lo);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int run(const Options &o) {
  bool tty = ::isatty(STDERR_FILENO) != 0;
  if (tty)
    std::fprintf(stderr, "moe-cuda-bench: building the layer plan...\r");
  std::string path;
  StatusOr<std::unique_ptr<rt::LoadedPlan>> plan = buildPlan(o, path);
  if (!plan.isOk()) {
    std::fprintf(stderr, "moe-cuda-bench: error: %s\n",
                 plan.status().message().c_str());
    return 1;
  }
  ::unlink(path.c_str()); // the mapping stays valid
  std::unique_ptr<rt::Runner> runner;
  rt::cuda::CudaExecutor *gpu = nullptr;
  double hbm = o.hbm;
  std::string deviceName = "cpu";
  if (o.device == "cuda") {
    StatusOr<std::unique_ptr<rt::cuda::CudaExecutor>> ex =
        rt::cuda::CudaExecutor::create(**plan);
    if (!ex.isOk()) {
      std::fprintf(stderr, "moe-cuda-bench: error: %s\n",
                   ex.status().message().c_str());
      return 1;
    }
    gpu = ex->get();
    deviceName = gpu->deviceName();
    runner = std::move(*ex);
    if (hbm <= 0) {
      StatusOr<double> b = rt::cuda::measureHbmReadBandwidth(gpu->device());
      if (!b.isOk()) {
        std::fprintf(stderr, "moe-cuda-bench: error: %s\n",
                     b.status().message().c_str());
        return 1;
      }
      hbm = *b;
    }
  } else {
    StatusOr<std::unique_ptr<rt::Executor>> ex =
        rt::Executor::create(**plan);
    if (!ex.isOk()) {
      std::fprintf(stderr, "moe-cuda-bench: error: %s\n",
                   ex.status().message().c_str());
      return 1;
    }
    runner = std::move(*ex);
  }
  const double expertBytes =
      3.0 * double(o.hidden) * double(o.ffn) * (o.bf16 ? 2.0 : 4.0);
  std::string rows;
  std::printf("device %s, hidden %lld, ffn %lld, %lld experts, top-%lld, "
              "%s experts%s\n",
              deviceName.c_str(), (long long)o.hidden, (long long)o.ffn,
              (long long)o.experts, (long long)o.k,
              o.bf16 ? "bf16" : "f32",
              hbm > 0 ? (", HBM read " + std::to_string(hbm / 1e9) +
                         " GB/s").c_str()
                      : "");
  std::printf("%6s %10s %10s %8s %12s %10s %8s\n", "T", "median_ms",
              "min_ms", "experts", "bytes_MB", "floor_ms", "x_floor");
  std::mt19937 rng(7);
  for (int64_t T : o.tokens) {
    StatusOr<Tensor> x = Tensor::allocate(DType::F32, {T, o.hidden});
    if (!x.isOk())
      return 1;
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (int64_t i = 0; i < x->numElements(); ++i)
      x->mutableData<float>()[i] = nd(rng);
    Tensor input = *x;
    if (gpu) {
      StatusOr<Tensor> d = gpu->device().upload(*x, "bench input");
      if (!d.isOk()) {
        std::fprintf(stderr, "moe-cuda-bench: error: %s\n",
                     d.status().message().c_str());
        return 1;
      }
      input = *d;
    }
    auto once = [&]() -> StatusOr<std::vector<Tensor>> {
      return gpu ? gpu->runDevice({input}, true) : runner->run({input});
    };
    std::vector<Tensor> last;
    for (int i = 0; i < o.warmup; ++i) {
      StatusOr<std::vector<Tensor>> r = once();
      if (!r.isOk()) {
        std::fprintf(stderr, "moe-cuda-bench: error: T=%lld: %s\n",
                     (long long)T, r.status().message().c_str());
        return 1;
      }
    }
    std::vector<double> ms;
    for (int i = 0; i < o.repeat; ++i) {
      auto start = std::chrono::steady_clock::now();
      StatusOr<std::vector<Tensor>> r = once(); // waits for the stream
      auto end = std::chrono::steady_clock::now();
      if (!r.isOk()) {
        std::fprintf(stderr, "moe-cuda-bench: error: T=%lld: %s\n",
                     (long long)T, r.status().message().c_str());
        return 1;
      }
      ms.push_back(std::chrono::duration<double, std::milli>(end - start)
                       .count());
      last = std::move(*r);
    }
    // The experts this input's tokens touched.
    Tensor ids = last[1];
    if (gpu) {
      StatusOr<Tensor> h = gpu->device().download(ids);
      if (!h.isOk())
        return 1;
      ids = *h;
    }
    std::set<int64_t> distinct(ids.data<int64_t>(),
                               ids.data<int64_t>() + ids.numElements());
    double bytes = double(distinct.size()) * expertBytes +
                   double(o.experts * o.hidden) * 4.0;
    double floorMs = hbm > 0 ? bytes / hbm * 1e3 : 0;
    double med = median(ms);
    double mn = *std::min_element(ms.begin(), ms.end());
    std::printf("%6lld %10.4f %10.4f %8zu %12.1f %10.4f %8.2f\n",
                (long long)T, med, mn, distinct.size(), bytes / 1e6, floorMs,
                floorMs > 0 ? med / floorMs : 0.0);
    char buf[400];
    std::snprintf(buf, sizeof(buf),
                  "%s{\"tokens\": %lld, \"median_ms\": %.6g, \"min_ms\": "
                  "%.6g, \"distinct_experts\": %zu, \"bytes_touched\": %.6g, "
                  "\"floor_ms\": %.6g, \"x_floor\": %.6g}",
                  rows.empty() ? "" : ",\n    ", (long long)T, med, mn,
                  distinct.size(), bytes, floorMs,
                  floorMs > 0 ? med / floorMs : 0.0);
    rows += buf;
  }
  if (!o.json.empty()) {
    FILE *f = std::fopen(o.json.c_str(), "w");
    if (!f) {
      std::fprintf(stderr, "moe-cuda-bench: error: cannot write %s\n",
                   o.json.c_str());
      return 1;
    }
    std::fprintf(f,
                 "{\"device\": \"%s\", \"hidden\": %lld, \"ffn\": %lld, "
                 "\"experts\": %lld, \"k\": %lld, \"dtype\": \"%s\", "
                 "\"hbm_read_bytes_per_s\": %.6g, \"repeat\": %d,\n  "
                 "\"rows\": [\n    %s]}\n",
                 deviceName.c_str(), (long long)o.hidden, (long long)o.ffn,
                 (long long)o.experts, (long long)o.k,
                 o.bf16 ? "bf16" : "f32", hbm, o.repeat, rows.c_str());
    std::fclose(f);
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char * {
      return i + 1 < argc ? argv[++i] : nullptr;
    };
    auto integer = [&](int64_t &out) {
      const char *v = value();
      char *end = nullptr;
      if (!v)
        return false;
      out = std::strtoll(v, &end, 10);
      return *end == '\0' && out > 0;
    };
    if (a == "--help" || a == "-h") {
      std::printf("moe-cuda-bench: times a Mixtral-shaped MoE layer plan on "
                  "the cuda device against its byte floor (bench/README.md)."
                  "\n\nusage: moe-cuda-bench [--hidden 4096] [--ffn 14336] "
                  "[--experts 8] [--k 2]\n       [--tokens "
                  "1,4,16,64,256,1024,4096] [--dtype bf16|f32] [--repeat 20]"
                  "\n       [--warmup 5] [--device cuda|cpu] "
                  "[--hbm-bytes-per-s X] [--json FILE]\n");
      return 0;
    }
    int64_t n = 0;
    if (a == "--hidden" || a == "--ffn" || a == "--experts" || a == "--k" ||
        a == "--repeat" || a == "--warmup") {
      if (!integer(n))
        return usage((a + " needs a positive integer").c_str());
      if (a == "--hidden")
        o.hidden = n;
      else if (a == "--ffn")
        o.ffn = n;
      else if (a == "--experts")
        o.experts = n;
      else if (a == "--k")
        o.k = n;
      else if (a == "--repeat")
        o.repeat = int(n);
      else
        o.warmup = int(n);
    } else if (a == "--tokens") {
      const char *v = value();
      if (!v)
        return usage("--tokens needs a list");
      o.tokens.clear();
      std::string s = v;
      size_t at = 0;
      while (at <= s.size()) {
        size_t comma = s.find(',', at);
        std::string part = s.substr(at, comma == std::string::npos
                                            ? std::string::npos
                                            : comma - at);
        char *end = nullptr;
        long long t = std::strtoll(part.c_str(), &end, 10);
        if (part.empty() || *end != '\0' || t < 1)
          return usage("--tokens takes positive integers, comma-separated");
        o.tokens.push_back(t);
        if (comma == std::string::npos)
          break;
        at = comma + 1;
      }
    } else if (a == "--dtype") {
      const char *v = value();
      if (!v || (std::string(v) != "bf16" && std::string(v) != "f32"))
        return usage("--dtype is bf16 or f32");
      o.bf16 = std::string(v) == "bf16";
    } else if (a == "--device") {
      const char *v = value();
      if (!v || (std::string(v) != "cuda" && std::string(v) != "cpu"))
        return usage("--device is cuda or cpu");
      o.device = v;
    } else if (a == "--hbm-bytes-per-s") {
      const char *v = value();
      char *end = nullptr;
      o.hbm = v ? std::strtod(v, &end) : 0;
      if (!v || *end != '\0' || !(o.hbm > 0))
        return usage("--hbm-bytes-per-s needs a positive number");
    } else if (a == "--json") {
      const char *v = value();
      if (!v)
        return usage("--json needs a file");
      o.json = v;
    } else {
      return usage(("unknown option " + a).c_str());
    }
  }
  if (o.k > o.experts)
    return usage("--k exceeds --experts");
  return run(o);
}
