//===- CudaExecutor.cpp - Running a loaded plan on a GPU ------------------===//

#include "runtime/cuda/CudaExecutor.h"

#include "runtime/cuda/CudaDevice.h"

#include <chrono>

namespace moe::rt::cuda {

struct CudaExecutor::RunState {
  /// Per value: its host copy and its device copy (either may be absent).
  std::vector<Tensor> host, dev;
};

StatusOr<std::unique_ptr<CudaExecutor>>
CudaExecutor::create(const LoadedPlan &plan,
                     const CudaExecutorOptions &options) {
  // Which op is missing is known from the plan alone: say so before
  // looking for a GPU.
  MOE_RETURN_IF_ERROR(checkCudaSupport(plan));
  std::unique_ptr<CudaExecutor> ex(new CudaExecutor(plan, options));
  {
    StatusOr<std::shared_ptr<CudaDevice>> d =
        CudaDevice::open(options.device, options.memoryBudget);
    if (!d.isOk())
      return d.status();
    ex->device_ = std::move(*d);
  }
  ExecutorOptions hostOptions;
  hostOptions.numThreads = options.hostThreads;
  hostOptions.sequential = true;
  {
    StatusOr<std::unique_ptr<Executor>> h = Executor::create(plan, hostOptions);
    if (!h.isOk())
      return h.status();
    ex->host_ = std::move(*h);
  }
  const std::vector<StepInfo> &steps = plan.steps();
  const std::vector<ValueInfo> &values = plan.values();
  std::vector<bool> foldable = foldableSteps(plan);
  ex->deviceConstants_.assign(values.size(), Tensor());
  ex->placement_.resize(steps.size(), CudaPlacement::Host);
  ex->residency_.resize(steps.size());
  ex->kernels_.assign(steps.size(), nullptr);
  for (size_t s = 0; s < steps.size(); ++s) {
    StatusOr<CudaPlacement> p = cudaPlacement(plan, s, foldable);
    if (!p.isOk())
      return p.status();
    ex->placement_[s] = *p;
    const CudaKernel *k = findCudaKernel(steps[s].kernelName);
    ex->kernels_[s] = k;
    if (*p == CudaPlacement::Host || ex->host_->isFolded(s))
      continue;
    // Hybrid: a moe.experts step's w1, w2, w3 go where each expert is
    // placed, not whole to the device.
    const bool hybridExperts =
        options.hybrid && steps[s].kernelName == "moe.experts";
    if (hybridExperts) {
      std::vector<Tensor> host;
      for (uint32_t v : steps[s].inputs)
        host.push_back(ex->host_->constantValue(v));
      StatusOr<std::unique_ptr<ExpertResidency>> r =
          makeResidency(*ex->device_, steps[s], int64_t(s), host);
      if (!r.isOk())
        return r.status().withContext("hybrid: step " + std::to_string(s) +
                                      " `moe.experts`");
      ex->residency_[s] = std::move(*r);
    }
    for (size_t i = 0; i < steps[s].inputs.size(); ++i) {
      uint32_t v = steps[s].inputs[i];
      if (hybridExperts && i >= 2 && i < ex->residency_[s]->device.size())
        continue; // w1, w2, w3: in the residency
      const Tensor &c = ex->host_->constantValue(v);
      if (!c.defined() || ex->deviceConstants_[v].defined() ||
          (k && k->hostInput && k->hostInput(i)))
        continue;
      std::string what =
          values[v].kind == ValueKind::Weight
              ? "weight `" + plan.weights()[size_t(values[v].weight)].name + "`"
              : "value " + std::to_string(v) + " (computed at load)";
      std::string where = "step " + std::to_string(s) + " `" +
                          steps[s].kernelName + "`";
      if (c.packed() &&
          !cudaReadsPacked(steps[s], i, c.packed()->formats))
        return Status::error(where + ": input " + std::to_string(i) +
                             " is a packed (quantised) weight: no CUDA "
                             "kernel for this step");
      StatusOr<Tensor> d = ex->device_->upload(c, what);
      if (!d.isOk())
        return d.status().withContext("cuda");
      ex->weightBytes_ += c.byteSize();
      ex->deviceConstants_[v] = std::move(*d);
    }
  }
  // The on-demand cache, shared by the layers: each slot holds the largest
  // on-demand expert of any of them.
  std::vector<uint64_t> slotBytes;
  for (const std::unique_ptr<ExpertResidency> &r : ex->residency_) {
    if (!r)
      continue;
    slotBytes.resize(std::max(slotBytes.size(), r->onDemandBytes.size()), 0);
    for (size_t i = 0; i < r->onDemandBytes.size(); ++i)
      slotBytes[i] = std::max(slotBytes[i], r->onDemandBytes[i]);
  }
  bool onDemand = false;
  for (uint64_t b : slotBytes)
    onDemand = onDemand || b > 0;
  if (onDemand) {
    if (options.cacheExperts < 1)
      return Status::error("hybrid: experts are placed on demand but the "
                           "device cache has no slot (--device-cache)");
    StatusOr<std::unique_ptr<ExpertCache>> c =
        makeExpertCache(*ex->device_, slotBytes, options.cacheExperts);
    if (!c.isOk())
      return c.status().withContext("hybrid");
    ex->cache_ = std::move(*c);
    for (const std::unique_ptr<ExpertResidency> &r : ex->residency_)
      if (r)
        r->cache = ex->cache_.get();
  }
  MOE_RETURN_IF_ERROR(ex->device_->synchronize());
  ex->stepMs_.assign(steps.size(), 0.0);
  return StatusOr<std::unique_ptr<CudaExecutor>>(std::move(ex));
}

CudaExecutor::~CudaExecutor() = default;

Status CudaExecutor::checkInputs(const std::vector<Tensor> &inputs) const {
  return host_->checkInputs(inputs);
}

int CudaExecutor::numThreads() const { return host_->numThreads(); }

std::string CudaExecutor::deviceName() const { return device_->info().name; }

HybridStats CudaExecutor::hybridStats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  HybridStats h;
  if (cache_) {
    h.cacheHits = cache_->hits;
    h.cacheMisses = cache_->misses;
  }
  for (const std::unique_ptr<ExpertResidency> &r : residency_) {
    if (!r)
      continue;
    h.h2dBytes += r->h2dBytes;
    h.d2hBytes += r->d2hBytes;
    for (int64_t p : r->placement) {
      h.residentExperts += p == 0 || p == 1;
      h.cpuExperts += p == 2;
      h.onDemandExperts += p == 3;
    }
  }
  return h;
}

