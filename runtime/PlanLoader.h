//===- PlanLoader.h - Loading and verifying plan files ----------*- C++ -*-===//
//
// loadPlan() maps a plan file read-only, checks the header and the
// FlatBuffer checksum, runs the FlatBuffers verifier and only then reads the
// plan, checking every rule of docs/plan-format.md ("What loading
// verifies"). The result is a LoadedPlan: plain C++ tables of values,
// weights and steps plus zero-copy weight tensors into the mapping.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_PLANLOADER_H
#define MOE_RUNTIME_PLANLOADER_H

#include "runtime/Kernel.h"
#include "runtime/PlanFile.h"

#include <functional>
#include <memory>
#include <optional>

namespace moe::rt {

using ValueKind = moe_plan::ValueKind;
using StepKind = moe_plan::StepKind;
using Device = moe_plan::Device;

/// A value of the program (dims -1 unknown until run time).
struct ValueInfo {
  DType dtype = DType::F32;
  Shape shape;
  ValueKind kind = ValueKind::Temp;
  int32_t weight = -1;
  int32_t input = -1;
  std::string name;
};

/// One slice (index of dimension 0) of a packed weight: its format and
/// where it lies, relative to the start of the weight's blob.
struct WeightSliceInfo {
  kernels::cpu::QuantFormat format;
  uint64_t offset = 0;
  uint64_t size = 0;
};

/// A weight blob: offset/size relative to the blob section.
struct WeightInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t checksum = 0;
  /// Empty for a plain weight; one entry per index of dimension 0 for a
  /// packed one (docs/plan-format.md, "Quantised weights").
  std::vector<WeightSliceInfo> slices;
  /// Empty, or a checksum per index of dimension 0 (Weight.slice_checksums).
  std::vector<uint64_t> sliceChecksums;
  bool packed() const { return !slices.empty(); }
};

/// One step; `kernel` is the verified kernel of a Call.
struct StepInfo {
  StepKind kind = StepKind::Call;
  std::string kernelName;
  const KernelDef *kernel = nullptr;
  std::vector<uint32_t> inputs;
  std::vector<uint32_t> outputs;
  Attrs attrs;
  Device device = Device::CPU;
};

/// The indices of dimension 0 that rank `rank` reads of input `input` of
/// `step`, a weight of `slices` indices: for w1, w2 or w3 (inputs 2 to 4)
/// of an expert-parallel moe.experts step, the experts the rank holds; of a
/// tensor-parallel one, the rank's slices. Nullopt for any other input or
/// step (read whole), or attributes that do not fit `slices`.
std::optional<std::vector<bool>>
expertSlicesRead(const StepInfo &step, size_t input, int64_t slices, int rank);

struct LoadOptions {
  /// Check every Weight.checksum (reads all weight bytes once).
  bool verifyWeights = true;
  /// A rank of a multi-rank run (-1: none). A weight that only expert- or
  /// tensor-parallel moe.experts steps read (as w1, w2 or w3) and that
  /// carries slice checksums is checked for the experts (or slices) this
  /// rank reads only: the rank never reads the others.
  int rank = -1;
  /// Kernels to resolve Calls against; null means KernelRegistry::builtin().
  const KernelRegistry *registry = nullptr;
};

/// A verified plan. Weight tensors are views into the mapped file, which
/// stays mapped while the LoadedPlan or any weight tensor lives.
class LoadedPlan {
public:
  const std::string &path() const { return path_; }
  const plan::PlanHeader &header() const { return header_; }
  uint64_t fileSize() const { return header_.fileSize; }
  uint32_t version() const { return version_; }
  const std::string &producer() const { return producer_; }
  const std::string &programName() const { return programName_; }
  /// Sum of the weights' sizes in bytes.
  uint64_t weightBytes() const { return weightBytes_; }

  const std::vector<ValueInfo> &values() const { return values_; }
  const std::vector<WeightInfo> &weights() const { return weights_; }
  const std::vector<StepInfo> &steps() const { return steps_; }
  /// Value ids of the program inputs / outputs, in order.
  const std::vector<uint32_t> &inputs() const { return inputs_; }
  const std::vector<uint32_t> &outputs() const { return outputs_; }
  const Attrs &metadata() const { return metadata_; }
  /// The zero-copy tensor of weight i.
  const Tensor &weightTensor(size_t i) const { return weightTensors_[i]; }
  /// Drops from memory the mapped pages wholly inside bytes [offset, offset
  /// + bytes) of weight i, which this process will not read again (or, if it
  /// does, reads back from the file): madvise(MADV_DONTNEED). A no-op for a
  /// plan loaded from memory, whose pages are its only copy.
  Status releasePages(size_t i, uint64_t offset, uint64_t bytes) const;
  const KernelRegistry &registry() const { return *registry_; }

  /// Edits the attributes of every step that calls `kernel` (moe-exec's
  /// pruning overrides of moe.route) and checks each edited step with the
  /// kernel's own verifier; returns how many steps were edited. On an error
  /// nothing is changed.
  StatusOr<size_t> overrideAttrs(std::string_view kernel,
                                 const std::function<void(Attrs &)> &edit);

  /// A display name for program input i ("x", or "input_0").
  std::string inputName(size_t i) const;
  /// A display name for program output i ("output_0" unless named).
  std::string outputName(size_t i) const;

private:
  friend class PlanReader;
  std::string path_;
  plan::PlanHeader header_{};
  uint32_t version_ = 0;
  std::string producer_, programName_;
  uint64_t weightBytes_ = 0;
  std::vector<ValueInfo> values_;
  std::vector<WeightInfo> weights_;
  std::vector<StepInfo> steps_;
  std::vector<uint32_t> inputs_, outputs_;
  Attrs metadata_;
  std::vector<Tensor> weightTensors_;
  std::shared_ptr<const void> mapping_;
  bool fileMapped_ = false; ///< weights are pages of the mapped plan file
  const KernelRegistry *registry_ = nullptr;
};

/// Maps and verifies the plan at `path`. Errors are one line starting with
/// the path: "<path>: step 7 `nn.matmul`: input 1 has dtype i64, expected
/// f32".
StatusOr<std::unique_ptr<LoadedPlan>> loadPlan(const std::string &path,
                                               const LoadOptions &options = {});

/// Same, from a copy of `size` bytes at `data` (tests, fuzzing); `name`
/// stands for the path in messages.
StatusOr<std::unique_ptr<LoadedPlan>>
loadPlanFromMemory(const uint8_t *data, size_t size, const std::string &name,
                   const LoadOptions &options = {});

} // namespace moe::rt

#endif // MOE_RUNTIME_PLANLOADER_H
