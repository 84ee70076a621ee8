//===- MoeKernels.cpp - route, dispatch, experts, combine -----------------===//

#include "runtime/cpu/KernelUtil.h"
#include "runtime/Distributed.h"
#include "runtime/Exchange.h"
#include "runtime/PlanFile.h"
#include "runtime/cpu/MoeAttrs.h"
#include "runtime/cpu/Registration.h"

#include "kernels/cpu/Moe.h"

#include <chrono>

namespace moe::rt::cpu {
namespace kc = kernels::cpu;

namespace {

StatusOr<kc::Scoring> scoring(const Attrs &attrs) {
  std::string s;
  MOE_ASSIGN_OR_RETURN(s, attrs.getString("scoring", "softmax"));
  if (s == "softmax")
    return kc::Scoring::Softmax;
  if (s == "sigmoid")
    return kc::Scoring::Sigmoid;
  return Status::error("attribute `scoring` is '" + s +
                       "', expected 'softmax' or 'sigmoid'");
}

/// The pruning attributes of moe.route (all optional; defaults: off).
struct RoutePruningAttrs {
  std::vector<int64_t> excluded;
  double skipThreshold = 0, protectConfidence = 0, batchMass = 0;
  int64_t maxExperts = 0, batchStride = 0, keepFirst = 0;
};

StatusOr<RoutePruningAttrs> routePruning(const Attrs &attrs, int64_t experts) {
  RoutePruningAttrs r;
  MOE_ASSIGN_OR_RETURN(r.excluded, attrs.getInts("excluded", {{}}));
  MOE_ASSIGN_OR_RETURN(r.skipThreshold, attrs.getFloat("skip_threshold", 0.0));
  MOE_ASSIGN_OR_RETURN(r.protectConfidence,
                       attrs.getFloat("protect_confidence", 0.0));
  MOE_ASSIGN_OR_RETURN(r.maxExperts, attrs.getInt("max_experts", 0));
  MOE_ASSIGN_OR_RETURN(r.batchMass, attrs.getFloat("batch_mass", 0.0));
  MOE_ASSIGN_OR_RETURN(r.batchStride, attrs.getInt("batch_stride", 0));
  MOE_ASSIGN_OR_RETURN(r.keepFirst, attrs.getInt("keep_first", 0));
  if (r.batchStride < 0)
    return Status::error("attribute `batch_stride` = " + str(r.batchStride) +
                         " is negative");
  if (!(r.skipThreshold >= 0 && r.skipThreshold < 1))
    return Status::error("attribute `skip_threshold` = " +
                         std::to_string(r.skipThreshold) +
                         " is outside [0, 1)");
  if (!(r.protectConfidence >= 0 && r.protectConfidence <= 1))
    return Status::error("attribute `protect_confidence` = " +
                         std::to_string(r.protectConfidence) +
                         " is outside [0, 1]");
  if (!(r.batchMass >= 0 && r.batchMass <= 1))
    return Status::error("attribute `batch_mass` = " +
                         std::to_string(r.batchMass) + " is outside [0, 1]");
  if (r.maxExperts < 0)
    return Status::error("attribute `max_experts` = " + str(r.maxExperts) +
                         " is negative");
  if (!r.excluded.empty() && experts >= 0 &&
      int64_t(r.excluded.size()) != experts)
    return Status::error("attribute `excluded` has " +
                         str(int64_t(r.excluded.size())) + " entries for " +
                         str(experts) + " experts");
  for (int64_t v : r.excluded)
    if (v != 0 && v != 1)
      return Status::error("attribute `excluded` must hold 0 or 1");
  return r;
}

StatusOr<Types> inferRoute(const Types &in, const Attrs &attrs) {
  MOE_RETURN_IF_ERROR(checkArity(in, 1, 1));
  MOE_RETURN_IF_ERROR(checkDType(in, 0, DType::F32));
  MOE_RETURN_IF_ERROR(checkRank(in, 0, 2));
  int64_t k;
  MOE_ASSIGN_OR_RETURN(k, attrs.getInt("k"));
  int64_t experts = in[0].shape[1];
  if (k < 1 || (experts >= 0 && k > experts))
    return Status::error("attribute `k` = " + str(k) + " is outside [1, " +
                         (experts >= 0 ? str(experts) : "E") + "]");
  MOE_RETURN_IF_ERROR(scoring(attrs).status());
  MOE_RETURN_IF_ERROR(attrs.getInt("normalize", 0).status());
  MOE_RETURN_IF_ERROR(routePruning(attrs, experts).status());
  int64_t t = in[0].shape[0];
  return Types{{DType::I64, {t, k}}, {DType::F32, {t, k}}};
}

Status runRoute(KernelContext &ctx) {
  const Tensor &logits = ctx.input(0);
  int64_t k, normalize;
  kc::Scoring sc;
  MOE_ASSIGN_OR_RETURN(k, ctx.attrs().getInt("k"));
  MOE_ASSIGN_OR_RETURN(normalize, ctx.attrs().getInt("normalize", 0));
  MOE_ASSIGN_OR_RETURN(sc, scoring(ctx.attrs()));
  RoutePruningAttrs pa;
  MOE_ASSIGN_OR_RETURN(pa, routePruning(ctx.attrs(), logits.dim(1)));
  std::vector<uint8_t> excluded(pa.excluded.begin(), pa.excluded.end());
  kc::RoutePruning pruning;
  pruning.excluded = excluded.empty() ? nullptr : excluded.data();
  pruning.skipThreshold = float(pa.skipThreshold);
  pruning.protectConfidence = float(pa.protectConfidence);
  pruning.maxExperts = pa.maxExperts;
  pruning.batchMass = float(pa.batchMass);
  pruning.batchStride = pa.batchStride;
  pruning.keepFirst = pa.keepFirst != 0;
  if (pruning.active())
    return kc::routePruned(logits.data<float>(), logits.dim(0), logits.dim(1),
                           k, sc, normalize != 0, pruning,
                           ctx.output(0).mutableData<int64_t>(),
                           ctx.output(1).mutableData<float>());
  return kc::route(logits.data<float>(), logits.dim(0), logits.dim(1), k, sc,
                   normalize != 0, ctx.output(0).mutableData<int64_t>(),
                   ctx.output(1).mutableData<float>());
}

StatusOr<int64_t> numExperts(const Attrs &attrs) {
  int64_t e;
  MOE_ASSIGN_OR_RETURN(e, attrs.getInt("num_experts"));
  if (e < 1)
    return Status::error("attribute `num_experts` = " + str(e) +
                         " must be at least 1");
  return e;
}

StatusOr<Types> inferDispatch(const Types &in, const Attrs &attrs) {
  MOE_RETURN_IF_ERROR(checkArity(in, 2, 2));
  MOE_RETURN_IF_ERROR(checkDType(in, 0, DType::F32));
  MOE_RETURN_IF_ERROR(checkDType(in, 1, DType::I64));
  MOE_RETURN_IF_ERROR(checkRank(in, 0, 2));
  MOE_RETURN_IF_ERROR(checkRank(in, 1, 2));
  MOE_RETURN_IF_ERROR(checkDim(in, 1, 0, in[0].shape[0], "tokens of input 0"));
  int64_t e;
  MOE_ASSIGN_OR_RETURN(e, numExperts(attrs));
  int64_t t = mergeDims(in[0].shape[0], in[1].shape[0]);
  int64_t rows = productOrUnknown(Shape{t, in[1].shape[1]}, 0, 2);
  return Types{{DType::F32, {rows, in[0].shape[1]}},
               {DType::I64, {e + 1}},
               {DType::I64, {rows}}};
}

Status runDispatch(KernelContext &ctx) {
  const Tensor &hidden = ctx.input(0), &ids = ctx.input(1);
  int64_t e;
  MOE_ASSIGN_OR_RETURN(e, numExperts(ctx.attrs()));
  return kc::dispatch(hidden.data<float>(), hidden.dim(0), hidden.dim(1),
                      ids.data<int64_t>(), ids.dim(1), e,
                      ctx.output(0).mutableData<float>(),
                      ctx.output(1).mutableData<int64_t>(),
                      ctx.output(2).mutableData<int64_t>());
}

/// `activation` with ONNX Runtime's SwiGLU parameters: `activation_alpha`
/// (default 1), `activation_beta` (0), `swiglu_limit` when
/// `has_swiglu_limit` (else no clamp) and `swiglu_fusion` (0, 1 or 2).
StatusOr<kc::ExpertActivation> activation(const Attrs &attrs) {
  kc::ExpertActivation act;
  std::string s;
  MOE_ASSIGN_OR_RETURN(s, attrs.getString("activation", "silu"));
  if (s == "silu")
    act.kind = kc::Activation::Silu;
  else if (s == "gelu")
    act.kind = kc::Activation::Gelu;
  else if (s == "gelu_tanh")
    act.kind = kc::Activation::GeluTanh;
  else if (s == "relu")
    act.kind = kc::Activation::Relu;
  else if (s == "identity")
    act.kind = kc::Activation::Identity;
  else if (s == "swiglu")
    act.kind = kc::Activation::Swiglu;
  else
    return Status::error("attribute `activation` is '" + s +
                         "', expected 'silu', 'gelu', 'gelu_tanh', 'relu', "
                         "'identity' or 'swiglu'");
  double alpha, beta;
  MOE_ASSIGN_OR_RETURN(alpha, attrs.getFloat("activation_alpha", 1.0));
  MOE_ASSIGN_OR_RETURN(beta, attrs.getFloat("activation_beta", 0.0));
  act.alpha = float(alpha);
  act.beta = float(beta);
  int64_t hasLimit, fusion;
  MOE_ASSIGN_OR_RETURN(hasLimit, attrs.getInt("has_swiglu_limit", 0));
  if (hasLimit) {
    double limit;
    MOE_ASSIGN_OR_RETURN(limit, attrs.getFloat("swiglu_limit"));
    if (!(limit >= 0))
      return Status::error("attribute `swiglu_limit` = " +
                           std::to_string(limit) + " must be non-negative");
    act.limit = float(limit);
  }
  MOE_ASSIGN_OR_RETURN(fusion, attrs.getInt("swiglu_fusion", 0));
  if (fusion < 0 || fusion > 2)
    return Status::error("attribute `swiglu_fusion` = " + str(fusion) +
                         " is outside [0, 2]");
  if (fusion != 0 && act.kind != kc::Activation::Swiglu)
    return Status::error("attribute `swiglu_fusion` = " + str(fusion) +
                         " needs activation 'swiglu', not '" + s + "'");
  act.fusion = int(fusion);
  return act;
}

StatusOr<ExpertsLayout> layoutOf(const Attrs &attrs, int64_t e) {
  ExpertsLayout l;
  int64_t v;
  MOE_ASSIGN_OR_RETURN(v, attrs.getInt("has_w3", 0));
  l.w3 = v != 0;
  MOE_ASSIGN_OR_RETURN(v, attrs.getInt("has_b1", 0));
  l.b1 = v != 0;
  MOE_ASSIGN_OR_RETURN(v, attrs.getInt("has_b2", 0));
  l.b2 = v != 0;
  MOE_ASSIGN_OR_RETURN(v, attrs.getInt("has_b3", 0));
  l.b3 = v != 0;
  if (l.b3 && !l.w3)
    return Status::error("attribute `has_b3` is set without `has_w3`");
  MOE_ASSIGN_OR_RETURN(l.act, activation(attrs));
  if (l.act.kind == kc::Activation::Swiglu && l.act.fusion == 0 && !l.w3)
    return Status::error("activation 'swiglu' with `swiglu_fusion` = 0 needs "
                         "w3 (`has_w3`)");
  if (l.act.fused() && l.w3)
    return Status::error("activation 'swiglu' with `swiglu_fusion` = " +
                         str(l.act.fusion) + " takes no w3");
  // Per-expert lists: E entries each, with their value ranges.
  struct ListRule {
    const char *name;
    int64_t lo, hi;
  };
  for (ListRule rule : {ListRule{"pruned", 0, 1}, ListRule{"placement", 0, 3},
                        ListRule{"bits", 0, 64}}) {
    std::vector<int64_t> list;
    MOE_ASSIGN_OR_RETURN(list, attrs.getInts(rule.name, std::vector<int64_t>{}));
    if (!attrs.has(rule.name))
      continue;
    if (int64_t(list.size()) != e)
      return Status::error("attribute `" + std::string(rule.name) + "` has " +
                           str(int64_t(list.size())) + " entries, expected " +
                           str(e));
    for (int64_t x : list)
      if (x < rule.lo || x > rule.hi)
        return Status::error("attribute `" + std::string(rule.name) +
                             "` has entry " + str(x) + " outside [" +
                             str(rule.lo) + ", " + str(rule.hi) + "]");
  }
  return l;
}

/// `tp_ranks` of moe.experts: 1, or the ranks that hold a slice of each
/// expert (every rank of a tensor-parallel step; the ranks of a node,
/// `exchange_peers_of` of them, in a hybrid one).
StatusOr<int64_t> tensorParallelRanks(const Attrs &attrs) {
  int64_t tp, peers;
  MOE_ASSIGN_OR_RETURN(tp, attrs.getInt("tp_ranks", 1));
  MOE_ASSIGN_OR_RETURN(peers, attrs.getInt("exchange_peers_of", 0));
  if (tp < 1)
    return Status::error("attribute `tp_ranks` = " + str(tp) +
                         " must be at least 1");
  if (peers < 0)
    return Status::error("attribute `exchange_peers_of` = " + str(peers) +
                         " must not be negative");
  if (attrs.has("exchange_ranks") ? peers != (tp > 1 ? tp : 0)
                                  : peers != 0)
    return Status::error("attribute `exchange_peers_of` = " + str(peers) +
                         " must be `tp_ranks` with an exchange (a hybrid "
                         "step), else absent");
  return tp;
}

StatusOr<Types> inferExperts(const Types &in, const Attrs &attrs) {
  int64_t e;
  MOE_ASSIGN_OR_RETURN(e, numExperts(attrs));
  ExpertsLayout l;
  MOE_ASSIGN_OR_RETURN(l, layoutOf(attrs, e));
  MOE_RETURN_IF_ERROR(checkArity(in, l.numInputs(), l.numInputs()));
  for (size_t i = 0; i < in.size(); ++i)
    MOE_RETURN_IF_ERROR(checkDType(in, i, i == 1 ? DType::I64 : DType::F32));
  MOE_RETURN_IF_ERROR(checkRank(in, 0, 2));
  MOE_RETURN_IF_ERROR(checkRank(in, 1, 1));
  MOE_RETURN_IF_ERROR(checkDim(in, 1, 0, e + 1, "num_experts + 1"));
  // Every E, F and H dim of every operand must agree; F and H are learnt
  // from the first operand that knows them. G is fc1's output size: F, or
  // 2F (gate and linear parts) for a fused swiglu.
  const bool fused = l.act.fused();
  struct Operand {
    size_t index;
    const char *dims; // one letter per dim: E, F, G or H
    const char *name;
  };
  // A tensor-parallel step's weights hold tp_ranks slices of F per expert
  // (S = tp_ranks·E of them, F their width); b2 is whole.
  int64_t tp;
  MOE_ASSIGN_OR_RETURN(tp, tensorParallelRanks(attrs));
  const bool cut = tp > 1;
  std::vector<Operand> ops = {{0, "RH", "x"},
                              {2, cut ? "SGH" : "EGH", "w1"},
                              {3, cut ? "SHF" : "EHF", "w2"}};
  size_t next = 4;
  if (l.w3)
    ops.push_back({next++, cut ? "SFH" : "EFH", "w3"});
  if (l.b1)
    ops.push_back({next++, cut ? "SG" : "EG", "b1"});
  if (l.b2)
    ops.push_back({next++, "EH", "b2"});
  if (l.b3)
    ops.push_back({next++, cut ? "SF" : "EF", "b3"});
  int64_t slices;
  if (__builtin_mul_overflow(e, tp, &slices))
    return Status::error("attribute `tp_ranks` = " + str(tp) + " times " +
                         str(e) + " experts overflows");
  const std::string g = fused ? "2F" : "F";
  int64_t f = -1, h = -1;
  for (const Operand &op : ops) {
    std::string dims = op.dims, shown;
    for (char c : dims)
      shown += c == 'G' ? g : c == 'S' ? std::string("tp_ranks·E")
                                       : std::string(1, c);
    MOE_RETURN_IF_ERROR(checkRank(in, op.index, dims.size()));
    for (size_t d = 0; d < dims.size(); ++d) {
      char c = dims[d];
      if (c == 'R')
        continue;
      std::string what = (c == 'G'   ? g
                          : c == 'S' ? std::string("tp_ranks·E")
                                     : std::string(1, c)) +
                         " of " + op.name +
                         " [" + shown + "]";
      int64_t got = in[op.index].shape[d];
      if (c == 'G') {
        int64_t want = f < 0 ? -1 : fused ? 2 * f : f;
        MOE_RETURN_IF_ERROR(checkDim(in, op.index, d, want, what));
        if (fused && got >= 0 && got % 2 != 0)
          return Status::error("input " + str(int64_t(op.index)) + " dim " +
                               str(int64_t(d)) + " is " + str(got) +
                               ", expected an even size (" + what + ")");
        if (f < 0 && got >= 0)
          f = fused ? got / 2 : got;
        continue;
      }
      int64_t &known = c == 'E' ? e : c == 'S' ? slices : c == 'F' ? f : h;
      MOE_RETURN_IF_ERROR(checkDim(in, op.index, d, known, what));
      known = mergeDims(known, got);
    }
  }
  return single(DType::F32, in[0].shape);
}

double seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                       since)
      .count();
}

