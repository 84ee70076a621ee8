//===- Matmul.cpp - Matrix products on the CPU ----------------------------===//

#include "kernels/cpu/Matmul.h"
#include "kernels/cpu/Gemm.h"

#include <algorithm>

namespace moe::kernels::cpu {

void matmul(const float *a, const Shape &aShape, const float *b,
            const Shape &bShape, float *c, const Shape &cShape) {
  size_t rank = cShape.size();
  int64_t m = cShape[rank - 2], n = cShape[rank - 1];
  int64_t k = aShape[aShape.size() - 1];
  Shape batchShape(cShape.begin(), cShape.end() - 2);
  Shape aBatch(aShape.begin(), aShape.end() - 2);
  Shape bBatch(bShape.begin(), bShape.end() - 2);
  Shape aStrides = broadcastStrides(aBatch, batchShape);
  Shape bStrides = broadcastStrides(bBatch, batchShape);
  int64_t batches = numElements(batchShape);
  // Offsets of each batch's matrices, computed once.
  std::vector<int64_t> aOff(batches), bOff(batches);
  for (int64_t i = 0; i < batches; ++i) {
    int64_t rest = i, ao = 0, bo = 0;
    for (size_t d = batchShape.size(); d-- > 0;) {
      int64_t idx = rest % batchShape[d];
      rest /= batchShape[d];
      ao += idx * aStrides[d];
      bo += idx * bStrides[d];
    }
    aOff[i] = ao * m * k;
    bOff[i] = bo * k * n;
  }
  // Tiles of 16 rows × 256 columns of one batch; SIMD inside (Gemm.h).
  constexpr int64_t kRows = 16, kCols = 256;
  int64_t rowTiles = (m + kRows - 1) / kRows, colTiles = (n + kCols - 1) / kCols;
  int64_t tiles = batches * rowTiles * colTiles;
  parallelFor(tiles, kRows * kCols * k, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      int64_t bi = t / (rowTiles * colTiles), rest = t % (rowTiles * colTiles);
      int64_t i0 = (rest / colTiles) * kRows, j0 = (rest % colTiles) * kCols;
      int64_t rows = std::min(kRows, m - i0), cols = std::min(kCols, n - j0);
      const float *at = a + aOff[bi] + i0 * k;
      const float *bt = b + bOff[bi] + j0;
      float *ct = c + (bi * m + i0) * n + j0;
      if (n == 1) { // matrix · vector: b's column is contiguous
        for (int64_t i = 0; i < rows; ++i)
          ct[i] = dot(at + i * k, b + bOff[bi], k);
        continue;
      }
      if (matmulFast(at, k, rows, k, bt, n, cols, ct, n))
        continue;
      for (int64_t i = 0; i < rows; ++i) {
        float *crow = ct + i * n;
        std::fill(crow, crow + cols, 0.0f);
        for (int64_t kk = 0; kk < k; ++kk) {
          float av = at[i * k + kk];
          const float *brow = bt + kk * n;
          for (int64_t j = 0; j < cols; ++j)
            crow[j] += av * brow[j];
        }
      }
    }
  });
}

void linearSerial(const float *x, int64_t rows, int64_t k, const float *w,
                  int64_t n, const float *bias, float *y, int64_t col0,
                  int64_t col1) {
  if (linearFast(x, rows, k, w, n, bias, y, col0, col1))
    return;
  // The weight rows of one column tile stay in cache across the rows.
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = col0; j < col1; ++j)
      y[r * n + j] = dot(x + r * k, w + j * k, k) + (bias ? bias[j] : 0.0f);
}

void linear(const float *x, int64_t rows, int64_t k, const float *w,
            int64_t n, const float *bias, float *y) {
  // Tiles of 64 rows × 64 columns.
  constexpr int64_t kRows = 64, kCols = 64;
  int64_t rowTiles = (rows + kRows - 1) / kRows;
  int64_t colTiles = (n + kCols - 1) / kCols;
  parallelFor(rowTiles * colTiles, kRows * kCols * k,
              [&](int64_t begin, int64_t end) {
                for (int64_t t = begin; t < end; ++t) {
                  int64_t r0 = (t / colTiles) * kRows;
                  int64_t c0 = (t % colTiles) * kCols;
                  linearSerial(x + r0 * k, std::min(kRows, rows - r0), k, w,
                               n, bias, y + r0 * n, c0,
                               std::min(n, c0 + kCols));
                }
              });
}

} // namespace moe::kernels::cpu
