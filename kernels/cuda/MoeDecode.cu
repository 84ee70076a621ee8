//===- MoeDecode.cu - Decode-sized expert layers on the device ------------===//
//
// For a few rows (a decode step: T·k ≤ kDecodeMaxRows), moe.experts runs as
// two grouped GEMV kernels driven by the offsets on the device: grid.y is
// the expert, and a warp computes one output feature for every row of that
// expert, so each used expert's weights are read once and nothing waits for
// the host. Weights are read as stored (f32, bf16 or group-quantised, per
// expert), eight consecutive elements per lane and step.
//
//===----------------------------------------------------------------------===//

#include "kernels/cuda/Moe.h"

#include "kernels/cuda/Activation.cuh"
#include "kernels/cuda/CudaCheck.h"
#include "kernels/cuda/QuantDecode.cuh"

#include <cuda_bf16.h>

namespace moe::cuda {
namespace {

/// Rows of one expert handled per pass (more rows: more passes).
constexpr int kRowsPerPass = 8;
constexpr unsigned kWarps = 8;
/// Chunks of 8 columns each lane loads before it multiplies: enough bytes
/// in flight per warp for a decode GEMV to approach the HBM bandwidth.
constexpr int kUnroll = 4;

__device__ __forceinline__ bool aligned16(const void *p) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

/// Elements c0 .. c0+7 of row `row` of expert e's [*, cols] matrix in `b`
/// (zeros past cols).
__device__ __forceinline__ void loadWeights8(const ExpertBank &b, int e,
                                             int64_t row, int64_t cols,
                                             int64_t c0, float w[8]) {
  const bool whole = c0 + 8 <= cols;
  if (c0 >= cols) { // past the row (an unrolled step beyond its end)
    for (int j = 0; j < 8; ++j)
      w[j] = 0.0f;
    return;
  }
  switch (b.kind[e]) {
  case ExpertBank::F32: {
    const float *p = static_cast<const float *>(b.data[e]) + row * cols + c0;
    if (whole && aligned16(p)) {
      float4 u = reinterpret_cast<const float4 *>(p)[0];
      float4 v = reinterpret_cast<const float4 *>(p)[1];
      w[0] = u.x, w[1] = u.y, w[2] = u.z, w[3] = u.w;
      w[4] = v.x, w[5] = v.y, w[6] = v.z, w[7] = v.w;
    } else {
      for (int j = 0; j < 8; ++j)
        w[j] = c0 + j < cols ? p[j] : 0.0f;
    }
    return;
  }
  case ExpertBank::BF16: {
    const __nv_bfloat16 *p =
        static_cast<const __nv_bfloat16 *>(b.data[e]) + row * cols + c0;
    if (whole && aligned16(p)) {
      uint4 u = *reinterpret_cast<const uint4 *>(p);
      const __nv_bfloat16 *h = reinterpret_cast<const __nv_bfloat16 *>(&u);
      for (int j = 0; j < 8; ++j)
        w[j] = __bfloat162float(h[j]);
    } else {
      for (int j = 0; j < 8; ++j)
        w[j] = c0 + j < cols ? __bfloat162float(p[j]) : 0.0f;
    }
    return;
  }
  case ExpertBank::Quantised: {
    const QuantMatrix &q = b.q[e];
    const uint8_t *packed = static_cast<const uint8_t *>(b.data[e]);
    const uint8_t *codes = packed + row * q.rowBytes;
    // Groups are multiples of 8 columns: one scale and zero for all 8.
    const int64_t g = row * q.groupsPerRow + c0 / q.groupSize;
    const float scale = quantScale(packed, q, g);
    const int zero = quantZero(packed, q, g);
    for (int j = 0; j < 8; ++j)
      w[j] = c0 + j < cols
                 ? float(int(quantCode(codes, q.bits, c0 + j)) - zero) * scale
                 : 0.0f;
    return;
  }
  default:
    for (int j = 0; j < 8; ++j)
      w[j] = 0.0f;
  }
}

/// x[c0 .. c0+7] of a row (zeros past cols).
__device__ __forceinline__ void loadRow8(const float *x, int64_t cols,
                                         int64_t c0, float v[8]) {
  if (c0 + 8 <= cols && aligned16(x + c0)) {
    float4 a = reinterpret_cast<const float4 *>(x + c0)[0];
    float4 b = reinterpret_cast<const float4 *>(x + c0)[1];
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w;
    v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  } else {
    for (int j = 0; j < 8; ++j)
      v[j] = c0 + j < cols ? x[c0 + j] : 0.0f;
  }
}

__device__ __forceinline__ float warpSum(float v) {
  for (int s = 16; s > 0; s /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, s);
  return v;
}

/// h[r, o] = act(gate · x[r]) (· linear) for the rows r of expert
/// blockIdx.y, o = this warp's FFN column.
__global__ void upKernel(const float *x, int64_t hidden,
                         const int64_t *offsets, int64_t ffn, ExpertBank w1,
                         ExpertBank w3, bool hasW3, const float *b1,
                         const float *b3, uint64_t pruned,
                         ActivationParams act, float *h) {
  const int e = int(blockIdx.y);
  const int64_t r0 = offsets[e], r1 = offsets[e + 1];
  if (r1 <= r0 || ((pruned >> e) & 1u))
    return;
  const int lane = threadIdx.x % 32;
  const int64_t o = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  if (o >= ffn)
    return;
  const bool fused = act.fusion != 0;
  const int64_t width = fused ? 2 * ffn : ffn; // rows of w1
  const int64_t gateRow = act.fusion == 1 ? 2 * o : o;
  const int64_t linRow = act.fusion == 1 ? 2 * o + 1 : ffn + o;
  const bool hasLinear = fused || hasW3;
  for (int64_t rb = r0; rb < r1; rb += kRowsPerPass) {
    const int n = int(r1 - rb < kRowsPerPass ? r1 - rb : kRowsPerPass);
    float ag[kRowsPerPass] = {}, al[kRowsPerPass] = {};
    for (int64_t base = int64_t(lane) * 8; base < hidden;
         base += 32 * 8 * kUnroll) {
      // All loads of kUnroll chunks first, then the products.
      float wg[kUnroll][8], wl[kUnroll][8];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t c0 = base + int64_t(u) * 32 * 8;
        loadWeights8(w1, e, gateRow, hidden, c0 < hidden ? c0 : hidden,
                     wg[u]);
        if (fused)
          loadWeights8(w1, e, linRow, hidden, c0 < hidden ? c0 : hidden,
                       wl[u]);
        else if (hasW3)
          loadWeights8(w3, e, o, hidden, c0 < hidden ? c0 : hidden, wl[u]);
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t c0 = base + int64_t(u) * 32 * 8;
        if (c0 >= hidden)
          break;
#pragma unroll
        for (int r = 0; r < kRowsPerPass; ++r) {
          if (r >= n)
            break;
          float xv[8];
          loadRow8(x + (rb + r) * hidden, hidden, c0, xv);
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            ag[r] += wg[u][j] * xv[j];
            if (hasLinear)
              al[r] += wl[u][j] * xv[j];
          }
        }
      }
    }
    for (int r = 0; r < n; ++r) {
      float g = warpSum(ag[r]);
      float l = hasLinear ? warpSum(al[r]) : 0.0f;
      if (lane != 0)
        continue;
      if (b1)
        g += b1[e * width + gateRow];
      if (fused && b1)
        l += b1[e * width + linRow];
      else if (!fused && hasW3 && b3)
        l += b3[e * ffn + o];
      h[(rb + r) * ffn + o] = expertActivate(g, l, hasLinear, act);
    }
  }
}