/// A partitioned step needs a run of as many ranks as the plan was
/// partitioned for.
Status checkRunRanks(int64_t ranks) {
  if (ranks == dist::size())
    return Status::ok();
  if (ranks != 1 && !dist::built())
    return Status::error("the plan is partitioned for " + str(ranks) +
                         " ranks, and this build has no MPI runtime");
  return Status::error("the plan is partitioned for " + str(ranks) +
                       " ranks; run it with mpirun -np " + str(ranks) +
                       " (this run has " + str(int64_t(dist::size())) + ")");
}

StatusOr<int64_t> collectiveRanks(const Attrs &attrs) {
  int64_t r;
  MOE_ASSIGN_OR_RETURN(r, attrs.getInt("ranks"));
  if (r < 1)
    return Status::error("attribute `ranks` = " + str(r) +
                         " must be at least 1");
  return r;
}

StatusOr<Types> inferAllGather(const Types &in, const Attrs &attrs) {
  if (in.empty())
    return Status::error("moe.all_gather needs at least one input");
  int64_t ranks;
  MOE_ASSIGN_OR_RETURN(ranks, collectiveRanks(attrs));
  Types out;
  int64_t rows = -1;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i].shape.empty())
      return Status::error("input " + str(int64_t(i)) +
                           " has rank 0; its rows are dimension 0");
    int64_t r = in[i].shape[0];
    if (r >= 0 && rows >= 0 && r != rows)
      return Status::error("input " + str(int64_t(i)) + " has " + str(r) +
                           " rows, input 0 " + str(rows) +
                           "; the inputs travel together");
    if (r >= 0)
      rows = r;
    out.push_back({in[i].dtype, in[i].shape});
    if (ranks > 1)
      out.back().shape[0] = -1; // the other ranks' rows come at run time
  }
  return out;
}

