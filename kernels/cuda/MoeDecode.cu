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

#include <type_traits>

namespace moe::cuda {
namespace {

constexpr unsigned kWarps = 8;
/// Chunks of 8 columns each lane loads before it multiplies: enough bytes
/// in flight per warp for a decode GEMV to approach the HBM bandwidth.
constexpr int kUnroll = 4;

__device__ __forceinline__ bool aligned16(const void *p) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

/// One expert's matrix in a bank, read once per block.
struct Source {
  const void *data = nullptr;
  int kind = ExpertBank::Absent;
  QuantMatrix q;
};

__device__ __forceinline__ Source sourceOf(const ExpertBank &b, int e) {
  Source s;
  s.data = b.data[e];
  s.kind = b.kind[e];
  if (s.kind == ExpertBank::Quantised)
    s.q = b.q[e];
  return s;
}

/// How a matrix's chunks of 8 are loaded: 16-byte vector loads of f32 or
/// bf16 (rows a multiple of 8 wide, aligned), or element by element (any
/// format, tails, unaligned).
enum LoadKind { kVectorF32, kVectorBF16, kElementwise };

/// Elements c0 .. c0+7 of row `row` of a [*, cols] matrix, element by
/// element (zeros past cols).
__device__ __forceinline__ void loadElementwise(const Source &s, int64_t row,
                                                int64_t cols, int64_t c0,
                                                float w[8]) {
  switch (s.kind) {
  case ExpertBank::F32: {
    const float *p = static_cast<const float *>(s.data) + row * cols + c0;
    for (int j = 0; j < 8; ++j)
      w[j] = c0 + j < cols ? p[j] : 0.0f;
    return;
  }
  case ExpertBank::BF16: {
    const __nv_bfloat16 *p =
        static_cast<const __nv_bfloat16 *>(s.data) + row * cols + c0;
    for (int j = 0; j < 8; ++j)
      w[j] = c0 + j < cols ? __bfloat162float(p[j]) : 0.0f;
    return;
  }
  case ExpertBank::Quantised: {
    const uint8_t *packed = static_cast<const uint8_t *>(s.data);
    const uint8_t *codes = packed + row * s.q.rowBytes;
    // Groups are multiples of 8 columns: one scale and zero for all 8.
    const int64_t g = row * s.q.groupsPerRow + c0 / s.q.groupSize;
    const float scale = quantScale(packed, s.q, g);
    const int zero = quantZero(packed, s.q, g);
    for (int j = 0; j < 8; ++j)
      w[j] = c0 + j < cols ? float(int(quantCode(codes, s.q.bits, c0 + j)) -
                                   zero) *
                                 scale
                           : 0.0f;
    return;
  }
  default:
    for (int j = 0; j < 8; ++j)
      w[j] = 0.0f;
  }
}

/// Eight weights as loaded (raw bits: one 16-byte load of bf16 stays four
/// registers until used), and their values.
template <int Kind> struct Chunk8;

template <> struct Chunk8<kVectorF32> {
  float4 a = {}, b = {};
  __device__ __forceinline__ void load(const Source &s, int64_t row,
                                       int64_t cols, int64_t c0) {
    const float4 *p = reinterpret_cast<const float4 *>(
        static_cast<const float *>(s.data) + row * cols + c0);
    a = __ldg(p);
    b = __ldg(p + 1);
  }
  __device__ __forceinline__ float operator[](int j) const {
    const float4 &v = j < 4 ? a : b;
    switch (j % 4) {
    case 0:
      return v.x;
    case 1:
      return v.y;
    case 2:
      return v.z;
    default:
      return v.w;
    }
  }
};

template <> struct Chunk8<kVectorBF16> {
  uint4 u = {};
  __device__ __forceinline__ void load(const Source &s, int64_t row,
                                       int64_t cols, int64_t c0) {
    u = __ldg(reinterpret_cast<const uint4 *>(
        static_cast<const __nv_bfloat16 *>(s.data) + row * cols + c0));
  }
  __device__ __forceinline__ float operator[](int j) const {
    const uint32_t w = j < 2 ? u.x : j < 4 ? u.y : j < 6 ? u.z : u.w;
    // bf16 is the high half of an f32; element 2i is the low half.
    return __uint_as_float(j % 2 ? w & 0xffff0000u : w << 16);
  }
};

template <> struct Chunk8<kElementwise> {
  float w[8] = {};
  __device__ __forceinline__ void load(const Source &s, int64_t row,
                                       int64_t cols, int64_t c0) {
    loadElementwise(s, row, cols, c0, w);
  }
  __device__ __forceinline__ float operator[](int j) const { return w[j]; }
};

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

/// acc[r] (+)= Σ_c W[wRow, c] · in[r, c] over this warp's share of the
/// columns, for rows r < n ≤ N of `in` ([*, cols]), and with Two, accB
/// from a second weight row. Every weight load of kUnroll chunks is issued
/// before the products; the accumulators stay in registers (N constant).
template <int Kind, int N, bool Two>
__device__ __forceinline__ void dotRows(const float *in, int64_t cols,
                                        int n, const Source &a, int64_t aRow,
                                        const Source &b, int64_t bRow,
                                        float (&accA)[N], float (&accB)[N]) {
  const int lane = threadIdx.x % 32;
  for (int64_t base = int64_t(lane) * 8; base < cols;
       base += 32 * 8 * kUnroll) {
    Chunk8<Kind> wa[kUnroll], wb[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t c0 = base + int64_t(u) * 32 * 8;
      if (c0 < cols) {
        wa[u].load(a, aRow, cols, c0);
        if (Two)
          wb[u].load(b, bRow, cols, c0);
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t c0 = base + int64_t(u) * 32 * 8;
      if (c0 >= cols)
        break;
#pragma unroll
      for (int r = 0; r < N; ++r) {
        if (r >= n)
          break;
        float xv[8];
        loadRow8(in + r * cols, cols, c0, xv);
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          accA[r] += wa[u][j] * xv[j];
          if (Two)
            accB[r] += wb[u][j] * xv[j];
        }
      }
    }
  }
}

/// The up projection for rows rb .. rb+n-1 (n ≤ N) of one expert, output
/// feature o: h[r, o] = act(gate · x[r]) (· linear · x[r]).
template <int Kind, int N, bool Linear>
__device__ void upRows(const float *x, int64_t hidden, int64_t rb, int n,
                       const Source &gate, int64_t gateRow,
                       const Source &lin, int64_t linRow, float gateBias,
                       float linBias, const ActivationParams &act,
                       int64_t ffn, int64_t o, float *h) {
  float ag[N], al[N];
#pragma unroll
  for (int r = 0; r < N; ++r)
    ag[r] = al[r] = 0.0f;
  dotRows<Kind, N, Linear>(x + rb * hidden, hidden, n, gate, gateRow, lin,
                           linRow, ag, al);
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int r = 0; r < N; ++r) {
    if (r >= n)
      break;
    const float g = warpSum(ag[r]) + gateBias;
    const float l = Linear ? warpSum(al[r]) + linBias : 0.0f;
    if (lane == 0)
      h[(rb + r) * ffn + o] = expertActivate(g, l, Linear, act);
  }
}

/// The down projection for rows rb .. rb+n-1 (n ≤ N): y[r, o] = h[r] ·
/// w2[o] + bias.
template <int Kind, int N>
__device__ void downRows(const float *h, int64_t ffn, int64_t rb, int n,
                         const Source &w, int64_t o, float bias,
                         int64_t hidden, float *y) {
  float acc[N];
#pragma unroll
  for (int r = 0; r < N; ++r)
    acc[r] = 0.0f;
  dotRows<Kind, N, false>(h + rb * ffn, ffn, n, w, o, w, o, acc, acc);
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int r = 0; r < N; ++r) {
    if (r >= n)
      break;
    const float v = warpSum(acc[r]) + bias;
    if (lane == 0)
      y[(rb + r) * hidden + o] = v;
  }
}

