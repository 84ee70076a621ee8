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
//   moe-cuda-bench --offload [--layers 4] [--budgets 0.25,0.5]
//                  [--batches 1,16] [--skew 1.0] [--calibration 1024]
//                  [--dry-run] [... the options above]
//
// The offload benchmark of the hybrid device (issue 7): a stack of --layers
// MoE layers (residual, routers biased towards a Zipf distribution of
// --skew so that some experts are hot), whose experts get a GPU budget of
// each --budgets fraction of their bytes. Routing shares come from a
// calibration run; the device profile is measured in the same run. For
// each budget and decode batch it times three placements on --device
// hybrid: every expert streamed on demand through an LRU cache of the
// budget (the Mixtral-offloading approach), the hottest experts resident
// and the rest computed on the CPU (Fiddler), and moe-place-experts' own
// choice (CostCore.h, the pass's code), printing time per token, PCIe
// bytes per token and, for ours, each layer's measured time against its
// prediction. --dry-run stops after the placements (CPU calibration, the
// H100 figures of bench/devices/h100-host.json): the harness without a GPU.
//
//===----------------------------------------------------------------------===//

#include "test/unit/runtime/PlanBuilder.h"

#include "runtime/Executor.h"
#include "runtime/cuda/CudaDevice.h"
#include "runtime/cuda/CudaExecutor.h"
#include "runtime/cuda/MeasureDevice.h"

#include "passes/Analysis/CostCore.h"

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
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
  int64_t decodeTokens = 1; // CudaExecutorOptions::decodeMaxTokens
  double hbm = 0;
  std::string json;
  // --offload
  bool offload = false, dryRun = false;
  int64_t layers = 4, calibration = 1024;
  std::vector<double> budgets = {0.25, 0.5};
  std::vector<int64_t> batches = {1, 16};
  double skew = 1.0;
};