/// Every rank's rows of every input, in one transfer: each row of the
/// inputs packed side by side, gathered, then unpacked into the outputs.
Status runAllGather(KernelContext &ctx) {
  int64_t ranks;
  MOE_ASSIGN_OR_RETURN(ranks, collectiveRanks(ctx.attrs()));
  MOE_RETURN_IF_ERROR(checkRunRanks(ranks));
  const size_t n = ctx.numInputs();
  const int64_t rows = ctx.input(0).dim(0);
  std::vector<int64_t> rowBytes(n);
  int64_t packedBytes = 0;
  for (size_t i = 0; i < n; ++i) {
    const Tensor &x = ctx.input(i);
    if (x.dim(0) != rows)
      return Status::error("input " + str(int64_t(i)) + " has " +
                           str(x.dim(0)) + " rows, input 0 " + str(rows));
    rowBytes[i] = int64_t(dtypeSize(x.dtype()));
    for (size_t d = 1; d < x.rank(); ++d)
      rowBytes[i] *= x.dim(d);
    packedBytes += rowBytes[i];
  }
  std::vector<int64_t> counts;
  MOE_ASSIGN_OR_RETURN(counts, dist::allgatherCounts(rows));
  int64_t total = 0;
  for (int64_t c : counts)
    total += c;
  for (size_t i = 0; i < n; ++i) {
    Shape shape = ctx.input(i).shape();
    shape[0] = total;
    MOE_RETURN_IF_ERROR(ctx.allocateOutput(i, ctx.input(i).dtype(), shape));
  }
  if (packedBytes == 0)
    return Status::ok();
  auto start = std::chrono::steady_clock::now();
  if (n == 1) {
    MOE_RETURN_IF_ERROR(dist::allgatherRows(ctx.input(0).data(), packedBytes,
                                            counts,
                                            ctx.output(0).mutableData()));
  } else {
    std::vector<uint8_t> mine(size_t(rows * packedBytes)),
        all(size_t(total * packedBytes));
    for (int64_t r = 0; r < rows; ++r) {
      uint8_t *to = mine.data() + r * packedBytes;
      for (size_t i = 0; i < n; to += rowBytes[i], ++i)
        std::memcpy(to,
                    static_cast<const uint8_t *>(ctx.input(i).data()) +
                        r * rowBytes[i],
                    size_t(rowBytes[i]));
    }
    MOE_RETURN_IF_ERROR(
        dist::allgatherRows(mine.data(), packedBytes, counts, all.data()));
    for (int64_t r = 0; r < total; ++r) {
      const uint8_t *from = all.data() + r * packedBytes;
      for (size_t i = 0; i < n; from += rowBytes[i], ++i)
        std::memcpy(static_cast<uint8_t *>(ctx.output(i).mutableData()) +
                        r * rowBytes[i],
                    from, size_t(rowBytes[i]));
    }
  }
  if (ranks > 1)
    dist::addExchange(0, 0, 0, seconds(start));
  return Status::ok();
}

