//===- Moe.cpp - Mixture-of-Experts kernels on the CPU --------------------===//

#include "kernels/cpu/Moe.h"
#include "kernels/cpu/VecMath.h"
#include "kernels/cpu/Elementwise.h"
#include "kernels/cpu/Matmul.h"
#include "kernels/cpu/QuantFast.h"

#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

namespace moe::kernels::cpu {

void routeScores(const float *row, int64_t experts, Scoring scoring,
                 float *p) {
  if (scoring == Scoring::Softmax) {
    float mx = -INFINITY;
    for (int64_t e = 0; e < experts; ++e)
      mx = std::fmax(mx, row[e]);
    if (std::isinf(mx) && mx < 0)
      mx = 0;
    float sum = 0;
    for (int64_t e = 0; e < experts; ++e)
      sum += p[e] = std::exp(row[e] - mx);
    for (int64_t e = 0; e < experts; ++e)
      p[e] /= sum;
  } else {
    for (int64_t e = 0; e < experts; ++e)
      p[e] = 1.0f / (1.0f + std::exp(-row[e]));
  }
}

rt::Status route(const float *logits, int64_t tokens, int64_t experts,
                 int64_t k, Scoring scoring, bool normalize, int64_t *ids,
                 float *weights) {
  if (k < 1 || k > experts)
    return rt::Status::error("k = " + std::to_string(k) + " is outside [1, " +
                             std::to_string(experts) + "]");
  parallelFor(tokens, experts * 8, [&](int64_t begin, int64_t end) {
    std::vector<float> p(experts);
    std::vector<int64_t> order(experts);
    for (int64_t t = begin; t < end; ++t) {
      routeScores(logits + t * experts, experts, scoring, p.data());
      for (int64_t e = 0; e < experts; ++e)
        order[e] = e;
      std::partial_sort(
          order.begin(), order.begin() + k, order.end(),
          [&](int64_t a, int64_t b) { return routeBefore(p.data(), a, b); });
      float sum = 0;
      for (int64_t s = 0; s < k; ++s)
        sum += p[order[s]];
      for (int64_t s = 0; s < k; ++s) {
        ids[t * k + s] = order[s];
        weights[t * k + s] = normalize ? p[order[s]] / sum : p[order[s]];
      }
    }
  });
  return rt::Status::ok();
}

rt::Status routePruned(const float *logits, int64_t tokens, int64_t experts,
                       int64_t k, Scoring scoring, bool normalize,
                       const RoutePruning &pruning, int64_t *ids,
                       float *weights) {
  if (k < 1 || k > experts)
    return rt::Status::error("k = " + std::to_string(k) + " is outside [1, " +
                             std::to_string(experts) + "]");
  int64_t kept = 0;
  for (int64_t e = 0; e < experts; ++e)
    kept += !(pruning.excluded && pruning.excluded[e]);
  if (kept < k)
    return rt::Status::error("pruning leaves " + std::to_string(kept) +
                             " experts, fewer than k = " + std::to_string(k));
  // Scores of every token, as route() computes them.
  std::vector<float> p(size_t(tokens * experts));
  std::vector<int64_t> unprunedIds(size_t(tokens * k));
  std::vector<float> unprunedWeights(size_t(tokens * k));
  parallelFor(tokens, experts * 8, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t)
      routeScores(logits + t * experts, experts, scoring,
                  p.data() + t * experts);
  });
  // The unpruned choice fixes each token's total weight.
  MOE_RETURN_IF_ERROR(route(logits, tokens, experts, k, scoring, normalize,
                            unprunedIds.data(), unprunedWeights.data()));
  // Allowed experts: not excluded, and within the batch's kept set.
  std::vector<uint8_t> allowed(size_t(experts), 1);
  if (pruning.excluded)
    for (int64_t e = 0; e < experts; ++e)
      allowed[size_t(e)] = !pruning.excluded[e];
  auto before = [](const float *pr) {
    return [pr](int64_t a, int64_t b) { return routeBefore(pr, a, b); };
  };
  // Batches of the batch-level policy, each with its allowed experts.
  bool batchLevel = pruning.maxExperts > 0 || pruning.batchMass > 0;
  int64_t numBatches =
      batchLevel && pruning.batchStride > 0
          ? std::max<int64_t>(1, std::min(pruning.batchStride, tokens))
          : 1;
  auto batchOf = [&](int64_t t) {
    return numBatches > 1 ? t % pruning.batchStride : 0;
  };
  std::vector<std::vector<uint8_t>> allowedIn(size_t(numBatches), allowed);
  auto choose = [&](int64_t t, const std::vector<uint8_t> &ok,
                    std::vector<int64_t> &order) {
    const float *pr = p.data() + t * experts;
    order.clear();
    for (int64_t e = 0; e < experts; ++e)
      if (ok[size_t(e)])
        order.push_back(e);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      before(pr));
  };
  if (batchLevel) {
    // Routing mass each allowed expert receives from the batch's choices.
    std::vector<std::vector<double>> mass(
        static_cast<size_t>(numBatches),
        std::vector<double>(static_cast<size_t>(experts), 0.0));
    // Experts that are some token's first choice (Lynx: the first choice
    // carries most of a token's output; later ones can be re-mapped).
    std::vector<std::vector<uint8_t>> first(
        static_cast<size_t>(numBatches),
        std::vector<uint8_t>(static_cast<size_t>(experts), 0));
    std::vector<int64_t> order;
    for (int64_t t = 0; t < tokens; ++t) {
      choose(t, allowed, order);
      if (pruning.keepFirst)
        first[size_t(batchOf(t))][size_t(order[0])] = 1;
      for (int64_t s = 0; s < k; ++s) {
        float v = p[size_t(t * experts + order[size_t(s)])];
        if (!std::isnan(v))
          mass[size_t(batchOf(t))][size_t(order[size_t(s)])] += v;
      }
    }
    for (int64_t g = 0; g < numBatches; ++g) {
      const std::vector<double> &m = mass[size_t(g)];
      const std::vector<uint8_t> &f = first[size_t(g)];
      std::vector<int64_t> byMass;
      double total = 0;
      int64_t firsts = 0;
      for (int64_t e = 0; e < experts; ++e)
        if (allowed[size_t(e)]) {
          byMass.push_back(e);
          total += m[size_t(e)];
          firsts += f[size_t(e)];
        }
      // First choices first, then by mass.
      std::stable_sort(byMass.begin(), byMass.end(),
                       [&](int64_t a, int64_t b) {
                         if (f[size_t(a)] != f[size_t(b)])
                           return f[size_t(a)] > f[size_t(b)];
                         return m[size_t(a)] > m[size_t(b)];
                       });
      int64_t cap = int64_t(byMass.size());
      if (pruning.maxExperts > 0)
        cap = std::min(cap, pruning.maxExperts);
      if (pruning.batchMass > 0) {
        double acc = 0;
        int64_t need = 0;
        while (need < int64_t(byMass.size()) &&
               acc < double(pruning.batchMass) * total)
          acc += m[size_t(byMass[size_t(need++)])];
        cap = std::min(cap, need);
      }
      cap = std::max({cap, k, firsts});
      std::vector<uint8_t> &ok = allowedIn[size_t(g)];
      std::fill(ok.begin(), ok.end(), 0);
      for (int64_t i = 0; i < cap; ++i)
        ok[size_t(byMass[size_t(i)])] = 1;
    }
  }
  parallelFor(tokens, experts * 8, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> order;
    for (int64_t t = begin; t < end; ++t) {
      const float *pr = p.data() + t * experts;
      choose(t, allowedIn[size_t(batchOf(t))], order);
      float target = 0;
      for (int64_t s = 0; s < k; ++s)
        target += unprunedWeights[size_t(t * k + s)];
      float sum = 0;
      for (int64_t s = 0; s < k; ++s)
        sum += pr[order[size_t(s)]];
      float *w = weights + t * k;
      int64_t *id = ids + t * k;
      for (int64_t s = 0; s < k; ++s) {
        id[s] = order[size_t(s)];
        w[s] = sum > 0 ? pr[order[size_t(s)]] * (target / sum) : 0.0f;
      }
      if (pruning.skipThreshold > 0 && target > 0 &&
          !(w[0] / target < pruning.protectConfidence)) {
        float keptSum = w[0];
        for (int64_t s = 1; s < k; ++s) {
          if (w[s] / target < pruning.skipThreshold) {
            id[s] = -1;
            w[s] = 0.0f;
          }
          keptSum += w[s];
        }
        if (keptSum > 0 && keptSum != target)
          for (int64_t s = 0; s < k; ++s)
            w[s] *= target / keptSum;
      }
    }
  });
  return rt::Status::ok();
}

