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

/// acc[i][r] (+)= Σ_c W_i[row[i], c] · in[r, c] over this warp's share of
/// the columns, for R weight rows (src[i], row[i]) and the rows r < n ≤ N
/// of `in` ([*, cols]). Each chunk of `in` is loaded once for all R weight
/// rows (the decode GEMV is otherwise bound by L1 reads of the activations
/// as soon as a few rows share the weights). Every weight load of U chunks
/// (U·R = 8: 128 bytes of bf16 in flight per lane) is issued before the
/// products; the accumulators stay in registers (N, R constant).
template <int Kind, int N, int R>
__device__ __forceinline__ void dotRows(const float *in, int64_t cols,
                                        int n, const Source (&src)[R],
                                        const int64_t (&row)[R],
                                        float (&acc)[R][N]) {
  constexpr int U = R >= 8 ? 1 : 8 / R;
  const int lane = threadIdx.x % 32;
  for (int64_t base = int64_t(lane) * 8; base < cols; base += 32 * 8 * U) {
    Chunk8<Kind> w[U][R];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t c0 = base + int64_t(u) * 32 * 8;
      if (c0 < cols) {
#pragma unroll
        for (int i = 0; i < R; ++i)
          w[u][i].load(src[i], row[i], cols, c0);
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
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
        for (int i = 0; i < R; ++i)
#pragma unroll
          for (int j = 0; j < 8; ++j)
            acc[i][r] += w[u][i][j] * xv[j];
      }
    }
  }
}

/// The rows [r0, r1) of an expert in passes of at most N: acc (R weight
/// rows × N rows of `in`) is cleared and filled by dotRows, then
/// done(t, acc, r) writes the results of row t = rb + r for each row r of
/// the pass.
template <int Kind, int N, int R, typename Done>
__device__ __forceinline__ void forPasses(const float *in, int64_t cols,
                                          int64_t r0, int64_t r1,
                                          const Source (&src)[R],
                                          const int64_t (&row)[R],
                                          const Done &done) {
  for (int64_t rb = r0; rb < r1; rb += N) {
    const int n = int(r1 - rb < N ? r1 - rb : N);
    float acc[R][N];
#pragma unroll
    for (int i = 0; i < R; ++i)
#pragma unroll
      for (int r = 0; r < N; ++r)
        acc[i][r] = 0.0f;
    dotRows<Kind, N, R>(in + rb * cols, cols, n, src, row, acc);
#pragma unroll
    for (int r = 0; r < N; ++r) {
      if (r >= n)
        break;
      done(rb + r, acc, r);
    }
  }
}

/// Output features per warp: the up kernel's gate and linear rows of two
/// features, the down kernel's rows of four, share each load of the
/// activations.
constexpr int kUpFeatures = 2;
constexpr int kDownFeatures = 4;