uint64_t CudaExecutor::peakDeviceBytes() const {
  return device_->memory().peak();
}

std::vector<double> CudaExecutor::stepMillis() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<double> ms(stepMs_.size(), 0.0);
  if (profiledRuns_)
    for (size_t i = 0; i < ms.size(); ++i)
      ms[i] = stepMs_[i] / double(profiledRuns_);
  return ms;
}

void CudaExecutor::resetProfile() const {
  std::lock_guard<std::mutex> lock(mutex_);
  stepMs_.assign(stepMs_.size(), 0.0);
  profiledRuns_ = 0;
}

Status CudaExecutor::runStep(size_t index, RunState &st) const {
  const StepInfo &step = plan_.steps()[index];
  switch (step.kind) {
  case StepKind::Free:
    for (uint32_t v : step.inputs) {
      if (host_->constantValue(v).defined())
        continue; // weights and folded values live as long as the executor
      st.host[v] = Tensor();
      st.dev[v] = Tensor();
    }
    return Status::ok();
  case StepKind::Copy:
    st.host[step.outputs[0]] = st.host[step.inputs[0]];
    st.dev[step.outputs[0]] = st.dev[step.inputs[0]];
    return Status::ok();
  case StepKind::Call:
    break;
  }
  CudaPlacement placement = placement_[index];
  const CudaKernel *k = kernels_[index];
  // Where each input is read.
  auto onHost = [&](size_t i) -> StatusOr<Tensor> {
    uint32_t v = step.inputs[i];
    if (!st.host[v].defined()) {
      StatusOr<Tensor> h = device_->download(st.dev[v]);
      if (!h.isOk())
        return h;
      st.host[v] = std::move(*h);
    }
    return st.host[v];
  };
  auto onDevice = [&](size_t i) -> StatusOr<Tensor> {
    uint32_t v = step.inputs[i];
    if (!st.dev[v].defined()) {
      StatusOr<Tensor> d =
          device_->upload(st.host[v], "value " + std::to_string(v));
      if (!d.isOk())
        return d;
      st.dev[v] = std::move(*d);
    }
    return st.dev[v];
  };
  std::vector<Tensor> inputs;
  inputs.reserve(step.inputs.size());
  // The reshape family runs where its data input already is.
  bool aliasOnHost = placement == CudaPlacement::Alias &&
                     st.host[step.inputs[0]].defined() &&
                     !st.dev[step.inputs[0]].defined();
  bool shapesOnly = step.kernelName == "nn.shape";
  ExpertResidency *residency = residency_[index].get();
  for (size_t i = 0; i < step.inputs.size(); ++i) {
    uint32_t v = step.inputs[i];
    bool host = placement == CudaPlacement::Host || aliasOnHost ||
                (k && k->hostInput && k->hostInput(i)) ||
                (residency && i >= 2 && i < residency->device.size());
    StatusOr<Tensor> t = shapesOnly && !st.host[v].defined() ? st.dev[v]
                         : host                              ? onHost(i)
                                                             : onDevice(i);
    if (!t.isOk())
      return t.status();
    inputs.push_back(std::move(*t));
  }
  if (placement != CudaPlacement::Device) {
    StatusOr<std::vector<Tensor>> out = KernelRegistry::runCpu(
        *step.kernel, std::move(inputs), step.attrs, step.outputs.size());
    if (!out.isOk())
      return out.status();
    for (size_t i = 0; i < step.outputs.size(); ++i) {
      Tensor &t = (*out)[i];
      (t.isOnDevice() ? st.dev : st.host)[step.outputs[i]] = std::move(t);
    }
    return Status::ok();
  }
  if (k->allocatesOutputs) {
    CudaKernelContext ctx{*device_, step, std::move(inputs),
                          std::vector<Tensor>(step.outputs.size()), {}, {}};
    ctx.decodeMaxTokens = options_.decodeMaxTokens;
    for (uint32_t v : step.inputs)
      ctx.hostInputs.push_back(st.host[v]);
    MOE_RETURN_IF_ERROR(k->run(ctx));
    for (size_t i = 0; i < step.outputs.size(); ++i) {
      if (!ctx.outputs[i].defined())
        return Status::error("output " + std::to_string(i) +
                             " was not produced");
      st.dev[step.outputs[i]] = std::move(ctx.outputs[i]);
    }
    return Status::ok();
  }
  std::vector<TensorType> types;
  for (const Tensor &t : inputs)
    types.push_back({t.dtype(), t.shape(), t.packed() != nullptr});
  StatusOr<std::vector<TensorType>> outTypes = KernelRegistry::inferOutputs(
      *step.kernel, types, step.attrs, step.outputs.size());
  if (!outTypes.isOk())
    return outTypes.status();
  CudaKernelContext ctx{*device_, step, std::move(inputs), {}, {}, {}};
  for (uint32_t v : step.inputs)
    ctx.hostInputs.push_back(st.host[v]);
  ctx.residency = residency;
  ctx.decodeMaxTokens = options_.decodeMaxTokens;
  for (size_t i = 0; i < outTypes->size(); ++i) {
    StatusOr<Tensor> t = device_->allocate(
        (*outTypes)[i].dtype, (*outTypes)[i].shape,
        "output " + std::to_string(i));
    if (!t.isOk())
      return t.status();
    ctx.outputs.push_back(std::move(*t));
  }
  MOE_RETURN_IF_ERROR(k->run(ctx));
  for (size_t i = 0; i < step.outputs.size(); ++i) {
    st.dev[step.outputs[i]] = std::move(ctx.outputs[i]);
    if (i < ctx.hostOutputs.size() && ctx.hostOutputs[i].defined())
      st.host[step.outputs[i]] = std::move(ctx.hostOutputs[i]);
  }
  return Status::ok();
}