int usage(const char *why) {
  std::fprintf(stderr,
               "moe-cuda-bench: error: %s\nusage: moe-cuda-bench [--hidden "
               "N] [--ffn N] [--experts N] [--k N] [--tokens T,T,...] "
               "[--dtype bf16|f32] [--repeat N] [--warmup N] [--device "
               "cuda|cpu] [--hbm-bytes-per-s X] [--decode-tokens N] [--json FILE]\n",
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

/// One MoE layer on `x` (a router nn.linear, with `bias` when given; route,
/// softmax top-k normalised; dispatch; SwiGLU experts with w1, w3, bf16
/// banks as the compiler writes them with expert-bits=16, or f32; combine),
/// weights named with `suffix` and drawn from seeds `seed`..`seed`+2.
struct MoeLayer {
  uint32_t out, ids;
};
MoeLayer addMoeLayer(test::PlanBuilder &pb, const Options &o, uint32_t x,
                     uint32_t router, std::optional<uint32_t> bias,
                     const std::string &suffix, uint64_t seed) {
  const int64_t H = o.hidden, F = o.ffn, E = o.experts, K = o.k;
  auto bank = [&](const std::string &name, rt::Shape shape, uint64_t s) {
    size_t n = size_t(shape[0] * shape[1] * shape[2]);
    // Scaled so that activations stay O(1) through the layer.
    std::vector<float> w = randomWeights(n, 1.0f / float(shape[2]), s);
    if (!o.bf16)
      return pb.weightF32(name + suffix, shape, w);
    return pb.weightPacked(name + suffix, shape, w,
                           std::vector<kernels::cpu::QuantFormat>(
                               size_t(shape[0]), {16, 0, true, false}));
  };
  uint32_t w1 = bank("w1", {E, F, H}, seed);
  uint32_t w2 = bank("w2", {E, H, F}, seed + 1);
  uint32_t w3 = bank("w3", {E, F, H}, seed + 2);
  std::vector<uint32_t> linear = {x, router};
  if (bias)
    linear.push_back(*bias);
  uint32_t logits = pb.call1("nn.linear", linear, DType::F32, {-1, E});
  auto routed = pb.call("moe.route", {logits},
                        {{DType::I64, {-1, K}}, {DType::F32, {-1, K}}},
                        Attrs().setInt("k", K).setString("scoring", "softmax")
                            .setInt("normalize", 1));
  pb.free({logits});
  auto d = pb.call("moe.dispatch", {x, routed[0]},
                   {{DType::F32, {-1, H}}, {DType::I64, {E + 1}},
                    {DType::I64, {-1}}},
                   Attrs().setInt("num_experts", E));
  // Every expert GPU-resident until a placement says otherwise (only the
  // hybrid device reads it).
  uint32_t y = pb.call1(
      "moe.experts", {d[0], d[1], w1, w2, w3}, DType::F32, {-1, H},
      Attrs().setInt("num_experts", E)
          .setString("activation", "silu")
          .setInt("has_w3", 1)
          .setInts("placement", std::vector<int64_t>(size_t(E), 1)));
  pb.free({d[0], d[1]});
  uint32_t out = pb.call1("moe.combine", {y, d[2], routed[1]}, DType::F32,
                          {-1, H});
  pb.free({y, d[2], routed[1]});
  return {out, routed[0]};
}

/// Writes the plan `pb` to a temporary file and maps it (weights not
/// checksummed: they are random).
StatusOr<std::unique_ptr<rt::LoadedPlan>> load(const test::PlanBuilder &pb,
                                               const std::string &stem,
                                               std::string &path) {
  path = test::tempPath(stem);
  MOE_RETURN_IF_ERROR(pb.write(path));
  rt::LoadOptions lo;
  lo.verifyWeights = false;
  return rt::loadPlan(path, lo);
}

/// Writes a result file; false (and a message) when it cannot.
bool writeText(const std::string &path, const std::string &text) {
  FILE *f = std::fopen(path.c_str(), "w");
  bool ok = f && std::fputs(text.c_str(), f) >= 0;
  if (f)
    ok = std::fclose(f) == 0 && ok;
  if (!ok)
    std::fprintf(stderr, "moe-cuda-bench: error: cannot write %s\n",
                 path.c_str());
  return ok;
}

StatusOr<std::unique_ptr<rt::LoadedPlan>> buildPlan(const Options &o,
                                                    std::string &path) {
  test::PlanBuilder pb;
  uint32_t x = pb.input("hidden", DType::F32, {-1, o.hidden});
  uint32_t router = pb.weightF32(
      "router", {o.experts, o.hidden},
      randomWeights(size_t(o.experts * o.hidden), 0.05f, 1));
  MoeLayer l = addMoeLayer(pb, o, x, router, std::nullopt, "", 2);
  pb.output(l.out);
  pb.output(l.ids);
  return load(pb, "cuda-bench.moeplan", path);
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
    rt::cuda::CudaExecutorOptions co;
    co.decodeMaxTokens = int(o.decodeTokens);
    StatusOr<std::unique_ptr<rt::cuda::CudaExecutor>> ex =
        rt::cuda::CudaExecutor::create(**plan, co);
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
    char head[512];
    std::snprintf(head, sizeof(head),
                  "{\"device\": \"%s\", \"hidden\": %lld, \"ffn\": %lld, "
                  "\"experts\": %lld, \"k\": %lld, \"dtype\": \"%s\", "
                  "\"hbm_read_bytes_per_s\": %.6g, \"repeat\": %d,\n  "
                  "\"rows\": [\n    ",
                  deviceName.c_str(), (long long)o.hidden, (long long)o.ffn,
                  (long long)o.experts, (long long)o.k,
                  o.bf16 ? "bf16" : "f32", hbm, o.repeat);
    if (!writeText(o.json, head + rows + "]}\n"))
      return 1;
  }
  return 0;
}


// --- the offload benchmark (--offload) --------------------------------------

/// The stack: per layer a router (with a Zipf-like bias), route, dispatch,
/// SwiGLU experts (placement set later), combine and the residual add.
/// Outputs: the hidden state, then each layer's expert ids.
StatusOr<std::unique_ptr<rt::LoadedPlan>> buildStack(const Options &o,
                                                     std::string &path) {
  const int64_t H = o.hidden, E = o.experts;
  test::PlanBuilder pb;
  uint32_t x = pb.input("hidden", DType::F32, {-1, H});
  std::vector<uint32_t> ids;
  std::mt19937 rng(11);
  for (int64_t l = 0; l < o.layers; ++l) {
    std::string suffix = "_" + std::to_string(l);
    uint32_t router = pb.weightF32(
        "router" + suffix, {E, H},
        randomWeights(size_t(E * H), 0.5f / std::sqrt(float(H)),
                      uint64_t(100 + l)));
    // Expert e's bias skew · log(1 / (rank + 1)), ranks shuffled per layer.
    std::vector<int64_t> rank(static_cast<size_t>(E));
    for (int64_t e = 0; e < E; ++e)
      rank[size_t(e)] = e;
    std::shuffle(rank.begin(), rank.end(), rng);
    std::vector<float> bias(static_cast<size_t>(E));
    for (int64_t e = 0; e < E; ++e)
      bias[size_t(e)] =
          float(-o.skew * std::log(double(rank[size_t(e)]) + 1.0));
    uint32_t b = pb.weightF32("router_bias" + suffix, {E}, bias);
    MoeLayer layer =
        addMoeLayer(pb, o, x, router, b, suffix, uint64_t(200 + 3 * l));
    x = pb.call1("nn.add", {x, layer.out}, DType::F32, {-1, H});
    ids.push_back(layer.ids);
  }
  pb.output(x);
  for (uint32_t v : ids)
    pb.output(v);
  return load(pb, "offload-bench.moeplan", path);
}

/// The H100 host of ../shared/BENCHMARKING.md (bench/devices/h100-host.json)
/// for --dry-run, where nothing is measured.
cost::DeviceProfile h100Profile() {
  cost::DeviceProfile d;
  d.name = "H100 80 GB host (BENCHMARKING.md's figures)";
  d.gpuMemoryBytes = 85899345920.0;
  d.hbmBytesPerSecond = 3.0e12;
  d.gpuFlopsPerSecond = 4.9e14;
  d.gpuLaunchSeconds = 5e-6;
  d.h2dBytesPerSecond = d.d2hBytesPerSecond = 5.0e10;
  d.pcieLatencySeconds = 1e-5;
  d.hostReadBytesPerSecond = 9.1e10;
  d.cpuFlopsPerSecond = 1.0e12;
  return d;
}

struct Strategy {
  std::string name;
  /// Per layer, per expert: 1 GPU, 2 CPU, 3 on demand.
  std::vector<std::vector<int64_t>> placement;
  int cacheSlots = 0;
  std::vector<double> predictedUs; ///< ours only
};

std::vector<Strategy> strategies(const Options &o, const cost::DeviceProfile &d,
                                 const std::vector<std::vector<double>> &share,
                                 double budgetFraction, int64_t batch) {
  const int64_t L = o.layers, E = o.experts;
  const double expertBytes =
      3.0 * double(o.hidden) * double(o.ffn) * (o.bf16 ? 2.0 : 4.0);
  const double budget = budgetFraction * expertBytes * double(L * E);
  std::vector<Strategy> out;
  // Mixtral-offloading: everything on demand through an LRU cache of the
  // budget.
  Strategy lru;
  lru.name = "lru-streaming";
  lru.placement.assign(size_t(L), std::vector<int64_t>(size_t(E), 3));
  lru.cacheSlots = std::max(1, int(budget / expertBytes));
  out.push_back(lru);
  // Fiddler: each layer's hottest experts resident within its share of the
  // budget, the rest computed on the CPU.
  Strategy fiddler;
  fiddler.name = "fiddler-cpu";
  for (int64_t l = 0; l < L; ++l) {
    std::vector<int64_t> order(static_cast<size_t>(E));
    for (int64_t e = 0; e < E; ++e)
      order[size_t(e)] = e;
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return share[size_t(l)][size_t(a)] > share[size_t(l)][size_t(b)];
    });
    std::vector<int64_t> p(static_cast<size_t>(E), 2);
    double left = budget / double(L);
    for (int64_t e : order)
      if (left >= expertBytes) {
        p[size_t(e)] = 1;
        left -= expertBytes;
      }
    fiddler.placement.push_back(p);
  }
  out.push_back(fiddler);
  // Ours: moe-place-experts' choice (the same code).
  std::vector<cost::PlacementLayer> layers(static_cast<size_t>(L));
  for (int64_t l = 0; l < L; ++l)
    for (int64_t e = 0; e < E; ++e) {
      cost::ExpertShape s;
      s.bytes = int64_t(expertBytes);
      s.flopsPerToken = 2.0 * 3.0 * double(o.hidden) * double(o.ffn);
      s.hidden = o.hidden;
      layers[size_t(l)].shapes.push_back(s);
      layers[size_t(l)].loads.push_back(cost::ExpertLoad::fromShare(
          share[size_t(l)][size_t(e)], double(batch), o.k));
      layers[size_t(l)].where.push_back(cost::Where::Cpu);
      layers[size_t(l)].pinned.push_back(false);
    }
  const int64_t cacheExperts = 2;
  cost::PlacementResult r =
      cost::placeExperts(d, layers, int64_t(budget), cacheExperts);
  Strategy ours;
  ours.name = "moe-place-experts";
  ours.cacheSlots = int(r.cacheSlots);
  for (int64_t l = 0; l < L; ++l) {
    std::vector<int64_t> p;
    for (cost::Where w : layers[size_t(l)].where)
      p.push_back(w == cost::Where::Gpu ? 1 : w == cost::Where::Cpu ? 2 : 3);
    ours.placement.push_back(p);
    ours.predictedUs.push_back(
        1e6 * std::max(r.gpuSide[size_t(l)], r.cpuSide[size_t(l)]));
  }
  out.push_back(ours);
  return out;
}

