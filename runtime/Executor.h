//===- Executor.h - Running a loaded plan on the CPU ------------*- C++ -*-===//
//
// The executor runs the steps of a LoadedPlan as a dependency graph: a step
// starts as soon as the steps producing its inputs are done (and a Free as
// soon as every reader of the freed values is done), so independent steps
// run concurrently on TBB workers while the kernels use parallel loops
// inside. Every step runs on the CPU, whatever device the plan names for it;
// the cuda device is runtime/cuda/CudaExecutor, behind the same Runner.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_EXECUTOR_H
#define MOE_RUNTIME_EXECUTOR_H

#include "runtime/PlanLoader.h"

#include <tbb/task_arena.h>

#include <atomic>
#include <functional>
#include <memory>

namespace moe::rt {

struct ExecutorOptions {
  /// Worker threads; 0 means every core.
  int numThreads = 0;
  /// Run the steps one at a time in plan order (kernels stay parallel);
  /// useful to debug a suspected ordering problem.
  bool sequential = false;
  /// Steps for which this returns true run one after the other in plan
  /// order (others still run beside them): under mpirun the steps that
  /// communicate, whose collectives every rank must issue in the same order.
  std::function<bool(const StepInfo &)> ordered;
  /// Time every kernel call (stepMillis()); costs two clock reads per step.
  bool profile = false;
  /// Called after every kernel call with the step's index, inputs and
  /// outputs (e.g. the routing profiler watches `moe.route`). Steps run
  /// concurrently: the observer must be thread-safe. Folded steps (computed
  /// at creation) are not observed.
  std::function<void(size_t step, const std::vector<Tensor> &inputs,
                     const std::vector<Tensor> &outputs)>
      observer;
};

/// A plan ready to run on some device: what moe-exec and the scoring call,
/// whether the steps run on the CPU (Executor) or on a GPU
/// (cuda::CudaExecutor). Inputs and outputs are host tensors.
class Runner {
public:
  virtual ~Runner() = default;
  /// Checks count, dtypes and shapes of `inputs` against the program inputs.
  virtual Status checkInputs(const std::vector<Tensor> &inputs) const = 0;
  /// Runs the program; returns the program outputs in order.
  virtual StatusOr<std::vector<Tensor>>
  run(const std::vector<Tensor> &inputs) const = 0;
  /// Host worker threads.
  virtual int numThreads() const = 0;
  /// With profiling on: per step, its mean wall time (ms) since the last
  /// resetProfile().
  virtual std::vector<double> stepMillis() const = 0;
  virtual void resetProfile() const = 0;
  virtual const LoadedPlan &plan() const = 0;
};

/// The steps computed once at load: Calls whose inputs are all weights or
/// outputs of such steps, except those that communicate (they run with the
/// other ranks).
std::vector<bool> foldableSteps(const LoadedPlan &plan);

class Executor : public Runner {
public:
  /// Builds the dependency graph of `plan`, which must outlive the executor.
  static StatusOr<std::unique_ptr<Executor>>
  create(const LoadedPlan &plan, const ExecutorOptions &options = {});
  ~Executor() override;

  /// Checks count, dtypes and shapes of `inputs` against the program inputs
  /// (declared -1 dims are free): "input 0 `x`: shape [2, 3] does not
  /// match declared [?, 64]".
  Status checkInputs(const std::vector<Tensor> &inputs) const override;

  /// Runs the program; returns the program outputs in order. Safe to call
  /// from several threads at once.
  StatusOr<std::vector<Tensor>>
  run(const std::vector<Tensor> &inputs) const override;

  int numThreads() const override { return numThreads_; }
  /// Steps computed once when the executor was created (their inputs are
  /// all weights): weight transposes, stacks, dequantisation.
  size_t numFoldedSteps() const { return foldedSteps_; }
  /// Whether step i was computed at creation.
  bool isFolded(size_t step) const { return folded_[step]; }
  /// The value computed at creation for value id v (a weight, or an output
  /// of a folded step); undefined for the others.
  const Tensor &constantValue(uint32_t v) const { return constants_[v]; }

  /// With ExecutorOptions::profile: per step, the mean wall time of its
  /// kernel call (ms) over the runs since the last resetProfile().
  std::vector<double> stepMillis() const override;
  void resetProfile() const override;
  const LoadedPlan &plan() const override { return plan_; }

private:
  Executor(const LoadedPlan &plan, const ExecutorOptions &options);
  struct RunState;
  Status runStep(size_t index, RunState &state) const;
  /// Runs the steps whose inputs are all weights, once (load-time folding).
  Status foldConstants();

  const LoadedPlan &plan_;
  ExecutorOptions options_;
  int numThreads_ = 1;
  std::unique_ptr<tbb::task_arena> arena_;
  /// Per step: the steps waiting on it and how many it waits on.
  std::vector<std::vector<size_t>> successors_;
  std::vector<int> numPredecessors_;
  std::vector<size_t> roots_;
  /// Values computed at creation (undefined tensors elsewhere) and the
  /// steps that computed them.
  std::vector<Tensor> constants_;
  mutable std::unique_ptr<std::atomic<uint64_t>[]> stepNanos_;
  mutable std::atomic<uint64_t> profiledRuns_{0};
  std::vector<bool> folded_;
  size_t foldedSteps_ = 0;
};

} // namespace moe::rt

#endif // MOE_RUNTIME_EXECUTOR_H