rt::Status dispatch(const float *hidden, int64_t tokens, int64_t hidden_size,
                    const int64_t *ids, int64_t k, int64_t experts,
                    float *rows, int64_t *offsets, int64_t *perm) {
  int64_t pairs = tokens * k;
  // cursor[e + 1] counts expert e; skipped pairs (id -1) go to bucket E.
  std::vector<int64_t> cursor(experts + 2, 0);
  for (int64_t p = 0; p < pairs; ++p) {
    if (ids[p] < -1 || ids[p] >= experts)
      return rt::Status::error(
          "expert id " + std::to_string(ids[p]) + " of token " +
          std::to_string(p / k) + " slot " + std::to_string(p % k) +
          " is outside [0, " + std::to_string(experts) + ")");
    ++cursor[ids[p] < 0 ? experts + 1 : ids[p] + 1];
  }
  for (int64_t e = 0; e <= experts; ++e)
    cursor[e + 1] += cursor[e];
  std::copy(cursor.begin(), cursor.begin() + experts + 1, offsets);
  // Pairs visited in (token, slot) order: the sort is stable.
  for (int64_t p = 0; p < pairs; ++p)
    perm[cursor[ids[p] < 0 ? experts : ids[p]]++] = p;
  size_t rowBytes = size_t(hidden_size) * sizeof(float);
  int64_t used = offsets[experts];
  parallelFor(pairs, hidden_size, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      if (!rowBytes)
        continue;
      if (r < used)
        std::memcpy(rows + r * hidden_size,
                    hidden + (perm[r] / k) * hidden_size, rowBytes);
      else
        std::memset(rows + r * hidden_size, 0, rowBytes);
    }
  });
  return rt::Status::ok();
}

