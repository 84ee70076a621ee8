//===- Registration.h - Built-in CPU kernels --------------------*- C++ -*-===//
//
// Each function registers one topic's kernels (shape function + CPU body)
// in a registry; KernelRegistry::builtin() calls them all.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_CPU_REGISTRATION_H
#define MOE_RUNTIME_CPU_REGISTRATION_H

namespace moe::rt {
class KernelRegistry;
namespace cpu {

/// nn.matmul, nn.linear, nn.softmax, nn.reduce_*, nn.rms_norm, nn.layer_norm.
void registerDenseKernels(KernelRegistry &registry);
/// Binary and unary elementwise nn.* kernels.
void registerElementwiseKernels(KernelRegistry &registry);
/// nn.reshape, nn.transpose, nn.gather, nn.concat, nn.slice, nn.cast.
void registerLayoutKernels(KernelRegistry &registry);
/// moe.route, moe.dispatch, moe.experts, moe.combine, moe.all_to_all.
void registerMoeKernels(KernelRegistry &registry);

} // namespace cpu
} // namespace moe::rt

#endif // MOE_RUNTIME_CPU_REGISTRATION_H
