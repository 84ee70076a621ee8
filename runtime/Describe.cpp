//===- Describe.cpp - Plans in words and in JSON --------------------------===//

#include "runtime/Describe.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace moe::rt {

std::string jsonString(const std::string &s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
        out += buf;
      } else {
        out += char(c);
      }
    }
  }
  return out + "\"";
}

std::string jsonNumber(double v) {
  if (!std::isfinite(v))
    return "null";
  char buf[40];
  for (int precision : {9, 15, 17}) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v)
      break;
  }
  std::string s = buf;
  if (s.find_first_of(".e") == std::string::npos)
    s += ".0";
  return s;
}

namespace {

std::string jsonInts(const std::vector<int64_t> &v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i)
    s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

template <typename T> std::string jsonIds(const std::vector<T> &v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i)
    s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

std::string jsonAttr(const AttrValue &a) {
  switch (a.kind) {
  case AttrKind::Int:
    return std::to_string(a.i);
  case AttrKind::Float:
    return jsonNumber(a.f);
  case AttrKind::Ints:
    return jsonInts(a.ints);
  case AttrKind::Floats: {
    std::string s = "[";
    for (size_t i = 0; i < a.floats.size(); ++i)
      s += (i ? ", " : "") + jsonNumber(a.floats[i]);
    return s + "]";
  }
  case AttrKind::String:
    return jsonString(a.s);
  }
  return "null";
}

std::string jsonAttrs(const Attrs &attrs) {
  std::string s = "{";
  for (size_t i = 0; i < attrs.all().size(); ++i)
    s += (i ? ", " : "") + jsonString(attrs.all()[i].name) + ": " +
         jsonAttr(attrs.all()[i]);
  return s + "}";
}

/// Writes `"key": [` + one element per line + `]`.
void jsonArray(std::ostringstream &os, const char *key,
               const std::vector<std::string> &elems, bool last = false) {
  os << "  \"" << key << "\": [";
  if (elems.empty()) {
    os << "]";
  } else {
    os << "\n";
    for (size_t i = 0; i < elems.size(); ++i)
      os << "    " << elems[i] << (i + 1 < elems.size() ? "," : "") << "\n";
    os << "  ]";
  }
  os << (last ? "\n" : ",\n");
}

const char *deviceName(Device d) { return d == Device::CUDA ? "cuda" : "cpu"; }

/// Attribute value in the text form (MLIR-like).
std::string textAttr(const AttrValue &a) {
  switch (a.kind) {
  case AttrKind::Float:
    return jsonNumber(a.f);
  case AttrKind::Floats:
  case AttrKind::Ints:
  case AttrKind::Int:
  case AttrKind::String:
    return jsonAttr(a);
  }
  return "?";
}

std::string textAttrs(const Attrs &attrs) {
  if (attrs.all().empty())
    return "";
  std::string s = " {";
  for (size_t i = 0; i < attrs.all().size(); ++i)
    s += (i ? ", " : "") + attrs.all()[i].name + " = " +
         textAttr(attrs.all()[i]);
  return s + "}";
}

std::string valueList(const std::vector<uint32_t> &ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i)
    s += (i ? ", %" : "%") + std::to_string(ids[i]);
  return s;
}

/// A slice format in the text form: "f32", "bf16", "int4/g128/f16" (+ "/zp"
/// with zero points).
std::string formatText(const kernels::cpu::QuantFormat &f) {
  if (f.bits == kernels::cpu::kAbsentBits)
    return "absent";
  if (f.bits == 0)
    return "f32";
  if (f.bits == 16)
    return "bf16";
  return "int" + std::to_string(f.bits) + "/g" + std::to_string(f.groupSize) +
         (f.f16Scales ? "/f16" : "/f32") + (f.zeroPoints ? "/zp" : "");
}

/// The slices of a packed weight, runs of one format merged:
/// "int4/g128/f16 x3, f32".
std::string slicesText(const std::vector<WeightSliceInfo> &slices) {
  std::string s;
  for (size_t i = 0; i < slices.size();) {
    std::string f = formatText(slices[i].format);
    size_t j = i + 1;
    while (j < slices.size() && formatText(slices[j].format) == f)
      ++j;
    s += (i ? ", " : "") + f;
    if (j - i > 1)
      s += " x" + std::to_string(j - i);
    i = j;
  }
  return s;
}

