//===- Executor.cpp - Running a loaded plan on the CPU --------------------===//

#include "runtime/Executor.h"

#include <tbb/info.h>
#include <tbb/task_group.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <functional>
#include <mutex>

namespace moe::rt {

/// Everything one run() owns: the live tensors and the scheduling state.
struct Executor::RunState {
  std::vector<Tensor> values;
  std::unique_ptr<std::atomic<int>[]> pending;
  std::atomic<bool> failed{false};
  std::mutex errorMutex;
  size_t errorStep = SIZE_MAX;
  Status error;

  void fail(size_t step, Status st) {
    std::lock_guard<std::mutex> lock(errorMutex);
    // Keep the error of the earliest step so that messages are stable.
    if (step < errorStep) {
      errorStep = step;
      error = std::move(st);
    }
    failed.store(true);
  }
};

Executor::Executor(const LoadedPlan &plan, const ExecutorOptions &options)
    : plan_(plan), options_(options) {}

Executor::~Executor() = default;

StatusOr<std::unique_ptr<Executor>>
Executor::create(const LoadedPlan &plan, const ExecutorOptions &options) {
  using Result = StatusOr<std::unique_ptr<Executor>>;
  if (options.numThreads < 0)
    return Result(Status::error("thread count " +
                                std::to_string(options.numThreads) +
                                " is negative"));
  std::unique_ptr<Executor> ex(new Executor(plan, options));
  ex->numThreads_ = options.numThreads ? options.numThreads
                                       : tbb::info::default_concurrency();
  ex->arena_ = std::make_unique<tbb::task_arena>(ex->numThreads_);

  const std::vector<StepInfo> &steps = plan.steps();
  size_t n = steps.size();
  std::vector<int64_t> producer(plan.values().size(), -1);
  std::vector<std::vector<size_t>> readers(plan.values().size());
  std::vector<std::vector<size_t>> preds(n);
  for (size_t s = 0; s < n; ++s) {
    const StepInfo &step = steps[s];
    for (uint32_t v : step.inputs) {
      if (producer[v] >= 0)
        preds[s].push_back(size_t(producer[v]));
      if (step.kind == StepKind::Free)
        preds[s].insert(preds[s].end(), readers[v].begin(), readers[v].end());
      else
        readers[v].push_back(s);
    }
    if (options.sequential && s > 0)
      preds[s].push_back(s - 1);
    for (uint32_t v : step.outputs)
      producer[v] = int64_t(s);
    std::sort(preds[s].begin(), preds[s].end());
    preds[s].erase(std::unique(preds[s].begin(), preds[s].end()),
                   preds[s].end());
  }
  ex->successors_.assign(n, {});
  ex->numPredecessors_.assign(n, 0);
  for (size_t s = 0; s < n; ++s) {
    ex->numPredecessors_[s] = int(preds[s].size());
    for (size_t p : preds[s])
      ex->successors_[p].push_back(s);
    if (preds[s].empty())
      ex->roots_.push_back(s);
  }
  return Result(std::move(ex));
}

Status Executor::checkInputs(const std::vector<Tensor> &inputs) const {
  const std::vector<uint32_t> &ids = plan_.inputs();
  if (inputs.size() != ids.size())
    return Status::error("the program takes " + std::to_string(ids.size()) +
                         " inputs, got " + std::to_string(inputs.size()));
  for (size_t i = 0; i < ids.size(); ++i) {
    const ValueInfo &v = plan_.values()[ids[i]];
    const Tensor &t = inputs[i];
    std::string where = "input " + std::to_string(i) + " `" +
                        plan_.inputName(i) + "`: ";
    if (!t.defined())
      return Status::error(where + "no tensor given");
    if (t.dtype() != v.dtype)
      return Status::error(where + "dtype " + dtypeName(t.dtype()) +
                           " does not match declared " + dtypeName(v.dtype));
    if (!shapesCompatible(v.shape, t.shape()))
      return Status::error(where + "shape " + formatShape(t.shape()) +
                           " does not match declared " + formatShape(v.shape));
  }
  return Status::ok();
}

Status Executor::runStep(size_t index, RunState &state) const {
  const StepInfo &step = plan_.steps()[index];
  switch (step.kind) {
  case StepKind::Free:
    for (uint32_t v : step.inputs)
      state.values[v] = Tensor();
    return Status::ok();
  case StepKind::Copy:
    // One device: a copy shares the (immutable) storage.
    state.values[step.outputs[0]] = state.values[step.inputs[0]];
    return Status::ok();
  case StepKind::Call:
    break;
  }
  std::string where = "step " + std::to_string(index) + " `" +
                      step.kernelName + "`";
  std::vector<Tensor> inputs;
  inputs.reserve(step.inputs.size());
  for (uint32_t v : step.inputs)
    inputs.push_back(state.values[v]);
  StatusOr<std::vector<Tensor>> outputs =
      KernelRegistry::runCpu(*step.kernel, std::move(inputs), step.attrs,
                             step.outputs.size());
  if (!outputs.isOk())
    return outputs.status().withContext(where);
  if (outputs->size() != step.outputs.size())
    return Status::error(where + ": produced " +
                         std::to_string(outputs->size()) + " outputs, the plan "
                         "declares " + std::to_string(step.outputs.size()));
  for (size_t i = 0; i < step.outputs.size(); ++i) {
    const ValueInfo &decl = plan_.values()[step.outputs[i]];
    const Tensor &t = (*outputs)[i];
    if (t.dtype() != decl.dtype)
      return Status::error(where + ": output " + std::to_string(i) +
                           " has dtype " + dtypeName(t.dtype()) +
                           ", declared " + dtypeName(decl.dtype));
    if (!shapesCompatible(decl.shape, t.shape()))
      return Status::error(where + ": output " + std::to_string(i) +
                           " has shape " + formatShape(t.shape()) +
                           ", declared " + formatShape(decl.shape));
    state.values[step.outputs[i]] = std::move((*outputs)[i]);
  }
  return Status::ok();
}

StatusOr<std::vector<Tensor>>
Executor::run(const std::vector<Tensor> &inputs) const {
  MOE_RETURN_IF_ERROR(checkInputs(inputs));
  RunState state;
  state.values.resize(plan_.values().size());
  for (size_t i = 0; i < inputs.size(); ++i)
    state.values[plan_.inputs()[i]] = inputs[i];
  for (size_t v = 0; v < plan_.values().size(); ++v)
    if (plan_.values()[v].kind == ValueKind::Weight)
      state.values[v] = plan_.weightTensor(size_t(plan_.values()[v].weight));
  size_t n = plan_.steps().size();
  state.pending.reset(new std::atomic<int>[n]);
  for (size_t s = 0; s < n; ++s)
    state.pending[s].store(numPredecessors_[s]);

  arena_->execute([&] {
    tbb::task_group group;
    // Runs step s, then releases the successors whose last predecessor it
    // was. After a failure the remaining steps are skipped but still
    // released, so the group drains.
    std::function<void(size_t)> launch = [&](size_t s) {
      group.run([&, s] {
        if (!state.failed.load()) {
          Status st;
          try {
            st = runStep(s, state);
          } catch (const std::exception &e) {
            // Kernels do not throw on purpose; std::bad_alloc is possible.
            st = Status::error("step " + std::to_string(s) + ": " + e.what());
          }
          if (!st.isOk())
            state.fail(s, std::move(st));
        }
        for (size_t next : successors_[s])
          if (state.pending[next].fetch_sub(1) == 1)
            launch(next);
      });
    };
    for (size_t s : roots_)
      launch(s);
    group.wait();
  });
  if (state.failed.load())
    return state.error;
  std::vector<Tensor> outputs;
  for (uint32_t v : plan_.outputs())
    outputs.push_back(state.values[v]);
  return outputs;
}

} // namespace moe::rt
