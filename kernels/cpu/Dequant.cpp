//===- Dequant.cpp - Dequantisation of packed integer weights -------------===//

#include "kernels/cpu/Dequant.h"

#include "kernels/cpu/Half.h"

#include <cstring>
#include <string>

namespace moe::kernels::cpu {

namespace {

/// The value at position i of a low-bits-first packed byte array.
inline int packedAt(const uint8_t *p, int64_t i, int bits) {
  int perByte = 8 / bits;
  int shift = int(i % perByte) * bits;
  return (p[i / perByte] >> shift) & ((1 << bits) - 1);
}

} // namespace

rt::Status dequantize(const DequantArgs &a) {
  if (a.bits != 2 && a.bits != 4 && a.bits != 8)
    return rt::Status::error("bits is " + std::to_string(a.bits) +
                             ", expected 2, 4 or 8");
  if (!a.scalesF32 && !a.scalesF16)
    return rt::Status::error("dequantize: no scales");
  if (a.nblocks < 0 || (a.nblocks > 0 && a.cols % a.nblocks != 0))
    return rt::Status::error("dequantize: " + std::to_string(a.nblocks) +
                             " blocks do not divide " +
                             std::to_string(a.cols) + " columns");
  if (a.cols == 0 || a.rows == 0 || a.batch == 0)
    return rt::Status::ok();
  const int bits = a.bits;
  const int64_t perByte = 8 / bits;
  const int64_t qCols = a.cols / perByte;
  const bool blocked = a.nblocks > 0;
  const int64_t nblocks = blocked ? a.nblocks : 1;
  const int64_t blockLen = a.cols / nblocks;
  // Zero points are packed along the scales' last axis.
  const int64_t zpLast = blocked ? a.nblocks : a.rows;
  const int64_t zpStride = (zpLast * bits + 7) / 8;
  const int defaultZp = 1 << (bits - 1);
  const int mask = (1 << bits) - 1;

  auto scaleAt = [&](int64_t i) {
    return a.scalesF32 ? a.scalesF32[i] : halfToFloat(a.scalesF16[i]);
  };

  int64_t totalRows = a.batch * a.rows;
  parallelFor(totalRows, a.cols, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      int64_t b = row / (a.rows ? a.rows : 1), r = row % (a.rows ? a.rows : 1);
      const uint8_t *q = a.q + row * qCols;
      float *y = a.out + row * a.cols;
      for (int64_t blk = 0; blk < nblocks; ++blk) {
        float scale;
        int zp = defaultZp;
        if (blocked) {
          scale = scaleAt(row * nblocks + blk);
          if (a.zeroPoints)
            zp = packedAt(a.zeroPoints + row * zpStride, blk, bits);
        } else {
          scale = scaleAt(row);
          if (a.zeroPoints)
            zp = packedAt(a.zeroPoints + b * zpStride, r, bits);
        }
        int64_t c0 = blk * blockLen, c1 = c0 + blockLen;
        if (bits == 8) {
          for (int64_t c = c0; c < c1; ++c)
            y[c] = float(int(q[c]) - zp) * scale;
          continue;
        }
        for (int64_t c = c0; c < c1; ++c) {
          int shift = int(c % perByte) * bits;
          y[c] = float(int((q[c / perByte] >> shift) & mask) - zp) * scale;
        }
      }
    }
  });
  return rt::Status::ok();
}

int repackGroupSize(const DequantArgs &a) {
  if (a.bits != 2 && a.bits != 4 && a.bits != 8)
    return 0;
  if (a.nblocks == 0)
    return 128;
  if (a.nblocks < 0 || a.cols % a.nblocks != 0)
    return 0;
  int64_t blockLen = a.cols / a.nblocks;
  for (int g : {128, 64, 32})
    if (blockLen % g == 0)
      return g;
  return 0;
}

void repackMatrix(const DequantArgs &a, int64_t b, int group, uint8_t *dst) {
  QuantFormat format{a.bits, group, /*f16Scales=*/false,
                     a.zeroPoints != nullptr};
  QuantLayout layout = quantLayout(format, a.rows, a.cols);
  std::memset(dst, 0, size_t(layout.totalBytes));
  const int64_t perByte = 8 / a.bits;
  const int64_t qCols = a.cols / perByte;
  const bool blocked = a.nblocks > 0;
  const int64_t blockLen = blocked ? a.cols / a.nblocks : a.cols;
  const int64_t zpLast = blocked ? a.nblocks : a.rows;
  const int64_t zpStride = (zpLast * a.bits + 7) / 8;
  auto *scales = reinterpret_cast<float *>(dst + layout.scalesOffset);
  uint8_t *zeros = dst + layout.zerosOffset;
  for (int64_t r = 0; r < a.rows; ++r) {
    int64_t row = b * a.rows + r;
    // Codes: the same bits, low first, each row starting on a byte.
    std::memcpy(dst + r * layout.rowBytes, a.q + row * qCols,
                size_t(std::min<int64_t>(qCols, layout.rowBytes)));
    for (int64_t g = 0; g < layout.groupsPerRow; ++g) {
      int64_t blk = blocked ? (g * group) / blockLen : 0;
      int64_t si = blocked ? row * a.nblocks + blk : row;
      float scale = a.scalesF32 ? a.scalesF32[si] : halfToFloat(a.scalesF16[si]);
      std::memcpy(&scales[r * layout.groupsPerRow + g], &scale, 4);
      if (a.zeroPoints) {
        int zp = blocked ? packedAt(a.zeroPoints + row * zpStride, blk, a.bits)
                         : packedAt(a.zeroPoints + b * zpStride, r, a.bits);
        zeros[r * layout.groupsPerRow + g] = uint8_t(zp);
      }
    }
  }
}

} // namespace moe::kernels::cpu