StatusOr<Types> inferReduceScatter(const Types &in, const Attrs &attrs) {
  MOE_RETURN_IF_ERROR(checkArity(in, 2, 2));
  MOE_RETURN_IF_ERROR(collectiveRanks(attrs).status());
  MOE_RETURN_IF_ERROR(checkDType(in, 0, DType::F32));
  MOE_RETURN_IF_ERROR(checkRank(in, 0, 2));
  if (in[1].shape.empty())
    return Status::error("input 1 has rank 0; its dimension 0 gives the "
                         "rows of this rank");
  return single(DType::F32, {in[1].shape[0], in[0].shape[1]});
}

Status runReduceScatter(KernelContext &ctx) {
  int64_t ranks;
  MOE_ASSIGN_OR_RETURN(ranks, collectiveRanks(ctx.attrs()));
  MOE_RETURN_IF_ERROR(checkRunRanks(ranks));
  const Tensor &partial = ctx.input(0);
  std::vector<int64_t> counts;
  MOE_ASSIGN_OR_RETURN(counts, dist::allgatherCounts(ctx.input(1).dim(0)));
  int64_t total = 0;
  for (int64_t c : counts)
    total += c;
  if (total != partial.dim(0))
    return Status::error("input 0 has " + str(partial.dim(0)) +
                         " rows, but the ranks hold " + str(total));
  auto start = std::chrono::steady_clock::now();
  MOE_RETURN_IF_ERROR(dist::reduceScatterRows(
      partial.data<float>(), partial.dim(1), counts,
      ctx.output(0).mutableData<float>()));
  if (ranks > 1) {
    // The layer's token rows, as its all-gather moved them.
    int64_t mine = counts[size_t(dist::rank())];
    dist::addExchange(1, mine * (ranks - 1), total - mine, seconds(start));
  }
  return Status::ok();
}

