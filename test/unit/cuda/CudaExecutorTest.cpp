//===- CudaExecutorTest.cpp - Plans on the cuda device against the CPU ----===//
//
// Each test builds a small plan, runs it on the CPU executor and on the
// cuda device with the same random inputs, and expects the same outputs.
// They skip where no GPU is present (CI builds them; a GPU host runs them).
//
//===----------------------------------------------------------------------===//

#include "test/unit/cuda/CudaTestUtil.h"

#include "runtime/Profile.h"

#include <random>

using namespace moe::test;
using moe::rt::Attrs;
using moe::rt::Tensor;
using moe::rt::TensorType;

namespace {

/// One step of `kernel` on inputs of the given types (random f32 inputs,
/// or the given tensors), one output; compared on both devices.
void checkOneStep(const std::string &kernel,
                  const std::vector<Tensor> &inputs, DType outType,
                  Shape outShape, Attrs attrs = {}, float tol = 1e-5f) {
  SCOPED_TRACE(kernel);
  PlanBuilder pb;
  std::vector<uint32_t> ids;
  for (size_t i = 0; i < inputs.size(); ++i)
    ids.push_back(pb.input("x" + std::to_string(i), inputs[i].dtype(),
                           inputs[i].shape()));
  pb.output(pb.call1(kernel, ids, outType, std::move(outShape),
                     std::move(attrs)));
  auto plan = loadBuilt(pb);
  ASSERT_TRUE(plan);
  expectSameOnCuda(*plan, inputs, tol);
}

TEST(CudaExecutor, Elementwise) {
  MOE_REQUIRE_GPU();
  std::mt19937 rng(1);
  Tensor a = randomF32({2, 3, 4}, rng), b = randomF32({4}, rng),
         c = randomF32({3, 1}, rng, 0.5f, 2.0f);
  for (const char *op : {"nn.add", "nn.sub", "nn.mul", "nn.max", "nn.min"})
    checkOneStep(op, {a, b}, DType::F32, {2, 3, 4});
  checkOneStep("nn.div", {a, c}, DType::F32, {2, 3, 4});
  checkOneStep("nn.gelu", {a}, DType::F32, {2, 3, 4},
               Attrs().setString("approximate", "tanh"));
  checkOneStep("nn.pow", {c, f32({1}, {2.0f})}, DType::F32, {3, 1});
  checkOneStep("nn.pow", {c, f32({1}, {0.37f})}, DType::F32, {3, 1});
  Tensor pos = randomF32({37, 5}, rng, 0.1f, 3.0f);
  for (const char *op :
       {"nn.neg", "nn.sqrt", "nn.reciprocal", "nn.exp", "nn.log", "nn.tanh",
        "nn.sigmoid", "nn.silu", "nn.relu", "nn.abs", "nn.sin", "nn.cos",
        "nn.rsqrt", "nn.gelu"})
    checkOneStep(op, {std::string(op) == "nn.log" ||
                              std::string(op) == "nn.sqrt" ||
                              std::string(op) == "nn.rsqrt"
                          ? pos
                          : randomF32({37, 5}, rng, -3.0f, 3.0f)},
                 DType::F32, {37, 5});
}

TEST(CudaExecutor, DenseAndNorms) {
  MOE_REQUIRE_GPU();
  std::mt19937 rng(2);
  checkOneStep("nn.softmax", {randomF32({7, 333}, rng, -5, 5)}, DType::F32,
               {7, 333});
  checkOneStep("nn.reduce_mean", {randomF32({2, 3, 4}, rng)}, DType::F32,
               {2, 3, 1}, Attrs().setInts("axes", {-1}));
  checkOneStep("nn.reduce_sum", {randomF32({2, 3, 4}, rng)}, DType::F32,
               {2, 4}, Attrs().setInts("axes", {1}).setInt("keepdims", 0));
  checkOneStep("nn.transpose", {randomF32({2, 3, 4, 5}, rng)}, DType::F32,
               {2, 4, 3, 5}, Attrs().setInts("perm", {0, 2, 1, 3}));
  checkOneStep("nn.matmul",
               {randomF32({2, 3, 5, 4}, rng), randomF32({4, 6}, rng)},
               DType::F32, {2, 3, 5, 6}, {}, 1e-4f);
  checkOneStep("nn.matmul",
               {randomF32({2, 5, 4}, rng), randomF32({2, 4, 6}, rng)},
               DType::F32, {2, 5, 6}, {}, 1e-4f);
  checkOneStep("nn.matmul",
               {randomF32({5, 4}, rng), randomF32({3, 4, 7}, rng)},
               DType::F32, {3, 5, 7}, {}, 1e-4f);
  checkOneStep("nn.linear",
               {randomF32({3, 9, 16}, rng), randomF32({12, 16}, rng),
                randomF32({12}, rng)},
               DType::F32, {3, 9, 12}, {}, 1e-4f);
  checkOneStep("nn.rms_norm",
               {randomF32({6, 300}, rng), randomF32({300}, rng)}, DType::F32,
               {6, 300}, Attrs().setFloat("eps", 1e-6));
  checkOneStep("nn.layer_norm",
               {randomF32({6, 40}, rng), randomF32({40}, rng),
                randomF32({40}, rng)},
               DType::F32, {6, 40}, Attrs().setFloat("eps", 1e-5));
}

TEST(CudaExecutor, LayoutAndIndexing) {
  MOE_REQUIRE_GPU();
  std::mt19937 rng(3);
  checkOneStep("nn.cast", {randomF32({9}, rng, -300, 300)}, DType::I64, {9},
               Attrs().setInt("to", int64_t(DType::I64)));
  checkOneStep("nn.cast", {i64({4}, {-3, 0, 7, 1 << 20})}, DType::F32, {4},
               Attrs().setInt("to", int64_t(DType::F32)));
  checkOneStep("nn.cast", {f32({4}, {0.0f, -0.5f, 2.0f, NAN})}, DType::I1,
               {4}, Attrs().setInt("to", int64_t(DType::I1)));
  checkOneStep("nn.cast", {randomF32({9}, rng, -3, 3)}, DType::BF16, {9},
               Attrs().setInt("to", int64_t(DType::BF16)));
  checkOneStep("nn.gather",
               {randomF32({10, 8}, rng), i64({2, 3}, {0, 9, -1, 4, 4, 2})},
               DType::F32, {2, 3, 8}, Attrs().setInt("axis", 0));
  checkOneStep("nn.gather", {randomF32({3, 10, 2}, rng), i64({2}, {7, -10})},
               DType::F32, {3, 2, 2}, Attrs().setInt("axis", 1));
  checkOneStep("nn.concat",
               {randomF32({2, 3, 4}, rng), randomF32({2, 1, 4}, rng),
                randomF32({2, 5, 4}, rng)},
               DType::F32, {2, 9, 4}, Attrs().setInt("axis", 1));
  Tensor cond = *Tensor::fromVector<uint8_t>(DType::I1, {4, 1}, {1, 0, 0, 1});
  checkOneStep("nn.where",
               {cond, randomF32({4, 5}, rng), randomF32({5}, rng)},
               DType::F32, {4, 5});
  checkOneStep("nn.expand", {randomF32({3, 1}, rng), i64({3}, {2, 3, 4})},
               DType::F32, {2, 3, 4});
  checkOneStep("nn.dynamic_slice",
               {randomF32({6, 7}, rng), i64({2}, {-1, 1}), i64({2}, {-100, 6}),
                i64({2}, {0, 1}), i64({2}, {-2, 2})},
               DType::F32, {-1, -1});
  checkOneStep("nn.slice", {randomF32({6, 7}, rng)}, DType::F32, {2, 7},
               Attrs().setInts("starts", {1}).setInts("ends", {5})
                   .setInts("axes", {0}).setInts("steps", {2}));
  checkOneStep("nn.unsqueeze", {randomF32({6, 7}, rng)}, DType::F32,
               {6, 1, 7}, Attrs().setInts("axes", {1}));
}

/// A MoE layer (router, route, dispatch, experts, combine) with the given
/// expert attributes, compared for several token counts.
void checkMoeLayer(int64_t E, int64_t K, int64_t H, int64_t F,
                   const std::string &activation, int fusion, bool w3,
                   bool biases, std::vector<int64_t> pruned,
                   bool sigmoid = false, bool bf16 = false,
                   std::vector<moe::kernels::cpu::QuantFormat> formats = {},
                   std::vector<int64_t> tokens = {1, 7, 64, 300},
                   std::vector<int64_t> placement = {},
                   moe::rt::cuda::CudaExecutorOptions options = {},
                   Attrs pruning = {}) {
  std::mt19937 rng(uint32_t(E * 131 + K * 7 + H + F + fusion));
  const int64_t G = fusion ? 2 * F : F;
  PlanBuilder pb;
  uint32_t x = pb.input("hidden", DType::F32, {-1, H});
  uint32_t router = pb.weightF32("router", {E, H},
                                 randomF32({E, H}, rng).toVector<float>());
  auto weight = [&](const std::string &name, Shape shape) {
    std::vector<float> v = randomF32(shape, rng, -0.3f, 0.3f).toVector<float>();
    if (!formats.empty()) // one format per expert, cycled
      return pb.weightPacked(
          name, shape, v,
          [&] {
            std::vector<moe::kernels::cpu::QuantFormat> f;
            for (int64_t i = 0; i < shape[0]; ++i)
              f.push_back(formats[size_t(i) % formats.size()]);
            return f;
          }());
    if (!bf16)
      return pb.weightF32(name, shape, v);
    return pb.weightPacked(name, shape, v,
                           std::vector<moe::kernels::cpu::QuantFormat>(
                               size_t(shape[0]), {16, 0, true, false}));
  };
  std::vector<uint32_t> in{0, 0, weight("w1", {E, G, H}),
                           weight("w2", {E, H, F})};
  if (w3)
    in.push_back(weight("w3", {E, F, H}));
  if (biases) {
    in.push_back(pb.weightF32("b1", {E, G},
                              randomF32({E, G}, rng).toVector<float>()));
    in.push_back(pb.weightF32("b2", {E, H},
                              randomF32({E, H}, rng).toVector<float>()));
    if (w3)
      in.push_back(pb.weightF32("b3", {E, F},
                                randomF32({E, F}, rng).toVector<float>()));
  }
  uint32_t logits = pb.call1("nn.linear", {x, router}, DType::F32, {-1, E});
  Attrs ra = pruning;
  ra.setInt("k", K)
      .setString("scoring", sigmoid ? "sigmoid" : "softmax")
      .setInt("normalize", 1);
  auto routed = pb.call("moe.route", {logits},
                        {{DType::I64, {-1, K}}, {DType::F32, {-1, K}}}, ra);
  auto d = pb.call("moe.dispatch", {x, routed[0]},
                   {{DType::F32, {-1, H}}, {DType::I64, {E + 1}},
                    {DType::I64, {-1}}},
                   Attrs().setInt("num_experts", E));
  in[0] = d[0];
  in[1] = d[1];
  Attrs ea = Attrs().setInt("num_experts", E).setString("activation",
                                                        activation);
  ea.setInt("has_w3", w3).setInt("has_b1", biases).setInt("has_b2", biases)
      .setInt("has_b3", biases && w3).setInt("swiglu_fusion", fusion);
  if (!pruned.empty())
    ea.setInts("pruned", pruned);
  if (!placement.empty())
    ea.setInts("placement", placement);
  uint32_t y = pb.call1("moe.experts", in, DType::F32, {-1, H}, ea);
  uint32_t out = pb.call1("moe.combine", {y, d[2], routed[1]}, DType::F32,
                          {-1, H});
  pb.output(out);
  pb.output(routed[0]);
  pb.output(d[1]);
  auto plan = loadBuilt(pb);
  ASSERT_TRUE(plan);
  for (int64_t T : tokens) {
    SCOPED_TRACE("E=" + std::to_string(E) + " k=" + std::to_string(K) +
                 " " + activation + " fusion=" + std::to_string(fusion) +
                 " T=" + std::to_string(T));
    // bf16 GEMMs (bf16 experts, and quantised ones dequantised to bf16
    // beyond the GEMV's rows) round x, the weights and the hidden
    // activation to bf16: a host simulation of this layer's shapes gives
    // worst elements up to 4.4e-2 and a relative RMS of 4.1e-3. A wrong
    // decode or a wrong expert moves the RMS by far more than 1e-2.
    auto check = [&](const moe::rt::cuda::CudaExecutorOptions &o) {
      if (bf16 || !formats.empty())
        expectSameOnCuda(*plan, {randomF32({T, H}, rng)}, 8e-2f, o, 1e-2f);
      else
        expectSameOnCuda(*plan, {randomF32({T, H}, rng)}, 2e-4f, o);
    };
    check(options);
    // The decode GEMVs also for several tokens (several rows per expert,
    // the 2-, 4- and 8-row kernels), which the default sends to the GEMMs.
    if (T > options.decodeMaxTokens && T * K <= 32) {
      SCOPED_TRACE("decode GEMVs");
      moe::rt::cuda::CudaExecutorOptions decode = options;
      decode.decodeMaxTokens = int(T);
      check(decode);
    }
  }
}

TEST(CudaExecutor, MoeLayerSiluWithW3) {
  MOE_REQUIRE_GPU();
  checkMoeLayer(8, 2, 64, 96, "silu", 0, true, false, {});
}

TEST(CudaExecutor, MoeLayerFusedSwigluBothLayoutsWithBiases) {
  MOE_REQUIRE_GPU();
  checkMoeLayer(4, 2, 32, 40, "swiglu", 1, false, true, {});
  checkMoeLayer(4, 2, 32, 40, "swiglu", 2, false, true, {});
}

TEST(CudaExecutor, MoeLayerManyExpertsGeluPrunedSigmoid) {
  MOE_REQUIRE_GPU();
  std::vector<int64_t> pruned(64, 0);
  pruned[3] = pruned[40] = 1;
  checkMoeLayer(64, 8, 48, 32, "gelu", 0, false, true, pruned, true);
}

TEST(CudaExecutor, MoeLayerBf16Experts) {
  MOE_REQUIRE_GPU();
  checkMoeLayer(8, 2, 64, 128, "silu", 0, true, false, {}, false, true);
}

TEST(CudaExecutor, MoeLayerQuantisedExpertsGemvAndDequant) {
  MOE_REQUIRE_GPU();
  using F = moe::kernels::cpu::QuantFormat;
  // Mixed per expert: int8 g32, int4 g64 with zero points and f32 scales,
  // int3 g128, int2 g32, bf16 and f32. Few tokens per expert take the
  // GEMV, many the bf16 dequantisation.
  std::vector<F> formats = {{8, 32, true, false}, {4, 64, false, true},
                            {3, 128, true, false}, {2, 32, true, true},
                            {16, 0, true, false}, {0, 0, true, false}};
  checkMoeLayer(6, 2, 128, 256, "silu", 0, true, false, {}, false, false,
                formats, {1, 2, 3, 5, 8, 20, 200});
  checkMoeLayer(6, 2, 128, 256, "swiglu", 2, false, true, {}, false, false,
                formats, {1, 4, 300});
}

/// The hybrid device: experts GPU-resident (1), on the CPU (2) and on
/// demand (3) give the CPU executor's outputs, whatever the cache size.
TEST(CudaExecutor, HybridPlacementsMatchTheCpu) {
  MOE_REQUIRE_GPU();
  moe::rt::cuda::CudaExecutorOptions hybrid;
  hybrid.hybrid = true;
  const std::vector<int64_t> tokens = {1, 7, 64};
  for (int cache : {1, 2, 8}) {
    hybrid.cacheExperts = cache;
    checkMoeLayer(8, 2, 64, 96, "silu", 0, true, false, {}, false, false, {},
                  tokens, {1, 2, 3, 1, 2, 3, 3, 2}, hybrid);
  }
  // Every expert on the CPU; every expert on demand through one slot;
  // pruned experts among CPU ones; mixed formats.
  hybrid.cacheExperts = 1;
  checkMoeLayer(4, 2, 32, 40, "swiglu", 1, false, true, {0, 1, 0, 0}, false,
                false, {}, tokens, {2, 2, 2, 2}, hybrid);
  checkMoeLayer(4, 2, 32, 40, "swiglu", 2, false, true, {}, false, false, {},
                tokens, {3, 3, 3, 3}, hybrid);
  checkMoeLayer(6, 2, 128, 256, "silu", 0, true, false, {}, false, false,
                {{8, 32, true, false}, {4, 64, false, true},
                 {16, 0, true, false}, {0, 0, true, false}},
                {1, 20, 200}, {1, 2, 3, 2, 1, 3}, hybrid);
}

TEST(CudaExecutor, HybridCountsItsTraffic) {
  MOE_REQUIRE_GPU();
  const int64_t E = 4, H = 32, F = 16;
  std::mt19937 rng(9);
  PlanBuilder pb;
  uint32_t x = pb.input("x", DType::F32, {-1, H});
  uint32_t ids = pb.input("ids", DType::I64, {-1, 1});
  uint32_t w1 = pb.weightF32("w1", {E, F, H},
                             randomF32({E, F, H}, rng).toVector<float>());
  uint32_t w2 = pb.weightF32("w2", {E, H, F},
                             randomF32({E, H, F}, rng).toVector<float>());
  auto d = pb.call("moe.dispatch", {x, ids},
                   {{DType::F32, {-1, H}}, {DType::I64, {E + 1}},
                    {DType::I64, {-1}}},
                   Attrs().setInt("num_experts", E));
  pb.output(pb.call1("moe.experts", {d[0], d[1], w1, w2}, DType::F32,
                     {-1, H},
                     Attrs().setInt("num_experts", E)
                         .setString("activation", "relu")
                         .setInts("placement", {1, 2, 3, 3})));
  auto plan = loadBuilt(pb);
  ASSERT_TRUE(plan);
  moe::rt::cuda::CudaExecutorOptions o;
  o.hybrid = true;
  o.cacheExperts = 1;
  auto ex = moe::rt::cuda::CudaExecutor::create(*plan, o);
  ASSERT_TRUE(ex.isOk()) << ex.status().message();
  // Rows: 3 for expert 1 (CPU), 2 for expert 2, 1 for expert 3 (on demand,
  // one slot: both miss).
  auto r = (*ex)->run({randomF32({6, H}, rng),
                       i64({6, 1}, {1, 2, 1, 3, 2, 1})});
  ASSERT_TRUE(r.isOk()) << r.status().message();
  moe::rt::cuda::HybridStats s = (*ex)->hybridStats();
  const uint64_t rowBytes = H * sizeof(float);
  const uint64_t expertBytes = (F * H + H * F) * sizeof(float);
  EXPECT_EQ(s.d2hBytes, 3 * rowBytes);
  EXPECT_EQ(s.h2dBytes, 3 * rowBytes + 2 * expertBytes);
  EXPECT_EQ(s.cacheMisses, 2u);
  EXPECT_EQ(s.residentExperts, 1u);
  EXPECT_EQ(s.cpuExperts, 1u);
  EXPECT_EQ(s.onDemandExperts, 2u);
}

TEST(CudaExecutor, PrunedRoutingRunsOnTheHost) {
  MOE_REQUIRE_GPU();
  // Token-level skipping (ids -1), static exclusion and a batch cap: the
  // router runs on the host, the rest on the device, on both expert paths.
  for (Attrs p : {Attrs().setFloat("skip_threshold", 0.3),
                  Attrs().setInts("excluded", {0, 1, 0, 0, 0, 0, 1, 0}),
                  Attrs().setInt("max_experts", 3).setInt("keep_first", 1)})
    checkMoeLayer(8, 2, 64, 96, "silu", 0, true, false, {}, false, false, {},
                  {1, 7, 64}, {}, {}, p);
  moe::rt::cuda::CudaExecutorOptions hybrid;
  hybrid.hybrid = true;
  checkMoeLayer(8, 2, 64, 96, "silu", 0, true, false, {}, false, false, {},
                {1, 64}, {1, 2, 3, 1, 2, 3, 3, 2}, hybrid,
                Attrs().setFloat("skip_threshold", 0.3));
}

/// --profile on cuda: the routing profiler sees the same routing as on the
/// CPU (its operands come down to the host).
TEST(CudaExecutor, RoutingProfileMatchesTheCpu) {
  MOE_REQUIRE_GPU();
  const int64_t E = 8, H = 32, F = 16, K = 2;
  std::mt19937 rng(21);
  PlanBuilder pb;
  uint32_t x = pb.input("x", DType::F32, {-1, H});
  uint32_t router = pb.weightF32("router", {E, H},
                                 randomF32({E, H}, rng).toVector<float>());
  uint32_t w1 = pb.weightF32("w1", {E, F, H},
                             randomF32({E, F, H}, rng).toVector<float>());
  uint32_t w2 = pb.weightF32("w2", {E, H, F},
                             randomF32({E, H, F}, rng).toVector<float>());
  uint32_t logits = pb.call1("nn.linear", {x, router}, DType::F32, {-1, E});
  auto routed = pb.call("moe.route", {logits},
                        {{DType::I64, {-1, K}}, {DType::F32, {-1, K}}},
                        Attrs().setInt("k", K).setInt("normalize", 1));
  auto d = pb.call("moe.dispatch", {x, routed[0]},
                   {{DType::F32, {-1, H}}, {DType::I64, {E + 1}},
                    {DType::I64, {-1}}},
                   Attrs().setInt("num_experts", E));
  uint32_t y = pb.call1("moe.experts", {d[0], d[1], w1, w2}, DType::F32,
                        {-1, H},
                        Attrs().setInt("num_experts", E)
                            .setString("activation", "relu"));
  pb.output(pb.call1("moe.combine", {y, d[2], routed[1]}, DType::F32,
                     {-1, H}));
  auto plan = loadBuilt(pb);
  ASSERT_TRUE(plan);
  moe::rt::ProfileOptions po;
  po.samples = 0;
  auto cpuProfile = moe::rt::RoutingProfiler::create(*plan, po);
  auto gpuProfile = moe::rt::RoutingProfiler::create(*plan, po);
  ASSERT_TRUE(cpuProfile.isOk() && gpuProfile.isOk());
  moe::rt::ExecutorOptions eo;
  moe::rt::RoutingProfiler *c = cpuProfile->get(), *g = gpuProfile->get();
  eo.observer = [c](size_t s, const std::vector<Tensor> &in,
                    const std::vector<Tensor> &out) { c->observe(s, in, out); };
  auto cpu = moe::rt::Executor::create(*plan, eo);
  ASSERT_TRUE(cpu.isOk());
  moe::rt::cuda::CudaExecutorOptions co;
  co.observer = [g](size_t s, const std::vector<Tensor> &in,
                    const std::vector<Tensor> &out) { g->observe(s, in, out); };
  co.observes = [](const moe::rt::StepInfo &s) {
    return s.kernelName == "moe.route" || s.kernelName == "moe.dispatch";
  };
  auto gpu = moe::rt::cuda::CudaExecutor::create(*plan, co);
  ASSERT_TRUE(gpu.isOk()) << gpu.status().message();
  for (int64_t T : {1, 40}) {
    Tensor in = randomF32({T, H}, rng);
    ASSERT_TRUE((*cpu)->run({in}).isOk());
    ASSERT_TRUE((*gpu)->run({in}).isOk());
    c->endRun();
    g->endRun();
  }
  // Integer counters exactly, real ones (weight sums) to float rounding.
  auto counters = [](moe::rt::RoutingProfiler *p, std::vector<int64_t> &ints,
                     std::vector<double> &reals) {
    return p->forEachCounter(
        [&](int64_t *v, size_t n) {
          ints.insert(ints.end(), v, v + n);
          return moe::rt::Status::ok();
        },
        [&](double *v, size_t n) {
          reals.insert(reals.end(), v, v + n);
          return moe::rt::Status::ok();
        });
  };
  std::vector<int64_t> ci, gi;
  std::vector<double> cr, gr;
  ASSERT_TRUE(counters(c, ci, cr).isOk());
  ASSERT_TRUE(counters(g, gi, gr).isOk());
  EXPECT_EQ(ci, gi);
  ASSERT_EQ(cr.size(), gr.size());
  for (size_t i = 0; i < cr.size(); ++i)
    EXPECT_NEAR(cr[i], gr[i], 1e-4 * std::max(1.0, std::fabs(cr[i]))) << i;
}

TEST(CudaExecutor, DispatchRejectsAnExpertIdOutOfRange) {
  MOE_REQUIRE_GPU();
  // Decode-sized (found on the device, reported when the run ends) and
  // larger (found when dispatch waits for its offsets).
  for (int64_t T : {2, 40}) {
    PlanBuilder pb;
    uint32_t x = pb.input("x", DType::F32, {T, 4});
    uint32_t ids = pb.input("ids", DType::I64, {T, 1});
    auto d = pb.call("moe.dispatch", {x, ids},
                     {{DType::F32, {T, 4}}, {DType::I64, {4}},
                      {DType::I64, {T}}},
                     Attrs().setInt("num_experts", 3));
    pb.output(d[0]);
    pb.output(d[2]);
    auto plan = loadBuilt(pb);
    ASSERT_TRUE(plan);
    auto ex = moe::rt::cuda::CudaExecutor::create(*plan);
    ASSERT_TRUE(ex.isOk()) << ex.status().message();
    std::mt19937 rng(5);
    std::vector<int64_t> bad(size_t(T), 1);
    bad[1] = 3;
    auto r = (*ex)->run({randomF32({T, 4}, rng), i64({T, 1}, bad)});
    ASSERT_FALSE(r.isOk());
    const std::string &m = r.status().message();
    EXPECT_TRUE(m.find("1 expert ids are outside [-1, 3)") !=
                    std::string::npos ||
                m.find("an expert id outside [-1, E)") != std::string::npos)
        << m;
    // The executor stays usable: good ids run.
    auto ok = (*ex)->run({randomF32({T, 4}, rng),
                          i64({T, 1}, std::vector<int64_t>(size_t(T), 2))});
    EXPECT_TRUE(ok.isOk()) << ok.status().message();
  }
}

TEST(CudaExecutor, WeightsBeyondTheBudgetAreAnError) {
  MOE_REQUIRE_GPU();
  PlanBuilder pb;
  uint32_t x = pb.input("x", DType::F32, {1, 1024});
  uint32_t w = pb.weightF32("big", {1024, 1024},
                            std::vector<float>(1024 * 1024, 0.5f));
  pb.output(pb.call1("nn.matmul", {x, w}, DType::F32, {1, 1024}));
  auto plan = loadBuilt(pb);
  ASSERT_TRUE(plan);
  moe::rt::cuda::CudaExecutorOptions o;
  o.memoryBudget = 1 << 20; // 1 MiB: the 4 MiB weight does not fit
  auto ex = moe::rt::cuda::CudaExecutor::create(*plan, o);
  ASSERT_FALSE(ex.isOk());
  EXPECT_EQ(ex.status().message(),
            "cuda: device memory budget of 1.00 MiB exceeded: weight `big` "
            "needs 4.00 MiB, 0 B are in use");
}

} // namespace
