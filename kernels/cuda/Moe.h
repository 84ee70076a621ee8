//===- Moe.h - Mixture-of-Experts kernels on CUDA ---------------*- C++ -*-===//
//
// The device side of route → dispatch → experts → combine, with the CPU
// kernels' semantics (kernels/cpu/Moe.h); the expert GEMMs themselves are
// cuBLASLt calls (Blas.h). Pointers are device addresses unless named host;
// each call enqueues on `stream` and returns the launch's Status.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CUDA_MOE_H
#define MOE_KERNELS_CUDA_MOE_H

#include "kernels/cuda/Quant.h"
#include "kernels/cuda/Stream.h"
#include "runtime/Status.h"

#include <cstdint>

namespace moe::cuda {

/// ids[T, k], weights[T, k]: the top-k of softmax (or sigmoid) of each row
/// of logits[T, E], larger first, ties to the lower id, NaN last; weights
/// divided by their sum when `normalize`.
rt::Status route(const float *logits, int64_t tokens, int64_t experts,
                 int64_t k, bool sigmoid, bool normalize, int64_t *ids,
                 float *weights, Stream stream);

/// Device error flags (CudaDevice::errorFlags): what a kernel found that
/// the host learns after the run, when it waits anyway.
constexpr int kErrorExpertId = 1; ///< an expert id outside [-1, E)

/// The stable counting sort of moe.dispatch: perm[R], rows[R, H] (R = T·k),
/// offsets[E + 1], pairs with id -1 last with zero rows. With `hostOffsets`
/// (pinned, E + 2 entries), it receives the offsets and, in its last entry,
/// the number of ids outside [-1, E); the call waits for the stream and
/// fails on such an id, so that the expert GEMMs can be sized on the host.
/// Without (decode: the experts run from the device offsets), nothing
/// waits, and an id outside [-1, E) sets kErrorExpertId in `errorFlags`.
rt::Status dispatch(const float *hidden, int64_t tokens, int64_t hiddenSize,
                    const int64_t *ids, int64_t k, int64_t experts,
                    float *rows, int64_t *offsets, int64_t *perm,
                    int64_t *hostOffsets, int *errorFlags, Stream stream);

/// Decode-sized expert layers (at most kDecodeMaxRows rows, at most
/// kDecodeMaxExperts experts) run from the offsets on the device: no wait
/// for the host, and each used expert's weights read once.
constexpr int64_t kDecodeMaxRows = 32;
constexpr int64_t kDecodeMaxExperts = 64;
inline bool decodeOnDevice(int64_t rows, int64_t experts) {
  return rows <= kDecodeMaxRows && experts <= kDecodeMaxExperts;
}

/// One weight input of moe.experts as the decode kernels read it: each
/// expert's [rows, cols] matrix, f32, bf16, group-quantised or absent.
struct ExpertBank {
  enum Kind : uint8_t { F32 = 0, BF16 = 1, Quantised = 2, Absent = 3 };
  const void *data[kDecodeMaxExperts] = {};
  uint8_t kind[kDecodeMaxExperts] = {};
  QuantMatrix q[kDecodeMaxExperts];
};

/// out[T, H] = Σ over the rows r of token t (perm[r] / k == t), in
/// increasing r, of weights[perm[r]] · y[r]. `scratch` holds T·k entries.
rt::Status combine(const float *y, int64_t rows, int64_t hiddenSize,
                   const int64_t *perm, const float *weights, int64_t tokens,
                   int64_t k, float *out, int64_t *scratch, Stream stream);

/// The expert activation (kernels::cpu::ExpertActivation, as plain values).
struct ActivationParams {
  /// kernels::cpu::Activation: 0 silu, 1 gelu, 2 relu, 3 gelu_tanh,
  /// 4 identity, 5 swiglu.
  int kind = 0;
  float alpha = 1.0f, beta = 0.0f, limit = 0.0f;
  bool hasLimit = false;
  /// 0: gate and linear from w1 and w3; 1: interleaved rows of w1; 2: the
  /// gate rows of w1, then its linear rows.
  int fusion = 0;
};

/// h[n, F] from the first GEMM's outputs: with fusion 1 or 2, g[n, 2F]
/// holds both parts (l is null); with w3, h = act(g) · l (swiglu(g, l) for
/// swiglu); without, h = act(g) (l null). g and l are [n, F] otherwise.
rt::Status expertActivation(const float *g, const float *l, int64_t n,
                            int64_t ffn, const ActivationParams &act,
                            float *h, Stream stream);

/// moe.experts for decode (decodeOnDevice): y[R, H] from x[R, H] and the
/// device offsets[E + 1], as expertActivation and the GEMMs compute it, in
/// two kernels: w1 (and w3, or the fused SwiGLU halves) with the
/// activation into h[R, F] (scratch), then w2. Rows of pruned experts
/// (bit e of `pruned`) and rows after offsets[E] are zero. b1 [E, G],
/// b2 [E, H], b3 [E, F] may be null.
rt::Status expertsDecode(const float *x, int64_t rows, int64_t hidden,
                         const int64_t *offsets, int64_t experts, int64_t ffn,
                         const ExpertBank &w1, const ExpertBank &w2,
                         const ExpertBank *w3, const float *b1,
                         const float *b2, const float *b3, uint64_t pruned,
                         const ActivationParams &act, float *h, float *y,
                         Stream stream);

} // namespace moe::cuda

#endif // MOE_KERNELS_CUDA_MOE_H
