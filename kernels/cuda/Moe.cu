//===- Moe.cu - Mixture-of-Experts kernels on CUDA ------------------------===//

#include "kernels/cuda/Moe.h"

#include "kernels/cuda/Activation.cuh"
#include "kernels/cuda/BlockReduce.cuh"
#include "kernels/cuda/CudaCheck.h"

#include <cmath>

namespace moe::cuda {
namespace {

/// kernels::cpu::routeBefore on the device: larger first, NaN last, ties
/// to the lower id.
__device__ bool before(const float *p, int a, int b) {
  bool na = isnan(p[a]), nb = isnan(p[b]);
  if (na != nb)
    return nb;
  if (!na && p[a] != p[b])
    return p[a] > p[b];
  return a < b;
}

/// One block per token: scores in shared memory, then thread 0 selects.
__global__ void routeKernel(const float *logits, int experts, int k,
                            bool sigmoid, bool normalize, int64_t *ids,
                            float *weights) {
  extern __shared__ float shared[];
  float *p = shared;                             // [E]
  unsigned char *taken = reinterpret_cast<unsigned char *>(p + experts);
  __shared__ float scratch[32];
  const int64_t t = blockIdx.x;
  const float *row = logits + t * experts;
  if (!sigmoid) {
    float mx = -INFINITY;
    for (int e = threadIdx.x; e < experts; e += blockDim.x)
      mx = fmaxf(mx, row[e]);
    mx = blockMax(mx, scratch);
    if (isinf(mx) && mx < 0)
      mx = 0;
    float sum = 0;
    for (int e = threadIdx.x; e < experts; e += blockDim.x) {
      p[e] = expf(row[e] - mx);
      sum += p[e];
    }
    sum = blockSum(sum, scratch);
    for (int e = threadIdx.x; e < experts; e += blockDim.x)
      p[e] /= sum;
  } else {
    for (int e = threadIdx.x; e < experts; e += blockDim.x)
      p[e] = 1.0f / (1.0f + expf(-row[e]));
  }
  for (int e = threadIdx.x; e < experts; e += blockDim.x)
    taken[e] = 0;
  __syncthreads();
  if (threadIdx.x != 0)
    return;
  float total = 0;
  for (int s = 0; s < k; ++s) {
    int best = -1;
    for (int e = 0; e < experts; ++e)
      if (!taken[e] && (best < 0 || before(p, e, best)))
        best = e;
    taken[best] = 1;
    ids[t * k + s] = best;
    weights[t * k + s] = p[best];
    total += p[best];
  }
  if (normalize)
    for (int s = 0; s < k; ++s)
      weights[t * k + s] /= total;
}

/// Block b < E collects the pairs routed to expert b, block E the others
/// (id -1, or out of range), in pair order (a block-wide ballot scan keeps the sort stable); the
/// ranks are written to perm after offsets[b]. counts[E + 1] was filled by
/// countKernel and offsets by scanKernel.
__global__ void countKernel(const int64_t *ids, int64_t pairs, int experts,
                            int *counts) {
  int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (p >= pairs)
    return;
  int64_t e = ids[p];
  if (e >= 0 && e < experts) {
    atomicAdd(&counts[e], 1);
    return;
  }
  // -1 (skipped) and, so that perm stays a permutation whatever the ids,
  // ids out of range (also counted as errors) go last with zero rows.
  atomicAdd(&counts[experts], 1);
  if (e != -1)
    atomicAdd(&counts[experts + 1], 1);
}

__global__ void scanKernel(const int *counts, int experts, int64_t *offsets,
                           int64_t *bad, int *errorFlags) {
  int64_t acc = 0;
  for (int e = 0; e < experts; ++e) {
    offsets[e] = acc;
    acc += counts[e];
  }
  offsets[experts] = acc;
  bad[0] = counts[experts + 1];
  if (errorFlags && counts[experts + 1] > 0)
    atomicOr(errorFlags, kErrorExpertId);
}

__global__ void placeKernel(const int64_t *ids, int64_t pairs, int experts,
                            const int64_t *offsets, int64_t *perm) {
  __shared__ int warpTotals[32];
  __shared__ int64_t base;
  const int target = blockIdx.x == unsigned(experts) ? -1 : int(blockIdx.x);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int warps = blockDim.x / 32;
  if (threadIdx.x == 0)
    base = blockIdx.x == unsigned(experts) ? offsets[experts]
                                           : offsets[blockIdx.x];
  __syncthreads();
  for (int64_t c = 0; c < pairs; c += blockDim.x) {
    int64_t p = c + threadIdx.x;
    bool mine = false;
    if (p < pairs) {
      int64_t id = ids[p];
      mine = target >= 0 ? id == target : (id < 0 || id >= experts);
    }
    unsigned ballot = __ballot_sync(0xffffffffu, mine);
    int inWarp = __popc(ballot & ((1u << lane) - 1u));
    if (lane == 0)
      warpTotals[warp] = __popc(ballot);
    __syncthreads();
    int prior = 0, total = 0;
    for (int w = 0; w < warps; ++w) {
      if (w < warp)
        prior += warpTotals[w];
      total += warpTotals[w];
    }
    if (mine)
      perm[base + prior + inWarp] = p;
    __syncthreads();
    if (threadIdx.x == 0)
      base += total;
    __syncthreads();
  }
}

/// rows[r] = hidden[perm[r] / k] for r < valid, zeros after.
__global__ void gatherRowsKernel(const float *hidden, int64_t hiddenSize,
                                 const int64_t *perm, int64_t k,
                                 const int64_t *offsets, int experts,
                                 int64_t rows, float *out) {
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= rows * hiddenSize)
    return;
  int64_t r = i / hiddenSize, h = i % hiddenSize;
  out[i] = r < offsets[experts] ? hidden[(perm[r] / k) * hiddenSize + h] : 0.0f;
}

__global__ void inverseKernel(const int64_t *perm, int64_t rows,
                              int64_t *inverse) {
  int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (r < rows)
    inverse[perm[r]] = r;
}

/// out[t, h] of moe.combine from the inverse of perm: token t's k rows
/// summed in increasing row order, as the CPU does (k ≤ 16).
__device__ float combineOne(const float *y, int64_t hiddenSize,
                            const int64_t *inverse, const float *weights,
                            int64_t t, int64_t h, int k) {
  // The rows in increasing order, by selection (rows are distinct; no
  // local arrays: each step takes the smallest row above the last).
  float acc = 0;
  int64_t last = -1;
  for (int step = 0; step < k; ++step) {
    int64_t best = INT64_MAX;
    int bj = 0;
    for (int j = 0; j < k; ++j) {
      const int64_t rj = inverse[t * k + j];
      if (rj > last && rj < best) {
        best = rj;
        bj = j;
      }
    }
    acc += weights[t * k + bj] * y[best * hiddenSize + h];
    last = best;
  }
  return acc;
}

/// One thread per (token, column).
__global__ void combineKernel(const float *y, int64_t hiddenSize,
                              const int64_t *inverse, const float *weights,
                              int64_t tokens, int k, float *out) {
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= tokens * hiddenSize)
    return;
  out[i] = combineOne(y, hiddenSize, inverse, weights, i / hiddenSize,
                      i % hiddenSize, k);
}