float swiglu(float gate, float linear, const ExpertActivation &act) {
  // ONNX Runtime's order of operations (contrib_ops/cpu/moe/moe_utils.cc).
  // std::min and std::clamp as there: a NaN gate or linear stays NaN.
  gate = std::min(gate, act.limit);
  linear = linear < -act.limit  ? -act.limit
           : act.limit < linear ? act.limit
                                : linear;
  float sigmoid = 1.0f / (1.0f + std::exp(-(act.alpha * gate)));
  return gate * sigmoid * (linear + act.beta);
}

namespace {

float activate(Activation a, float v) {
  switch (a) {
  case Activation::Silu:
    return applyUnary(UnaryOp::Silu, v);
  case Activation::Gelu:
    return applyUnary(UnaryOp::GeluErf, v);
  case Activation::GeluTanh:
    return applyUnary(UnaryOp::GeluTanh, v);
  case Activation::Relu:
    return v > 0 ? v : 0.0f;
  case Activation::Identity:
  case Activation::Swiglu: // paired, never applied to one value
    return v;
  }
  return v;
}

/// y[:, c0:c1] of x[n, k] times expert e's [out, k] matrix of a bank that
/// is either dense (`dense`, experts contiguous) or packed; `prepared`: x
/// prepared for the packed decode product (shared by all column blocks).
void expertLinear(const float *x, int64_t n, int64_t k, const float *dense,
                  const PackedBank &packed, int64_t e, int64_t out,
                  const float *bias, float *y, int64_t c0, int64_t c1,
                  const PackedActivations *prepared = nullptr) {
  if (packed.present() && prepared && prepared->ready())
    linearPackedPrepared(*prepared, packed.base + packed.offsets[e],
                         packed.formats[e], out, bias, y, c0, c1);
  else if (packed.present())
    linearPackedSerial(x, n, k, packed.base + packed.offsets[e],
                       packed.formats[e], out, bias, y, c0, c1);
  else
    linearSerial(x, n, k, dense + e * out * k, out, bias, y, c0, c1);
}

/// Prepares x [n, k] once for the decode products of expert e with a packed
/// bank (nothing for dense banks or prefill rows); reuses `same` when it was
/// prepared for the same rows and format.
const PackedActivations *prepareFor(const float *x, int64_t n, int64_t k,
                                    const PackedBank &bank, int64_t e,
                                    PackedActivations &storage,
                                    const PackedActivations *same = nullptr) {
  if (!bank.present() || n >= kPackedDecodeRows)
    return nullptr;
  if (same && same->matches(x, n, k, bank.formats[e]))
    return same;
  return storage.prepare(x, n, k, bank.formats[e]) ? &storage : nullptr;
}

} // namespace

