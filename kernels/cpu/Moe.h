//===- Moe.h - Mixture-of-Experts kernels on the CPU ------------*- C++ -*-===//
//
// route → dispatch → experts → combine (docs/plan-format.md, "Experts").
// Data-dependent errors (an expert id out of range, inconsistent offsets)
// are returned as Status.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CPU_MOE_H
#define MOE_KERNELS_CPU_MOE_H

#include "kernels/cpu/Common.h"
#include "kernels/cpu/Quant.h"
#include "runtime/Status.h"

#include <cmath>

namespace moe::kernels::cpu {

enum class Scoring { Softmax, Sigmoid };

/// p[E] = scoring(row[E]): softmax over the experts, or a sigmoid each.
void routeScores(const float *row, int64_t experts, Scoring scoring, float *p);

/// The router's order of experts by score: larger first, NaN last, ties to
/// the lower id (a strict weak order even with NaN).
inline bool routeBefore(const float *p, int64_t a, int64_t b) {
  bool na = std::isnan(p[a]), nb = std::isnan(p[b]);
  if (na != nb)
    return nb;
  if (!na && p[a] != p[b])
    return p[a] > p[b];
  return a < b;
}

/// ids[T, k] = top-k experts of scoring(logits[t]) (larger first, ties to the
/// lower id; NaN scores last), weights[T, k] = their scores, divided by their
/// sum when `normalize`. Requires 1 ≤ k ≤ E.
rt::Status route(const float *logits, int64_t tokens, int64_t experts,
                 int64_t k, Scoring scoring, bool normalize, int64_t *ids,
                 float *weights);

/// Expert pruning applied by the router (docs/plan-format.md, moe.route).
/// Every field at its default leaves route() as it is, bit for bit.
struct RoutePruning {
  /// E entries or null: 1 marks an expert removed by static pruning; a
  /// token's choices are then its best remaining experts.
  const uint8_t *excluded = nullptr;
  /// Token level (MC-MoE): a choice other than a token's first whose share
  /// of the token's routing weight is below this is skipped (id -1).
  float skipThreshold = 0.0f;
  /// ... unless the token is important: its first choice's share is below
  /// this (the router is unsure), and it keeps every choice.
  float protectConfidence = 0.0f;
  /// Batch level (Lynx): run at most this many distinct experts per call
  /// (0: no cap; at least k are kept) ...
  int64_t maxExperts = 0;
  /// ... or the fewest experts holding this share of the batch's routing
  /// mass (0: off; with both, the smaller set).
  float batchMass = 0.0f;
  /// The batch of the batch-level policy: 0, every token of the call; N,
  /// tokens t and t' are in one batch when t ≡ t' (mod N). With the tokens
  /// of [B, S] sequences (N = S), each batch is one position of the B
  /// sequences: the tokens one decode step of B sequences routes.
  int64_t batchStride = 0;
  /// Batch level: every expert that is some token's first choice stays,
  /// whatever the cap (Lynx's observation: a token's first expert matters
  /// most; its later choices can be re-mapped at little cost).
  bool keepFirst = false;
  bool active() const {
    return excluded || skipThreshold > 0 || maxExperts > 0 || batchMass > 0;
  }
};

/// route() with pruning: the choices come from the experts not excluded and,
/// with a batch cap, kept for the batch (each token takes its best k of
/// those); their weights are rescaled to the sum the token's unpruned top-k
/// would have had (1 with `normalize`); then token-level skipping drops weak
/// secondary choices (id -1, weight 0) and rescales the rest to that sum.
rt::Status routePruned(const float *logits, int64_t tokens, int64_t experts,
                       int64_t k, Scoring scoring, bool normalize,
                       const RoutePruning &pruning, int64_t *ids,
                       float *weights);

/// Stable counting sort of the T·k (token, slot) pairs by expert:
/// perm[r] = t·k + slot, rows[r] = hidden[t], offsets[E+1]. Pairs with id
/// -1 (skipped by pruning) come last, after offsets[E], with zero rows.
rt::Status dispatch(const float *hidden, int64_t tokens, int64_t hidden_size,
                    const int64_t *ids, int64_t k, int64_t experts,
                    float *rows, int64_t *offsets, int64_t *perm);

/// Gelu is exact (erf), GeluTanh the tanh approximation; Swiglu pairs a
/// gate and a linear part (ExpertActivation).
enum class Activation { Silu, Gelu, Relu, GeluTanh, Identity, Swiglu };

/// The expert activation with ONNX Runtime's SwiGLU parameters (which the
/// other activations ignore). SwiGLU, per FFN column i, from the gate g and
/// the linear part l: G = min(g, limit), L = clamp(l, -limit, limit),
/// h = G · sigmoid(alpha · G) · (L + beta).
struct ExpertActivation {
  Activation kind = Activation::Silu;
  float alpha = 1.0f;
  float beta = 0.0f;
  float limit = INFINITY; ///< no clamp when infinite
  /// Where g and l come from: 0: w1 and w3; 1: w1 [2F, H] with rows
  /// interleaved (g, l, g, l, ...); 2: w1 [2F, H], all g rows then all l.
  int fusion = 0;
  bool fused() const { return kind == Activation::Swiglu && fusion != 0; }
};

/// SwiGLU of one (gate, linear) pair, in float as ONNX Runtime computes it.
float swiglu(float gate, float linear, const ExpertActivation &act);

/// One packed weight bank: expert e's matrix is at base + offsets[e] in
/// formats[e] (Quant.h); experts may mix formats, plain (bits 0) included.
struct PackedBank {
  const uint8_t *base = nullptr; ///< null: the bank is not packed
  const uint64_t *offsets = nullptr; ///< E entries, bytes from base
  const QuantFormat *formats = nullptr; ///< E entries
  bool present() const { return base != nullptr; }
};

/// The weights of moe.experts; optional ones are null. A weight given as a
/// packed bank (w1p, w2p, w3p) replaces the dense one of the same name.
/// With a fused SwiGLU, w1 is [E, 2F, H] and b1 [E, 2F].
struct ExpertWeights {
  const float *w1 = nullptr; ///< [E, F, H] (fused: [E, 2F, H])
  const float *w2 = nullptr; ///< [E, H, F]
  const float *w3 = nullptr; ///< [E, F, H]
  const float *b1 = nullptr; ///< [E, F] (fused: [E, 2F])
  const float *b2 = nullptr; ///< [E, H]
  const float *b3 = nullptr; ///< [E, F]
  PackedBank w1p, w2p, w3p; ///< per expert [F or 2F, H], [H, F], [F, H]
  bool hasW3() const { return w3 || w3p.present(); }
};

/// y[R, H]: for each expert e and each row x of offsets[e] .. offsets[e+1]:
/// h = act(x·w1ᵀ + b1) (⊙ (x·w3ᵀ + b3) with w3), or for Swiglu
/// h = swiglu(g, l) with g and l as `activation.fusion` says; then
/// y = h·w2ᵀ + b2. `ffn` is F (w2's last dimension). Rows of an expert with
/// pruned[e] != 0 are zeros (`pruned` may be null). The offsets must start
/// at 0, not decrease and end at R.
rt::Status experts(const float *x, int64_t rows, int64_t hidden_size,
                   const int64_t *offsets, int64_t numExperts, int64_t ffn,
                   const ExpertWeights &weights,
                   const ExpertActivation &activation, const uint8_t *pruned,
                   float *y);

/// out[T, H]: out[t] = Σ over rows r with perm[r] / k == t of
/// weights[perm[r]] · y[r], rows summed in increasing r.
rt::Status combine(const float *y, int64_t rows, int64_t hidden_size,
                   const int64_t *perm, const float *weights, int64_t tokens,
                   int64_t k, float *out);

} // namespace moe::kernels::cpu

#endif // MOE_KERNELS_CPU_MOE_H