__global__ void activationKernel(const float *g, const float *l, int64_t n,
                                 int64_t ffn, ActivationParams a, float *h) {
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n * ffn)
    return;
  int64_t r = i / ffn, c = i % ffn;
  float gate, lin = 0;
  if (a.fusion == 1) {
    gate = g[r * 2 * ffn + 2 * c];
    lin = g[r * 2 * ffn + 2 * c + 1];
  } else if (a.fusion == 2) {
    gate = g[r * 2 * ffn + c];
    lin = g[r * 2 * ffn + ffn + c];
  } else {
    gate = g[i];
    if (l)
      lin = l[i];
  }
  h[i] = expertActivate(gate, lin, a.fusion != 0 || l != nullptr, a);
}

constexpr unsigned kThreads = 256;

/// Decode-sized dispatch in one launch (at most kDecodeMaxRows pairs and
/// kDecodeMaxExperts experts): thread 0 counts, scans and places the pairs
/// in the same stable order as the general kernels (bad ids with the
/// skipped ones, flagged), then the block copies the rows.
__global__ void dispatchSmallKernel(const float *hidden, int64_t hiddenSize,
                                    const int64_t *ids, int64_t pairs,
                                    int64_t k, int experts, float *rows,
                                    int64_t *offsets, int64_t *perm,
                                    int *errorFlags) {
  __shared__ int64_t permS[kDecodeMaxRows];
  __shared__ int64_t valid;
  if (threadIdx.x == 0) {
    int64_t at = 0;
    int bad = 0;
    for (int e = 0; e < experts; ++e) {
      offsets[e] = at;
      for (int64_t p = 0; p < pairs; ++p)
        if (ids[p] == e)
          permS[at++] = p;
    }
    offsets[experts] = at;
    valid = at;
    for (int64_t p = 0; p < pairs; ++p) {
      int64_t id = ids[p];
      if (id < 0 || id >= experts) {
        permS[at++] = p;
        bad += id != -1;
      }
    }
    if (bad && errorFlags)
      atomicOr(errorFlags, kErrorExpertId);
  }
  __syncthreads();
  for (int64_t i = threadIdx.x; i < pairs; i += blockDim.x)
    perm[i] = permS[i];
  for (int64_t i = threadIdx.x; i < pairs * hiddenSize; i += blockDim.x) {
    int64_t r = i / hiddenSize, h = i % hiddenSize;
    rows[i] = r < valid ? hidden[(permS[r] / k) * hiddenSize + h] : 0.0f;
  }
}

