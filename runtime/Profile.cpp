//===- Profile.cpp - Routing profiles of a running plan -------------------===//

#include "runtime/Profile.h"

#include "runtime/Describe.h"

#include "kernels/cpu/Moe.h"

#include <algorithm>
#include <cmath>

namespace moe::rt {

Status RoutingProfiler::forEachCounter(
    const std::function<Status(int64_t *, size_t)> &ints,
    const std::function<Status(double *, size_t)> &reals) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (Layer &l : layers_) {
    int64_t scalars[] = {l.tokens,   l.calls,           l.skippedSlots,
                         l.distinct, l.unprunedDistinct, l.seen};
    MOE_RETURN_IF_ERROR(ints(scalars, 6));
    l.tokens = scalars[0];
    l.calls = scalars[1];
    l.skippedSlots = scalars[2];
    l.distinct = scalars[3];
    l.unprunedDistinct = scalars[4];
    l.seen = scalars[5];
    double sums[] = {l.entropySum, l.bytesRead, l.unprunedBytesRead};
    MOE_RETURN_IF_ERROR(reals(sums, 3));
    l.entropySum = sums[0];
    l.bytesRead = sums[1];
    l.unprunedBytesRead = sums[2];
    MOE_RETURN_IF_ERROR(ints(l.count.data(), l.count.size()));
    MOE_RETURN_IF_ERROR(ints(l.slotCount.data(), l.slotCount.size()));
    MOE_RETURN_IF_ERROR(ints(l.top1Histogram.data(), l.top1Histogram.size()));
    MOE_RETURN_IF_ERROR(reals(l.weightSum.data(), l.weightSum.size()));
    MOE_RETURN_IF_ERROR(reals(l.weightSqSum.data(), l.weightSqSum.size()));
    MOE_RETURN_IF_ERROR(reals(l.slotWeightSum.data(), l.slotWeightSum.size()));
  }
  return Status::ok();
}

std::string base64Encode(const uint8_t *data, size_t size) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  for (size_t i = 0; i < size; i += 3) {
    uint32_t v = uint32_t(data[i]) << 16;
    if (i + 1 < size)
      v |= uint32_t(data[i + 1]) << 8;
    if (i + 2 < size)
      v |= uint32_t(data[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < size ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < size ? kAlphabet[v & 63] : '=';
  }
  return out;
}

StatusOr<std::unique_ptr<RoutingProfiler>>
RoutingProfiler::create(const LoadedPlan &plan, const ProfileOptions &options) {
  if (options.samples < 0 || options.histogramBins < 1)
    return Status::error("profile: bad options");
  std::unique_ptr<RoutingProfiler> p(new RoutingProfiler(plan, options));
  std::vector<size_t> routes, dispatches, experts;
  for (size_t s = 0; s < plan.steps().size(); ++s) {
    const StepInfo &step = plan.steps()[s];
    if (step.kind != StepKind::Call)
      continue;
    if (step.kernelName == "moe.route")
      routes.push_back(s);
    else if (step.kernelName == "moe.dispatch")
      dispatches.push_back(s);
    else if (step.kernelName == "moe.experts")
      experts.push_back(s);
  }
  if (routes.empty())
    return Status::error("profile: the plan has no MoE layer (no moe.route "
                         "step) to profile");
  if (routes.size() != dispatches.size() || routes.size() != experts.size())
    return Status::error(
        "profile: the plan's " + std::to_string(routes.size()) +
        " moe.route, " + std::to_string(dispatches.size()) +
        " moe.dispatch and " + std::to_string(experts.size()) +
        " moe.experts steps do not pair up into layers");
  p->layerOfStep_.assign(plan.steps().size(), -1);
  std::vector<ExpertLayerStorage> storage = expertStorage(plan);
  for (size_t l = 0; l < routes.size(); ++l) {
    Layer layer;
    layer.routeStep = routes[l];
    layer.dispatchStep = dispatches[l];
    layer.expertsStep = experts[l];
    const StepInfo &route = plan.steps()[routes[l]];
    const StepInfo &ex = plan.steps()[experts[l]];
    StatusOr<int64_t> k = route.attrs.getInt("k");
    StatusOr<int64_t> e = ex.attrs.getInt("num_experts");
    if (!k.isOk() || !e.isOk() || *k < 1 || *e < 1)
      return Status::error("profile: layer " + std::to_string(l) +
                           ": moe.route needs `k` and moe.experts "
                           "`num_experts`");
    layer.topK = *k;
    layer.numExperts = *e;
    StatusOr<int64_t> stride = route.attrs.getInt("batch_stride", 0);
    layer.batchStride = stride.isOk() ? std::max<int64_t>(0, *stride) : 0;
    const ValueInfo &x = plan.values()[plan.steps()[dispatches[l]].inputs[0]];
    layer.hidden = x.shape.empty() ? -1 : x.shape.back();
    layer.count.assign(size_t(*e), 0);
    layer.weightSum.assign(size_t(*e), 0.0);
    layer.weightSqSum.assign(size_t(*e), 0.0);
    layer.slotCount.assign(size_t(*e * *k), 0);
    layer.slotWeightSum.assign(size_t(*k), 0.0);
    layer.top1Histogram.assign(size_t(options.histogramBins), 0);
    layer.rng.seed(options.seed * 0x9E3779B97F4A7C15ull + l);
    layer.expertBytes.assign(size_t(*e), 0);
    for (const ExpertLayerStorage &s : storage)
      if (s.step == experts[l])
        for (size_t x = 0; x < s.experts.size() && x < layer.expertBytes.size();
             ++x)
          layer.expertBytes[x] = s.experts[x].bytes;
    {
      int64_t sum = 0, n = 0;
      for (int64_t b : layer.expertBytes)
        if (b > 0) {
          sum += b;
          ++n;
        }
      layer.unprunedBytes = layer.expertBytes;
      for (int64_t &b : layer.unprunedBytes)
        if (b == 0 && n > 0)
          b = sum / n;
    }
    p->layerOfStep_[routes[l]] = int(l);
    p->layerOfStep_[dispatches[l]] = int(l);
    p->layers_.push_back(std::move(layer));
  }
  return p;
}

Status RoutingProfiler::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return status_;
}

