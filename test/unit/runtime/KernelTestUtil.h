//===- KernelTestUtil.h - Helpers for the kernel tests ----------*- C++ -*-===//
//
// Random tensors, index arithmetic for the naive reference loops, and a
// wrapper that runs a registered kernel exactly as the executor does
// (shape function, allocation, CPU body).
//
//===----------------------------------------------------------------------===//
#ifndef MOE_TEST_UNIT_RUNTIME_KERNELTESTUTIL_H
#define MOE_TEST_UNIT_RUNTIME_KERNELTESTUTIL_H

#include "runtime/Kernel.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace moe::test {

using rt::Attrs;
using rt::DType;
using rt::Shape;
using rt::Status;
using rt::StatusOr;
using rt::Tensor;

inline Tensor randomF32(const Shape &shape, std::mt19937 &rng, float lo = -1,
                        float hi = 1) {
  std::uniform_real_distribution<float> dist(lo, hi);
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  for (float &x : v)
    x = dist(rng);
  return *Tensor::fromVector(DType::F32, shape, v);
}

inline Tensor f32(const Shape &shape, const std::vector<float> &v) {
  StatusOr<Tensor> t = Tensor::fromVector(DType::F32, shape, v);
  EXPECT_TRUE(t.isOk()) << t.status().message();
  return *t;
}

inline Tensor i64(const Shape &shape, const std::vector<int64_t> &v) {
  StatusOr<Tensor> t = Tensor::fromVector(DType::I64, shape, v);
  EXPECT_TRUE(t.isOk()) << t.status().message();
  return *t;
}

/// Runs a built-in kernel on concrete inputs.
inline StatusOr<std::vector<Tensor>>
runKernel(const std::string &name, std::vector<Tensor> inputs,
          const Attrs &attrs = {}) {
  const rt::KernelDef *def = rt::KernelRegistry::builtin().find(name);
  if (!def)
    return Status::error("no kernel " + name);
  return rt::KernelRegistry::runCpu(*def, std::move(inputs), attrs);
}

/// Runs a kernel that must succeed and returns its first output.
inline Tensor run1(const std::string &name, std::vector<Tensor> inputs,
                   const Attrs &attrs = {}) {
  StatusOr<std::vector<Tensor>> r = runKernel(name, std::move(inputs), attrs);
  EXPECT_TRUE(r.isOk()) << name << ": " << r.status().message();
  return r.isOk() ? (*r)[0] : Tensor();
}

inline std::vector<int64_t> unravel(int64_t flat, const Shape &shape) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return idx;
}

inline int64_t ravel(const std::vector<int64_t> &idx, const Shape &shape) {
  int64_t flat = 0;
  for (size_t d = 0; d < shape.size(); ++d)
    flat = flat * shape[d] + idx[d];
  return flat;
}

inline int64_t count(const Shape &s) {
  int64_t n = 1;
  for (int64_t d : s)
    n *= d;
  return n;
}

/// Element-wise comparison with a relative + absolute tolerance.
inline void expectClose(const Tensor &got, const std::vector<float> &want,
                        float tol = 1e-5f) {
  ASSERT_EQ(got.dtype(), DType::F32);
  ASSERT_EQ(size_t(got.numElements()), want.size());
  const float *g = got.data<float>();
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(g[i])) << "at " << i;
      continue;
    }
    ASSERT_NEAR(g[i], want[i], tol * (1 + std::fabs(want[i]))) << "at " << i;
  }
}

} // namespace moe::test

#endif // MOE_TEST_UNIT_RUNTIME_KERNELTESTUTIL_H
