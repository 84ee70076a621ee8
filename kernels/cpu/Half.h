//===- Half.h - float16 and bfloat16 conversions ----------------*- C++ -*-===//
//
// Bit-exact IEEE binary16 and bfloat16 conversions (round to nearest even,
// NaN kept quiet, overflow to infinity), usable without compiler support for
// _Float16.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CPU_HALF_H
#define MOE_KERNELS_CPU_HALF_H

#include <cstdint>
#include <cstring>

namespace moe::kernels::cpu {

inline uint32_t floatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float bitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/// binary16 bits → float (exact).
inline float halfToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  if (exp == 0x1F) // inf / NaN
    return bitsFloat(sign | 0x7F800000u | (mant << 13));
  if (exp == 0) {
    if (mant == 0)
      return bitsFloat(sign);
    // Subnormal: value = mant * 2^-24.
    float v = float(mant) * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  return bitsFloat(sign | ((exp + 112) << 23) | (mant << 13));
}

/// float → binary16 bits, rounding to nearest even.
inline uint16_t floatToHalf(float f) {
  uint32_t u = floatBits(f);
  uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  uint32_t absBits = u & 0x7FFFFFFFu;
  if (absBits >= 0x7F800000u) // inf / NaN
    return uint16_t(sign | 0x7C00u |
                    (absBits > 0x7F800000u ? 0x200u | ((absBits >> 13) & 0x3FFu)
                                           : 0u));
  if (absBits >= 0x477FF000u) // rounds to >= 65520: overflow
    return uint16_t(sign | 0x7C00u);
  if (absBits < 0x38800000u) { // below the smallest normal half (2^-14)
    // Scale to units of 2^-24 and round to nearest even in float arithmetic.
    float v = bitsFloat(absBits) * 16777216.0f;
    float r = v - float(int32_t(v)); // fraction
    uint32_t q = uint32_t(int32_t(v));
    if (r > 0.5f || (r == 0.5f && (q & 1u)))
      ++q;
    return uint16_t(sign | q);
  }
  uint32_t mant = absBits & 0x7FFFFFu;
  uint32_t exp = (absBits >> 23) - 112;
  uint32_t half = (exp << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u)))
    ++half; // may carry into the exponent, which is the right result
  return uint16_t(sign | half);
}

/// bfloat16 bits → float (exact).
inline float bf16ToFloat(uint16_t b) { return bitsFloat(uint32_t(b) << 16); }

/// float → bfloat16 bits, rounding to nearest even.
inline uint16_t floatToBf16(float f) {
  uint32_t u = floatBits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) // NaN: keep it quiet
    return uint16_t((u >> 16) | 0x40u);
  uint32_t rounding = 0x7FFFu + ((u >> 16) & 1u);
  return uint16_t((u + rounding) >> 16);
}

} // namespace moe::kernels::cpu

#endif // MOE_KERNELS_CPU_HALF_H