std::string jsonSlices(const std::vector<WeightSliceInfo> &slices) {
  std::string s = "[";
  for (size_t i = 0; i < slices.size(); ++i) {
    const WeightSliceInfo &sl = slices[i];
    s += std::string(i ? ", " : "") + "{\"bits\": " +
         std::to_string(sl.format.bits) +
         ", \"group_size\": " + std::to_string(sl.format.groupSize) +
         ", \"scale\": \"" + (sl.format.f16Scales ? "f16" : "f32") +
         "\", \"zero_points\": " + (sl.format.zeroPoints ? "true" : "false") +
         ", \"offset\": " + std::to_string(sl.offset) +
         ", \"size\": " + std::to_string(sl.size) + "}";
  }
  return s + "]";
}

/// "f32" etc. for a plain weight of `dtype`.
std::string plainFormat(DType dtype) {
  return dtype == DType::F32 ? "f32" : dtypeName(dtype);
}

/// Experts 0-3 int4/g128/f16 (98304 B each), ...: runs of equal formats.
std::string expertRunsText(const std::vector<ExpertStorage> &experts) {
  std::string s;
  for (size_t i = 0; i < experts.size();) {
    size_t j = i + 1;
    while (j < experts.size() && experts[j].format == experts[i].format &&
           experts[j].bytes == experts[i].bytes &&
           experts[j].placement == experts[i].placement)
      ++j;
    s += (i ? "; " : "") + std::to_string(i);
    if (j - i > 1)
      s += "-" + std::to_string(j - 1);
    s += " " + experts[i].format + " (" + std::to_string(experts[i].bytes) +
         " B" + (j - i > 1 ? " each)" : ")");
    if (!experts[i].placement.empty())
      s += " @" + experts[i].placement;
    i = j;
  }
  return s;
}

/// "N bytes of expert weights, X bits per weight on average" for a set.
void expertTotals(const std::vector<ExpertLayerStorage> &layers,
                  int64_t &bytes, int64_t &elements, int64_t &experts) {
  bytes = elements = experts = 0;
  for (const ExpertLayerStorage &l : layers)
    for (const ExpertStorage &e : l.experts) {
      bytes += e.bytes;
      elements += e.elements;
      ++experts;
    }
}

} // namespace

std::vector<ExpertLayerStorage> expertStorage(const LoadedPlan &plan) {
  std::vector<ExpertLayerStorage> layers;
  for (size_t si = 0; si < plan.steps().size(); ++si) {
    const StepInfo &step = plan.steps()[si];
    if (step.kind != StepKind::Call || step.kernelName != "moe.experts")
      continue;
    StatusOr<int64_t> ne = step.attrs.getInt("num_experts");
    StatusOr<int64_t> hasW3 = step.attrs.getInt("has_w3", 0);
    if (!ne.isOk() || !hasW3.isOk() || *ne < 1 || step.inputs.size() < 4)
      continue;
    int64_t e = *ne;
    size_t numW = *hasW3 ? 3 : 2;
    ExpertLayerStorage layer;
    layer.step = si;
    layer.experts.resize(size_t(e));
    std::vector<std::vector<std::string>> formats(static_cast<size_t>(e));
    for (size_t k = 0; k < numW && 2 + k < step.inputs.size(); ++k) {
      const ValueInfo &v = plan.values()[step.inputs[2 + k]];
      int64_t elems = 1;
      for (size_t d = 1; d < v.shape.size(); ++d)
        elems *= v.shape[d];
      if (v.kind != ValueKind::Weight || v.weight < 0) {
        for (int64_t x = 0; x < e; ++x) {
          formats[size_t(x)].push_back("?");
          layer.experts[size_t(x)].elements += elems;
        }
        continue;
      }
      const WeightInfo &w = plan.weights()[size_t(v.weight)];
      for (int64_t x = 0; x < e; ++x) {
        ExpertStorage &es = layer.experts[size_t(x)];
        es.elements += elems;
        if (w.packed() && size_t(x) < w.slices.size()) {
          formats[size_t(x)].push_back(formatText(w.slices[size_t(x)].format));
          es.bytes += int64_t(w.slices[size_t(x)].size);
        } else {
          formats[size_t(x)].push_back(plainFormat(w.dtype));
          es.bytes += int64_t(w.size) / e;
        }
      }
    }
    std::vector<int64_t> placement =
        step.attrs.getInts("placement", std::vector<int64_t>{}).isOk()
            ? *step.attrs.getInts("placement", std::vector<int64_t>{})
            : std::vector<int64_t>{};
    static const char *const places[] = {"", "gpu", "cpu", "on_demand"};
    for (int64_t x = 0; x < e && size_t(x) < placement.size(); ++x)
      if (placement[size_t(x)] >= 0 && placement[size_t(x)] <= 3)
        layer.experts[size_t(x)].placement = places[placement[size_t(x)]];
    static const char *const names[] = {"w1", "w2", "w3"};
    for (int64_t x = 0; x < e; ++x) {
      const auto &f = formats[size_t(x)];
      bool same = std::all_of(f.begin(), f.end(),
                              [&](const std::string &y) { return y == f[0]; });
      std::string text;
      if (same && !f.empty())
        text = f[0];
      else
        for (size_t k = 0; k < f.size(); ++k)
          text += std::string(k ? ", " : "") + names[k] + " " + f[k];
      layer.experts[size_t(x)].format = text;
    }
    layers.push_back(std::move(layer));
  }
  return layers;
}