/// y[r, o] = h[r] · w2[e][o] (+ b2) for the rows r of expert blockIdx.y,
/// o = this warp's hidden column.
__global__ void downKernel(const float *h, int64_t ffn,
                           const int64_t *offsets, int64_t hidden,
                           ExpertBank w2, const float *b2, uint64_t pruned,
                           float *y) {
  const int e = int(blockIdx.y);
  const int64_t r0 = offsets[e], r1 = offsets[e + 1];
  if (r1 <= r0 || ((pruned >> e) & 1u))
    return; // y was zeroed
  const int lane = threadIdx.x % 32;
  const int64_t o = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  if (o >= hidden)
    return;
  for (int64_t rb = r0; rb < r1; rb += kRowsPerPass) {
    const int n = int(r1 - rb < kRowsPerPass ? r1 - rb : kRowsPerPass);
    float acc[kRowsPerPass] = {};
    for (int64_t base = int64_t(lane) * 8; base < ffn;
         base += 32 * 8 * kUnroll) {
      float w[kUnroll][8];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t c0 = base + int64_t(u) * 32 * 8;
        loadWeights8(w2, e, o, ffn, c0 < ffn ? c0 : ffn, w[u]);
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t c0 = base + int64_t(u) * 32 * 8;
        if (c0 >= ffn)
          break;
#pragma unroll
        for (int r = 0; r < kRowsPerPass; ++r) {
          if (r >= n)
            break;
          float hv[8];
          loadRow8(h + (rb + r) * ffn, ffn, c0, hv);
#pragma unroll
          for (int j = 0; j < 8; ++j)
            acc[r] += w[u][j] * hv[j];
        }
      }
    }
    for (int r = 0; r < n; ++r) {
      float v = warpSum(acc[r]);
      if (lane == 0)
        y[(rb + r) * hidden + o] = b2 ? v + b2[e * hidden + o] : v;
    }
  }
}

} // namespace

rt::Status expertsDecode(const float *x, int64_t rows, int64_t hidden,
                         const int64_t *offsets, int64_t experts, int64_t ffn,
                         const ExpertBank &w1, const ExpertBank &w2,
                         const ExpertBank *w3, const float *b1,
                         const float *b2, const float *b3, uint64_t pruned,
                         const ActivationParams &act, float *h, float *y,
                         Stream stream) {
  if (experts > kDecodeMaxExperts)
    return rt::Status::error("expertsDecode: " + std::to_string(experts) +
                             " experts exceed " +
                             std::to_string(kDecodeMaxExperts));
  if (rows == 0 || hidden == 0)
    return rt::Status::ok();
  MOE_RETURN_IF_ERROR(check(
      cudaMemsetAsync(y, 0, size_t(rows * hidden) * sizeof(float), stream),
      "cudaMemsetAsync(expert rows)"));
  if (ffn == 0)
    return rt::Status::ok();
  dim3 up(unsigned((ffn + kWarps - 1) / kWarps), unsigned(experts));
  upKernel<<<up, kWarps * 32, 0, stream>>>(x, hidden, offsets, ffn, w1,
                                           w3 ? *w3 : ExpertBank(),
                                           w3 != nullptr, b1, b3, pruned, act,
                                           h);
  MOE_RETURN_IF_ERROR(checkLaunch("upKernel launch"));
  dim3 down(unsigned((hidden + kWarps - 1) / kWarps), unsigned(experts));
  downKernel<<<down, kWarps * 32, 0, stream>>>(h, ffn, offsets, hidden, w2,
                                               b2, pruned, y);
  return checkLaunch("downKernel launch");
}

} // namespace moe::cuda
