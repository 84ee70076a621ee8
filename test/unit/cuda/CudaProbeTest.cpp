//===- CudaProbeTest.cpp - The CUDA smoke kernel against the CPU ----------===//
//
// Skips where no GPU is present (CI builds this, a GPU host runs it).
//
//===----------------------------------------------------------------------===//

#include "kernels/cuda/CudaProbe.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace {

TEST(CudaProbe, DeviceCountIsNeverNegative) {
  EXPECT_GE(moe::cuda::deviceCount(), 0);
}

TEST(CudaProbe, SiluMatchesCpu) {
  std::string name;
  if (moe::cuda::deviceCount(&name) == 0)
    GTEST_SKIP() << "no CUDA device";
  for (size_t n : {1u, 255u, 256u, 257u, 100003u}) {
    std::mt19937 rng(static_cast<unsigned>(n));
    std::uniform_real_distribution<float> dist(-8.0f, 8.0f);
    std::vector<float> x(n), y(n, -1.0f);
    for (float &v : x)
      v = dist(rng);
    moe::rt::Status st = moe::cuda::siluOnDevice(x.data(), y.data(), n);
    ASSERT_TRUE(st.isOk()) << st.message();
    for (size_t i = 0; i < n; ++i) {
      float ref = x[i] / (1.0f + std::exp(-x[i]));
      ASSERT_NEAR(y[i], ref, 1e-5f * (1.0f + std::fabs(ref)))
          << "n=" << n << " i=" << i << " on " << name;
    }
  }
}

} // namespace
