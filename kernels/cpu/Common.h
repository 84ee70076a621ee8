//===- Common.h - Shapes and parallel loops for CPU kernels -----*- C++ -*-===//
//
// Small helpers shared by the CPU kernels: shape arithmetic, numpy-style
// broadcasting strides, a TBB loop that stays serial for small work, and a
// dot product written so that the compiler vectorises it without fast-math.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CPU_COMMON_H
#define MOE_KERNELS_CPU_COMMON_H

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace moe::kernels::cpu {

using Shape = std::vector<int64_t>;

/// Product of the dims (1 for a scalar).
inline int64_t numElements(const Shape &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

/// Row-major element strides of `shape`.
inline Shape stridesOf(const Shape &shape) {
  Shape strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;)
    strides[i - 1] = strides[i] * shape[i];
  return strides;
}

/// Strides (in elements) for reading `shape` broadcast to `outShape`: the
/// shape is right-aligned and broadcast dims get stride 0.
inline Shape broadcastStrides(const Shape &shape, const Shape &outShape) {
  Shape strides(outShape.size(), 0);
  Shape own = stridesOf(shape);
  size_t lead = outShape.size() - shape.size();
  for (size_t i = 0; i < shape.size(); ++i)
    strides[lead + i] = shape[i] == 1 ? 0 : own[i];
  return strides;
}

/// Runs body(begin, end) over [0, n), in parallel when n * costPerItem is
/// large enough to pay for the scheduling.
template <typename Body>
void parallelFor(int64_t n, int64_t costPerItem, const Body &body) {
  if (n <= 0)
    return;
  constexpr int64_t kSerialWork = 1 << 15;
  int64_t cost = costPerItem < 1 ? 1 : costPerItem;
  if (n == 1 || n * cost <= kSerialWork) {
    body(int64_t(0), n);
    return;
  }
  int64_t grain = kSerialWork / cost;
  if (grain < 1)
    grain = 1;
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, n, grain),
                    [&](const tbb::blocked_range<int64_t> &r) {
                      body(r.begin(), r.end());
                    });
}

/// Dot product of two float vectors. Eight independent accumulators let the
/// compiler use vector registers without reassociating a single sum.
inline float dot(const float *a, const float *b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j)
      acc[j] += a[i + j] * b[i + j];
  float tail = 0;
  for (; i < n; ++i)
    tail += a[i] * b[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
         ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
}

} // namespace moe::kernels::cpu

#endif // MOE_KERNELS_CPU_COMMON_H
