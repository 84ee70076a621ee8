//===- Blas.cpp - cuBLASLt matrix products --------------------------------===//

#include "kernels/cuda/Blas.h"

#include "kernels/cuda/CudaCheck.h"

#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace moe::cuda {

namespace {

/// What the algorithm choice depends on: the shapes, types, transposes,
/// batching, the epilogue and the operands' alignments.
struct GemmKey {
  int64_t rowsA, colsA, ldA, rowsB, colsB, ldB, rowsC, colsC, ldC;
  int64_t batch, strideA, strideB, strideC;
  int typeA, typeB, transA, bias;
  int alignA, alignB, alignC;
  auto tie() const {
    return std::tie(rowsA, colsA, ldA, rowsB, colsB, ldB, rowsC, colsC, ldC,
                    batch, strideA, strideB, strideC, typeA, typeB, transA,
                    bias, alignA, alignB, alignC);
  }
  bool operator<(const GemmKey &o) const { return tie() < o.tie(); }
};

/// The largest power of two (at most 256) that divides the address.
int alignmentOf(const void *p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  int align = 256;
  while (align > 1 && a % uintptr_t(align) != 0)
    align /= 2;
  return align;
}

} // namespace

struct Blas::State {
  cublasLtHandle_t handle = nullptr;
  void *workspace = nullptr;
  size_t workspaceBytes = 0;
  /// The heuristic's choice per GEMM form: asking costs tens of
  /// microseconds, more than a decode step's GEMM.
  std::map<GemmKey, cublasLtMatmulAlgo_t> algos;
  std::mutex mutex;
};

namespace {

cudaDataType_t dataType(GemmType t) {
  switch (t) {
  case GemmType::BF16:
    return CUDA_R_16BF;
  case GemmType::F16:
    return CUDA_R_16F;
  case GemmType::F32:
    break;
  }
  return CUDA_R_32F;
}

/// Descriptors destroyed on every path out.
struct Descriptors {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~Descriptors() {
    if (pref)
      cublasLtMatmulPreferenceDestroy(pref);
    if (c)
      cublasLtMatrixLayoutDestroy(c);
    if (b)
      cublasLtMatrixLayoutDestroy(b);
    if (a)
      cublasLtMatrixLayoutDestroy(a);
    if (op)
      cublasLtMatmulDescDestroy(op);
  }
};

rt::Status setBatch(cublasLtMatrixLayout_t layout, int64_t batch,
                    int64_t stride) {
  int32_t count = int32_t(batch);
  MOE_RETURN_IF_ERROR(check(
      cublasLtMatrixLayoutSetAttribute(layout,
                                       CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                       &count, sizeof(count)),
      "cublasLtMatrixLayoutSetAttribute(BATCH_COUNT)"));
  return check(cublasLtMatrixLayoutSetAttribute(
                   layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                   &stride, sizeof(stride)),
               "cublasLtMatrixLayoutSetAttribute(STRIDED_BATCH_OFFSET)");
}

/// D (column-major) = op(A) · op(B) with the descriptors made: one call of
/// cublasLtMatmul, with the algorithm the heuristic chose for this form
/// (cached in the state, keyed by `key`).
rt::Status run(Blas::State &s, Descriptors &d, GemmKey key, const void *a,
               const void *b, void *c, Stream stream) {
  key.alignA = alignmentOf(a);
  key.alignB = alignmentOf(b);
  key.alignC = alignmentOf(c);
  std::lock_guard<std::mutex> lock(s.mutex);
  auto it = s.algos.find(key);
  if (it == s.algos.end()) {
    MOE_RETURN_IF_ERROR(check(cublasLtMatmulPreferenceCreate(&d.pref),
                              "cublasLtMatmulPreferenceCreate"));
    uint64_t ws = s.workspaceBytes;
    MOE_RETURN_IF_ERROR(check(
        cublasLtMatmulPreferenceSetAttribute(
            d.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)),
        "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)"));
    // Only algorithms that work with these operands' alignments (the
    // default assumes 256 bytes; an expert's rows start anywhere).
    const std::pair<cublasLtMatmulPreferenceAttributes_t, int> aligns[] = {
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.alignA},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.alignB},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.alignC},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.alignC}};
    for (const auto &[attr, value] : aligns) {
      uint32_t v = uint32_t(value);
      MOE_RETURN_IF_ERROR(check(
          cublasLtMatmulPreferenceSetAttribute(d.pref, attr, &v, sizeof(v)),
          "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT)"));
    }
    cublasLtMatmulHeuristicResult_t result;
    std::memset(&result, 0, sizeof(result));
    int found = 0;
    MOE_RETURN_IF_ERROR(check(
        cublasLtMatmulAlgoGetHeuristic(s.handle, d.op, d.a, d.b, d.c, d.c,
                                       d.pref, 1, &result, &found),
        "cublasLtMatmulAlgoGetHeuristic"));
    if (found == 0)
      return rt::Status::error("cublasLtMatmulAlgoGetHeuristic found no "
                               "algorithm for this GEMM");
    it = s.algos.emplace(key, result.algo).first;
  }
  const float alpha = 1.0f, beta = 0.0f;
  return check(cublasLtMatmul(s.handle, d.op, &alpha, a, d.a, b, d.b, &beta,
                              c, d.c, c, d.c, &it->second, s.workspace,
                              s.workspaceBytes, stream),
               "cublasLtMatmul");
}

rt::Status setTranspose(cublasLtMatmulDesc_t op,
                        cublasLtMatmulDescAttributes_t which, bool t) {
  cublasOperation_t v = t ? CUBLAS_OP_T : CUBLAS_OP_N;
  return check(cublasLtMatmulDescSetAttribute(op, which, &v, sizeof(v)),
               "cublasLtMatmulDescSetAttribute(TRANS)");
}

} // namespace

