//===- QuantFast.h - SIMD products with packed weight matrices --*- C++ -*-===//
//
// Fast paths of linearPackedSerial() (Quant.h), chosen at run time from what
// the CPU supports (AVX-512, else AVX2+FMA+F16C, else the scalar reference,
// which the tests compare every level against).
//
// Decode (fewer than kPackedDecodeRows rows of x) never dequantises a weight
// row. For an unsigned code q of a group with scale s and zero z,
//
//   Σ_i x_i · (q_i − z) · s  =  s · (Σ_i q_i · x_i  −  z · Σ_i x_i)
//
// so the inner loop only turns codes into floats and multiplies them with x;
// the per-group Σx is computed once per product. The codes are read as
// 32-bit lanes holding 32/bits consecutive codes (3 bits: one 24-bit word);
// the code at bit position p of a lane is masked in place (an exact integer
// q·2^p → float conversion) and multiplied with x·2^-p, so no shift is
// needed: x is reordered and rescaled once per product (PackedActivations)
// to match. Each loaded x vector serves several weight rows, and each code
// vector every row of x (up to seven), from registers.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CPU_QUANTFAST_H
#define MOE_KERNELS_CPU_QUANTFAST_H

#include "kernels/cpu/Gemm.h"
#include "kernels/cpu/Quant.h"

#include <optional>
#include <vector>

namespace moe::kernels::cpu {

/// Rows of x from which linearPackedSerial() dequantises weight tiles and
/// runs the float GEMM (prefill); fewer rows take the decode paths.
constexpr int64_t kPackedDecodeRows = 8;

/// The SIMD level of the packed-weight paths: "avx512-vnni-int8" (with int8
/// activations enabled), "avx512", "avx2" or "scalar".
const char *quantDispatchLevel();

/// The level the packed-weight paths use (at most the limit set below).
GemmLevel quantLevel();

/// Caps the level of the packed-weight paths (tests run every level the CPU
/// has against the scalar one); nullopt removes the cap.
void setQuantLevelLimit(std::optional<GemmLevel> level);

/// Forces the scalar reference (for tests and benchmarks); returns the
/// previous setting. Same as a level limit of Scalar, kept apart from it.
bool setQuantForceScalar(bool force);

/// Lets 8- and 4-bit products quantise the activations to int8 (per group of
/// the weight format, scale max|x| / 127) and use AVX-512 VNNI integer dot
/// products: less work per weight, at an activation rounding error of at
/// most half a step (0.4% of the group's largest |x|). Off by default;
/// returns the previous setting.
bool setQuantInt8Activations(bool enable);

/// Lets prefill products with bf16 weights (kPackedDecodeRows rows or more)
/// round the activations to bf16 and use AVX512-BF16 dot products
/// (vdpbf16ps, bf16DotAvailable()): twice the multiply-adds per instruction
/// of the f32 GEMM, at a relative rounding of at most 2^-9 per activation,
/// as bf16 models run on GPUs. Off by default (x then stays exact); returns
/// the previous setting.
bool setQuantBf16Activations(bool enable);

/// True when setQuantBf16Activations is on and the CPU runs the bf16 dot
/// products at the current level.
bool bf16ActivationsApply();

/// Decode activations x [n, k] (n < kPackedDecodeRows) prepared once for
/// products with matrices of one packed format, then shared, read-only, by
/// every column block of those products (the experts kernel prepares an
/// expert's input once for all of its column blocks and threads): x
/// reordered and rescaled to the code order of the SIMD level plus the sums
/// of each group, or, with int8 activations, x quantised to int8.
class PackedActivations {
public:
  /// Prepares x for products with matrices in `format` at the current
  /// level. False (nothing prepared; use linearPackedSerial) when no fast
  /// decode path applies: n >= kPackedDecodeRows, plain or bf16 weights, or
  /// the scalar level. x must stay alive and unchanged while in use.
  bool prepare(const float *x, int64_t n, int64_t k, const QuantFormat &format);

  bool ready() const { return ready_; }
  /// True when prepared for these rows and this format.
  bool matches(const float *x, int64_t n, int64_t k,
               const QuantFormat &format) const;

  // Read by the kernels (QuantFast.cpp, QuantAvx2.cpp).
  const float *x = nullptr;
  int64_t n = 0, k = 0;
  QuantFormat format;
  GemmLevel level = GemmLevel::Scalar;
  bool int8 = false;  ///< the VNNI representation below instead of xp/sx
  int64_t lanes = 0;  ///< floats per vector of the level (16 or 8)
  int64_t chunks = 0; ///< vectors of codes per weight row
  int64_t xpStride = 0, sxStride = 0;
  float *xp = nullptr; ///< [n][chunks][codes per lane][lanes], 64-byte aligned
  float *sx = nullptr; ///< [n][sxStride] Σx per group, zero padded, aligned
  /// int8: x quantised per row and group (scale max|x| / 127) in the code
  /// order of a 64-byte chunk ([n][chunks][64], 4 bits: the chunk's even
  /// elements, then its odd ones: [n][chunks][128]); sx then holds, per row
  /// and group, scale · Σ of the group's int8 values, and xs per row and
  /// chunk the scale of each 32-bit lane's group ([n][chunks][16]).
  int8_t *q = nullptr; ///< 64-byte aligned
  float *xs = nullptr;
  int64_t qStride = 0;

  PackedActivations() = default;
  PackedActivations(const PackedActivations &) = delete;
  PackedActivations &operator=(const PackedActivations &) = delete;

private:
  bool ready_ = false;
  std::vector<float> buf_;  ///< holds xp and sx (or sx and xs)
  std::vector<int8_t> qBuf_; ///< holds q
};

/// linearPackedSerial() for the rows prepared in `a` (a.ready()), columns
/// [c0, c1) of the packed matrix.
void linearPackedPrepared(const PackedActivations &a, const uint8_t *packed,
                          const QuantFormat &format, int64_t outFeatures,
                          const float *bias, float *y, int64_t c0, int64_t c1);

/// linearPackedSerial() for bf16 weights (any rows) with the SIMD level;
/// false at the scalar level.
bool linearPackedBf16(const float *x, int64_t n, int64_t k,
                      const uint8_t *packed, int64_t outFeatures,
                      const float *bias, float *y, int64_t c0, int64_t c1);

/// Row `row` of a packed matrix (bf16, int8 or int4) as floats with
/// AVX-512; false when the CPU or the format needs dequantizeRow().
bool dequantizeRowAvx512(const uint8_t *packed, const QuantFormat &f,
                         int64_t rows, int64_t cols, int64_t row, float *out);

namespace detail {

/// One decode product as the ISA kernels see it.
struct DecodeProduct {
  const PackedActivations *a;
  const uint8_t *codes, *scales, *zeros;
  int64_t rowBytes, groupsPerRow;
  int64_t outFeatures;
  const float *bias;
  float *y;
  int64_t c0, c1;
};

void decodeAvx512(const DecodeProduct &p);
void decodeAvx2(const DecodeProduct &p);
void bf16DecodeAvx2(const float *x, int64_t n, int64_t k, const uint16_t *w,
                    int64_t outFeatures, const float *bias, float *y,
                    int64_t c0, int64_t c1);

} // namespace detail

} // namespace moe::kernels::cpu

#endif // MOE_KERNELS_CPU_QUANTFAST_H
