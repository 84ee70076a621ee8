//===- Scoring.h - Perplexity of a language-model plan ----------*- C++ -*-===//
//
// `moe-exec PLAN --perplexity FILE`: the plan is a byte-level language model
// (one integer input `input_ids` [B, S], first output logits [B, S, V]);
// FILE is a token file whose bytes are the token ids. The first `windows`
// non-overlapping windows of `context` bytes are scored: position t predicts
// byte t+1, so each window gives context-1 predictions, and
//
//   perplexity = exp(mean over all predictions of -log softmax(logits)[next])
//
// (../shared/fixtures/onnx/README.md's definition). With a reference plan
// the same windows also run through it and the logits are compared:
// KL(reference || plan) per prediction, top-1 agreement and the relative
// error ||plan - reference|| / ||reference|| over all logits.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_SCORING_H
#define MOE_RUNTIME_SCORING_H

#include "runtime/Executor.h"

#include <functional>

namespace moe::rt {

struct ScoreOptions {
  int64_t context = 256; ///< bytes per window (>= 2)
  int64_t windows = 64;  ///< windows scored; 0: every full window of the file
  int64_t batch = 8;     ///< windows per run
  int64_t offset = 0;    ///< bytes of the file skipped before the first
                         ///< window (e.g. calibrate on held-out windows)
  /// Under mpirun: each rank scores every size()-th batch and the ranks sum
  /// their totals (every rank gets the whole result). A rank out of batches
  /// runs a throw-away one while the others finish, since the plan's
  /// exchanges need every rank. Only for plans whose ranks may hold
  /// different tokens (not tensor-parallel ones).
  bool splitOverRanks = false;
};

struct ScoreResult {
  int64_t windows = 0;
  int64_t predictions = 0;
  double meanNll = 0;    ///< nats per prediction
  double perplexity = 0; ///< exp(meanNll)
  // With a reference plan:
  bool hasReference = false;
  double referencePerplexity = 0;
  double klMean = 0;         ///< mean KL(reference || plan), nats
  double top1Agreement = 0;  ///< share of predictions with the same argmax
  double logitsRelError = 0; ///< ||plan - reference||_2 / ||reference||_2
};

/// Scores `tokens` with `plan` (and `reference` when not null). `afterRun` is
/// called after every run of `plan` (e.g. RoutingProfiler::endRun);
/// `progress(done, total)` after every batch. Errors: a plan that is not a
/// token-id → logits model, a file shorter than one window, a token id not
/// below the vocabulary size, and any run's error.
StatusOr<ScoreResult>
scorePerplexity(const Runner &plan, const Runner *reference,
                const std::vector<uint8_t> &tokens, const ScoreOptions &options,
                const std::function<void()> &afterRun = {},
                const std::function<void(int64_t, int64_t)> &progress = {});

} // namespace moe::rt

#endif // MOE_RUNTIME_SCORING_H