Status runExperts(KernelContext &ctx) {
  int64_t e;
  MOE_ASSIGN_OR_RETURN(e, numExperts(ctx.attrs()));
  ExpertsLayout l;
  MOE_ASSIGN_OR_RETURN(l, layoutOf(ctx.attrs(), e));
  std::vector<int64_t> prunedList;
  MOE_ASSIGN_OR_RETURN(prunedList,
                       ctx.attrs().getInts("pruned", std::vector<int64_t>{}));
  std::vector<uint8_t> pruned(prunedList.begin(), prunedList.end());
  // An expert-parallel plan: the rows travel to their experts' ranks.
  int64_t exchangeRanks;
  MOE_ASSIGN_OR_RETURN(exchangeRanks, ctx.attrs().getInt("exchange_ranks", 0));
  dist::ExchangeLayout exchange;
  if (exchangeRanks < 0)
    return Status::error("attribute `exchange_ranks` = " +
                         str(exchangeRanks) + " must not be negative");
  if (exchangeRanks > 0) {
    MOE_RETURN_IF_ERROR(checkRunRanks(exchangeRanks));
    exchange.numExperts = e;
    MOE_ASSIGN_OR_RETURN(exchange.peersOfNodes,
                         ctx.attrs().getInt("exchange_peers_of", 0));
    MOE_ASSIGN_OR_RETURN(exchange.replicas, ctx.attrs().getInts("replicas"));
    MOE_ASSIGN_OR_RETURN(exchange.replicaOffsets,
                         ctx.attrs().getInts("replica_offsets"));
    MOE_ASSIGN_OR_RETURN(exchange.chunks,
                         ctx.attrs().getInt("exchange_chunks", 1));
    MOE_ASSIGN_OR_RETURN(exchange.ranksPerNode,
                         ctx.attrs().getInt("exchange_ranks_per_node", 0));
    std::string schedule;
    MOE_ASSIGN_OR_RETURN(schedule,
                         ctx.attrs().getString("exchange_schedule", "direct"));
    if (schedule != "direct" && schedule != "hierarchical" &&
        schedule != "pipelined")
      return Status::error("attribute `exchange_schedule` is '" + schedule +
                           "', expected direct, hierarchical or pipelined");
    exchange.hierarchical = schedule == "hierarchical";
    MOE_RETURN_IF_ERROR(exchange.group().check());
    MOE_RETURN_IF_ERROR(exchange.check(exchange.group().size()));
  }
  // `owners` and `replicas` without an exchange (a plan partitioned for
  // one rank) change nothing: every rank holds every expert and computes
  // its own tokens.
  // Tensor parallel: this rank's slices of the experts are indices
  // r·E .. r·E + E - 1 of the cut weights, r its rank (its index in its
  // node, in a hybrid step).
  int64_t tp;
  MOE_ASSIGN_OR_RETURN(tp, tensorParallelRanks(ctx.attrs()));
  int64_t first = 0;
  if (tp > 1 && exchangeRanks > 0) {
    first = int64_t(dist::rank() % tp) * e; // the rank's index in its node
  } else if (tp > 1) {
    MOE_RETURN_IF_ERROR(checkRunRanks(tp));
    first = int64_t(dist::rank()) * e;
  }
  // The experts this rank computes: with an exchange, those its group rank
  // (its node, in a hybrid step) holds; else every one.
  std::vector<bool> computes(static_cast<size_t>(e), exchangeRanks == 0);
  if (exchangeRanks > 0)
    for (int64_t x = 0; x < e; ++x)
      computes[size_t(x)] = exchange.holds(x, exchange.group().rank());
  // The rank's E slices of a dense [slices, ...] weight or bias.
  auto mine = [&](const Tensor &t) {
    return t.data<float>() + first * (t.numElements() / t.dim(0));
  };
  const Tensor &x = ctx.input(0);
  kc::ExpertWeights w;
  // A packed weight gives a bank of per-expert formats; a dense one a
  // pointer to E contiguous matrices.
  auto bank = [&](size_t i, const float *&dense,
                  kc::PackedBank &packed) -> Status {
    const Tensor &t = ctx.input(i);
    const PackedWeight *p = t.packed();
    if (!p) {
      dense = mine(t);
      return Status::ok();
    }
    if (int64_t(p->formats.size()) != e * tp ||
        int64_t(p->offsets.size()) != e * tp)
      return Status::error("input " + str(int64_t(i)) + " is packed in " +
                           str(int64_t(p->formats.size())) +
                           " slices, expected " + str(e * tp));
    packed.base = static_cast<const uint8_t *>(t.data());
    packed.offsets = p->offsets.data() + first;
    packed.formats = p->formats.data() + first;
    // An absent slice (a statically pruned expert, or on a rank of a
    // partitioned plan an expert another rank computes) is never read: the
    // expert must be pruned, so that its rows (if any) give zeros, or held
    // elsewhere.
    for (int64_t x = 0; x < e; ++x)
      if (packed.formats[x].bits == kc::kAbsentBits && computes[size_t(x)] &&
          !(size_t(x) < pruned.size() && pruned[size_t(x)]))
        return Status::error("input " + str(int64_t(i)) + ": expert " +
                             str(x) + " has no weights (absent slice) but is "
                             "not pruned");
    return Status::ok();
  };
  MOE_RETURN_IF_ERROR(bank(2, w.w1, w.w1p));
  MOE_RETURN_IF_ERROR(bank(3, w.w2, w.w2p));
  size_t next = 4;
  if (l.w3)
    MOE_RETURN_IF_ERROR(bank(next++, w.w3, w.w3p));
  if (l.b1)
    w.b1 = mine(ctx.input(next++));
  if (l.b2) {
    // Summed over the ranks' partial outputs: added once, by rank 0.
    const float *b2 = ctx.input(next++).data<float>();
    w.b2 = first == 0 ? b2 : nullptr;
  }
  if (l.b3)
    w.b3 = mine(ctx.input(next++));
  // F is w2's last dimension (w1 has 2F rows when swiglu is fused).
  const int64_t ffn = ctx.input(3).dim(2);
  const uint8_t *prunedMask = pruned.empty() ? nullptr : pruned.data();
  if (exchangeRanks > 0) {
    // One expert at a time, on the rows this rank receives for it.
    std::vector<int64_t> one(static_cast<size_t>(e + 1));
    auto compute = [&](int64_t expert, const float *in, int64_t n,
                       float *out) -> Status {
      for (int64_t i = 0; i <= e; ++i)
        one[size_t(i)] = i <= expert ? 0 : n;
      return kc::experts(in, n, x.dim(1), one.data(), e, ffn, w, l.act,
                         prunedMask, out);
    };
    return dist::exchangeExperts(exchange, x.data<float>(), x.dim(0),
                                 x.dim(1), ctx.input(1).data<int64_t>(),
                                 compute, ctx.output(0).mutableData<float>());
  }
  return kc::experts(x.data<float>(), x.dim(0), x.dim(1),
                     ctx.input(1).data<int64_t>(), e, ffn, w, l.act,
                     prunedMask, ctx.output(0).mutableData<float>());
}

