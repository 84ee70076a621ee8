//===- Activation.cuh - Expert activations on the device --------*- C++ -*-===//
//
// kernels::cpu's expert activations (SiLU, GELU erf/tanh, ReLU, identity,
// ONNX Runtime's SwiGLU) as device functions, shared by the activation
// kernel and the fused decode kernels.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_KERNELS_CUDA_ACTIVATION_CUH
#define MOE_KERNELS_CUDA_ACTIVATION_CUH

#include "kernels/cuda/Moe.h"

namespace moe::cuda {

__device__ __forceinline__ float activate(float x, const ActivationParams &a) {
  switch (a.kind) {
  case 0:
    return x / (1.0f + expf(-x));
  case 1:
    return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
  case 2:
    return x > 0 ? x : 0.0f;
  case 3: {
    const float c = 0.7978845608028654f; // sqrt(2 / pi)
    return 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x)));
  }
  default:
    return x;
  }
}

__device__ __forceinline__ float swiglu(float g, float l,
                                        const ActivationParams &a) {
  if (a.hasLimit) {
    g = fminf(g, a.limit);
    l = fmaxf(-a.limit, fminf(l, a.limit));
  }
  return g / (1.0f + expf(-a.alpha * g)) * (l + a.beta);
}

/// h from the gate g and, when `hasLinear`, the linear part l (w3, or the
/// other half of a fused SwiGLU).
__device__ __forceinline__ float expertActivate(float g, float l,
                                                bool hasLinear,
                                                const ActivationParams &a) {
  if (a.kind == 5)
    return swiglu(g, l, a);
  return hasLinear ? activate(g, a) * l : activate(g, a);
}

} // namespace moe::cuda

#endif // MOE_KERNELS_CUDA_ACTIVATION_CUH