void RoutingProfiler::observe(size_t step, const std::vector<Tensor> &inputs,
                              const std::vector<Tensor> &outputs) {
  if (step >= layerOfStep_.size() || layerOfStep_[step] < 0)
    return;
  std::lock_guard<std::mutex> lock(mutex_);
  Layer &layer = layers_[size_t(layerOfStep_[step])];
  if (step == layer.routeStep && outputs.size() >= 2) {
    observeRoute(layer, outputs[0], outputs[1]);
    if (!inputs.empty())
      observePruning(layer, inputs[0], outputs[0]);
  }
  else if (step == layer.dispatchStep && inputs.size() >= 2)
    observeDispatch(layer, inputs[0], inputs[1]);
}

void RoutingProfiler::observeRoute(Layer &layer, const Tensor &ids,
                                   const Tensor &weights) {
  int64_t k = layer.topK, e = layer.numExperts;
  if (ids.dtype() != DType::I64 || weights.dtype() != DType::F32 ||
      ids.shape().size() != 2 || ids.shape() != weights.shape() ||
      ids.shape()[1] != k) {
    if (status_.isOk())
      status_ = Status::error("profile: step " +
                              std::to_string(layer.routeStep) +
                              " `moe.route`: unexpected outputs " +
                              formatType(ids.dtype(), ids.shape()));
    return;
  }
  int64_t tokens = ids.shape()[0];
  const int64_t *id = ids.data<int64_t>();
  const float *w = weights.data<float>();
  int bins = options_.histogramBins;
  for (int64_t t = 0; t < tokens; ++t) {
    double sum = 0;
    for (int64_t r = 0; r < k; ++r)
      sum += std::max(0.0f, w[t * k + r]);
    double entropy = 0;
    for (int64_t r = 0; r < k; ++r) {
      int64_t x = id[t * k + r];
      double wr = w[t * k + r];
      if (x < 0 || x >= e)
        continue; // the kernel rejects these itself
      layer.count[size_t(x)] += 1;
      layer.weightSum[size_t(x)] += wr;
      layer.weightSqSum[size_t(x)] += wr * wr;
      layer.slotCount[size_t(x * k + r)] += 1;
      layer.slotWeightSum[size_t(r)] += wr;
      double p = sum > 0 ? std::max(0.0, wr) / sum : 0.0;
      if (p > 0)
        entropy -= p * std::log(p);
    }
    layer.entropySum += entropy;
    double top1 = std::min(1.0, std::max(0.0, double(w[t * k])));
    int bin = std::min(bins - 1, int(top1 * bins));
    layer.top1Histogram[size_t(bin)] += 1;
  }
  layer.tokens += tokens;
}