StatusOr<Types> inferCombine(const Types &in, const Attrs &) {
  MOE_RETURN_IF_ERROR(checkArity(in, 3, 3));
  MOE_RETURN_IF_ERROR(checkDType(in, 0, DType::F32));
  MOE_RETURN_IF_ERROR(checkDType(in, 1, DType::I64));
  MOE_RETURN_IF_ERROR(checkDType(in, 2, DType::F32));
  MOE_RETURN_IF_ERROR(checkRank(in, 0, 2));
  MOE_RETURN_IF_ERROR(checkRank(in, 1, 1));
  MOE_RETURN_IF_ERROR(checkRank(in, 2, 2));
  MOE_RETURN_IF_ERROR(checkDim(in, 1, 0, in[0].shape[0], "rows of input 0"));
  int64_t pairs = productOrUnknown(in[2].shape, 0, 2);
  MOE_RETURN_IF_ERROR(checkDim(in, 0, 0, pairs, "T·k of input 2"));
  return single(DType::F32, {in[2].shape[0], in[0].shape[1]});
}

Status runCombine(KernelContext &ctx) {
  const Tensor &y = ctx.input(0), &perm = ctx.input(1), &w = ctx.input(2);
  return kc::combine(y.data<float>(), y.dim(0), y.dim(1), perm.data<int64_t>(),
                     w.data<float>(), w.dim(0), w.dim(1),
                     ctx.output(0).mutableData<float>());
}

