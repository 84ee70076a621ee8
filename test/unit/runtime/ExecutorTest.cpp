//===- ExecutorTest.cpp - Running plans -----------------------------------===//

#include "test/unit/runtime/KernelTestUtil.h"
#include "test/unit/runtime/PlanBuilder.h"

#include "runtime/Executor.h"

#include <random>
#include <cstdio>
#include <thread>
#include <unistd.h>

using namespace moe::test;
using moe::rt::Executor;
using moe::rt::ExecutorOptions;
using moe::rt::LoadedPlan;

namespace {

std::vector<float> randomVec(size_t n, std::mt19937 &rng) {
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> v(n);
  for (float &x : v)
    x = d(rng);
  return v;
}

std::unique_ptr<LoadedPlan> load(const PlanBuilder &b) {
  std::string path = tempPath("exec.moeplan");
  moe::rt::Status st = b.write(path);
  EXPECT_TRUE(st.isOk()) << st.message();
  auto plan = moe::rt::loadPlan(path);
  ::unlink(path.c_str()); // the mapping stays valid
  EXPECT_TRUE(plan.isOk()) << plan.status().message();
  return plan.isOk() ? std::move(*plan) : nullptr;
}

std::unique_ptr<Executor> executor(const LoadedPlan &plan, ExecutorOptions o = {}) {
  auto ex = Executor::create(plan, o);
  EXPECT_TRUE(ex.isOk()) << ex.status().message();
  return std::move(*ex);
}

/// y = silu(x·w1ᵀ + b1) + x, with a dynamic batch dim.
struct LinearSiluAdd {
  static constexpr int64_t D = 17, N = 17;
  std::vector<float> w, b;
  PlanBuilder builder;
  LinearSiluAdd() {
    std::mt19937 rng(30);
    w = randomVec(N * D, rng);
    b = randomVec(N, rng);
    PlanBuilder &pb = builder;
    uint32_t x = pb.input("x", DType::F32, {-1, D});
    uint32_t wv = pb.weightF32("w1", {N, D}, w);
    uint32_t bv = pb.weightF32("b1", {N}, b);
    uint32_t h = pb.call1("nn.linear", {x, wv, bv}, DType::F32, {-1, N});
    uint32_t s = pb.call1("nn.silu", {h}, DType::F32, {-1, N});
    pb.free({h});
    uint32_t y = pb.call1("nn.add", {s, x}, DType::F32, {-1, N});
    pb.free({s});
    pb.output(y);
  }
  std::vector<float> reference(const Tensor &x) const {
    std::vector<float> out;
    for (int64_t r = 0; r < x.dim(0); ++r)
      for (int64_t j = 0; j < N; ++j) {
        double acc = b[size_t(j)];
        for (int64_t k = 0; k < D; ++k)
          acc += double(x.data<float>()[r * D + k]) * w[size_t(j * D + k)];
        out.push_back(float(acc / (1 + std::exp(-acc)) + x.data<float>()[r * D + j]));
      }
    return out;
  }
};

TEST(Executor, LinearSiluAddWithTwoBatchSizes) {
  LinearSiluAdd model;
  auto plan = load(model.builder);
  ASSERT_TRUE(plan);
  EXPECT_TRUE(plan->weightTensor(0).isView());
  auto ex = executor(*plan);
  std::mt19937 rng(31);
  for (int64_t batch : {1, 33}) {
    Tensor x = randomF32({batch, LinearSiluAdd::D}, rng);
    auto out = ex->run({x});
    ASSERT_TRUE(out.isOk()) << out.status().message();
    ASSERT_EQ(out->size(), 1u);
    EXPECT_EQ((*out)[0].shape(), (Shape{batch, LinearSiluAdd::N}));
    expectClose((*out)[0], model.reference(x), 1e-5f);
  }
}

TEST(Executor, ThreadCountsAndSequentialModeAgree) {
  LinearSiluAdd model;
  auto plan = load(model.builder);
  ASSERT_TRUE(plan);
  std::mt19937 rng(32);
  Tensor x = randomF32({65, LinearSiluAdd::D}, rng);
  std::vector<float> want = model.reference(x);
  for (int threads : {1, 2, 4})
    for (bool seq : {false, true}) {
      ExecutorOptions o;
      o.numThreads = threads;
      o.sequential = seq;
      auto ex = executor(*plan, o);
      EXPECT_EQ(ex->numThreads(), threads);
      auto out = ex->run({x});
      ASSERT_TRUE(out.isOk()) << out.status().message();
      expectClose((*out)[0], want, 1e-5f);
    }
  ExecutorOptions bad;
  bad.numThreads = -1;
  EXPECT_FALSE(Executor::create(*plan, bad).isOk());
}

TEST(Executor, ConcurrentRunsOfOneExecutor) {
  LinearSiluAdd model;
  auto plan = load(model.builder);
  ASSERT_TRUE(plan);
  auto ex = executor(*plan);
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      std::mt19937 rng(40 + t);
      for (int i = 0; i < 10; ++i) {
        Tensor x = randomF32({3 + t, LinearSiluAdd::D}, rng);
        auto out = ex->run({x});
        std::vector<float> want = model.reference(x);
        bool same = out.isOk();
        for (size_t j = 0; same && j < want.size(); ++j)
          same = std::fabs((*out)[0].data<float>()[j] - want[j]) < 1e-4f * (1 + std::fabs(want[j]));
        ok[size_t(t)] += same;
      }
    });
  for (auto &th : threads)
    th.join();
  EXPECT_EQ(ok, (std::vector<int>{10, 10, 10, 10}));
}

