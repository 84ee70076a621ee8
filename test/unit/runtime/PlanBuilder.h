//===- PlanBuilder.h - Building small plans in tests ------------*- C++ -*-===//
//
// Builds a plan with FlatBufferBuilder and writes it with PlanFileWriter.
// Every field is a public member so that tests can break one rule at a time
// (a weight offset, a value id, the version, ...).
//
//===----------------------------------------------------------------------===//
#ifndef MOE_TEST_UNIT_RUNTIME_PLANBUILDER_H
#define MOE_TEST_UNIT_RUNTIME_PLANBUILDER_H

#include "runtime/Kernel.h"
#include "runtime/PlanFile.h"

#include <optional>
#include <string>
#include <vector>

namespace moe::test {

using rt::DType;
using rt::Shape;

struct BValue {
  DType dtype = DType::F32;
  Shape shape;
  moe_plan::ValueKind kind = moe_plan::ValueKind::Temp;
  int32_t weight = -1;
  int32_t input = -1;
  std::string name;
};

/// One Weight.slices entry, written as is.
struct BSlice {
  uint8_t bits = 0;
  uint16_t groupSize = 0;
  DType scaleDType = DType::F16;
  bool zeroPoints = false;
  uint64_t offset = 0, size = 0;
};

struct BWeight {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  std::vector<uint8_t> bytes;
  /// Non-empty: a packed weight.
  std::vector<BSlice> slices;
  /// Overrides of what the writer would compute.
  std::optional<uint64_t> offset, size, checksum;
  /// Weight.slice_checksums, written as is (see sliceChecksums()).
  std::vector<uint64_t> sliceChecksums;
};

/// The checksum of each index of dimension 0 of `w`, as the compiler writes
/// them.
std::vector<uint64_t> sliceChecksums(const BWeight &w);

struct BStep {
  moe_plan::StepKind kind = moe_plan::StepKind::Call;
  std::string kernel;
  std::vector<uint32_t> inputs, outputs;
  rt::Attrs attrs;
  moe_plan::Device device = moe_plan::Device::CPU;
};

class PlanBuilder {
public:
  /// A program input (value + Program.inputs entry).
  uint32_t input(const std::string &name, DType dtype, Shape shape);
  /// A weight and its value.
  uint32_t weight(const std::string &name, DType dtype, Shape shape,
                  std::vector<uint8_t> bytes);
  uint32_t weightF32(const std::string &name, Shape shape,
                     const std::vector<float> &data);
  /// A packed weight: slice i of `data` (f32, `shape`) quantised in
  /// formats[i] and laid out as the compiler does (64-byte aligned slices).
  uint32_t weightPacked(const std::string &name, Shape shape,
                        const std::vector<float> &data,
                        const std::vector<kernels::cpu::QuantFormat> &formats);
  /// A temporary value.
  uint32_t temp(DType dtype, Shape shape, const std::string &name = "");
  /// A call producing new temporaries of the given types.
  std::vector<uint32_t> call(const std::string &kernel,
                             std::vector<uint32_t> inputs,
                             const std::vector<rt::TensorType> &outputs,
                             rt::Attrs attrs = {});
  /// A call with one output.
  uint32_t call1(const std::string &kernel, std::vector<uint32_t> inputs,
                 DType dtype, Shape shape, rt::Attrs attrs = {});
  void free(std::vector<uint32_t> ids);
  uint32_t copy(uint32_t id, moe_plan::Device device);
  void output(uint32_t id) { outputs.push_back(id); }

  /// The FlatBuffer of the plan.
  std::vector<uint8_t> flatbuffer() const;
  /// Writes the plan file.
  rt::Status write(const std::string &path) const;
  /// The bytes of the plan file (written to a temporary file and read back).
  std::vector<uint8_t> fileBytes() const;

  uint32_t version = plan::kPlanFormatVersion;
  std::string producer = "plan-builder";
  std::string programName = "main";
  std::vector<BValue> values;
  std::vector<BWeight> weights;
  std::vector<BStep> steps;
  std::vector<uint32_t> inputs, outputs;
  rt::Attrs metadata;
};

/// A fresh path in the test's temporary directory.
std::string tempPath(const std::string &stem);
/// Writes bytes to a file.
void writeFile(const std::string &path, const std::vector<uint8_t> &bytes);
std::vector<uint8_t> readFile(const std::string &path);

} // namespace moe::test

#endif // MOE_TEST_UNIT_RUNTIME_PLANBUILDER_H
