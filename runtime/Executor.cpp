//===- Executor.cpp - Running a loaded plan on the CPU --------------------===//

#include "runtime/Executor.h"

#include "kernels/cpu/Dequant.h"
#include "runtime/Distributed.h"

#include <tbb/info.h>
#include <tbb/task_group.h>

#include <algorithm>
#include <atomic>
#include <chrono>
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
  int64_t lastOrdered = -1;
  for (size_t s = 0; s < n; ++s) {
    const StepInfo &step = steps[s];
    if (options.ordered && step.kind == StepKind::Call &&
        options.ordered(step)) {
      if (lastOrdered >= 0)
        preds[s].push_back(size_t(lastOrdered));
      lastOrdered = int64_t(s);
    }
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
  ex->stepNanos_.reset(new std::atomic<uint64_t>[n]);
  ex->resetProfile();
  Status folded = ex->foldConstants();
  if (!folded.isOk())
    return Result(folded);
  return Result(std::move(ex));
}

namespace {

/// ONNX Runtime's QMoE layout (nn.dequantize) stored in the plan's packed
/// format, one packed matrix per expert, without loss; null when the block
/// size has no exact group size.
/// `keep`: the indices of dimension 0 to repack (null: all); the others
/// become absent slices, never read (a rank's other experts or slices).
StatusOr<Tensor> repackDequantize(const std::vector<Tensor> &in,
                                  const Attrs &attrs,
                                  const std::vector<bool> *keep) {
  const Tensor &q = in[0], &s = in[1], &z = in[2];
  if (q.rank() != 3)
    return Tensor();
  kernels::cpu::DequantArgs a;
  StatusOr<int64_t> bits = attrs.getInt("bits");
  if (!bits.isOk())
    return bits.status();
  a.bits = int(*bits);
  a.q = q.data<uint8_t>();
  a.batch = q.dim(0);
  a.rows = q.dim(1);
  a.cols = q.dim(2) * (8 / std::max(1, a.bits));
  if (s.dtype() == DType::F16)
    a.scalesF16 = s.data<uint16_t>();
  else
    a.scalesF32 = s.data<float>();
  a.nblocks = s.rank() == 3 ? s.dim(2) : 0;
  a.zeroPoints = z.numElements() ? z.data<uint8_t>() : nullptr;
  int group = kernels::cpu::repackGroupSize(a);
  if (!group || a.batch <= 0)
    return Tensor();
  auto packed = std::make_shared<PackedWeight>();
  packed->rows = a.rows;
  packed->cols = a.cols;
  kernels::cpu::QuantFormat format{a.bits, group, false, a.zeroPoints != nullptr};
  kernels::cpu::QuantLayout layout =
      kernels::cpu::quantLayout(format, a.rows, a.cols);
  uint64_t stride = (uint64_t(layout.totalBytes) + 63) / 64 * 64;
  if (keep && int64_t(keep->size()) != a.batch)
    keep = nullptr;
  int64_t kept = 0;
  for (int64_t e = 0; e < a.batch; ++e)
    kept += !keep || (*keep)[size_t(e)];
  StatusOr<Tensor> storage = Tensor::allocate(
      DType::U8, Shape{int64_t(stride * uint64_t(std::max<int64_t>(kept, 1)))});
  if (!storage.isOk())
    return storage.status();
  auto *base = static_cast<uint8_t *>(storage->mutableData());
  uint64_t at = 0;
  for (int64_t e = 0; e < a.batch; ++e) {
    if (keep && !(*keep)[size_t(e)]) {
      kernels::cpu::QuantFormat absent;
      absent.bits = kernels::cpu::kAbsentBits;
      packed->formats.push_back(absent);
      packed->offsets.push_back(0);
      packed->sizes.push_back(0);
      continue;
    }
    kernels::cpu::repackMatrix(a, e, group, base + at);
    packed->formats.push_back(format);
    packed->offsets.push_back(at);
    packed->sizes.push_back(uint64_t(layout.totalBytes));
    at += stride;
  }
  auto owner = std::make_shared<Tensor>(std::move(*storage));
  const void *data = owner->data();
  return Tensor::packedView(DType::F32, Shape{a.batch, a.rows, a.cols}, data,
                            std::shared_ptr<const void>(owner, data),
                            std::move(packed));
}

} // namespace

std::vector<bool> foldableSteps(const LoadedPlan &plan) {
  const std::vector<StepInfo> &steps = plan.steps();
  const std::vector<ValueInfo> &values = plan.values();
  std::vector<bool> known(values.size(), false), foldable(steps.size(), false);
  for (size_t v = 0; v < values.size(); ++v)
    known[v] = values[v].kind == ValueKind::Weight;
  for (size_t s = 0; s < steps.size(); ++s) {
    const StepInfo &step = steps[s];
    // A step that talks to the other ranks runs with them, in plan order.
    if (step.kind != StepKind::Call || step.inputs.empty() ||
        step.outputs.empty() || dist::communicates(step.kernelName))
      continue;
    bool allKnown = true;
    for (uint32_t v : step.inputs)
      allKnown = allKnown && known[v];
    if (!allKnown)
      continue;
    foldable[s] = true;
    for (uint32_t v : step.outputs)
      known[v] = true;
  }
  return foldable;
}