std::string describeText(const LoadedPlan &plan) {
  std::ostringstream os;
  const auto &values = plan.values();
  os << "plan " << plan.path() << " (" << plan.fileSize()
     << " bytes, format version " << plan.version() << ")\n";
  os << "producer: " << (plan.producer().empty() ? "?" : plan.producer())
     << "\n";
  os << "program " << (plan.programName().empty() ? "main" : plan.programName())
     << ": " << plan.inputs().size() << " inputs, " << plan.outputs().size()
     << " outputs, " << plan.steps().size() << " steps, " << values.size()
     << " values\n";
  os << "inputs:\n";
  for (size_t i = 0; i < plan.inputs().size(); ++i) {
    const ValueInfo &v = values[plan.inputs()[i]];
    os << "  " << i << ": %" << plan.inputs()[i] << " " << plan.inputName(i)
       << " : " << formatType(v.dtype, v.shape) << "\n";
  }
  os << "outputs:\n";
  for (size_t i = 0; i < plan.outputs().size(); ++i) {
    const ValueInfo &v = values[plan.outputs()[i]];
    os << "  " << i << ": %" << plan.outputs()[i] << " " << plan.outputName(i)
       << " : " << formatType(v.dtype, v.shape) << "\n";
  }
  os << "weights: " << plan.weights().size() << " (" << plan.weightBytes()
     << " bytes; offsets +N from byte " << plan.header().blobsOffset
     << " of the file)\n";
  for (size_t i = 0; i < plan.weights().size(); ++i) {
    const WeightInfo &w = plan.weights()[i];
    os << "  " << i << ": " << w.name << " : " << formatType(w.dtype, w.shape)
       << " (" << w.size << " bytes at +" << w.offset << ")";
    if (!w.sliceChecksums.empty())
      os << " checksummed per index of dimension 0";
    if (w.packed())
      os << " packed: " << slicesText(w.slices);
    os << "\n";
  }
  os << "steps:\n";
  for (size_t i = 0; i < plan.steps().size(); ++i) {
    const StepInfo &s = plan.steps()[i];
    os << "  " << i << ": ";
    switch (s.kind) {
    case StepKind::Free:
      os << "free " << valueList(s.inputs) << "\n";
      continue;
    case StepKind::Copy:
      os << valueList(s.outputs) << " = copy " << valueList(s.inputs) << " @"
         << deviceName(s.device) << "\n";
      continue;
    case StepKind::Call:
      os << valueList(s.outputs) << " = " << s.kernelName << "("
         << valueList(s.inputs) << ")" << textAttrs(s.attrs) << " @"
         << deviceName(s.device) << "\n";
      continue;
    }
  }
  std::vector<ExpertLayerStorage> experts = expertStorage(plan);
  if (!experts.empty()) {
    int64_t bytes, elements, count;
    expertTotals(experts, bytes, elements, count);
    char avg[32];
    std::snprintf(avg, sizeof(avg), "%.3f",
                  elements ? 8.0 * double(bytes) / double(elements) : 0.0);
    os << "experts: " << experts.size() << " layers, " << count
       << " experts, " << bytes << " bytes of expert weights, " << avg
       << " bits per weight on average\n";
    std::vector<double> predicted;
    if (const AttrValue *a = plan.metadata().find("predicted_layer_us"))
      predicted = a->floats;
    for (size_t l = 0; l < experts.size(); ++l) {
      int64_t lb = 0;
      for (const ExpertStorage &e : experts[l].experts)
        lb += e.bytes;
      os << "  layer " << l << " (step " << experts[l].step << "): " << lb
         << " bytes";
      if (l < predicted.size()) {
        char buf[64];
        std::snprintf(buf, sizeof(buf), "; predicted %.1f us per step",
                      predicted[l]);
        os << buf;
      }
      os << "; experts " << expertRunsText(experts[l].experts) << "\n";
    }
  }
  if (!plan.metadata().all().empty()) {
    os << "metadata:\n";
    for (const AttrValue &a : plan.metadata().all())
      os << "  " << a.name << " = " << textAttr(a) << "\n";
  }
  return os.str();
}