TEST(Executor, InputMismatchesAreReported) {
  LinearSiluAdd model;
  auto plan = load(model.builder);
  ASSERT_TRUE(plan);
  auto ex = executor(*plan);
  std::mt19937 rng(33);
  auto shape = ex->run({randomF32({2, 3}, rng)});
  ASSERT_FALSE(shape.isOk());
  EXPECT_EQ(shape.status().message(),
            "input 0 `x`: shape [2, 3] does not match declared [?, 17]");
  auto rank = ex->run({randomF32({17}, rng)});
  ASSERT_FALSE(rank.isOk());
  auto dtype = ex->run({i64({1, 17}, std::vector<int64_t>(17, 0))});
  ASSERT_FALSE(dtype.isOk());
  EXPECT_EQ(dtype.status().message(),
            "input 0 `x`: dtype i64 does not match declared f32");
  auto none = ex->run({});
  ASSERT_FALSE(none.isOk());
  EXPECT_EQ(none.status().message(), "the program takes 1 inputs, got 0");
}

TEST(Executor, DataDependentErrorsNameTheStep) {
  PlanBuilder pb;
  uint32_t data = pb.input("data", DType::F32, {4, 3});
  uint32_t idx = pb.input("idx", DType::I64, {-1});
  uint32_t y = pb.call1("nn.gather", {data, idx}, DType::F32, {-1, 3},
                        Attrs().setInt("axis", 0));
  pb.output(y);
  auto plan = load(pb);
  ASSERT_TRUE(plan);
  auto ex = executor(*plan);
  std::mt19937 rng(34);
  Tensor d = randomF32({4, 3}, rng);
  auto ok = ex->run({d, i64({2}, {3, -4})});
  ASSERT_TRUE(ok.isOk());
  EXPECT_EQ((*ok)[0].toVector<float>()[0], d.data<float>()[9]);
  auto bad = ex->run({d, i64({2}, {0, 4})});
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().message(),
            "step 0 `nn.gather`: index 4 at position 1 is outside [-4, 4)");

  PlanBuilder div;
  uint32_t a = div.input("a", DType::I64, {2});
  uint32_t b = div.input("b", DType::I64, {2});
  div.output(div.call1("nn.div", {a, b}, DType::I64, {2}));
  auto dplan = load(div);
  ASSERT_TRUE(dplan);
  auto dex = executor(*dplan);
  auto zero = dex->run({i64({2}, {1, 2}), i64({2}, {1, 0})});
  ASSERT_FALSE(zero.isOk());
  EXPECT_EQ(zero.status().message(), "step 0 `nn.div`: integer division by zero");
}