void add(KernelRegistry &r, std::string name, InferFn infer, RunFn run,
         bool aliasing = false) {
  Status st =
      r.add({std::move(name), std::move(infer), std::move(run), aliasing});
  (void)st;
}

/// moe.experts reads w1, w2 and w3 (inputs 2, 3 and, with has_w3, 4) through
/// their packed layout when they are packed.
bool expertsAcceptsPacked(size_t input, const Attrs &attrs) {
  if (input == 2 || input == 3)
    return true;
  StatusOr<int64_t> w3 = attrs.getInt("has_w3", 0);
  return input == 4 && w3.isOk() && *w3 != 0;
}

} // namespace

StatusOr<kc::Scoring> routeScoring(const Attrs &attrs) {
  return scoring(attrs);
}
StatusOr<int64_t> expertCount(const Attrs &attrs) { return numExperts(attrs); }
StatusOr<ExpertsLayout> expertsLayout(const Attrs &attrs, int64_t e) {
  return layoutOf(attrs, e);
}

void registerMoeKernels(KernelRegistry &r) {
  add(r, "moe.route", inferRoute, runRoute);
  add(r, "moe.all_gather", inferAllGather, runAllGather,
      /*allocatesOutputs=*/true);
  add(r, "moe.reduce_scatter", inferReduceScatter, runReduceScatter);
  add(r, "moe.dispatch", inferDispatch, runDispatch);
  KernelDef experts{"moe.experts", inferExperts, runExperts, false};
  experts.acceptsPacked = expertsAcceptsPacked;
  experts.packedInputs = "w1, w2 and w3 (inputs 2, 3 and 4 with has_w3)";
  Status st = r.add(std::move(experts));
  (void)st;
  add(r, "moe.combine", inferCombine, runCombine);
}

} // namespace moe::rt::cpu
