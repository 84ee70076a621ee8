//===- Quant.cpp - Group-wise quantised weight matrices -------------------===//

#include "kernels/cpu/Quant.h"

#include "kernels/cpu/Common.h"
#include "kernels/cpu/Half.h"
#include "kernels/cpu/Matmul.h"
#include "kernels/cpu/QuantFast.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace moe::kernels::cpu {
namespace {

int64_t align64(int64_t v) { return (v + 63) / 64 * 64; }

int64_t codeRowBytes(int bits, int64_t cols) {
  if (bits == 3)
    return (cols + 7) / 8 * 3;
  return (cols * bits + 7) / 8;
}

void putCode(uint8_t *row, int bits, int64_t j, uint32_t code) {
  switch (bits) {
  case 8:
    row[j] = static_cast<uint8_t>(code);
    break;
  case 4:
    row[j / 2] |= static_cast<uint8_t>(code << (4 * (j % 2)));
    break;
  case 2:
    row[j / 4] |= static_cast<uint8_t>(code << (2 * (j % 4)));
    break;
  case 3: {
    uint8_t *word = row + j / 8 * 3;
    uint32_t v =
        uint32_t(word[0]) | uint32_t(word[1]) << 8 | uint32_t(word[2]) << 16;
    v |= code << (3 * (j % 8));
    word[0] = uint8_t(v), word[1] = uint8_t(v >> 8), word[2] = uint8_t(v >> 16);
    break;
  }
  }
}

uint32_t getCode(const uint8_t *row, int bits, int64_t j) {
  switch (bits) {
  case 8:
    return row[j];
  case 4:
    return (row[j / 2] >> (4 * (j % 2))) & 0xF;
  case 2:
    return (row[j / 4] >> (2 * (j % 4))) & 0x3;
  default: { // 3
    const uint8_t *word = row + j / 8 * 3;
    uint32_t v =
        uint32_t(word[0]) | uint32_t(word[1]) << 8 | uint32_t(word[2]) << 16;
    return (v >> (3 * (j % 8))) & 0x7;
  }
  }
}

float loadScale(const uint8_t *scales, bool f16, int64_t i) {
  if (f16) {
    uint16_t h;
    std::memcpy(&h, scales + 2 * i, 2);
    return halfToFloat(h);
  }
  float f;
  std::memcpy(&f, scales + 4 * i, 4);
  return f;
}

void storeScale(uint8_t *scales, bool f16, int64_t i, float v) {
  if (f16) {
    uint16_t h = floatToHalf(v);
    std::memcpy(scales + 2 * i, &h, 2);
  } else {
    std::memcpy(scales + 4 * i, &v, 4);
  }
}

} // namespace

bool isValidQuantFormat(const QuantFormat &f) {
  if (f.bits == 0 || f.bits == 16)
    return true;
  if (f.bits != 8 && f.bits != 4 && f.bits != 3 && f.bits != 2)
    return false;
  return f.groupSize == 32 || f.groupSize == 64 || f.groupSize == 128;
}

QuantLayout quantLayout(const QuantFormat &f, int64_t rows, int64_t cols) {
  QuantLayout l;
  if (f.bits == kAbsentBits)
    return l; // nothing stored
  if (f.bits == 0 || f.bits == 16) {
    l.rowBytes = cols * (f.bits == 16 ? 2 : 4);
    l.totalBytes = rows * l.rowBytes;
    return l;
  }
  l.rowBytes = codeRowBytes(f.bits, cols);
  l.groupsPerRow = (cols + f.groupSize - 1) / f.groupSize;
  int64_t groups = rows * l.groupsPerRow;
  l.scalesOffset = align64(rows * l.rowBytes);
  int64_t scalesEnd = l.scalesOffset + groups * (f.f16Scales ? 2 : 4);
  l.zerosOffset = align64(scalesEnd);
  l.totalBytes = f.zeroPoints ? l.zerosOffset + groups : scalesEnd;
  return l;
}

void quantizeMatrix(const float *w, int64_t rows, int64_t cols,
                    const QuantFormat &f, uint8_t *dst) {
  QuantLayout l = quantLayout(f, rows, cols);
  std::memset(dst, 0, size_t(l.totalBytes));
  if (f.bits == kAbsentBits)
    return;
  if (f.bits == 0) {
    std::memcpy(dst, w, size_t(rows * cols * 4));
    return;
  }
  if (f.bits == 16) {
    for (int64_t i = 0; i < rows * cols; ++i) {
      uint16_t b = floatToBf16(w[i]);
      std::memcpy(dst + 2 * i, &b, 2);
    }
    return;
  }
  const int32_t levels = (1 << f.bits) - 1;
  const int32_t mid = 1 << (f.bits - 1);
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t *codes = dst + r * l.rowBytes;
    for (int64_t g = 0; g < l.groupsPerRow; ++g) {
      int64_t c0 = g * f.groupSize, c1 = std::min(cols, c0 + f.groupSize);
      const float *x = w + r * cols;
      float lo = x[c0], hi = x[c0], amax = 0.0f;
      for (int64_t c = c0; c < c1; ++c) {
        lo = std::min(lo, x[c]);
        hi = std::max(hi, x[c]);
        amax = std::max(amax, std::fabs(x[c]));
      }
      float scale;
      int32_t zero;
      if (f.zeroPoints) {
        lo = std::min(lo, 0.0f);
        hi = std::max(hi, 0.0f);
        scale = (hi - lo) / float(levels);
        zero = scale > 0 ? int32_t(std::lround(-lo / scale)) : 0;
        zero = std::clamp(zero, 0, levels);
      } else {
        scale = amax / float(mid - 1 > 0 ? mid - 1 : 1);
        zero = mid;
      }
      int64_t gi = r * l.groupsPerRow + g;
      storeScale(dst + l.scalesOffset, f.f16Scales, gi, scale);
      // Quantise against the scale as stored (f16 rounding included).
      float stored = loadScale(dst + l.scalesOffset, f.f16Scales, gi);
      if (f.zeroPoints)
        dst[l.zerosOffset + gi] = uint8_t(zero);
      float inv = stored > 0 ? 1.0f / stored : 0.0f;
      for (int64_t c = c0; c < c1; ++c) {
        int32_t q = int32_t(std::lround(x[c] * inv)) + zero;
        putCode(codes, f.bits, c, uint32_t(std::clamp(q, 0, levels)));
      }
    }
  }
}