TEST(Executor, OutputsAreCheckedAgainstDeclaredShapes) {
  // The declared output [?, 5] is consistent for the verifier (unknown K),
  // but at run time the reshape gives [?, 6].
  PlanBuilder pb;
  uint32_t x = pb.input("x", DType::F32, {-1});
  uint32_t y = pb.call1("nn.reshape", {x}, DType::F32, {-1, 5},
                        Attrs().setInts("shape", {-1, 6}));
  pb.output(y);
  std::string path = tempPath("bad.moeplan");
  ASSERT_TRUE(pb.write(path).isOk());
  auto plan = moe::rt::loadPlan(path);
  ASSERT_FALSE(plan.isOk()); // the verifier already sees [?, 6] vs [?, 5]
  EXPECT_NE(plan.status().message().find("output 0 has shape [?, 5], expected [?, 6]"),
            std::string::npos);

  // Here the verifier cannot know the inferred dim, the run can.
  PlanBuilder late;
  uint32_t lx = late.input("x", DType::F32, {-1});
  late.output(late.call1("nn.reshape", {lx}, DType::F32, {2, 3},
                         Attrs().setInts("shape", {2, -1})));
  auto lplan = load(late);
  ASSERT_TRUE(lplan);
  auto ex = executor(*lplan);
  EXPECT_TRUE(ex->run({f32({6}, {1, 2, 3, 4, 5, 6})}).isOk());
  auto r = ex->run({f32({8}, {1, 2, 3, 4, 5, 6, 7, 8})});
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().message(),
            "step 0 `nn.reshape`: output 0 has shape [2, 4], declared [2, 3]");
}

TEST(Executor, Copy) {
  PlanBuilder pb;
  uint32_t x = pb.input("x", DType::F32, {-1, 2});
  uint32_t c = pb.copy(x, moe_plan::Device::CUDA);
  pb.output(pb.call("nn.relu", {c}, {{DType::F32, {-1, 2}}}, Attrs())[0]);
  auto plan = load(pb);
  ASSERT_TRUE(plan);
  auto ex = executor(*plan);
  auto r = ex->run({f32({2, 2}, {1, -2, 3, 4})});
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ((*r)[0].toVector<float>(), (std::vector<float>{1, 0, 3, 4}));
}