std::string describeJson(const LoadedPlan &plan) {
  std::ostringstream os;
  const auto &values = plan.values();
  os << "{\n";
  os << "  \"plan\": " << jsonString(plan.path()) << ",\n";
  os << "  \"version\": " << plan.version() << ",\n";
  os << "  \"producer\": " << jsonString(plan.producer()) << ",\n";
  os << "  \"file_size\": " << plan.fileSize() << ",\n";
  os << "  \"weight_bytes\": " << plan.weightBytes() << ",\n";
  os << "  \"num_values\": " << values.size() << ",\n";
  std::vector<std::string> elems;
  for (size_t i = 0; i < plan.inputs().size(); ++i) {
    const ValueInfo &v = values[plan.inputs()[i]];
    elems.push_back("{\"index\": " + std::to_string(i) + ", \"value\": " +
                    std::to_string(plan.inputs()[i]) + ", \"name\": " +
                    jsonString(plan.inputName(i)) + ", \"dtype\": \"" +
                    dtypeName(v.dtype) + "\", \"shape\": " + jsonInts(v.shape) +
                    "}");
  }
  jsonArray(os, "inputs", elems);
  elems.clear();
  for (size_t i = 0; i < plan.outputs().size(); ++i) {
    const ValueInfo &v = values[plan.outputs()[i]];
    elems.push_back("{\"index\": " + std::to_string(i) + ", \"value\": " +
                    std::to_string(plan.outputs()[i]) + ", \"dtype\": \"" +
                    dtypeName(v.dtype) + "\", \"shape\": " + jsonInts(v.shape) +
                    "}");
  }
  jsonArray(os, "outputs", elems);
  elems.clear();
  for (size_t i = 0; i < plan.weights().size(); ++i) {
    const WeightInfo &w = plan.weights()[i];
    elems.push_back("{\"index\": " + std::to_string(i) + ", \"name\": " +
                    jsonString(w.name) + ", \"dtype\": \"" +
                    dtypeName(w.dtype) + "\", \"shape\": " + jsonInts(w.shape) +
                    ", \"offset\": " + std::to_string(w.offset) +
                    ", \"size\": " + std::to_string(w.size) +
                    (w.packed() ? ", \"slices\": " + jsonSlices(w.slices)
                                : std::string()) +
                    "}");
  }
  jsonArray(os, "weights", elems);
  elems.clear();
  for (size_t i = 0; i < plan.steps().size(); ++i) {
    const StepInfo &s = plan.steps()[i];
    std::string e = "{\"index\": " + std::to_string(i) + ", \"kind\": ";
    switch (s.kind) {
    case StepKind::Free:
      e += "\"free\", \"inputs\": " + jsonIds(s.inputs) + "}";
      break;
    case StepKind::Copy:
      e += "\"copy\", \"device\": \"" + std::string(deviceName(s.device)) +
           "\", \"inputs\": " + jsonIds(s.inputs) +
           ", \"outputs\": " + jsonIds(s.outputs) + "}";
      break;
    case StepKind::Call:
      e += "\"call\", \"kernel\": " + jsonString(s.kernelName) +
           ", \"device\": \"" + deviceName(s.device) +
           "\", \"inputs\": " + jsonIds(s.inputs) +
           ", \"outputs\": " + jsonIds(s.outputs) +
           ", \"attrs\": " + jsonAttrs(s.attrs) + "}";
      break;
    }
    elems.push_back(std::move(e));
  }
  jsonArray(os, "steps", elems);
  std::vector<ExpertLayerStorage> experts = expertStorage(plan);
  elems.clear();
  for (size_t l = 0; l < experts.size(); ++l) {
    std::string e = "{\"layer\": " + std::to_string(l) +
                    ", \"step\": " + std::to_string(experts[l].step) +
                    ", \"experts\": [";
    for (size_t x = 0; x < experts[l].experts.size(); ++x) {
      const ExpertStorage &es = experts[l].experts[x];
      e += std::string(x ? ", " : "") + "{\"format\": " +
           jsonString(es.format) + ", \"bytes\": " + std::to_string(es.bytes) +
           ", \"elements\": " + std::to_string(es.elements) +
           ", \"placement\": " + jsonString(es.placement) + "}";
    }
    elems.push_back(e + "]}");
  }
  jsonArray(os, "expert_layers", elems);
  {
    int64_t bytes, elements, count;
    expertTotals(experts, bytes, elements, count);
    os << "  \"expert_bytes\": " << bytes << ",\n";
    os << "  \"expert_average_bits\": "
       << jsonNumber(elements ? 8.0 * double(bytes) / double(elements) : 0.0)
       << ",\n";
  }
  os << "  \"metadata\": " << jsonAttrs(plan.metadata()) << "\n";
  os << "}\n";
  return os.str();
}

} // namespace moe::rt
