//===- Describe.cpp - Plans in words and in JSON --------------------------===//

#include "runtime/Describe.h"

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

} // namespace

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
     << " bytes)\n";
  for (size_t i = 0; i < plan.weights().size(); ++i) {
    const WeightInfo &w = plan.weights()[i];
    os << "  " << i << ": " << w.name << " : " << formatType(w.dtype, w.shape)
       << " (" << w.size << " bytes at +" << w.offset << ")";
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
  os << "  \"metadata\": " << jsonAttrs(plan.metadata()) << "\n";
  os << "}\n";
  return os.str();
}

} // namespace moe::rt