/// Decode-sized combine in one launch: each block inverts perm (at most
/// kDecodeMaxRows entries) in shared memory, then sums as combineKernel.
__global__ void combineSmallKernel(const float *y, int64_t hiddenSize,
                                   const int64_t *perm, int64_t rows,
                                   const float *weights, int64_t tokens,
                                   int k, float *out) {
  __shared__ int64_t inverse[kDecodeMaxRows];
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x)
    inverse[perm[r]] = r;
  __syncthreads();
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= tokens * hiddenSize)
    return;
  out[i] = combineOne(y, hiddenSize, inverse, weights, i / hiddenSize,
                      i % hiddenSize, k);
}

} // namespace

rt::Status route(const float *logits, int64_t tokens, int64_t experts,
                 int64_t k, bool sigmoid, bool normalize, int64_t *ids,
                 float *weights, Stream stream) {
  if (k < 1 || k > experts)
    return rt::Status::error("k = " + std::to_string(k) + " is outside [1, " +
                             std::to_string(experts) + "]");
  if (tokens == 0)
    return rt::Status::ok();
  if (experts > 8192)
    return rt::Status::error("route: " + std::to_string(experts) +
                             " experts exceed the CUDA kernel's 8192");
  unsigned threads = experts >= 128 ? 128 : 32;
  size_t shared = size_t(experts) * (sizeof(float) + 1);
  routeKernel<<<unsigned(tokens), threads, shared, stream>>>(
      logits, int(experts), int(k), sigmoid, normalize, ids, weights);
  return checkLaunch("routeKernel launch");
}

