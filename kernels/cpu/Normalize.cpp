//===- Normalize.cpp - Softmax, reductions and norms on the CPU -----------===//

#include "kernels/cpu/Normalize.h"
#include "kernels/cpu/VecMath.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace moe::kernels::cpu {

void softmax(const float *x, float *y, int64_t outer, int64_t axisLen,
             int64_t inner) {
  if (inner == 1) { // rows are contiguous: the vectorised path
    parallelFor(outer, axisLen * 4, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row)
        softmaxRow(x + row * axisLen, y + row * axisLen, axisLen);
    });
    return;
  }
  parallelFor(outer * inner, axisLen * 4, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      int64_t o = row / inner, in = row % inner;
      const float *px = x + o * axisLen * inner + in;
      float *py = y + o * axisLen * inner + in;
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t i = 0; i < axisLen; ++i)
        mx = std::fmax(mx, px[i * inner]);
      // All -inf: subtracting -inf would give NaN; use 0 as the shift.
      if (std::isinf(mx) && mx < 0)
        mx = 0;
      float sum = 0;
      for (int64_t i = 0; i < axisLen; ++i) {
        float e = std::exp(px[i * inner] - mx);
        py[i * inner] = e;
        sum += e;
      }
      float inv = 1.0f / sum;
      for (int64_t i = 0; i < axisLen; ++i)
        py[i * inner] *= inv;
    }
  });
}

void reduce(ReduceOp op, const float *x, const Shape &shape,
            const std::vector<bool> &reduced, float *y) {
  Shape strides = stridesOf(shape);
  Shape keptDims, keptStrides, redDims, redStrides;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (reduced[d]) {
      redDims.push_back(shape[d]);
      redStrides.push_back(strides[d]);
    } else {
      keptDims.push_back(shape[d]);
      keptStrides.push_back(strides[d]);
    }
  }
  int64_t outCount = numElements(keptDims);
  int64_t redCount = numElements(redDims);
  parallelFor(outCount, redCount, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> idx(redDims.size());
    for (int64_t o = begin; o < end; ++o) {
      int64_t base = 0, rest = o;
      for (size_t d = keptDims.size(); d-- > 0;) {
        base += (rest % keptDims[d]) * keptStrides[d];
        rest /= keptDims[d];
      }
      double sum = 0;
      float mx = -std::numeric_limits<float>::infinity();
      std::fill(idx.begin(), idx.end(), 0);
      int64_t offset = base;
      for (int64_t r = 0; r < redCount; ++r) {
        float v = x[offset];
        sum += v;
        if (v > mx || std::isnan(v))
          mx = std::isnan(mx) ? mx : v;
        // Odometer step over the reduced dims.
        for (size_t d = redDims.size(); d-- > 0;) {
          offset += redStrides[d];
          if (++idx[d] < redDims[d])
            break;
          offset -= redStrides[d] * redDims[d];
          idx[d] = 0;
        }
      }
      switch (op) {
      case ReduceOp::Sum:
        y[o] = float(sum);
        break;
      case ReduceOp::Mean:
        y[o] = redCount ? float(sum / double(redCount))
                        : std::numeric_limits<float>::quiet_NaN();
        break;
      case ReduceOp::Max:
        y[o] = mx;
        break;
      }
    }
  });
}

void rmsNorm(const float *x, const float *w, float eps, float *y,
             int64_t rows, int64_t d) {
  parallelFor(rows, d * 3, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float *px = x + r * d;
      float *py = y + r * d;
      double ss = 0;
      for (int64_t i = 0; i < d; ++i)
        ss += double(px[i]) * px[i];
      float scale = float(1.0 / std::sqrt(ss / double(d) + double(eps)));
      for (int64_t i = 0; i < d; ++i)
        py[i] = px[i] * scale * w[i];
    }
  });
}

void layerNorm(const float *x, const float *w, const float *b, float eps,
               float *y, int64_t rows, int64_t d) {
  parallelFor(rows, d * 4, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float *px = x + r * d;
      float *py = y + r * d;
      double sum = 0;
      for (int64_t i = 0; i < d; ++i)
        sum += px[i];
      double mean = sum / double(d);
      double var = 0;
      for (int64_t i = 0; i < d; ++i)
        var += (px[i] - mean) * (px[i] - mean);
      var /= double(d);
      float inv = float(1.0 / std::sqrt(var + double(eps)));
      float m = float(mean);
      for (int64_t i = 0; i < d; ++i)
        py[i] = (px[i] - m) * inv * w[i] + (b ? b[i] : 0.0f);
    }
  });
}

} // namespace moe::kernels::cpu
