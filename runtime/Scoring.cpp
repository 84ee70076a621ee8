//===- Scoring.cpp - Perplexity of a language-model plan ------------------===//

#include "runtime/Scoring.h"

#include "runtime/Distributed.h"

#include <algorithm>
#include <cmath>

namespace moe::rt {

namespace {

/// Checks that `plan` maps token ids [B, S] to logits [B, S, V].
Status checkLanguageModel(const LoadedPlan &plan, const std::string &what) {
  if (plan.inputs().size() != 1)
    return Status::error(what + " takes " +
                         std::to_string(plan.inputs().size()) +
                         " inputs; perplexity needs a language model with one "
                         "token-id input [batch, sequence]");
  const ValueInfo &in = plan.values()[plan.inputs()[0]];
  if ((in.dtype != DType::I64 && in.dtype != DType::I32) ||
      in.shape.size() != 2)
    return Status::error(what + ": input `" + plan.inputName(0) + "` is " +
                         formatType(in.dtype, in.shape) +
                         "; perplexity needs token ids i64/i32 [batch, "
                         "sequence]");
  if (plan.outputs().empty())
    return Status::error(what + " has no outputs");
  const ValueInfo &out = plan.values()[plan.outputs()[0]];
  if (out.dtype != DType::F32 || out.shape.size() != 3)
    return Status::error(what + ": output `" + plan.outputName(0) + "` is " +
                         formatType(out.dtype, out.shape) +
                         "; perplexity needs logits f32 [batch, sequence, "
                         "vocabulary]");
  return Status::ok();
}

/// log Σ exp(row).
double logSumExp(const float *row, int64_t v) {
  float m = *std::max_element(row, row + v);
  double s = 0;
  for (int64_t i = 0; i < v; ++i)
    s += std::exp(double(row[i]) - double(m));
  return double(m) + std::log(s);
}

} // namespace

StatusOr<ScoreResult>
scorePerplexity(const Runner &plan, const Runner *reference,
                const std::vector<uint8_t> &tokens, const ScoreOptions &options,
                const std::function<void()> &afterRun,
                const std::function<void(int64_t, int64_t)> &progress) {
  if (options.context < 2 || options.windows < 0 || options.batch < 1 ||
      options.offset < 0)
    return Status::error("perplexity: context must be >= 2, windows >= 0, "
                         "batch >= 1 and offset >= 0");
  MOE_RETURN_IF_ERROR(checkLanguageModel(plan.plan(), "the plan"));
  if (reference)
    MOE_RETURN_IF_ERROR(
        checkLanguageModel(reference->plan(), "the reference plan"));
  int64_t size = int64_t(tokens.size());
  int64_t available =
      options.offset < size ? (size - options.offset) / options.context : 0;
  if (available == 0)
    return Status::error("perplexity: the token file has " +
                         std::to_string(size) + " bytes; after offset " +
                         std::to_string(options.offset) +
                         " fewer than one window of " +
                         std::to_string(options.context) + " remain");
  int64_t windows = options.windows == 0
                        ? available
                        : std::min(options.windows, available);
  if (options.windows > available)
    return Status::error("perplexity: the token file holds " +
                         std::to_string(available) + " windows of " +
                         std::to_string(options.context) + " bytes, " +
                         std::to_string(options.windows) + " asked for");

  DType idType = plan.plan().values()[plan.plan().inputs()[0]].dtype;
  int64_t s = options.context;
  ScoreResult result;
  double nll = 0, refNll = 0, kl = 0, diff2 = 0, ref2 = 0;
  int64_t agree = 0;
  const int64_t batches = (windows + options.batch - 1) / options.batch;
  const int64_t ranks = options.splitOverRanks ? dist::size() : 1,
                me = options.splitOverRanks ? dist::rank() : 0;
  const int64_t rounds = (batches + ranks - 1) / ranks;
  for (int64_t round = 0; round < rounds; ++round) {
    const int64_t batch = round * ranks + me;
    const bool throwAway = batch >= batches;
    const int64_t w0 = throwAway ? 0 : batch * options.batch;
    int64_t b = throwAway ? 1 : std::min(options.batch, windows - w0);
    StatusOr<Tensor> ids = Tensor::allocate(idType, {b, s});
    if (!ids.isOk())
      return ids.status();
    for (int64_t i = 0; i < b * s; ++i) {
      int64_t token = tokens[size_t(options.offset + w0 * s + i)];
      if (idType == DType::I64)
        ids->mutableData<int64_t>()[i] = token;
      else
        ids->mutableData<int32_t>()[i] = int32_t(token);
    }
    std::vector<Tensor> in{*ids};
    MOE_RETURN_IF_ERROR(plan.checkInputs(in));
    StatusOr<std::vector<Tensor>> out = plan.run(in);
    if (!out.isOk())
      return out.status();
    if (throwAway) {
      // Only keeps the other ranks' exchanges going (the reference's too,
      // when it is partitioned as well).
      if (reference) {
        MOE_RETURN_IF_ERROR(reference->checkInputs(in));
        StatusOr<std::vector<Tensor>> r = reference->run(in);
        if (!r.isOk())
          return r.status().withContext("reference plan");
      }
      continue;
    }
    if (afterRun)
      afterRun();
    const Tensor &logits = (*out)[0];
    if (logits.shape().size() != 3 || logits.shape()[0] != b ||
        logits.shape()[1] != s)
      return Status::error("perplexity: logits have shape " +
                           formatShape(logits.shape()) + " for ids [" +
                           std::to_string(b) + ", " + std::to_string(s) + "]");
    int64_t v = logits.shape()[2];
    const float *lp = logits.data<float>();
    const float *lr = nullptr;
    std::vector<Tensor> refOut;
    if (reference) {
      MOE_RETURN_IF_ERROR(reference->checkInputs(in));
      StatusOr<std::vector<Tensor>> r = reference->run(in);
      if (!r.isOk())
        return r.status().withContext("reference plan");
      refOut = std::move(*r);
      if (refOut[0].shape() != logits.shape())
        return Status::error("perplexity: the reference's logits " +
                             formatShape(refOut[0].shape()) +
                             " differ in shape from the plan's " +
                             formatShape(logits.shape()));
      lr = refOut[0].data<float>();
    }
    for (int64_t wi = 0; wi < b; ++wi)
      for (int64_t t = 0; t + 1 < s; ++t) {
        int64_t next =
            tokens[size_t(options.offset + (w0 + wi) * s + t + 1)];
        if (next >= v)
          return Status::error("perplexity: token " + std::to_string(next) +
                               " at byte " +
                               std::to_string(options.offset +
                                              (w0 + wi) * s + t + 1) +
                               " is not below the vocabulary size " +
                               std::to_string(v));
        const float *row = lp + (wi * s + t) * v;
        double lse = logSumExp(row, v);
        nll += lse - double(row[next]);
        if (lr) {
          const float *rrow = lr + (wi * s + t) * v;
          double rlse = logSumExp(rrow, v);
          refNll += rlse - double(rrow[next]);
          int64_t am = std::max_element(row, row + v) - row;
          int64_t ram = std::max_element(rrow, rrow + v) - rrow;
          agree += am == ram;
          double klRow = 0;
          for (int64_t i = 0; i < v; ++i) {
            double lq = double(rrow[i]) - rlse, lpp = double(row[i]) - lse;
            klRow += std::exp(lq) * (lq - lpp);
          }
          kl += std::max(0.0, klRow);
        }
        result.predictions += 1;
      }
    if (lr)
      for (int64_t i = 0; i < b * s * v; ++i) {
        double d = double(lp[i]) - double(lr[i]);
        diff2 += d * d;
        ref2 += double(lr[i]) * double(lr[i]);
      }
    if (progress)
      progress(std::min(windows, (round + 1) * ranks * options.batch),
               windows);
  }
  if (ranks > 1) {
    double sums[] = {nll, refNll, kl, diff2, ref2};
    int64_t counts[] = {agree, result.predictions};
    MOE_RETURN_IF_ERROR(dist::allreduceSum(sums, 5));
    MOE_RETURN_IF_ERROR(dist::allreduceSum(counts, 2));
    nll = sums[0];
    refNll = sums[1];
    kl = sums[2];
    diff2 = sums[3];
    ref2 = sums[4];
    agree = counts[0];
    result.predictions = counts[1];
  }
  result.windows = windows;
  double n = double(result.predictions);
  result.meanNll = nll / n;
  result.perplexity = std::exp(result.meanNll);
  if (reference) {
    result.hasReference = true;
    result.referencePerplexity = std::exp(refNll / n);
    result.klMean = kl / n;
    result.top1Agreement = double(agree) / n;
    result.logitsRelError = ref2 > 0 ? std::sqrt(diff2 / ref2) : 0.0;
  }
  return result;
}

} // namespace moe::rt