/// h[r, o] = act(gate · x[r]) (· linear) for the rows r of expert
/// blockIdx.y, for this warp's kUpFeatures FFN columns o; every matrix
/// loaded as Kind, at most N rows of an expert per pass.
template <int Kind, int N, bool Linear>
__global__ void upKernel(const float *x, int64_t hidden,
                         const int64_t *offsets, int64_t ffn, ExpertBank w1,
                         ExpertBank w3, const float *b1, const float *b3,
                         uint64_t pruned, ActivationParams act, float *h) {
  constexpr int F = kUpFeatures, R = Linear ? 2 * F : F;
  const int e = int(blockIdx.y);
  const int64_t r0 = offsets[e], r1 = offsets[e + 1];
  if (r1 <= r0 || ((pruned >> e) & 1u))
    return;
  const int64_t o0 =
      (blockIdx.x * int64_t(kWarps) + threadIdx.x / 32) * int64_t(F);
  if (o0 >= ffn)
    return;
  const bool fused = act.fusion != 0;
  const int64_t width = fused ? 2 * ffn : ffn; // rows of w1
  const Source gate = sourceOf(w1, e);
  const Source lin = fused ? gate : Linear ? sourceOf(w3, e) : Source();
  Source src[R];
  int64_t row[R];
  float bias[R];
#pragma unroll
  for (int f = 0; f < F; ++f) {
    // A feature past the end reads feature o0's rows; it is not written.
    const int64_t o = o0 + f < ffn ? o0 + f : o0;
    const int64_t gateRow = act.fusion == 1 ? 2 * o : o;
    src[f] = gate;
    row[f] = gateRow;
    bias[f] = b1 ? b1[e * width + gateRow] : 0.0f;
    if (Linear) {
      const int64_t linRow =
          act.fusion == 1 ? 2 * o + 1 : fused ? ffn + o : o;
      src[F + f] = lin;
      row[F + f] = linRow;
      bias[F + f] = fused ? (b1 ? b1[e * width + linRow] : 0.0f)
                          : (b3 ? b3[e * ffn + o] : 0.0f);
    }
  }
  const int lane = threadIdx.x % 32;
  forPasses<Kind, N, R>(
      x, hidden, r0, r1, src, row,
      [&](int64_t t, const float (&acc)[R][N], int r) {
#pragma unroll
        for (int f = 0; f < F; ++f) {
          // Without a linear part, acc has only the F gate rows.
          const float g = warpSum(acc[f][r]) + bias[f];
          const float l = Linear ? warpSum(acc[(F + f) % R][r]) +
                                       bias[(F + f) % R]
                                 : 0.0f;
          if (lane == 0 && o0 + f < ffn)
            h[t * ffn + o0 + f] = expertActivate(g, l, Linear, act);
        }
      });
}

/// y[r, o] = h[r] · w2[e][o] (+ b2) for the rows r of expert blockIdx.y,
/// for this warp's kDownFeatures hidden columns o.
template <int Kind, int N>
__global__ void downKernel(const float *h, int64_t ffn,
                           const int64_t *offsets, int64_t hidden,
                           ExpertBank w2, const float *b2, uint64_t pruned,
                           float *y) {
  constexpr int F = kDownFeatures;
  const int e = int(blockIdx.y);
  const int64_t r0 = offsets[e], r1 = offsets[e + 1];
  if (r1 <= r0 || ((pruned >> e) & 1u))
    return; // y was zeroed
  const int64_t o0 =
      (blockIdx.x * int64_t(kWarps) + threadIdx.x / 32) * int64_t(F);
  if (o0 >= hidden)
    return;
  const Source w = sourceOf(w2, e);
  Source src[F];
  int64_t row[F];
  float bias[F];
#pragma unroll
  for (int f = 0; f < F; ++f) {
    const int64_t o = o0 + f < hidden ? o0 + f : o0;
    src[f] = w;
    row[f] = o;
    bias[f] = b2 ? b2[e * hidden + o] : 0.0f;
  }
  const int lane = threadIdx.x % 32;
  forPasses<Kind, N, F>(
      h, ffn, r0, r1, src, row,
      [&](int64_t t, const float (&acc)[F][N], int r) {
#pragma unroll
        for (int f = 0; f < F; ++f) {
          const float v = warpSum(acc[f][r]) + bias[f];
          if (lane == 0 && o0 + f < hidden)
            y[t * hidden + o0 + f] = v;
        }
      });
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
      Up{dim3(unsigned((ffn + kWarps * kUpFeatures - 1) /
                  (kWarps * kUpFeatures)),
              unsigned(experts)),
         act.fusion != 0 || w3 != nullptr, x, hidden, offsets, ffn, w1, w3b,
         b1, b3, pruned, act, h, stream});
  MOE_RETURN_IF_ERROR(checkLaunch("upKernel launch"));
  withKindAndRows(
      bankLoadKind(w2, experts, ffn), rows,
      Down{dim3(unsigned((hidden + kWarps * kDownFeatures - 1) /
                    (kWarps * kDownFeatures)),
                unsigned(experts)),
           h, ffn, offsets, hidden, w2, b2, pruned, y, stream});
  return checkLaunch("downKernel launch");
}

} // namespace moe::cuda