/// h[r, o] = act(gate · x[r]) (· linear) for the rows r of expert
/// blockIdx.y, o = this warp's FFN column; every matrix loaded as Kind, at
/// most N rows of an expert per pass.
template <int Kind, int N, bool Linear>
__global__ void upKernel(const float *x, int64_t hidden,
                         const int64_t *offsets, int64_t ffn, ExpertBank w1,
                         ExpertBank w3, const float *b1, const float *b3,
                         uint64_t pruned, ActivationParams act, float *h) {
  const int e = int(blockIdx.y);
  const int64_t r0 = offsets[e], r1 = offsets[e + 1];
  if (r1 <= r0 || ((pruned >> e) & 1u))
    return;
  const int64_t o = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  if (o >= ffn)
    return;
  const bool fused = act.fusion != 0;
  const int64_t width = fused ? 2 * ffn : ffn; // rows of w1
  const int64_t gateRow = act.fusion == 1 ? 2 * o : o;
  const int64_t linRow = act.fusion == 1 ? 2 * o + 1 : fused ? ffn + o : o;
  const Source gate = sourceOf(w1, e);
  const Source lin = fused ? gate : Linear ? sourceOf(w3, e) : Source();
  const float gateBias = b1 ? b1[e * width + gateRow] : 0.0f;
  const float linBias = fused    ? (b1 ? b1[e * width + linRow] : 0.0f)
                        : Linear ? (b3 ? b3[e * ffn + o] : 0.0f)
                                 : 0.0f;
  for (int64_t rb = r0; rb < r1; rb += N) {
    const int n = int(r1 - rb < N ? r1 - rb : N);
    upRows<Kind, N, Linear>(x, hidden, rb, n, gate, gateRow, lin, linRow,
                            gateBias, linBias, act, ffn, o, h);
  }
}