Status CudaExecutor::observe(size_t index, RunState &st) const {
  const StepInfo &step = plan_.steps()[index];
  auto hostCopies = [&](const std::vector<uint32_t> &ids)
      -> StatusOr<std::vector<Tensor>> {
    std::vector<Tensor> out;
    for (uint32_t v : ids) {
      if (!st.host[v].defined() && st.dev[v].defined()) {
        StatusOr<Tensor> h = device_->download(st.dev[v]);
        if (!h.isOk())
          return h.status();
        st.host[v] = std::move(*h);
      }
      out.push_back(st.host[v]);
    }
    return out;
  };
  StatusOr<std::vector<Tensor>> in = hostCopies(step.inputs);
  if (!in.isOk())
    return in.status();
  StatusOr<std::vector<Tensor>> out = hostCopies(step.outputs);
  if (!out.isOk())
    return out.status();
  options_.observer(index, *in, *out);
  return Status::ok();
}

StatusOr<std::vector<Tensor>>
CudaExecutor::run(const std::vector<Tensor> &inputs) const {
  return runDevice(inputs, false);
}

StatusOr<std::vector<Tensor>>
CudaExecutor::runDevice(const std::vector<Tensor> &inputs,
                        bool outputsOnDevice) const {
  MOE_RETURN_IF_ERROR(checkInputs(inputs));
  std::lock_guard<std::mutex> lock(mutex_);
  const std::vector<ValueInfo> &values = plan_.values();
  RunState st;
  st.host.assign(values.size(), Tensor());
  st.dev = deviceConstants_;
  for (size_t v = 0; v < values.size(); ++v)
    st.host[v] = host_->constantValue(uint32_t(v));
  for (size_t i = 0; i < plan_.inputs().size(); ++i)
    (inputs[i].isOnDevice() ? st.dev : st.host)[plan_.inputs()[i]] =
        inputs[i];
  const std::vector<StepInfo> &steps = plan_.steps();
  MOE_RETURN_IF_ERROR(device_->clearErrors());
  for (size_t s = 0; s < steps.size(); ++s) {
    if (host_->isFolded(s))
      continue;
    auto start = std::chrono::steady_clock::now();
    Status status = runStep(s, st);
    if (status.isOk() && options_.profile)
      status = device_->synchronize();
    if (status.isOk() && options_.observer && options_.observes &&
        steps[s].kind == StepKind::Call && options_.observes(steps[s]))
      status = observe(s, st);
    if (!status.isOk())
      return status.withContext("step " + std::to_string(s) + " `" +
                                steps[s].kernelName + "` (cuda)");
    if (options_.profile)
      stepMs_[s] += std::chrono::duration<double, std::milli>(
                        std::chrono::steady_clock::now() - start)
                        .count();
  }
  std::vector<Tensor> outputs;
  for (uint32_t v : plan_.outputs()) {
    if (outputsOnDevice && st.dev[v].defined()) {
      outputs.push_back(st.dev[v]);
      continue;
    }
    if (st.host[v].defined()) {
      outputs.push_back(st.host[v]);
      continue;
    }
    StatusOr<Tensor> h = device_->download(st.dev[v]);
    if (!h.isOk())
      return h.status().withContext("output");
    outputs.push_back(std::move(*h));
  }
  // Waits for the stream, and reports what kernels flagged on the way.
  MOE_RETURN_IF_ERROR(device_->takeErrors());
  if (options_.profile)
    ++profiledRuns_;
  return outputs;
}

} // namespace moe::rt::cuda
