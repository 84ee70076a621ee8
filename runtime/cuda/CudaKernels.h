//===- CudaKernels.h - The kernels of the `cuda` device ---------*- C++ -*-===//
//
// Which plan kernels the CUDA device runs, and how. Each entry names a
// kernel of the ABI (docs/plan-format.md) and says:
//  - whether a step's attributes and operand types are supported (the
//    check behind `moe-exec --device cuda`'s "which op is missing" error,
//    which needs no GPU);
//  - which inputs it reads on the host (shape tensors, gather indices);
//  - how it runs: on device tensors through the kernels of kernels/cuda,
//    or, for the reshape family, the CPU kernel itself on device tensors
//    (it only changes the shape: the output shares the device storage);
//  - which of its steps run on the host instead (moe.route with pruning).
// Steps whose operands are all integers or booleans (shape arithmetic) run
// on the host, as ONNX Runtime's CUDA provider places them; nn.shape reads
// only a shape and runs on the host too. moe.experts is in ExpertKernels.h.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_CUDA_CUDAKERNELS_H
#define MOE_RUNTIME_CUDA_CUDAKERNELS_H

#include "runtime/PlanLoader.h"

#include <functional>
#include <string>
#include <vector>

namespace moe::rt::cuda {

class CudaDevice;
struct ExpertResidency;

/// What a CUDA kernel is given: its step, device inputs (host tensors for
/// the inputs it reads on the host), and output slots, allocated on the
/// device with the shapes the kernel's shape function gives.
struct CudaKernelContext {
  CudaDevice &device;
  const StepInfo &step;
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs;
  /// Host copies of outputs that the kernel has anyway (moe.dispatch's
  /// offsets), so that a later host read needs no download.
  std::vector<Tensor> hostOutputs;
  /// Host copies of the inputs where the executor has them (undefined
  /// elsewhere): a kernel that needs an input's values on the host reads
  /// them here before downloading.
  std::vector<Tensor> hostInputs;
  /// On the hybrid device, where a moe.experts step's experts are
  /// (ExpertKernels.h); its w1, w2, w3 inputs are then host tensors.
  ExpertResidency *residency = nullptr;
  /// The most tokens a MoE layer runs as decode: grouped GEMVs from the
  /// offsets on the device (CudaExecutorOptions::decodeMaxTokens).
  int64_t decodeMaxTokens = 1;
};

enum class CudaPlacement {
  Device, ///< a CUDA kernel
  Alias,  ///< the CPU kernel on device tensors (shape changes only)
  Host,   ///< the CPU kernel on host tensors (shape and index arithmetic)
};

struct CudaKernel {
  std::string name;
  CudaPlacement placement = CudaPlacement::Device;
  /// Why this step cannot run on the device (its attributes or operand
  /// types), or ok. Null: every step of this kernel can.
  std::function<Status(const StepInfo &step,
                       const std::vector<TensorType> &inputs)>
      supports;
  /// Inputs read on the host. Null: none.
  std::function<bool(size_t input)> hostInput;
  /// Steps of this kernel that run on the host instead (the CPU kernel on
  /// host copies of the inputs), e.g. moe.route with expert pruning. Null:
  /// none.
  std::function<bool(const StepInfo &step)> onHost;
  /// Runs a Device kernel (null for Alias and Host).
  std::function<Status(CudaKernelContext &ctx)> run;
  /// The kernel allocates its outputs itself (their shapes depend on input
  /// values: nn.expand, nn.dynamic_slice); ctx.outputs come undefined.
  bool allocatesOutputs = false;
};

/// Whether input `input` of `step`, a packed weight in `formats`, is read
/// on the device as it is: the w1, w2 and w3 of moe.experts, in any of the
/// plan's formats (f32, bf16, group-quantised int8/4/3/2, absent).
bool cudaReadsPacked(const StepInfo &step, size_t input,
                     const std::vector<kernels::cpu::QuantFormat> &formats);

/// The entry for `kernel`, or null.
const CudaKernel *findCudaKernel(const std::string &kernel);
/// Every kernel name with a CUDA entry (for --help and messages).
std::vector<std::string> cudaKernelNames();

/// Where step `index` of `plan` runs on the cuda device, or why it cannot:
/// "step 12 `nn.cos`: no CUDA kernel". `foldable` marks the steps computed
/// once at load on the host (foldableSteps()).
StatusOr<CudaPlacement> cudaPlacement(const LoadedPlan &plan, size_t index,
                                      const std::vector<bool> &foldable);

/// The first step of `plan` that the cuda device cannot run, as an error
/// naming it and its kernel; ok when every step can. Needs no GPU.
Status checkCudaSupport(const LoadedPlan &plan);

} // namespace moe::rt::cuda

#endif // MOE_RUNTIME_CUDA_CUDAKERNELS_H
