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
/// The ONNX shape and index kernels: nn.shape, nn.constant_of_shape,
/// nn.expand, nn.range, nn.tile, nn.dynamic_reshape, nn.squeeze,
/// nn.unsqueeze, nn.flatten, nn.dynamic_slice, nn.gather_nd,
/// nn.scatter_elements, nn.scatter_nd, nn.nonzero, nn.one_hot, nn.topk,
/// nn.split.
void registerIndexKernels(KernelRegistry &registry);
/// moe.route, moe.dispatch, moe.experts, moe.combine.
void registerMoeKernels(KernelRegistry &registry);

} // namespace cpu
} // namespace moe::rt

#endif // MOE_RUNTIME_CPU_REGISTRATION_H