rt::Status dispatch(const float *hidden, int64_t tokens, int64_t hiddenSize,
                    const int64_t *ids, int64_t k, int64_t experts,
                    float *rows, int64_t *offsets, int64_t *perm,
                    int64_t *hostOffsets, int *errorFlags, Stream stream) {
  const int64_t pairs = tokens * k;
  // Decode: one launch, nothing allocated, nothing waited for.
  if (!hostOffsets && decodeOnDevice(pairs, experts)) {
    dispatchSmallKernel<<<1, kThreads, 0, stream>>>(
        hidden, hiddenSize, ids, pairs, k, int(experts), rows, offsets, perm,
        errorFlags);
    return checkLaunch("dispatchSmallKernel launch");
  }
  int *counts = nullptr;
  int64_t *bad = nullptr;
  MOE_RETURN_IF_ERROR(check(
      cudaMallocAsync(reinterpret_cast<void **>(&counts),
                      sizeof(int) * size_t(experts + 3) + sizeof(int64_t),
                      stream),
      "cudaMallocAsync(dispatch counts)"));
  bad = reinterpret_cast<int64_t *>(counts + experts + 2 + (experts % 2));
  rt::Status st = [&]() -> rt::Status {
    MOE_RETURN_IF_ERROR(check(
        cudaMemsetAsync(counts, 0, sizeof(int) * size_t(experts + 2), stream),
        "cudaMemsetAsync(dispatch counts)"));
    if (pairs > 0) {
      countKernel<<<blocksFor(pairs, kThreads), kThreads, 0, stream>>>(
          ids, pairs, int(experts), counts);
      MOE_RETURN_IF_ERROR(checkLaunch("dispatch countKernel launch"));
    }
    scanKernel<<<1, 1, 0, stream>>>(counts, int(experts), offsets, bad,
                                    hostOffsets ? nullptr : errorFlags);
    MOE_RETURN_IF_ERROR(checkLaunch("dispatch scanKernel launch"));
    if (pairs > 0) {
      placeKernel<<<unsigned(experts + 1), kThreads, 0, stream>>>(
          ids, pairs, int(experts), offsets, perm);
      MOE_RETURN_IF_ERROR(checkLaunch("dispatch placeKernel launch"));
      gatherRowsKernel<<<blocksFor(pairs * hiddenSize, kThreads), kThreads, 0,
                         stream>>>(hidden, hiddenSize, perm, k, offsets,
                                   int(experts), pairs, rows);
      MOE_RETURN_IF_ERROR(checkLaunch("dispatch gatherRowsKernel launch"));
    }
    if (!hostOffsets)
      return rt::Status::ok();
    MOE_RETURN_IF_ERROR(check(
        cudaMemcpyAsync(hostOffsets, offsets,
                        sizeof(int64_t) * size_t(experts + 1),
                        cudaMemcpyDeviceToHost, stream),
        "cudaMemcpyAsync(dispatch offsets)"));
    return check(cudaMemcpyAsync(hostOffsets + experts + 1, bad,
                                 sizeof(int64_t), cudaMemcpyDeviceToHost,
                                 stream),
                 "cudaMemcpyAsync(dispatch check)");
  }();
  rt::Status freed =
      check(cudaFreeAsync(counts, stream), "cudaFreeAsync(dispatch counts)");
  MOE_RETURN_IF_ERROR(st);
  MOE_RETURN_IF_ERROR(freed);
  if (!hostOffsets)
    return rt::Status::ok();
  MOE_RETURN_IF_ERROR(
      check(cudaStreamSynchronize(stream), "cudaStreamSynchronize(dispatch)"));
  if (hostOffsets[experts + 1] != 0)
    return rt::Status::error(std::to_string(hostOffsets[experts + 1]) +
                             " expert ids are outside [-1, " +
                             std::to_string(experts) + ")");
  return rt::Status::ok();
}

rt::Status combine(const float *y, int64_t rows, int64_t hiddenSize,
                   const int64_t *perm, const float *weights, int64_t tokens,
                   int64_t k, float *out, int64_t *scratch, Stream stream) {
  if (k < 1 || k > 16)
    return rt::Status::error("combine: k = " + std::to_string(k) +
                             " is outside the CUDA kernel's [1, 16]");
  if (rows != tokens * k)
    return rt::Status::error("combine: " + std::to_string(rows) +
                             " rows for " + std::to_string(tokens) +
                             " tokens of " + std::to_string(k) + " experts");
  if (tokens == 0)
    return rt::Status::ok();
  if (rows <= kDecodeMaxRows) {
    combineSmallKernel<<<blocksFor(tokens * hiddenSize, kThreads), kThreads,
                         0, stream>>>(y, hiddenSize, perm, rows, weights,
                                      tokens, int(k), out);
    return checkLaunch("combineSmallKernel launch");
  }
  inverseKernel<<<blocksFor(rows, kThreads), kThreads, 0, stream>>>(
      perm, rows, scratch);
  MOE_RETURN_IF_ERROR(checkLaunch("combine inverseKernel launch"));
  combineKernel<<<blocksFor(tokens * hiddenSize, kThreads), kThreads, 0,
                  stream>>>(y, hiddenSize, scratch, weights, tokens, int(k),
                            out);
  return checkLaunch("combineKernel launch");
}

rt::Status expertActivation(const float *g, const float *l, int64_t n,
                            int64_t ffn, const ActivationParams &act,
                            float *h, Stream stream) {
  if (n == 0 || ffn == 0)
    return rt::Status::ok();
  activationKernel<<<blocksFor(n * ffn, kThreads), kThreads, 0, stream>>>(
      g, l, n, ffn, act, h);
  return checkLaunch("activationKernel launch");
}

} // namespace moe::cuda