rt::Status experts(const float *x, int64_t rows, int64_t hidden_size,
                   const int64_t *offsets, int64_t numExperts, int64_t ffn,
                   const ExpertWeights &w, const ExpertActivation &act,
                   const uint8_t *pruned, float *y) {
  // Rows past offsets[E] are pairs skipped by pruning: their outputs are 0.
  if (offsets[0] != 0 || offsets[numExperts] > rows)
    return rt::Status::error("offsets run from " + std::to_string(offsets[0]) +
                             " to " + std::to_string(offsets[numExperts]) +
                             ", expected 0 to at most " + std::to_string(rows));
  if (offsets[numExperts] < rows)
    std::memset(y + offsets[numExperts] * hidden_size, 0,
                size_t((rows - offsets[numExperts]) * hidden_size) *
                    sizeof(float));
  for (int64_t e = 0; e < numExperts; ++e)
    if (offsets[e + 1] < offsets[e])
      return rt::Status::error("offsets decrease at expert " +
                               std::to_string(e));
  if (act.kind == Activation::Swiglu && act.fusion == 0 && !w.hasW3())
    return rt::Status::error("swiglu with swiglu_fusion 0 needs w3");
  if (act.fusion < 0 || act.fusion > 2)
    return rt::Status::error("swiglu_fusion " + std::to_string(act.fusion) +
                             " is not 0, 1 or 2");
  // Work items: (expert, block of rows); each item's products are parallel
  // again over output columns (nested TBB loops), so that few tokens still
  // use every thread.
  constexpr int64_t kBlock = 64;
  struct Item {
    int64_t expert, begin, end;
  };
  std::vector<Item> items;
  for (int64_t e = 0; e < numExperts; ++e)
    for (int64_t r = offsets[e]; r < offsets[e + 1]; r += kBlock)
      items.push_back({e, r, std::min(offsets[e + 1], r + kBlock)});
  int64_t H = hidden_size, F = ffn;
  const bool isSwiglu = act.kind == Activation::Swiglu;
  const bool fused = act.fused();
  // fc1 gives F columns, or 2F (gate and linear) when fused; w3 gives the
  // other factor of a gated activation (the linear part of swiglu 0).
  const int64_t F1 = fused ? 2 * F : F;
  const bool gated = !fused && w.hasW3();
  // Output columns per task: 64 for prefill blocks; for decode rows (few
  // tokens per expert, memory-bound) about 2 blocks per thread, so that each
  // thread streams long runs of weight rows (measured on one token of a
  // Mixtral-like layer, top-2 of 8, int4: 2 blocks per thread beat 4, 8 and
  // 16 by 4%, 7% and 11%).
  const int64_t threads =
      std::max<int64_t>(1, tbb::this_task_arena::max_concurrency());
  auto columns = [&](int64_t rowsIn, int64_t n, int64_t cost, auto &&body) {
    int64_t cols = 64;
    if (rowsIn < kPackedDecodeRows)
      cols = std::max<int64_t>(cols, (n + 2 * threads - 1) / (2 * threads));
    parallelFor((n + cols - 1) / cols, cost * cols,
                [&](int64_t b, int64_t e) {
                  body(b * cols, std::min(n, e * cols));
                });
  };
  parallelFor(int64_t(items.size()), kBlock * H * F * 3,
              [&](int64_t begin, int64_t end) {
    for (int64_t it = begin; it < end; ++it) {
      const Item &item = items[it];
      int64_t e = item.expert, n = item.end - item.begin;
      float *out = y + item.begin * H;
      if (pruned && pruned[e]) {
        std::fill(out, out + n * H, 0.0f);
        continue;
      }
      const float *xin = x + item.begin * H;
      const float *b1 = w.b1 ? w.b1 + e * F1 : nullptr;
      // u: fc1 output [n, F1]; g: fc3 output [n, F]; h: the activation
      // [n, F] (u itself unless fused).
      std::vector<float> u(size_t(n * F1)), g(gated ? size_t(n * F) : 0),
          hf(fused ? size_t(n * F) : 0);
      float *h = fused ? hf.data() : u.data();
      // Decode rows are prepared once per expert, not per column block.
      PackedActivations a1, a3, a2;
      const PackedActivations *x1 = prepareFor(xin, n, H, w.w1p, e, a1);
      const PackedActivations *x3 =
          gated ? prepareFor(xin, n, H, w.w3p, e, a3, x1) : nullptr;
      columns(n, F, n * H * (gated || fused ? 2 : 1),
              [&](int64_t c0, int64_t c1) {
        if (!fused) {
          expertLinear(xin, n, H, w.w1, w.w1p, e, F, b1, u.data(), c0, c1, x1);
        } else if (act.fusion == 1) {
          expertLinear(xin, n, H, w.w1, w.w1p, e, F1, b1, u.data(), 2 * c0,
                       2 * c1, x1);
        } else {
          expertLinear(xin, n, H, w.w1, w.w1p, e, F1, b1, u.data(), c0, c1,
                       x1);
          expertLinear(xin, n, H, w.w1, w.w1p, e, F1, b1, u.data(), F + c0,
                       F + c1, x1);
        }
        if (gated)
          expertLinear(xin, n, H, w.w3, w.w3p, e, F,
                       w.b3 ? w.b3 + e * F : nullptr, g.data(), c0, c1, x3);
        for (int64_t r = 0; r < n; ++r) {
          const float *ur = u.data() + r * F1;
          // Vectorised SwiGLU / SiLU (VecMath.h); the rest element by element.
          if (isSwiglu) {
            const float *gate = fused && act.fusion == 1 ? ur + 2 * c0 : ur + c0;
            const float *lin = fused ? (act.fusion == 1 ? ur + 2 * c0 + 1
                                                        : ur + F + c0)
                                     : g.data() + r * F + c0;
            int64_t stride = fused && act.fusion == 1 ? 2 : 1;
            swigluArray(gate, stride, lin, stride, h + r * F + c0, c1 - c0,
                        act.alpha, act.beta, act.limit);
            continue;
          }
          if (act.kind == Activation::Silu) {
            siluArray(ur + c0, gated ? g.data() + r * F + c0 : nullptr,
                      h + r * F + c0, c1 - c0);
            continue;
          }
          for (int64_t c = c0; c < c1; ++c) {
            float &hv = h[r * F + c];
            if (fused && act.fusion == 1)
              hv = swiglu(ur[2 * c], ur[2 * c + 1], act);
            else if (fused)
              hv = swiglu(ur[c], ur[F + c], act);
            else if (isSwiglu)
              hv = swiglu(ur[c], g[r * F + c], act);
            else if (gated)
              hv = activate(act.kind, ur[c]) * g[r * F + c];
            else
              hv = activate(act.kind, ur[c]);
          }
        }
      });
      const PackedActivations *x2 = prepareFor(h, n, F, w.w2p, e, a2);
      columns(n, H, n * F, [&](int64_t c0, int64_t c1) {
        expertLinear(h, n, F, w.w2, w.w2p, e, H,
                     w.b2 ? w.b2 + e * H : nullptr, out, c0, c1, x2);
      });
    }
  });
  return rt::Status::ok();
}