void RoutingProfiler::observePruning(Layer &layer, const Tensor &logits,
                                     const Tensor &ids) {
  int64_t e = layer.numExperts, k = layer.topK;
  if (logits.dtype() != DType::F32 || logits.shape().size() != 2 ||
      logits.shape()[1] != e || ids.dtype() != DType::I64 ||
      ids.shape().size() != 2 || ids.shape()[0] != logits.shape()[0])
    return;
  int64_t tokens = logits.shape()[0];
  const float *lg = logits.data<float>();
  const int64_t *id = ids.data<int64_t>();
  // The batches the router decided for: tokens t ≡ g (mod stride) (the
  // moe.route semantics of batch_stride), or the whole call (stride 1).
  int64_t stride = layer.batchStride > 0 && layer.batchStride < tokens
                       ? layer.batchStride
                       : 1;
  std::vector<uint8_t> used(static_cast<size_t>(e));
  std::vector<uint8_t> unpruned(static_cast<size_t>(e));
  std::vector<int64_t> order(static_cast<size_t>(e));
  for (int64_t g = 0; g < stride; ++g) {
    std::fill(used.begin(), used.end(), 0);
    std::fill(unpruned.begin(), unpruned.end(), 0);
    for (int64_t t = g; t < tokens; t += stride) {
      for (int64_t r = 0; r < k; ++r) {
        int64_t x = id[t * k + r];
        if (x < 0)
          ++layer.skippedSlots;
        else if (x < e)
          used[size_t(x)] = 1;
      }
      // The unpruned choice: top-k of the logits (scoring is monotonic),
      // ties to the lower id, as moe.route picks.
      const float *row = lg + t * e;
      for (int64_t x = 0; x < e; ++x)
        order[size_t(x)] = x;
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [&](int64_t a, int64_t b) {
                          return kernels::cpu::routeBefore(row, a, b);
                        });
      for (int64_t r = 0; r < k; ++r)
        unpruned[size_t(order[size_t(r)])] = 1;
    }
    layer.calls += 1;
    for (int64_t x = 0; x < e; ++x) {
      layer.distinct += used[size_t(x)];
      layer.unprunedDistinct += unpruned[size_t(x)];
      layer.bytesRead += used[size_t(x)] * double(layer.expertBytes[size_t(x)]);
      layer.unprunedBytesRead +=
          unpruned[size_t(x)] * double(layer.unprunedBytes[size_t(x)]);
    }
  }
}

RoutingProfiler::PruningStats RoutingProfiler::pruningStats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  PruningStats s;
  for (const Layer &l : layers_) {
    s.calls += l.calls;
    s.slots += l.tokens * l.topK;
    s.skippedSlots += l.skippedSlots;
    s.distinct += l.distinct;
    s.unprunedDistinct += l.unprunedDistinct;
    s.bytesRead += l.bytesRead;
    s.unprunedBytesRead += l.unprunedBytesRead;
  }
  return s;
}

void RoutingProfiler::reset() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (Layer &l : layers_) {
    std::fill(l.count.begin(), l.count.end(), 0);
    std::fill(l.weightSum.begin(), l.weightSum.end(), 0.0);
    std::fill(l.weightSqSum.begin(), l.weightSqSum.end(), 0.0);
    std::fill(l.slotCount.begin(), l.slotCount.end(), 0);
    std::fill(l.slotWeightSum.begin(), l.slotWeightSum.end(), 0.0);
    std::fill(l.top1Histogram.begin(), l.top1Histogram.end(), 0);
    l.tokens = 0;
    l.entropySum = 0;
    l.calls = l.skippedSlots = l.distinct = l.unprunedDistinct = 0;
    l.bytesRead = l.unprunedBytesRead = 0;
  }
  runs_ = 0;
}

void RoutingProfiler::observeDispatch(Layer &layer, const Tensor &hidden,
                                      const Tensor &ids) {
  int64_t n = options_.samples;
  if (n == 0 || hidden.dtype() != DType::F32 || hidden.shape().size() != 2 ||
      ids.dtype() != DType::I64 || ids.shape().size() != 2 ||
      ids.shape()[0] != hidden.shape()[0] || ids.shape()[1] != layer.topK)
    return;
  int64_t h = hidden.shape()[1], k = layer.topK;
  if (layer.hidden < 0)
    layer.hidden = h;
  if (h != layer.hidden)
    return;
  const float *x = hidden.data<float>();
  const int64_t *id = ids.data<int64_t>();
  for (int64_t t = 0; t < hidden.shape()[0]; ++t) {
    int64_t slot = -1;
    int64_t kept = int64_t(layer.sampleIds.size()) / k;
    if (kept < n) {
      slot = kept;
      layer.sampleRows.resize(size_t((kept + 1) * h));
      layer.sampleIds.resize(size_t((kept + 1) * k));
    } else {
      uint64_t j = layer.rng() % uint64_t(layer.seen + 1);
      if (j < uint64_t(n))
        slot = int64_t(j);
    }
    layer.seen += 1;
    if (slot < 0)
      continue;
    std::copy(x + t * h, x + (t + 1) * h, layer.sampleRows.begin() + slot * h);
    std::copy(id + t * k, id + (t + 1) * k, layer.sampleIds.begin() + slot * k);
  }
}

