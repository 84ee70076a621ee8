//===- Quant.h - Group-wise quantised weight matrices -----------*- C++ -*-===//
//
// The packed weight formats of the plan (docs/plan-format.md, "Quantised
// weights"). A matrix W[rows, cols] (PyTorch's [out, in]) is quantised in
// groups of `groupSize` consecutive elements of a row; each group has a scale
// (f16 or f32) and, optionally, an unsigned 8-bit zero point:
//
//   w = (code - zero) * scale      zero = the group's zero point, or
//                                  2^(bits-1) when there are none (symmetric)
//
// Packed matrix = [codes][scales][zeros], each section starting at a multiple
// of 64 bytes. bits = 16 stores bfloat16 rows (no groups, no scales: half
// the bytes of f32 for weights that tolerate bf16). Codes are unsigned,
// `bits` wide, packed row by row; every row starts on a byte boundary:
//   8 bits: one byte per code;   4 bits: two per byte, low nibble first;
//   2 bits: four per byte, lowest bits first;
//   3 bits: eight codes in three bytes (little-endian 24-bit word, code j in
//           bits 3j..3j+2); a row's last word is zero-padded.
// Scales and zeros are [rows, ceil(cols / groupSize)], row-major.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CPU_QUANT_H
#define MOE_KERNELS_CPU_QUANT_H

#include <cstddef>
#include <cstdint>

namespace moe::kernels::cpu {

/// bits of a slice that stores nothing: a statically pruned expert, whose
/// weights are never read (0 bytes; no kernel computes with it).
inline constexpr int kAbsentBits = 1;

/// How one matrix is stored. bits == 0 means plain float32, 16 bfloat16.
struct QuantFormat {
  int bits = 0;          ///< 0 (plain f32), 16 (bf16), 8, 4, 3, 2, or
                         ///< kAbsentBits (nothing stored)
  int groupSize = 0;     ///< 32, 64 or 128 (ignored for plain)
  bool f16Scales = true; ///< scale dtype: f16 or f32
  bool zeroPoints = false;
};

/// Byte layout of one packed matrix.
struct QuantLayout {
  int64_t rowBytes = 0;     ///< bytes of one row of codes
  int64_t groupsPerRow = 0; ///< ceil(cols / groupSize)
  int64_t scalesOffset = 0; ///< from the start of the packed matrix
  int64_t zerosOffset = 0;
  int64_t totalBytes = 0;
};

/// True for a format the kernels support.
bool isValidQuantFormat(const QuantFormat &format);

/// The layout of a [rows, cols] matrix in `format` (plain: rows*cols*4).
QuantLayout quantLayout(const QuantFormat &format, int64_t rows, int64_t cols);

/// Quantises a row-major float matrix by rounding to nearest (bf16: to
/// nearest even; symmetric:
/// scale = max|w| / (2^(bits-1) - 1); with zero points: scale = (max - min)
/// / (2^bits - 1), zero = round(-min / scale)). Writes
/// quantLayout(...).totalBytes bytes to dst (padding zeroed). Plain copies.
void quantizeMatrix(const float *w, int64_t rows, int64_t cols,
                    const QuantFormat &format, uint8_t *dst);

/// Dequantises columns [0, cols) of `row` of a packed matrix into out.
void dequantizeRow(const uint8_t *packed, const QuantFormat &format,
                   int64_t rows, int64_t cols, int64_t row, float *out);

/// y[r, c] = Σ_k x[r, k] · W[c, k] (+ bias[c]) for r < n and c in [c0, c1),
/// with W[N, K] packed in `format` (the linear layout of nn.linear).
/// Reference path: dequantises one weight row at a time.
void linearPackedSerial(const float *x, int64_t n, int64_t k,
                        const uint8_t *packed, const QuantFormat &format,
                        int64_t outFeatures, const float *bias, float *y,
                        int64_t c0, int64_t c1);

} // namespace moe::kernels::cpu

#endif // MOE_KERNELS_CPU_QUANT_H