/// A whole MoE layer: router linear → route → dispatch → experts → combine.
TEST(Executor, MoeLayerMatchesNaive) {
  const int64_t H = 5, F = 7, E = 4, K = 2;
  std::mt19937 rng(35);
  std::vector<float> wr = randomVec(E * H, rng), w1 = randomVec(E * F * H, rng),
                     w2 = randomVec(E * H * F, rng), w3 = randomVec(E * F * H, rng);
  PlanBuilder pb;
  uint32_t x = pb.input("hidden", DType::F32, {-1, H});
  uint32_t router = pb.weightF32("router", {E, H}, wr);
  uint32_t vw1 = pb.weightF32("w1", {E, F, H}, w1);
  uint32_t vw2 = pb.weightF32("w2", {E, H, F}, w2);
  uint32_t vw3 = pb.weightF32("w3", {E, F, H}, w3);
  uint32_t logits = pb.call1("nn.linear", {x, router}, DType::F32, {-1, E});
  auto routed = pb.call("moe.route", {logits},
                        {{DType::I64, {-1, K}}, {DType::F32, {-1, K}}},
                        Attrs().setInt("k", K).setString("scoring", "softmax").setInt("normalize", 1));
  pb.free({logits});
  auto disp = pb.call("moe.dispatch", {x, routed[0]},
                      {{DType::F32, {-1, H}}, {DType::I64, {E + 1}}, {DType::I64, {-1}}},
                      Attrs().setInt("num_experts", E));
  pb.free({routed[0]});
  uint32_t y = pb.call1("moe.experts", {disp[0], disp[1], vw1, vw2, vw3}, DType::F32, {-1, H},
                        Attrs().setInt("num_experts", E).setString("activation", "silu")
                            .setInt("has_w3", 1).setInts("pruned", {0, 0, 1, 0})
                            .setInts("placement", {2, 2, 2, 2}).setInts("bits", {16, 16, 16, 16}));
  pb.free({disp[0], disp[1]});
  uint32_t out = pb.call1("moe.combine", {y, disp[2], routed[1]}, DType::F32, {-1, H});
  pb.free({y, disp[2], routed[1]});
  pb.output(out);
  pb.metadata.setInt("experts", E).setString("arch", "test");
  auto plan = load(pb);
  ASSERT_TRUE(plan);
  auto ex = executor(*plan);
  for (int64_t T : {3, 8}) {
    Tensor hx = randomF32({T, H}, rng);
    auto r = ex->run({hx});
    ASSERT_TRUE(r.isOk()) << r.status().message();
    // Naive: per token, softmax router, top-2, normalise, sum experts.
    std::vector<float> want;
    for (int64_t t = 0; t < T; ++t) {
      const float *xt = hx.data<float>() + t * H;
      std::vector<double> p(E);
      double mx = -1e30, sum = 0;
      for (int64_t e = 0; e < E; ++e) {
        p[size_t(e)] = 0;
        for (int64_t i = 0; i < H; ++i)
          p[size_t(e)] += double(xt[i]) * wr[size_t(e * H + i)];
        mx = std::max(mx, p[size_t(e)]);
      }
      for (double &v : p)
        sum += v = std::exp(v - mx);
      for (double &v : p)
        v /= sum;
      std::vector<int64_t> order = {0, 1, 2, 3};
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return p[size_t(a)] > p[size_t(b)]; });
      double norm = p[size_t(order[0])] + p[size_t(order[1])];
      std::vector<double> acc(H, 0);
      for (int s = 0; s < K; ++s) {
        int64_t e = order[size_t(s)];
        if (e == 2)
          continue; // pruned
        double gate = p[size_t(e)] / norm;
        std::vector<double> h(F);
        for (int64_t f = 0; f < F; ++f) {
          double a = 0, g = 0;
          for (int64_t i = 0; i < H; ++i) {
            a += double(xt[i]) * w1[size_t((e * F + f) * H + i)];
            g += double(xt[i]) * w3[size_t((e * F + f) * H + i)];
          }
          h[size_t(f)] = a / (1 + std::exp(-a)) * g;
        }
        for (int64_t i = 0; i < H; ++i) {
          double o = 0;
          for (int64_t f = 0; f < F; ++f)
            o += h[size_t(f)] * w2[size_t((e * H + i) * F + f)];
          acc[size_t(i)] += gate * o;
        }
      }
      for (double v : acc)
        want.push_back(float(v));
    }
    expectClose((*r)[0], want, 1e-4f);
  }
}

} // namespace