rt::Status combine(const float *y, int64_t rows, int64_t hidden_size,
                   const int64_t *perm, const float *weights, int64_t tokens,
                   int64_t k, float *out) {
  int64_t pairs = tokens * k;
  // Group rows by token (counting sort, stable in r) so that each token is
  // summed by one thread in a fixed order.
  std::vector<int64_t> start(tokens + 1, 0), byToken(rows);
  for (int64_t r = 0; r < rows; ++r) {
    if (perm[r] < 0 || perm[r] >= pairs)
      return rt::Status::error("perm[" + std::to_string(r) + "] = " +
                               std::to_string(perm[r]) + " is outside [0, " +
                               std::to_string(pairs) + ")");
    ++start[perm[r] / k + 1];
  }
  for (int64_t t = 0; t < tokens; ++t)
    start[t + 1] += start[t];
  std::vector<int64_t> cursor(start.begin(), start.end() - 1);
  for (int64_t r = 0; r < rows; ++r)
    byToken[cursor[perm[r] / k]++] = r;
  int64_t H = hidden_size;
  parallelFor(tokens, H * k, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      float *o = out + t * H;
      std::fill(o, o + H, 0.0f);
      for (int64_t i = start[t]; i < start[t + 1]; ++i) {
        int64_t r = byToken[i];
        float wt = weights[perm[r]];
        const float *yr = y + r * H;
        for (int64_t j = 0; j < H; ++j)
          o[j] += wt * yr[j];
      }
    }
  });
  return rt::Status::ok();
}

} // namespace moe::kernels::cpu