rt::StatusOr<std::unique_ptr<Blas>> Blas::create(size_t workspaceBytes) {
  std::unique_ptr<Blas> blas(new Blas());
  blas->state_ = std::make_unique<State>();
  MOE_RETURN_IF_ERROR(
      check(cublasLtCreate(&blas->state_->handle), "cublasLtCreate"));
  if (workspaceBytes) {
    MOE_RETURN_IF_ERROR(check(cudaMalloc(&blas->state_->workspace,
                                         workspaceBytes),
                              "cudaMalloc(cuBLASLt workspace)"));
    blas->state_->workspaceBytes = workspaceBytes;
  }
  return blas;
}

Blas::~Blas() {
  if (!state_)
    return;
  if (state_->workspace)
    cudaFree(state_->workspace);
  if (state_->handle)
    cublasLtDestroy(state_->handle);
}

rt::Status Blas::linear(const void *x, GemmType xType, int64_t m, int64_t k,
                        const void *w, GemmType wType, int64_t n,
                        const float *bias, float *y, Stream stream) {
  if (m == 0 || n == 0)
    return rt::Status::ok();
  if (k == 0)
    return check(cudaMemsetAsync(y, 0, size_t(m * n) * sizeof(float), stream),
                 "cudaMemsetAsync(empty GEMM)");
  if (xType != wType)
    return rt::Status::error("linear: mixed input types are not supported");
  // Column-major: yᵀ[N, M] = w[N, K] · xᵀ[K, M]; w's bytes are the
  // column-major [K, N] matrix wᵀ, hence op T.
  Descriptors d;
  MOE_RETURN_IF_ERROR(check(
      cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F),
      "cublasLtMatmulDescCreate"));
  MOE_RETURN_IF_ERROR(setTranspose(d.op, CUBLASLT_MATMUL_DESC_TRANSA, true));
  MOE_RETURN_IF_ERROR(setTranspose(d.op, CUBLASLT_MATMUL_DESC_TRANSB, false));
  if (bias) {
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    MOE_RETURN_IF_ERROR(check(
        cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                       &epi, sizeof(epi)),
        "cublasLtMatmulDescSetAttribute(EPILOGUE)"));
    MOE_RETURN_IF_ERROR(check(
        cublasLtMatmulDescSetAttribute(
            d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)),
        "cublasLtMatmulDescSetAttribute(BIAS_POINTER)"));
  }
  MOE_RETURN_IF_ERROR(check(
      cublasLtMatrixLayoutCreate(&d.a, dataType(wType), uint64_t(k),
                                 uint64_t(n), k),
      "cublasLtMatrixLayoutCreate(w)"));
  MOE_RETURN_IF_ERROR(check(
      cublasLtMatrixLayoutCreate(&d.b, dataType(xType), uint64_t(k),
                                 uint64_t(m), k),
      "cublasLtMatrixLayoutCreate(x)"));
  MOE_RETURN_IF_ERROR(check(cublasLtMatrixLayoutCreate(
                                &d.c, CUDA_R_32F, uint64_t(n), uint64_t(m), n),
                            "cublasLtMatrixLayoutCreate(y)"));
  GemmKey key{k, n, k, k, m, k, n, m, n, 1, 0, 0, 0,
              int(wType), int(xType), 1, bias != nullptr, 0, 0, 0};
  return run(*state_, d, key, w, x, y, stream);
}

rt::Status Blas::matmul(const float *a, int64_t strideA, const float *b,
                        int64_t strideB, float *c, int64_t m, int64_t k,
                        int64_t n, int64_t batch, Stream stream) {
  if (m == 0 || n == 0 || batch == 0)
    return rt::Status::ok();
  if (k == 0)
    return check(cudaMemsetAsync(c, 0, size_t(batch * m * n) * sizeof(float),
                                 stream),
                 "cudaMemsetAsync(empty matmul)");
  // Column-major: cᵀ[N, M] = bᵀ[N, K] · aᵀ[K, M], and the bytes of
  // row-major b and a are those column-major transposes already.
  Descriptors d;
  MOE_RETURN_IF_ERROR(check(
      cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F),
      "cublasLtMatmulDescCreate"));
  MOE_RETURN_IF_ERROR(check(cublasLtMatrixLayoutCreate(
                                &d.a, CUDA_R_32F, uint64_t(n), uint64_t(k), n),
                            "cublasLtMatrixLayoutCreate(b)"));
  MOE_RETURN_IF_ERROR(check(cublasLtMatrixLayoutCreate(
                                &d.b, CUDA_R_32F, uint64_t(k), uint64_t(m), k),
                            "cublasLtMatrixLayoutCreate(a)"));
  MOE_RETURN_IF_ERROR(check(cublasLtMatrixLayoutCreate(
                                &d.c, CUDA_R_32F, uint64_t(n), uint64_t(m), n),
                            "cublasLtMatrixLayoutCreate(c)"));
  if (batch > 1) {
    MOE_RETURN_IF_ERROR(setBatch(d.a, batch, strideB));
    MOE_RETURN_IF_ERROR(setBatch(d.b, batch, strideA));
    MOE_RETURN_IF_ERROR(setBatch(d.c, batch, m * n));
  }
  GemmKey key{n, k, n, k, m, k, n, m, n, batch, strideB, strideA, m * n,
              int(GemmType::F32), int(GemmType::F32), 0, 0, 0, 0, 0};
  return run(*state_, d, key, b, a, c, stream);
}

} // namespace moe::cuda
