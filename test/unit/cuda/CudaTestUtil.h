//===- CudaTestUtil.h - Helpers of the CUDA device tests --------*- C++ -*-===//
#ifndef MOE_TEST_UNIT_CUDA_CUDATESTUTIL_H
#define MOE_TEST_UNIT_CUDA_CUDATESTUTIL_H

#include "test/unit/runtime/KernelTestUtil.h"
#include "test/unit/runtime/PlanBuilder.h"

#include "runtime/Executor.h"
#include "runtime/cuda/CudaDevice.h"
#include "runtime/cuda/CudaExecutor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <unistd.h>

namespace moe::test {

/// The plan built by `b`, loaded (null and a test failure on an error).
inline std::unique_ptr<rt::LoadedPlan> loadBuilt(const PlanBuilder &b) {
  std::string path = tempPath("cuda.moeplan");
  rt::Status st = b.write(path);
  EXPECT_TRUE(st.isOk()) << st.message();
  auto plan = rt::loadPlan(path);
  ::unlink(path.c_str()); // the mapping stays valid
  EXPECT_TRUE(plan.isOk()) << plan.status().message();
  return plan.isOk() ? std::move(*plan) : nullptr;
}

/// True when a CUDA device can be opened here.
inline bool haveGpu() { return rt::cuda::cudaDeviceCount().isOk(); }

#define MOE_REQUIRE_GPU()                                                      \
  do {                                                                         \
    if (!::moe::test::haveGpu())                                               \
      GTEST_SKIP() << "no CUDA device: "                                       \
                   << ::moe::rt::cuda::cudaDeviceCount().status().message();   \
  } while (0)

/// Runs `plan` on the CPU executor and on the cuda device with the same
/// inputs and expects the same outputs: integers exactly, floats within
/// `tol` of max(1, |cpu|), and, when `rmsTol` > 0, each float output's
/// relative RMS error ‖gpu − cpu‖ / ‖cpu‖ within `rmsTol` (for paths that
/// round to bf16, whose worst element says less than the whole).
inline void expectSameOnCuda(const rt::LoadedPlan &plan,
                             const std::vector<rt::Tensor> &inputs,
                             float tol = 1e-4f,
                             rt::cuda::CudaExecutorOptions options = {},
                             float rmsTol = 0.0f) {
  auto cpu = rt::Executor::create(plan);
  ASSERT_TRUE(cpu.isOk()) << cpu.status().message();
  auto gpu = rt::cuda::CudaExecutor::create(plan, options);
  ASSERT_TRUE(gpu.isOk()) << gpu.status().message();
  auto want = (*cpu)->run(inputs);
  ASSERT_TRUE(want.isOk()) << want.status().message();
  auto got = (*gpu)->run(inputs);
  ASSERT_TRUE(got.isOk()) << got.status().message();
  ASSERT_EQ(want->size(), got->size());
  for (size_t o = 0; o < want->size(); ++o) {
    const rt::Tensor &w = (*want)[o], &g = (*got)[o];
    ASSERT_FALSE(g.isOnDevice());
    ASSERT_EQ(w.dtype(), g.dtype()) << "output " << o;
    ASSERT_EQ(w.shape(), g.shape()) << "output " << o;
    if (w.dtype() == rt::DType::F32) {
      std::vector<float> a = w.toVector<float>(), b = g.toVector<float>();
      double err = 0, norm = 0;
      for (size_t i = 0; i < a.size(); ++i) {
        ASSERT_NEAR(a[i], b[i], tol * std::max(1.0f, std::fabs(a[i])))
            << "output " << o << " element " << i;
        err += double(a[i] - b[i]) * double(a[i] - b[i]);
        norm += double(a[i]) * double(a[i]);
      }
      if (rmsTol > 0 && norm > 0) {
        EXPECT_LE(std::sqrt(err / norm), rmsTol)
            << "output " << o << ": relative RMS error";
      }
    } else {
      ASSERT_EQ(0, std::memcmp(w.data(), g.data(), w.byteSize()))
          << "output " << o;
    }
  }
}

} // namespace moe::test

#endif // MOE_TEST_UNIT_CUDA_CUDATESTUTIL_H
