//===- CudaSupportTest.cpp - Which steps the cuda device runs -------------===//
//
// The plan-only side of `--device cuda`, which needs no GPU: where each
// step is placed, and the error that names the steps without a CUDA
// kernel. Runs everywhere, CI included.
//
//===----------------------------------------------------------------------===//

#include "test/unit/cuda/CudaTestUtil.h"

#include "runtime/cuda/CudaKernels.h"

using namespace moe::test;
using moe::rt::Attrs;
using moe::rt::Status;
using moe::rt::cuda::CudaPlacement;
using moe::rt::cuda::checkCudaSupport;
using moe::rt::cuda::cudaPlacement;

namespace {

std::vector<CudaPlacement> placements(const moe::rt::LoadedPlan &plan) {
  std::vector<bool> foldable = moe::rt::foldableSteps(plan);
  std::vector<CudaPlacement> p;
  for (size_t i = 0; i < plan.steps().size(); ++i) {
    auto r = cudaPlacement(plan, i, foldable);
    EXPECT_TRUE(r.isOk()) << r.status().message();
    p.push_back(r.isOk() ? *r : CudaPlacement::Host);
  }
  return p;
}

TEST(CudaSupport, PlacesComputeOnDeviceShapesOnHostReshapesAsAliases) {
  PlanBuilder pb;
  uint32_t x = pb.input("x", DType::F32, {-1, 4});
  uint32_t w = pb.weightF32("w", {4, 4}, std::vector<float>(16, 0.5f));
  uint32_t y = pb.call1("nn.matmul", {x, w}, DType::F32, {-1, 4}); // 0
  uint32_t s = pb.call1("nn.shape", {y}, DType::I64, {2});         // 1
  uint32_t two = pb.weight("two", DType::I64, {1},
                           std::vector<uint8_t>{2, 0, 0, 0, 0, 0, 0, 0});
  uint32_t s2 = pb.call1("nn.mul", {s, two}, DType::I64, {2});     // 2
  uint32_t r = pb.call1("nn.reshape", {y}, DType::F32, {-1},      // 3
                        Attrs().setInts("shape", {-1}));
  uint32_t c = pb.call1("nn.cast", {s2}, DType::F32, {2},          // 4
                        Attrs().setInt("to", 0));
  pb.output(r);
  pb.output(c);
  auto plan = loadBuilt(pb);
  ASSERT_TRUE(plan);
  std::vector<CudaPlacement> p = placements(*plan);
  ASSERT_EQ(p.size(), 5u);
  EXPECT_EQ(p[0], CudaPlacement::Device);
  EXPECT_EQ(p[1], CudaPlacement::Host);   // reads a shape only
  EXPECT_EQ(p[2], CudaPlacement::Host);   // integer arithmetic
  EXPECT_EQ(p[3], CudaPlacement::Alias);  // shares the device storage
  EXPECT_EQ(p[4], CudaPlacement::Device); // produces a float
  EXPECT_TRUE(checkCudaSupport(*plan).isOk());
}

TEST(CudaSupport, NamesTheFirstMissingStepAndCountsTheOthers) {
  PlanBuilder pb;
  uint32_t x = pb.input("x", DType::F32, {3, 8});
  uint32_t a = pb.call1("nn.exp", {x}, DType::F32, {3, 8});
  auto t1 = pb.call("nn.topk", {a, pb.weight("k", DType::I64, {1},
                                              {2, 0, 0, 0, 0, 0, 0, 0})},
                    {{DType::F32, {3, 2}}, {DType::I64, {3, 2}}},
                    Attrs().setInt("axis", -1));
  auto t2 = pb.call("nn.topk", {x, pb.weight("k2", DType::I64, {1},
                                              {3, 0, 0, 0, 0, 0, 0, 0})},
                    {{DType::F32, {3, 3}}, {DType::I64, {3, 3}}},
                    Attrs().setInt("axis", -1));
  uint32_t lo = pb.weightF32("lo", {}, {-1.0f});
  uint32_t hi = pb.weightF32("hi", {}, {1.0f});
  uint32_t z = pb.call1("nn.clip", {t2[0], lo, hi}, DType::F32, {3, 3});
  pb.output(t1[0]);
  pb.output(z);
  auto plan = loadBuilt(pb);
  ASSERT_TRUE(plan);
  Status st = checkCudaSupport(*plan);
  ASSERT_FALSE(st.isOk());
  EXPECT_EQ(st.message(), "step 1 `nn.topk`: no CUDA kernel (and 2 more "
                          "steps: nn.clip, nn.topk)");
}

TEST(CudaSupport, RefusesWhatTheKernelsDoNotCover) {
  const int64_t E = 4, H = 32, F = 6;
  auto plan = [&](Attrs routeAttrs, Attrs expertAttrs, bool packed) {
    PlanBuilder pb;
    uint32_t x = pb.input("x", DType::F32, {-1, H});
    uint32_t logits = pb.input("logits", DType::F32, {-1, E});
    std::vector<float> zeros1(size_t(E * F * H), 0.0f),
        zeros2(size_t(E * H * F), 0.0f);
    uint32_t w1 =
        packed ? pb.weightPacked("w1", {E, F, H}, zeros1,
                                 std::vector<moe::kernels::cpu::QuantFormat>(
                                     size_t(E), {8, 32, true, false}))
               : pb.weightF32("w1", {E, F, H}, zeros1);
    uint32_t w2 = pb.weightF32("w2", {E, H, F}, zeros2);
    auto routed = pb.call("moe.route", {logits},
                          {{DType::I64, {-1, 2}}, {DType::F32, {-1, 2}}},
                          routeAttrs.setInt("k", 2));
    auto d = pb.call("moe.dispatch", {x, routed[0]},
                     {{DType::F32, {-1, H}},
                      {DType::I64, {E + 1}},
                      {DType::I64, {-1}}},
                     Attrs().setInt("num_experts", E));
    uint32_t y = pb.call1("moe.experts", {d[0], d[1], w1, w2}, DType::F32,
                          {-1, H},
                          expertAttrs.setInt("num_experts", E)
                              .setString("activation", "gelu"));
    uint32_t o = pb.call1("moe.combine", {y, d[2], routed[1]}, DType::F32,
                          {-1, H});
    pb.output(o);
    return loadBuilt(pb);
  };
  auto ok = plan(Attrs(), Attrs(), false);
  ASSERT_TRUE(ok);
  Status st = checkCudaSupport(*ok);
  EXPECT_TRUE(st.isOk()) << st.message();

  // Routing with expert pruning runs on the host (the CPU kernel).
  for (Attrs a : {Attrs().setFloat("skip_threshold", 0.2),
                  Attrs().setInts("excluded", {0, 1, 0, 0}),
                  Attrs().setInt("max_experts", 2)}) {
    auto pruned = plan(a, Attrs(), false);
    ASSERT_TRUE(pruned);
    st = checkCudaSupport(*pruned);
    EXPECT_TRUE(st.isOk()) << st.message();
    std::vector<bool> foldable = moe::rt::foldableSteps(*pruned);
    auto p = cudaPlacement(*pruned, 0, foldable);
    ASSERT_TRUE(p.isOk());
    EXPECT_EQ(*p, CudaPlacement::Host);
  }
  auto unpruned = plan(Attrs().setFloat("skip_threshold", 0.0), Attrs(),
                       false);
  ASSERT_TRUE(unpruned);
  auto p0 = cudaPlacement(*unpruned, 0, moe::rt::foldableSteps(*unpruned));
  ASSERT_TRUE(p0.isOk());
  EXPECT_EQ(*p0, CudaPlacement::Device);


  // Group-quantised experts are read in place (GEMV or bf16 dequant).
  auto quantised = plan(Attrs(), Attrs(), true);
  ASSERT_TRUE(quantised);
  st = checkCudaSupport(*quantised);
  EXPECT_TRUE(st.isOk()) << st.message();
}

TEST(CudaSupport, OpeningTheDeviceWithoutAGpuIsAnError) {
  if (haveGpu())
    GTEST_SKIP() << "a GPU is present";
  PlanBuilder pb;
  uint32_t x = pb.input("x", DType::F32, {2});
  pb.output(pb.call1("nn.exp", {x}, DType::F32, {2}));
  auto plan = loadBuilt(pb);
  ASSERT_TRUE(plan);
  auto ex = moe::rt::cuda::CudaExecutor::create(*plan);
  ASSERT_FALSE(ex.isOk());
  EXPECT_EQ(ex.status().message().rfind("cuda: no device: ", 0), 0u)
      << ex.status().message();
}

TEST(CudaSupport, EveryCudaKernelIsAKernelOfTheAbi) {
  const moe::rt::KernelRegistry &r = moe::rt::KernelRegistry::builtin();
  for (const std::string &name : moe::rt::cuda::cudaKernelNames())
    EXPECT_NE(r.find(name), nullptr) << name;
}

} // namespace