Status Executor::foldConstants() {
  const std::vector<StepInfo> &steps = plan_.steps();
  const std::vector<ValueInfo> &values = plan_.values();
  constants_.assign(values.size(), Tensor());
  folded_.assign(steps.size(), false);
  for (size_t v = 0; v < values.size(); ++v)
    if (values[v].kind == ValueKind::Weight)
      constants_[v] = plan_.weightTensor(size_t(values[v].weight));
  // Who reads each value, and as which operand.
  std::vector<std::vector<std::pair<size_t, size_t>>> uses(values.size());
  for (size_t s = 0; s < steps.size(); ++s)
    if (steps[s].kind == StepKind::Call)
      for (size_t i = 0; i < steps[s].inputs.size(); ++i)
        uses[steps[s].inputs[i]].push_back({s, i});
  const std::vector<bool> foldable = foldableSteps(plan_);
  for (size_t s = 0; s < steps.size(); ++s) {
    const StepInfo &step = steps[s];
    if (!foldable[s])
      continue;
    std::vector<Tensor> inputs;
    for (uint32_t v : step.inputs)
      inputs.push_back(constants_[v]);
    std::string where = "step " + std::to_string(s) + " `" +
                        step.kernelName + "` (folded at load)";
    // Dequantised expert weights stay packed (the experts kernel reads the
    // packed format directly): 8x less memory and bandwidth for int4.
    bool expertsOnly = step.kernelName == "nn.dequantize" &&
                       step.outputs.size() == 1;
    for (auto [user, index] : uses[step.outputs[0]])
      expertsOnly = expertsOnly && steps[user].kernelName == "moe.experts" &&
                    index >= 2 && index <= 4;
    if (expertsOnly && !uses[step.outputs[0]].empty()) {
      // On a rank of a partitioned plan, only the experts (or slices) the
      // rank computes (PlanLoader.h, expertSlicesRead).
      std::optional<std::vector<bool>> keep;
      if (dist::size() > 1 && !inputs[0].shape().empty())
        for (auto [user, index] : uses[step.outputs[0]]) {
          std::optional<std::vector<bool>> read = expertSlicesRead(
              steps[user], index, inputs[0].dim(0), dist::rank());
          if (!read) {
            keep.reset();
            break;
          }
          if (!keep)
            keep = std::vector<bool>(read->size(), false);
          for (size_t i = 0; i < read->size(); ++i)
            (*keep)[i] = (*keep)[i] || (*read)[i];
        }
      StatusOr<Tensor> packed =
          repackDequantize(inputs, step.attrs, keep ? &*keep : nullptr);
      if (!packed.isOk())
        return packed.status().withContext(where);
      if (packed->defined()) {
        constants_[step.outputs[0]] = std::move(*packed);
        folded_[s] = true;
        ++foldedSteps_;
        continue;
      }
    }
    StatusOr<std::vector<Tensor>> out = KernelRegistry::runCpu(
        *step.kernel, std::move(inputs), step.attrs, step.outputs.size());
    if (!out.isOk())
      return out.status().withContext(where);
    for (size_t i = 0; i < step.outputs.size(); ++i) {
      constants_[step.outputs[i]] = std::move((*out)[i]);
    }
    folded_[s] = true;
    ++foldedSteps_;
  }
  // A weight that only folded steps read (the codes and scales of
  // dequantised experts, repacked above) is not read again: its mapped
  // pages go back to the system.
  for (size_t v = 0; v < values.size(); ++v) {
    if (values[v].kind != ValueKind::Weight || uses[v].empty())
      continue;
    bool needed = false;
    for (auto [user, index] : uses[v])
      needed = needed || !folded_[user];
    if (!needed) {
      size_t w = size_t(values[v].weight);
      MOE_RETURN_IF_ERROR(
          plan_.releasePages(w, 0, plan_.weights()[w].size));
    }
  }
  return Status::ok();
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
  if (folded_[index])
    return Status::ok(); // computed once at creation
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
  // Tensors share their storage: keeping the inputs for the observer copies
  // no data.
  std::vector<Tensor> observed;
  if (options_.observer)
    observed = inputs;
  auto start = options_.profile ? std::chrono::steady_clock::now()
                                : std::chrono::steady_clock::time_point();
  StatusOr<std::vector<Tensor>> outputs =
      KernelRegistry::runCpu(*step.kernel, std::move(inputs), step.attrs,
                             step.outputs.size());
  if (options_.profile)
    stepNanos_[index].fetch_add(uint64_t(
        std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::steady_clock::now() - start)
            .count()));
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
  }
  if (options_.observer)
    options_.observer(index, observed, *outputs);
  for (size_t i = 0; i < step.outputs.size(); ++i)
    state.values[step.outputs[i]] = std::move((*outputs)[i]);
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
    if (constants_[v].defined())
      state.values[v] = constants_[v];
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
  if (options_.profile)
    profiledRuns_.fetch_add(1);
  std::vector<Tensor> outputs;
  for (uint32_t v : plan_.outputs())
    outputs.push_back(state.values[v]);
  return outputs;
}

} // namespace moe::rt

namespace moe::rt {

std::vector<double> Executor::stepMillis() const {
  size_t n = plan_.steps().size();
  std::vector<double> out(n, 0.0);
  uint64_t runs = profiledRuns_.load();
  if (!runs)
    return out;
  for (size_t s = 0; s < n; ++s)
    out[s] = double(stepNanos_[s].load()) / 1e6 / double(runs);
  return out;
}

void Executor::resetProfile() const {
  for (size_t s = 0; s < plan_.steps().size(); ++s)
    stepNanos_[s].store(0);
  profiledRuns_.store(0);
}

} // namespace moe::rt
