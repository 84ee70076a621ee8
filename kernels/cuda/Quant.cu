//===- Quant.cu - Group-quantised expert weights on CUDA ------------------===//

#include "kernels/cuda/Quant.h"

#include "kernels/cuda/CudaCheck.h"
#include "kernels/cuda/QuantDecode.cuh"

#include <cuda_bf16.h>

namespace moe::cuda {
namespace {

/// One warp per output feature o; each lane takes chunks of 8 columns
/// (one group's scale and zero per chunk: groups are multiples of 8).
template <int N>
__global__ void gemvKernel(const float *x, int64_t k, const uint8_t *packed,
                           QuantMatrix q, int64_t outFeatures,
                           const float *bias, float *y) {
  const int lane = threadIdx.x % 32;
  const int64_t o = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32;
  if (o >= outFeatures)
    return;
  const uint8_t *row = packed + o * q.rowBytes;
  float acc[N];
#pragma unroll
  for (int r = 0; r < N; ++r)
    acc[r] = 0.0f;
  // Four chunks of 8 weights decoded (their loads in flight) before the
  // products.
  constexpr int kUnroll = 4;
  for (int64_t base = int64_t(lane) * 8; base < k; base += 32 * 8 * kUnroll) {
    float w[kUnroll][8];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t c0 = base + int64_t(u) * 32 * 8;
      if (c0 >= k) {
#pragma unroll
        for (int j = 0; j < 8; ++j)
          w[u][j] = 0.0f;
        continue;
      }
      const int64_t g = o * q.groupsPerRow + c0 / q.groupSize;
      const float scale = quantScale(packed, q, g);
      const int zero = quantZero(packed, q, g);
#pragma unroll
      for (int j = 0; j < 8; ++j)
        w[u][j] = c0 + j < k ? float(int(quantCode(row, q.bits, c0 + j)) -
                                     zero) *
                                   scale
                             : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t c0 = base + int64_t(u) * 32 * 8;
      if (c0 >= k)
        break;
      // Constant indices only: w and acc stay in registers (w is zero
      // past k).
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        if (c0 + j >= k)
          break;
#pragma unroll
        for (int r = 0; r < N; ++r)
          acc[r] += w[u][j] * x[r * k + c0 + j];
      }
    }
  }
#pragma unroll
  for (int r = 0; r < N; ++r) {
    float v = acc[r];
    for (int s = 16; s > 0; s /= 2)
      v += __shfl_xor_sync(0xffffffffu, v, s);
    if (lane == 0)
      y[r * outFeatures + o] = bias ? v + bias[o] : v;
  }
}

__global__ void dequantKernel(const uint8_t *packed, QuantMatrix q,
                              int64_t rows, int64_t cols,
                              __nv_bfloat16 *out) {
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= rows * cols)
    return;
  const int64_t r = i / cols, c = i % cols;
  const int64_t g = r * q.groupsPerRow + c / q.groupSize;
  float w = float(int(quantCode(packed + r * q.rowBytes, q.bits, c)) -
                  quantZero(packed, q, g)) *
            quantScale(packed, q, g);
  out[i] = __float2bfloat16(w);
}

template <int N>
void launchGemv(const float *x, int64_t k, const uint8_t *packed,
                const QuantMatrix &q, int64_t outFeatures, const float *bias,
                float *y, Stream stream) {
  const unsigned warps = 4;
  unsigned blocks = unsigned((outFeatures + warps - 1) / warps);
  gemvKernel<N><<<blocks, warps * 32, 0, stream>>>(x, k, packed, q,
                                                   outFeatures, bias, y);
}

} // namespace

rt::Status linearQuant(const float *x, int64_t n, int64_t k,
                       const uint8_t *packed, const QuantMatrix &q,
                       int64_t outFeatures, const float *bias, float *y,
                       Stream stream) {
  if (q.bits != 8 && q.bits != 4 && q.bits != 3 && q.bits != 2)
    return rt::Status::error("linearQuant: " + std::to_string(q.bits) +
                             "-bit codes are not a quantised format");
  if (q.groupSize % 8 != 0)
    return rt::Status::error("linearQuant: group size " +
                             std::to_string(q.groupSize) +
                             " is not a multiple of 8");
  if (n > kQuantGemvRows)
    return rt::Status::error("linearQuant: " + std::to_string(n) +
                             " rows exceed " + std::to_string(kQuantGemvRows));
  // Rows in chunks of 8, 4, 2 and 1 (each chunk reads the weights once).
  for (int64_t r = 0; r < n && outFeatures > 0;) {
    const int64_t left = n - r;
    const float *xr = x + r * k;
    float *yr = y + r * outFeatures;
    if (left >= 8) {
      launchGemv<8>(xr, k, packed, q, outFeatures, bias, yr, stream);
      r += 8;
    } else if (left >= 4) {
      launchGemv<4>(xr, k, packed, q, outFeatures, bias, yr, stream);
      r += 4;
    } else if (left >= 2) {
      launchGemv<2>(xr, k, packed, q, outFeatures, bias, yr, stream);
      r += 2;
    } else {
      launchGemv<1>(xr, k, packed, q, outFeatures, bias, yr, stream);
      r += 1;
    }
    MOE_RETURN_IF_ERROR(checkLaunch("gemvKernel launch"));
  }
  return rt::Status::ok();
}

rt::Status dequantizeBf16(const uint8_t *packed, const QuantMatrix &q,
                          int64_t rows, int64_t cols, uint16_t *out,
                          Stream stream) {
  if (rows * cols == 0)
    return rt::Status::ok();
  dequantKernel<<<blocksFor(rows * cols, 256), 256, 0, stream>>>(
      packed, q, rows, cols, reinterpret_cast<__nv_bfloat16 *>(out));
  return checkLaunch("dequantKernel launch");
}

} // namespace moe::cuda