TEST(Executor, WeightsReadOnlyByFoldedStepsLeaveMemory) {
  // Expert weights given as ONNX Runtime's QMoE codes and scales: the
  // executor repacks them at creation (nn.dequantize folded into a packed
  // bank), after which the mapped codes are never read; their pages go
  // back to the system (mincore: not resident). The outputs are unchanged.
  const int64_t E = 2, F = 512, H = 1024; // codes of w1: 2·512·512 bytes
  PlanBuilder pb;
  uint32_t x = pb.input("x", DType::F32, {3, H});
  uint32_t off = pb.input("offsets", DType::I64, {E + 1});
  std::mt19937 rng(7);
  auto bytes = [&](size_t n) {
    std::vector<uint8_t> v(n);
    for (uint8_t &b : v)
      b = uint8_t(rng());
    return v;
  };
  auto scales = [&](size_t n) {
    std::vector<float> v(n);
    for (float &s : v)
      s = 0.01f + 0.001f * float(rng() % 10);
    return v;
  };
  uint32_t q1 = pb.weight("q1", DType::U8, {E, F, H / 2},
                          bytes(size_t(E * F * H / 2)));
  uint32_t s1 = pb.weightF32("s1", {E, F}, scales(size_t(E * F)));
  uint32_t q2 = pb.weight("q2", DType::U8, {E, H, F / 2},
                          bytes(size_t(E * H * F / 2)));
  uint32_t s2 = pb.weightF32("s2", {E, H}, scales(size_t(E * H)));
  uint32_t none = pb.weight("none", DType::U8, {0}, {});
  Attrs four = Attrs().setInt("bits", 4);
  uint32_t w1 = pb.call1("nn.dequantize", {q1, s1, none}, DType::F32,
                         {E, F, H}, four);
  uint32_t w2 = pb.call1("nn.dequantize", {q2, s2, none}, DType::F32,
                         {E, H, F}, four);
  uint32_t y = pb.call1("moe.experts", {x, off, w1, w2}, DType::F32, {3, H},
                        Attrs().setInt("num_experts", E));
  pb.output(y);
  std::string path = tempPath("folded.moeplan");
  ASSERT_TRUE(pb.write(path).isOk());
  auto plan = moe::rt::loadPlan(path);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  // The resident bytes of the plan file's mapping (/proc/self/smaps: the
  // pages this process maps, not the page cache's).
  auto mappedRss = [&]() -> int64_t {
    uintptr_t at = uintptr_t((*plan)->weightTensor(0).data());
    FILE *f = std::fopen("/proc/self/smaps", "r");
    if (!f)
      return -1;
    char line[512];
    bool inside = false;
    int64_t kb = -1;
    while (std::fgets(line, sizeof(line), f)) {
      unsigned long lo, hi;
      if (std::sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
        inside = at >= lo && at < hi;
        continue;
      }
      long v;
      if (inside && std::sscanf(line, "Rss: %ld kB", &v) == 1)
        kb = v;
    }
    std::fclose(f);
    return kb * 1024;
  };
  // The load checked every weight: the codes are in memory ...
  const int64_t codes = E * F * H / 2 + E * H * F / 2;
  int64_t before = mappedRss();
  if (before < 0)
    GTEST_SKIP() << "no /proc/self/smaps";
  EXPECT_GE(before, codes);
  auto ex = Executor::create(**plan);
  ASSERT_TRUE(ex.isOk()) << ex.status().message();
  // ... and after the folding they are not (all but partial pages).
  EXPECT_LE(mappedRss(), before - codes + 4 * 4096);
  // The same plan from memory (no file behind its pages) keeps them, and
  // computes the same.
  std::vector<uint8_t> file = readFile(path);
  ::unlink(path.c_str());
  auto copy = moe::rt::loadPlanFromMemory(file.data(), file.size(), "copy");
  ASSERT_TRUE(copy.isOk());
  auto ex2 = Executor::create(**copy);
  ASSERT_TRUE(ex2.isOk());
  std::mt19937 r2(3);
  Tensor xs = randomF32({3, H}, r2);
  Tensor offs = i64({E + 1}, {0, 2, 3});
  auto a = (*ex)->run({xs, offs});
  auto b = (*ex2)->run({xs, offs});
  ASSERT_TRUE(a.isOk() && b.isOk());
  EXPECT_EQ((*a)[0].toVector<float>(), (*b)[0].toVector<float>());
}