void dequantizeRow(const uint8_t *packed, const QuantFormat &f, int64_t rows,
                   int64_t cols, int64_t row, float *out) {
  QuantLayout l = quantLayout(f, rows, cols);
  if (f.bits == kAbsentBits) {
    std::fill(out, out + cols, 0.0f);
    return;
  }
  if (f.bits == 0) {
    std::memcpy(out, packed + row * cols * 4, size_t(cols * 4));
    return;
  }
  if (f.bits == 16) {
    for (int64_t c = 0; c < cols; ++c) {
      uint16_t b;
      std::memcpy(&b, packed + 2 * (row * cols + c), 2);
      out[c] = bf16ToFloat(b);
    }
    return;
  }
  const uint8_t *codes = packed + row * l.rowBytes;
  const int32_t mid = 1 << (f.bits - 1);
  for (int64_t g = 0; g < l.groupsPerRow; ++g) {
    int64_t gi = row * l.groupsPerRow + g;
    float scale = loadScale(packed + l.scalesOffset, f.f16Scales, gi);
    int32_t zero = f.zeroPoints ? packed[l.zerosOffset + gi] : mid;
    int64_t c1 = std::min(cols, (g + 1) * f.groupSize);
    for (int64_t c = g * f.groupSize; c < c1; ++c)
      out[c] = float(int32_t(getCode(codes, f.bits, c)) - zero) * scale;
  }
}

void linearPackedSerial(const float *x, int64_t n, int64_t k,
                        const uint8_t *packed, const QuantFormat &f,
                        int64_t outFeatures, const float *bias, float *y,
                        int64_t c0, int64_t c1) {
  if (f.bits == 0) {
    linearSerial(x, n, k, reinterpret_cast<const float *>(packed), outFeatures,
                 bias, y, c0, c1);
    return;
  }
  // Prefill of bf16 weights with bf16 activations (opt-in,
  // setQuantBf16Activations): x rounded to bf16 once, then vdpbf16ps
  // products straight from the weights, as bf16 models run on GPUs (twice
  // the multiply-adds per instruction of the f32 GEMM; the f32 path below
  // keeps x exact).
  if (n >= kPackedDecodeRows && f.bits == 16 && bf16ActivationsApply()) {
    thread_local std::vector<uint16_t> xb;
    xb.resize(static_cast<size_t>(n * k));
    roundToBf16(x, n * k, xb.data());
    if (linearBf16Fast(xb.data(), n, k,
                       reinterpret_cast<const uint16_t *>(packed),
                       outFeatures, bias, y, c0, c1))
      return;
  }
  // Prefill: dequantise a tile of weight rows once and run the float GEMM
  // on every row of x (decode instead reads the codes directly, below).
  constexpr int64_t kTile = 16;
  if (n >= kPackedDecodeRows) {
    thread_local std::vector<float> tile;
    tile.resize(static_cast<size_t>(kTile * k));
    for (int64_t t0 = c0; t0 < c1; t0 += kTile) {
      int64_t t1 = std::min(c1, t0 + kTile);
      for (int64_t c = t0; c < t1; ++c) {
        float *dst = tile.data() + (c - t0) * k;
        if (!dequantizeRowAvx512(packed, f, outFeatures, k, c, dst))
          dequantizeRow(packed, f, outFeatures, k, c, dst);
      }
      linearSerial(x, n, k, tile.data(), outFeatures, bias ? bias + t0 : nullptr,
                   y + t0, 0, t1 - t0);
    }
    return;
  }
  // Decode: SIMD products straight from the codes (QuantFast.h).
  if (f.bits == 16) {
    if (linearPackedBf16(x, n, k, packed, outFeatures, bias, y, c0, c1))
      return;
  } else {
    thread_local PackedActivations prepared;
    if (prepared.prepare(x, n, k, f)) {
      linearPackedPrepared(prepared, packed, f, outFeatures, bias, y, c0, c1);
      return;
    }
  }
  std::vector<float> wrow(static_cast<size_t>(k));
  for (int64_t c = c0; c < c1; ++c) {
    dequantizeRow(packed, f, outFeatures, k, c, wrow.data());
    float b = bias ? bias[c] : 0.0f;
    for (int64_t r = 0; r < n; ++r)
      y[r * outFeatures + c] = dot(x + r * k, wrow.data(), k) + b;
  }
}

} // namespace moe::kernels::cpu
