//===- VecMathTest.cpp - Vectorised activations against std::exp ----------===//

#include "kernels/cpu/Moe.h"
#include "kernels/cpu/VecMath.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace kc = moe::kernels::cpu;

namespace {

TEST(VecMath, ExpMatchesStdExp) {
  std::vector<float> x;
  for (float v = -103.0f; v < 88.5f; v += 0.0371f)
    x.push_back(v);
  x.push_back(0.0f);
  x.push_back(-0.0f);
  std::vector<float> y(x.size());
  kc::expArray(x.data(), y.data(), int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    float want = std::exp(x[i]);
    if (want < std::numeric_limits<float>::min()) // subnormal: absolute
      ASSERT_NEAR(y[i], want, 1e-44f) << x[i];
    else
      ASSERT_NEAR(y[i], want, 3e-7f * want) << x[i];
  }
  float big[2] = {200.0f, -200.0f}, out[2];
  kc::expArray(big, out, 2);
  EXPECT_TRUE(std::isinf(out[0]));
  EXPECT_EQ(out[1], 0.0f);
}

TEST(VecMath, SwigluMatchesScalarIncludingNanAndLimits) {
  std::mt19937 gen(9);
  std::normal_distribution<float> d(0.f, 4.f);
  for (int64_t stride : {1, 2})
    for (float limit : {std::numeric_limits<float>::infinity(), 3.0f}) {
      int64_t n = 37;
      std::vector<float> g(static_cast<size_t>(n * stride)),
          l(static_cast<size_t>(n * stride)), out(static_cast<size_t>(n));
      for (auto &v : g)
        v = d(gen);
      for (auto &v : l)
        v = d(gen);
      g[5 * stride] = std::numeric_limits<float>::quiet_NaN();
      l[7 * stride] = std::numeric_limits<float>::quiet_NaN();
      kc::ExpertActivation act;
      act.kind = kc::Activation::Swiglu;
      act.alpha = 1.702f;
      act.beta = 1.0f;
      act.limit = limit;
      kc::swigluArray(g.data(), stride, l.data(), stride, out.data(), n,
                      act.alpha, act.beta, act.limit);
      for (int64_t i = 0; i < n; ++i) {
        float want = kc::swiglu(g[size_t(i * stride)], l[size_t(i * stride)], act);
        if (std::isnan(want))
          EXPECT_TRUE(std::isnan(out[size_t(i)])) << i;
        else
          EXPECT_NEAR(out[size_t(i)], want, 1e-6f * (1 + std::fabs(want))) << i;
      }
    }
}

TEST(VecMath, SoftmaxRowSumsToOne) {
  for (int64_t n : {1, 5, 16, 33, 128}) {
    std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      x[size_t(i)] = float(i % 7) - 3.0f;
    kc::softmaxRow(x.data(), y.data(), n);
    double sum = 0, mx = *std::max_element(x.begin(), x.end()), z = 0;
    for (float v : x)
      z += std::exp(double(v) - mx);
    for (int64_t i = 0; i < n; ++i) {
      sum += y[size_t(i)];
      EXPECT_NEAR(y[size_t(i)], std::exp(double(x[size_t(i)]) - mx) / z, 1e-6);
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
}

} // namespace
