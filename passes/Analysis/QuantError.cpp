//===- QuantError.cpp - What quantising an expert's weights costs ---------===//

#include "passes/Analysis/QuantError.h"

#include "kernels/cpu/Half.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
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

namespace {
/// In-place Cholesky factorisation a = L·Lᵀ of a symmetric [n, n] matrix
/// (lower triangle); false when not positive definite.
bool cholesky(std::vector<double> &a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    double d = a[size_t(j * n + j)];
    for (int64_t k = 0; k < j; ++k)
      d -= a[size_t(j * n + k)] * a[size_t(j * n + k)];
    if (!(d > 0))
      return false;
    d = std::sqrt(d);
    a[size_t(j * n + j)] = d;
    for (int64_t i = j + 1; i < n; ++i) {
      double s = a[size_t(i * n + j)];
      for (int64_t k = 0; k < j; ++k)
        s -= a[size_t(i * n + k)] * a[size_t(j * n + k)];
      a[size_t(i * n + j)] = s / d;
    }
  }
  return true;
}
} // namespace

bool gptqCalibrate(const float *w, int64_t rows, int64_t cols, const float *x,
                   int64_t n, const Format &f, bool f16Scales, float *out,
                   double damp) {
  std::copy(w, w + rows * cols, out);
  if (f.bits == 0 || f.bits == 16 || f.groupSize <= 0 || n <= 0)
    return false;
  // H = XᵀX + damp·mean(diag)·I, then U = the upper Cholesky factor of H⁻¹.
  std::vector<double> h(size_t(cols * cols), 0.0);
  for (int64_t r = 0; r < n; ++r) {
    const float *xr = x + r * cols;
    for (int64_t i = 0; i < cols; ++i) {
      double xi = xr[i];
      if (xi == 0)
        continue;
      for (int64_t j = 0; j <= i; ++j)
        h[size_t(i * cols + j)] += xi * double(xr[j]);
    }
  }
  double mean = 0;
  for (int64_t i = 0; i < cols; ++i)
    mean += h[size_t(i * cols + i)] / double(cols);
  if (!(mean > 0))
    return false;
  for (int64_t i = 0; i < cols; ++i) {
    h[size_t(i * cols + i)] += damp * mean;
    for (int64_t j = 0; j < i; ++j)
      h[size_t(j * cols + i)] = h[size_t(i * cols + j)];
  }
  // H⁻¹ from the Cholesky factor L (H = L·Lᵀ): H⁻¹ = L⁻ᵀ·L⁻¹.
  if (!cholesky(h, cols))
    return false;
  std::vector<double> linv(size_t(cols * cols), 0.0);
  for (int64_t j = 0; j < cols; ++j) {
    linv[size_t(j * cols + j)] = 1.0 / h[size_t(j * cols + j)];
    for (int64_t i = j + 1; i < cols; ++i) {
      double s = 0;
      for (int64_t k = j; k < i; ++k)
        s -= h[size_t(i * cols + k)] * linv[size_t(k * cols + j)];
      linv[size_t(i * cols + j)] = s / h[size_t(i * cols + i)];
    }
  }
  std::vector<double> hinv(size_t(cols * cols), 0.0);
  for (int64_t i = 0; i < cols; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      double s = 0;
      for (int64_t k = i; k < cols; ++k)
        s += linv[size_t(k * cols + i)] * linv[size_t(k * cols + j)];
      hinv[size_t(i * cols + j)] = hinv[size_t(j * cols + i)] = s;
    }
  // Upper Cholesky factor of H⁻¹: U = chol(H⁻¹)ᵀ (lower factor, transposed).
  if (!cholesky(hinv, cols))
    return false;
  auto U = [&](int64_t i, int64_t j) { return hinv[size_t(j * cols + i)]; };

  // Each group's grid, from round-to-nearest on the original weights.
  kernels::cpu::QuantFormat q = kernelFormat(f, f16Scales);
  kernels::cpu::QuantLayout layout = kernels::cpu::quantLayout(q, rows, cols);
  std::vector<uint8_t> packed(size_t(layout.totalBytes));
  kernels::cpu::quantizeMatrix(w, rows, cols, q, packed.data());
  const int32_t levels = (1 << f.bits) - 1, mid = 1 << (f.bits - 1);
  auto scaleOf = [&](int64_t gi) {
    if (f16Scales) {
      uint16_t hbits;
      std::memcpy(&hbits, packed.data() + layout.scalesOffset + 2 * gi, 2);
      return kernels::cpu::halfToFloat(hbits);
    }
    float s;
    std::memcpy(&s, packed.data() + layout.scalesOffset + 4 * gi, 4);
    return s;
  };
  int64_t groups = layout.groupsPerRow;
  std::vector<float> scale(size_t(rows * groups));
  std::vector<int32_t> zero(size_t(rows * groups), mid), qlo(scale.size()),
      qhi(scale.size());
  std::vector<uint8_t> anchor(size_t(rows * cols), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < groups; ++g) {
      int64_t gi = r * groups + g, c0 = g * f.groupSize,
              c1 = std::min(cols, c0 + f.groupSize);
      scale[size_t(gi)] = scaleOf(gi);
      if (f.zeroPoints)
        zero[size_t(gi)] = packed[size_t(layout.zerosOffset + gi)];
      // The elements that fix the grid keep their values.
      int64_t amaxAt = c0, loAt = c0, hiAt = c0;
      for (int64_t c = c0; c < c1; ++c) {
        float v = w[r * cols + c];
        if (std::fabs(v) > std::fabs(w[r * cols + amaxAt]))
          amaxAt = c;
        if (v < w[r * cols + loAt])
          loAt = c;
        if (v > w[r * cols + hiAt])
          hiAt = c;
      }
      float s = scale[size_t(gi)];
      float inv = s > 0 ? 1.0f / s : 0.0f;
      if (f.zeroPoints) {
        anchor[size_t(r * cols + loAt)] = anchor[size_t(r * cols + hiAt)] = 1;
        // Codes whose values stay inside the group's [min(lo, 0), max(hi, 0)].
        float lo = std::min(w[r * cols + loAt], 0.0f),
              hi = std::max(w[r * cols + hiAt], 0.0f);
        int32_t z = zero[size_t(gi)];
        int32_t a = z + int32_t(std::ceil(double(lo) * inv - 1e-6));
        int32_t b = z + int32_t(std::floor(double(hi) * inv + 1e-6));
        qlo[size_t(gi)] = std::clamp(a, 0, levels);
        qhi[size_t(gi)] = std::clamp(b, 0, levels);
      } else {
        anchor[size_t(r * cols + amaxAt)] = 1;
        qlo[size_t(gi)] = mid - (mid - 1);
        qhi[size_t(gi)] = mid + (mid - 1);
      }
    }

  // The column sweep: quantise column j, push its error onto later columns.
  std::vector<double> wd(w, w + rows * cols);
  for (int64_t j = 0; j < cols; ++j) {
    int64_t g = j / f.groupSize;
    double ujj = U(j, j);
    for (int64_t r = 0; r < rows; ++r) {
      int64_t gi = r * groups + g;
      float s = scale[size_t(gi)];
      double v = wd[size_t(r * cols + j)];
      double qv;
      if (anchor[size_t(r * cols + j)]) {
        // Its code is round-to-nearest's; its stored value the original.
        float orig = w[r * cols + j];
        float inv = s > 0 ? 1.0f / s : 0.0f;
        int32_t code = std::clamp(int32_t(std::lround(orig * inv)) +
                                      zero[size_t(gi)],
                                  0, levels);
        qv = double(float(code - zero[size_t(gi)]) * s);
        out[r * cols + j] = orig;
      } else {
        float inv = s > 0 ? 1.0f / s : 0.0f;
        int32_t code = std::clamp(
            int32_t(std::lround(float(v) * inv)) + zero[size_t(gi)],
            qlo[size_t(gi)], qhi[size_t(gi)]);
        qv = double(float(code - zero[size_t(gi)]) * s);
        out[r * cols + j] = float(qv);
      }
      double err = (v - qv) / ujj;
      if (err != 0)
        for (int64_t c = j + 1; c < cols; ++c)
          wd[size_t(r * cols + c)] -= err * U(j, c);
    }
  }
  return true;
}

} // namespace moe::precision
