//===- Blas.h - cuBLASLt matrix products ------------------------*- C++ -*-===//
//
// The GEMMs of the CUDA device: row-major products on top of cuBLASLt,
// whose matrices are column-major (a row-major [M, N] matrix is a
// column-major [N, M] one, so every product is computed transposed).
// Inputs may be f32, bf16 or f16; outputs f32; accumulation is f32 (no
// TF32, so that results stay within fp32 tolerance of the CPU).
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CUDA_BLAS_H
#define MOE_KERNELS_CUDA_BLAS_H

#include "kernels/cuda/Stream.h"
#include "runtime/Status.h"

#include <cstdint>
#include <memory>

namespace moe::cuda {

/// Element types of GEMM inputs.
enum class GemmType { F32, BF16, F16 };

/// A cuBLASLt handle and its workspace (one per stream that uses it).
class Blas {
public:
  /// Creates the handle and a workspace of `workspaceBytes` device bytes.
  static rt::StatusOr<std::unique_ptr<Blas>>
  create(size_t workspaceBytes = size_t(32) << 20);
  ~Blas();
  Blas(const Blas &) = delete;
  Blas &operator=(const Blas &) = delete;

  /// y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias[N] when not null): a linear
  /// layer, the form of every expert GEMM.
  rt::Status linear(const void *x, GemmType xType, int64_t m, int64_t k,
                    const void *w, GemmType wType, int64_t n,
                    const float *bias, float *y, Stream stream);

  /// c[b, M, N] = a[b, M, K] · b[b, K, N] for `batch` products; a stride of
  /// 0 (elements) repeats one matrix for every product (broadcasting).
  rt::Status matmul(const float *a, int64_t strideA, const float *b,
                    int64_t strideB, float *c, int64_t m, int64_t k,
                    int64_t n, int64_t batch, Stream stream);

  /// The handle and workspace (Blas.cpp).
  struct State;

private:
  Blas() = default;
  std::unique_ptr<State> state_;
};

} // namespace moe::cuda

#endif // MOE_KERNELS_CUDA_BLAS_H