/// y[r, o] = h[r] · w2[e][o] (+ b2) for the rows r of expert blockIdx.y,
/// o = this warp's hidden column.
template <int Kind, int N>
__global__ void downKernel(const float *h, int64_t ffn,
                           const int64_t *offsets, int64_t hidden,
                           ExpertBank w2, const float *b2, uint64_t pruned,
                           float *y) {
  const int e = int(blockIdx.y);
  const int64_t r0 = offsets[e], r1 = offsets[e + 1];
  if (r1 <= r0 || ((pruned >> e) & 1u))
    return; // y was zeroed
  const int64_t o = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  if (o >= hidden)
    return;
  const Source w = sourceOf(w2, e);
  const float bias = b2 ? b2[e * hidden + o] : 0.0f;
  for (int64_t rb = r0; rb < r1; rb += N) {
    const int n = int(r1 - rb < N ? r1 - rb : N);
    downRows<Kind, N>(h, ffn, rb, n, w, o, bias, hidden, y);
  }
}

/// How every used matrix of a bank can be loaded (host side): vectors of
/// one type when all are f32, or all bf16, with rows a multiple of 8 wide
/// and 16-byte aligned; else element by element.
int bankLoadKind(const ExpertBank &b, int64_t experts, int64_t cols) {
  int kind = -1;
  for (int64_t e = 0; e < experts; ++e) {
    if (b.kind[e] == ExpertBank::Absent)
      continue;
    const bool vec = cols % 8 == 0 &&
                     (reinterpret_cast<uintptr_t>(b.data[e]) & 15u) == 0;
    int k = kElementwise;
    if (vec && b.kind[e] == ExpertBank::F32)
      k = kVectorF32;
    else if (vec && b.kind[e] == ExpertBank::BF16)
      k = kVectorBF16;
    if (kind >= 0 && k != kind)
      return kElementwise;
    kind = k;
  }
  return kind < 0 ? kElementwise : kind;
}

/// Calls f.launch<Kind, N>() for the load kind and the smallest of 1, 2, 4,
/// 8 rows per pass that holds `rows` (no expert has more rows than the
/// layer).
template <typename F> void withKindAndRows(int kind, int64_t rows, const F &f) {
  auto rowsFor = [&](auto k) {
    constexpr int K = decltype(k)::value;
    if (rows <= 1)
      f.template launch<K, 1>();
    else if (rows <= 2)
      f.template launch<K, 2>();
    else if (rows <= 4)
      f.template launch<K, 4>();
    else
      f.template launch<K, 8>();
  };
  switch (kind) {
  case kVectorF32:
    rowsFor(std::integral_constant<int, kVectorF32>());
    break;
  case kVectorBF16:
    rowsFor(std::integral_constant<int, kVectorBF16>());
    break;
  default:
    rowsFor(std::integral_constant<int, kElementwise>());
  }
}

/// The launches of expertsDecode, for withKindAndRows.
struct Up {
  dim3 grid;
  bool linear;
  const float *x;
  int64_t hidden;
  const int64_t *offsets;
  int64_t ffn;
  const ExpertBank &w1, &w3;
  const float *b1, *b3;
  uint64_t pruned;
  const ActivationParams &act;
  float *h;
  Stream stream;
  template <int K, int N> void launch() const {
    if (linear)
      upKernel<K, N, true><<<grid, kWarps * 32, 0, stream>>>(
          x, hidden, offsets, ffn, w1, w3, b1, b3, pruned, act, h);
    else
      upKernel<K, N, false><<<grid, kWarps * 32, 0, stream>>>(
          x, hidden, offsets, ffn, w1, w3, b1, b3, pruned, act, h);
  }
};
struct Down {
  dim3 grid;
  const float *h;
  int64_t ffn;
  const int64_t *offsets;
  int64_t hidden;
  const ExpertBank &w2;
  const float *b2;
  uint64_t pruned;
  float *y;
  Stream stream;
  template <int K, int N> void launch() const {
    downKernel<K, N><<<grid, kWarps * 32, 0, stream>>>(
        h, ffn, offsets, hidden, w2, b2, pruned, y);
  }
};
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
  const ExpertBank none;
  const ExpertBank &w3b = w3 ? *w3 : none;
  int upKind = bankLoadKind(w1, experts, hidden);
  if (w3 && bankLoadKind(w3b, experts, hidden) != upKind)
    upKind = kElementwise;
  withKindAndRows(
      upKind, rows,
      Up{dim3(unsigned((ffn + kWarps - 1) / kWarps), unsigned(experts)),
         act.fusion != 0 || w3 != nullptr, x, hidden, offsets, ffn, w1, w3b,
         b1, b3, pruned, act, h, stream});
  MOE_RETURN_IF_ERROR(checkLaunch("upKernel launch"));
  withKindAndRows(
      bankLoadKind(w2, experts, ffn), rows,
      Down{dim3(unsigned((hidden + kWarps - 1) / kWarps), unsigned(experts)),
           h, ffn, offsets, hidden, w2, b2, pruned, y, stream});
  return checkLaunch("downKernel launch");
}

} // namespace moe::cuda
