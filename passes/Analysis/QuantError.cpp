//===- QuantError.cpp - What quantising an expert's weights costs ---------===//

#include "passes/Analysis/QuantError.h"

#include <cctype>
#include <cstdlib>

namespace moe::precision {

std::string formatName(const Format &f) {
  if (f.bits == 0)
    return "f32";
  if (f.bits == 16)
    return "bf16";
  return "int" + std::to_string(f.bits) + "/g" + std::to_string(f.groupSize) +
         (f.zeroPoints ? "/zp" : "");
}

rt::StatusOr<Format> parseFormat(std::string_view text) {
  std::string s(text);
  auto bad = [&]() {
    return rt::Status::error(
        "bad format '" + s +
        "' (expected f32, bf16, or BITS/gGROUP[/zp] with BITS 8, 4, 3 or 2 "
        "and GROUP 32, 64 or 128, e.g. int4/g128 or int2/g64/zp)");
  };
  if (s == "f32" || s == "32" || s == "0")
    return Format{0, 0};
  if (s == "bf16" || s == "16")
    return Format{16, 0};
  std::string t = s;
  bool zp = false;
  if (t.size() > 3 && t.compare(t.size() - 3, 3, "/zp") == 0) {
    zp = true;
    t = t.substr(0, t.size() - 3);
  }
  if (t.rfind("int", 0) == 0)
    t = t.substr(3);
  size_t g = t.find('g');
  if (g == std::string::npos || g == 0)
    return bad();
  std::string bitsText = t.substr(0, g), groupText = t.substr(g + 1);
  if (!bitsText.empty() && bitsText.back() == '/')
    bitsText.pop_back();
  auto number = [](const std::string &x, int &out) {
    if (x.empty() || x.size() > 4)
      return false;
    for (char c : x)
      if (!std::isdigit(static_cast<unsigned char>(c)))
        return false;
    out = std::atoi(x.c_str());
    return true;
  };
  Format f;
  f.zeroPoints = zp;
  if (!number(bitsText, f.bits) || !number(groupText, f.groupSize))
    return bad();
  if ((f.bits != 8 && f.bits != 4 && f.bits != 3 && f.bits != 2) ||
      (f.groupSize != 32 && f.groupSize != 64 && f.groupSize != 128))
    return bad();
  return f;
}

std::vector<Format> defaultFormats() {
  return {{16, 0, false},  {8, 128, false}, {4, 128, false}, {4, 64, false},
          {4, 32, false},  {4, 128, true},  {4, 64, true},   {3, 128, false},
          {3, 64, false},  {3, 32, false},  {3, 128, true},  {3, 64, true},
          {3, 32, true},   {2, 128, false}, {2, 64, false},  {2, 32, false},
          {2, 128, true},  {2, 64, true},   {2, 32, true}};
}

kernels::cpu::QuantFormat kernelFormat(const Format &f, bool f16Scales) {
  kernels::cpu::QuantFormat q;
  q.bits = f.bits;
  q.groupSize = f.bits == 0 || f.bits == 16 ? 0 : f.groupSize;
  q.f16Scales = f16Scales;
  q.zeroPoints = f.zeroPoints && f.bits != 0 && f.bits != 16;
  return q;
}

int64_t packedBytes(const Format &f, int64_t rows, int64_t cols,
                    bool f16Scales) {
  if (f.bits == 0)
    return rows * cols * 4;
  return kernels::cpu::quantLayout(kernelFormat(f, f16Scales), rows, cols)
      .totalBytes;
}

void roundTrip(const float *w, int64_t rows, int64_t cols, const Format &f,
               bool f16Scales, float *out) {
  kernels::cpu::QuantFormat q = kernelFormat(f, f16Scales);
  if (f.bits == 0) {
    if (out != w)
      for (int64_t i = 0; i < rows * cols; ++i)
        out[i] = w[i];
    return;
  }
  std::vector<uint8_t> packed(
      static_cast<size_t>(kernels::cpu::quantLayout(q, rows, cols).totalBytes));
  kernels::cpu::quantizeMatrix(w, rows, cols, q, packed.data());
  for (int64_t r = 0; r < rows; ++r)
    kernels::cpu::dequantizeRow(packed.data(), q, rows, cols, r,
                                out + r * cols);
}

double squaredError(const float *w, int64_t rows, int64_t cols,
                    const Format &f, bool f16Scales) {
  std::vector<float> back(static_cast<size_t>(rows * cols));
  roundTrip(w, rows, cols, f, f16Scales, back.data());
  double e = 0;
  for (int64_t i = 0; i < rows * cols; ++i) {
    double d = double(w[i]) - double(back[size_t(i)]);
    e += d * d;
  }
  return e;
}

} // namespace moe::precision