std::string placementText(const std::vector<std::vector<int64_t>> &p) {
  std::string t;
  const char *code = "?gco";
  for (size_t l = 0; l < p.size(); ++l) {
    t += l ? " | " : "";
    for (int64_t w : p[l])
      t += code[w >= 0 && w <= 3 ? w : 0];
  }
  return t;
}

int runOffload(const Options &o) {
  bool tty = ::isatty(STDERR_FILENO) != 0;
  auto fail = [](const Status &st) {
    std::fprintf(stderr, "moe-cuda-bench: error: %s\n", st.message().c_str());
    return 1;
  };
  if (tty)
    std::fprintf(stderr, "moe-cuda-bench: building %lld layers...\r",
                 (long long)o.layers);
  std::string path;
  StatusOr<std::unique_ptr<rt::LoadedPlan>> plan = buildStack(o, path);
  if (!plan.isOk())
    return fail(plan.status());
  ::unlink(path.c_str());
  // Routing shares: a calibration run (every expert resident).
  std::vector<std::vector<double>> share(
      size_t(o.layers), std::vector<double>(size_t(o.experts), 0.0));
  {
    std::unique_ptr<rt::Runner> calib;
    if (o.dryRun) {
      StatusOr<std::unique_ptr<rt::Executor>> ex =
          rt::Executor::create(**plan);
      if (!ex.isOk())
        return fail(ex.status());
      calib = std::move(*ex);
    } else {
      StatusOr<std::unique_ptr<rt::cuda::CudaExecutor>> ex =
          rt::cuda::CudaExecutor::create(**plan);
      if (!ex.isOk())
        return fail(ex.status());
      calib = std::move(*ex);
    }
    StatusOr<Tensor> x = Tensor::allocate(DType::F32, {o.calibration, o.hidden});
    if (!x.isOk())
      return fail(x.status());
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (int64_t i = 0; i < x->numElements(); ++i)
      x->mutableData<float>()[i] = nd(rng);
    StatusOr<std::vector<Tensor>> out = calib->run({*x});
    if (!out.isOk())
      return fail(out.status());
    for (int64_t l = 0; l < o.layers; ++l) {
      const Tensor &ids = (*out)[size_t(l + 1)];
      for (int64_t i = 0; i < ids.numElements(); ++i) {
        int64_t e = ids.data<int64_t>()[i];
        if (e >= 0 && e < o.experts)
          share[size_t(l)][size_t(e)] += 1.0 / double(ids.numElements());
      }
    }
  }
  cost::DeviceProfile profile = h100Profile();
  if (!o.dryRun) {
    StatusOr<rt::cuda::DeviceMeasurements> m =
        rt::cuda::measureDeviceProfile(tty);
    if (!m.isOk())
      return fail(m.status());
    profile.name = m->name;
    profile.gpuMemoryBytes = m->memoryBytes;
    profile.hbmBytesPerSecond = m->hbmReadBytesPerSecond;
    profile.gpuFlopsPerSecond = o.bf16 ? m->bf16FlopsPerSecond
                                       : m->f32FlopsPerSecond;
    profile.gpuLaunchSeconds = m->launchSeconds;
    profile.h2dBytesPerSecond = m->h2dBytesPerSecond;
    profile.d2hBytesPerSecond = m->d2hBytesPerSecond;
    profile.pcieLatencySeconds = m->pcieLatencySeconds;
    profile.hostReadBytesPerSecond = m->hostReadBytesPerSecond;
    profile.cpuFlopsPerSecond = m->hostFlopsPerSecond;
  }
  std::printf("offload: %lld layers of %lld experts (hidden %lld, ffn %lld, "
              "top-%lld, %s), skew %.2f; device profile: %s\n",
              (long long)o.layers, (long long)o.experts, (long long)o.hidden,
              (long long)o.ffn, (long long)o.k, o.bf16 ? "bf16" : "f32",
              o.skew, profile.name.c_str());
  for (int64_t l = 0; l < o.layers; ++l) {
    std::printf("  layer %lld routing shares:", (long long)l);
    for (double v : share[size_t(l)])
      std::printf(" %.3f", v);
    std::printf("\n");
  }
  std::string rows;
  for (double budget : o.budgets)
    for (int64_t batch : o.batches) {
      std::vector<Strategy> ss =
          strategies(o, profile, share, budget, batch);
      for (const Strategy &st : ss) {
        std::printf("budget %.0f%%, batch %lld, %-18s %s (cache %d)", 100 * budget,
                    (long long)batch, st.name.c_str(),
                    placementText(st.placement).c_str(), st.cacheSlots);
        std::string measuredJson = "null", msJson = "null", bytesJson = "null";
        std::string predicted;
        for (size_t l = 0; l < st.predictedUs.size(); ++l)
          predicted += (l ? ", " : "") + std::to_string(st.predictedUs[l]);
        if (o.dryRun) {
          std::printf("\n");
        } else {
          size_t layer = 0;
          StatusOr<size_t> edited = (*plan)->overrideAttrs(
              "moe.experts", [&](Attrs &a) {
                a.setInts("placement", st.placement[layer++]);
              });
          if (!edited.isOk())
            return fail(edited.status());
          rt::cuda::CudaExecutorOptions co;
          co.hybrid = true;
          co.cacheExperts = std::max(1, st.cacheSlots);
          StatusOr<Tensor> x = Tensor::allocate(DType::F32, {batch, o.hidden});
          if (!x.isOk())
            return fail(x.status());
          // Runs `runs` steps after the warm-up, a new batch each step (as
          // in decoding), on an executor made with `opts`; the times, and
          // the executor for its counters.
          auto timeRuns = [&](const rt::cuda::CudaExecutorOptions &opts,
                              int runs, std::vector<double> &ms,
                              rt::cuda::HybridStats &before)
              -> StatusOr<std::unique_ptr<rt::cuda::CudaExecutor>> {
            StatusOr<std::unique_ptr<rt::cuda::CudaExecutor>> ex =
                rt::cuda::CudaExecutor::create(**plan, opts);
            if (!ex.isOk())
              return ex.status();
            std::mt19937 rng(static_cast<uint32_t>(batch));
            std::normal_distribution<float> nd(0.0f, 1.0f);
            for (int i = 0; i < o.warmup + runs; ++i) {
              for (int64_t j = 0; j < x->numElements(); ++j)
                x->mutableData<float>()[j] = nd(rng);
              if (i == o.warmup) {
                before = (*ex)->hybridStats();
                (*ex)->resetProfile();
              }
              auto start = std::chrono::steady_clock::now();
              StatusOr<std::vector<Tensor>> r = (*ex)->run({*x});
              auto end = std::chrono::steady_clock::now();
              if (!r.isOk())
                return r.status();
              if (i >= o.warmup)
                ms.push_back(
                    std::chrono::duration<double, std::milli>(end - start)
                        .count());
            }
            return ex;
          };
          // The timed runs without per-step waits; the per-layer times
          // from a second, profiled executor (profiling waits after each
          // step, which would slow the timed runs).
          std::vector<double> ms;
          rt::cuda::HybridStats before;
          StatusOr<std::unique_ptr<rt::cuda::CudaExecutor>> ex =
              timeRuns(co, o.repeat, ms, before);
          if (!ex.isOk())
            return fail(ex.status());
          rt::cuda::HybridStats after = (*ex)->hybridStats();
          double perToken = median(ms) / double(batch);
          double bytes = double(after.h2dBytes + after.d2hBytes -
                                before.h2dBytes - before.d2hBytes) /
                         double(o.repeat) / double(batch);
          std::printf(": %.3f ms/token, %.2f MB/token over PCIe, cache %llu "
                      "hits %llu misses\n",
                      perToken, bytes / 1e6,
                      (unsigned long long)(after.cacheHits - before.cacheHits),
                      (unsigned long long)(after.cacheMisses -
                                           before.cacheMisses));
          msJson = std::to_string(perToken);
          bytesJson = std::to_string(bytes);
          if (!st.predictedUs.empty()) {
            ex->reset(); // one executor's device memory at a time
            rt::cuda::CudaExecutorOptions profiled = co;
            profiled.profile = true;
            std::vector<double> unused;
            StatusOr<std::unique_ptr<rt::cuda::CudaExecutor>> pex =
                timeRuns(profiled, std::max(3, o.repeat / 2), unused, before);
            if (!pex.isOk())
              return fail(pex.status());
            std::vector<double> stepMs = (*pex)->stepMillis();
            std::string m;
            size_t n = 0;
            for (size_t sIdx = 0; sIdx < (*plan)->steps().size(); ++sIdx)
              if ((*plan)->steps()[sIdx].kernelName == "moe.experts") {
                m += (n ? ", " : "") + std::to_string(1e3 * stepMs[sIdx]);
                std::printf("    layer %zu: %.1f us measured, %.1f us "
                            "predicted\n",
                            n, 1e3 * stepMs[sIdx],
                            n < st.predictedUs.size() ? st.predictedUs[n]
                                                      : 0.0);
                ++n;
              }
            measuredJson = "[" + m + "]";
          }
        }
        char buf[512];
        std::snprintf(buf, sizeof(buf),
                      "%s{\"budget_fraction\": %g, \"batch\": %lld, "
                      "\"strategy\": \"%s\", \"placement\": \"%s\", "
                      "\"cache_slots\": %d, \"ms_per_token\": %s, "
                      "\"pcie_bytes_per_token\": %s",
                      rows.empty() ? "" : ",\n    ", budget, (long long)batch,
                      st.name.c_str(), placementText(st.placement).c_str(),
                      st.cacheSlots, msJson.c_str(), bytesJson.c_str());
        rows += buf;
        rows += ", \"predicted_layer_us\": [" + predicted +
                "], \"measured_layer_us\": " + measuredJson + "}";
      }
    }
  if (!o.json.empty()) {
    char head[512];
    std::snprintf(head, sizeof(head),
                  "{\"benchmark\": \"offload\", \"device\": \"%s\", "
                  "\"layers\": %lld, \"hidden\": %lld, \"ffn\": %lld, "
                  "\"experts\": %lld, \"k\": %lld, \"dtype\": \"%s\", "
                  "\"skew\": %g, \"dry_run\": %s, \"repeat\": %d,\n  "
                  "\"rows\": [\n    ",
                  profile.name.c_str(), (long long)o.layers,
                  (long long)o.hidden, (long long)o.ffn, (long long)o.experts,
                  (long long)o.k, o.bf16 ? "bf16" : "f32", o.skew,
                  o.dryRun ? "true" : "false", o.repeat);
    if (!writeText(o.json, head + rows + "]}\n"))
      return 1;
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
                  "[--hbm-bytes-per-s X] [--json FILE]\n       "
                  "[--decode-tokens 1]   layers of at most this many "
                  "tokens run as decode\n                           GEMVs, "
                  "larger ones as GEMMs (0: none)\n");
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
    } else if (a == "--decode-tokens") {
      const char *v = value();
      char *end = nullptr;
      long long d = v ? std::strtoll(v, &end, 10) : -1;
      if (!v || *end != '\0' || d < 0)
        return usage("--decode-tokens needs a non-negative integer");
      o.decodeTokens = d;
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
    } else if (a == "--offload") {
      o.offload = true;
    } else if (a == "--dry-run") {
      o.dryRun = true;
    } else if (a == "--layers" || a == "--calibration") {
      if (!integer(n))
        return usage((a + " needs a positive integer").c_str());
      (a == "--layers" ? o.layers : o.calibration) = n;
    } else if (a == "--skew") {
      const char *v = value();
      char *end = nullptr;
      o.skew = v ? std::strtod(v, &end) : -1;
      if (!v || *end != '\0' || !(o.skew >= 0))
        return usage("--skew needs a non-negative number");
    } else if (a == "--budgets" || a == "--batches") {
      const char *v = value();
      if (!v)
        return usage((a + " needs a list").c_str());
      std::string text = v;
      std::vector<double> vals;
      size_t at = 0;
      while (at <= text.size()) {
        size_t comma = text.find(',', at);
        std::string part = text.substr(
            at, comma == std::string::npos ? std::string::npos : comma - at);
        char *end = nullptr;
        double d = std::strtod(part.c_str(), &end);
        if (part.empty() || *end != '\0' || !(d > 0) ||
            (a == "--budgets" && d > 1) ||
            (a == "--batches" && d != std::floor(d)))
          return usage(a == "--budgets"
                           ? "--budgets takes fractions in (0, 1]"
                           : "--batches takes positive integers");
        vals.push_back(d);
        if (comma == std::string::npos)
          break;
        at = comma + 1;
      }
      if (a == "--budgets")
        o.budgets = vals;
      else
        o.batches.assign(vals.begin(), vals.end());
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
  if (o.offload && o.experts > 64)
    return usage("--offload takes at most 64 experts");
  return o.offload ? runOffload(o) : run(o);
}