namespace {
template <typename T>
std::string jsonArray(const std::vector<T> &v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i)
      s += ", ";
    if constexpr (std::is_integral_v<T>)
      s += std::to_string(v[i]);
    else
      s += jsonNumber(double(v[i]));
  }
  return s + "]";
}
} // namespace

std::string RoutingProfiler::toJson() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string modelId;
  if (const AttrValue *a = plan_.metadata().find("model_id"))
    modelId = a->s;
  std::string s = "{\n";
  s += "  \"format\": \"moe-profile\",\n";
  s += "  \"version\": " + std::to_string(kProfileVersion) + ",\n";
  s += "  \"model_id\": " + jsonString(modelId) + ",\n";
  s += "  \"plan\": " + jsonString(plan_.path()) + ",\n";
  s += "  \"runs\": " + std::to_string(runs_) + ",\n";
  s += "  \"layers\": [";
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer &layer = layers_[l];
    int64_t e = layer.numExperts, k = layer.topK;
    double tokens = double(std::max<int64_t>(layer.tokens, 1));
    s += l ? ",\n    {" : "\n    {";
    s += "\"layer\": " + std::to_string(l);
    s += ", \"num_experts\": " + std::to_string(e);
    s += ", \"top_k\": " + std::to_string(k);
    s += ", \"hidden\": " + std::to_string(layer.hidden);
    s += ", \"tokens\": " + std::to_string(layer.tokens);
    std::vector<double> slotMean(static_cast<size_t>(k));
    for (int64_t r = 0; r < k; ++r)
      slotMean[size_t(r)] = layer.slotWeightSum[size_t(r)] / tokens;
    s += ",\n     \"slot_weight_mean\": " + jsonArray(slotMean);
    s += ",\n     \"top1_weight_histogram\": " + jsonArray(layer.top1Histogram);
    s += ",\n     \"routing_entropy_mean\": " +
         jsonNumber(layer.entropySum / tokens);
    s += ",\n     \"pruning\": {\"calls\": " + std::to_string(layer.calls) +
         ", \"skipped_slots\": " + std::to_string(layer.skippedSlots) +
         ", \"distinct_experts\": " + std::to_string(layer.distinct) +
         ", \"unpruned_distinct_experts\": " +
         std::to_string(layer.unprunedDistinct) +
         ", \"expert_bytes_read\": " + jsonNumber(layer.bytesRead) +
         ", \"unpruned_expert_bytes_read\": " +
         jsonNumber(layer.unprunedBytesRead) + "}";
    s += ",\n     \"experts\": [";
    for (int64_t x = 0; x < e; ++x) {
      int64_t c = layer.count[size_t(x)];
      double ws = layer.weightSum[size_t(x)];
      std::vector<int64_t> slots(layer.slotCount.begin() + x * k,
                                 layer.slotCount.begin() + (x + 1) * k);
      s += x ? ",\n       " : "\n       ";
      s += "{\"expert\": " + std::to_string(x) +
           ", \"count\": " + std::to_string(c) +
           ", \"share\": " + jsonNumber(double(c) / (tokens * double(k))) +
           ", \"weight_sum\": " + jsonNumber(ws) +
           ", \"weight_mean\": " + jsonNumber(c ? ws / double(c) : 0.0) +
           ", \"weight_sq_sum\": " + jsonNumber(layer.weightSqSum[size_t(x)]) +
           ", \"slot_counts\": " + jsonArray(slots) + "}";
    }
    s += "]";
    if (!layer.sampleIds.empty()) {
      int64_t rows = int64_t(layer.sampleIds.size()) / k;
      s += ",\n     \"samples\": {\"rows\": " + std::to_string(rows) +
           ", \"hidden\": " + std::to_string(layer.hidden) +
           ", \"ids\": " + jsonArray(layer.sampleIds) +
           ",\n       \"data_f32le_base64\": \"" +
           base64Encode(reinterpret_cast<const uint8_t *>(
                            layer.sampleRows.data()),
                        layer.sampleRows.size() * sizeof(float)) +
           "\"}";
    }
    s += "}";
  }
  s += "\n  ]\n}\n";
  return s;
}

} // namespace moe::rt
