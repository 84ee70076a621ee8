//===- FuzzTargets.h - Bodies of the fuzz targets ---------------*- C++ -*-===//
//
// The libFuzzer entry points (fuzz_*.cpp, built only by hand with
// -fsanitize=fuzzer) and the gtest that replays mutations in CI share these
// bodies, so CI exercises exactly what the fuzzer runs.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_TEST_FUZZ_FUZZTARGETS_H
#define MOE_TEST_FUZZ_FUZZTARGETS_H

#include "runtime/Executor.h"
#include "runtime/PlanLoader.h"
#include "runtime/io/TensorProto.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace moe::fuzz {

/// Loads arbitrary bytes as a plan. An accepted plan must describe itself
/// consistently (its tables are in range); a rejected one must say why on
/// one line.
inline int fuzzPlanLoader(const uint8_t *data, size_t size) {
  auto r = rt::loadPlanFromMemory(data, size, "fuzz");
  if (!r.isOk()) {
    const std::string &m = r.status().message();
    if (m.empty() || m.find('\n') != std::string::npos)
      std::abort();
    return 0;
  }
  const rt::LoadedPlan &plan = **r;
  for (const rt::StepInfo &s : plan.steps())
    for (uint32_t v : s.inputs)
      if (v >= plan.values().size())
        std::abort();
  return 0;
}

/// Parses arbitrary bytes as a TensorProto; a parsed tensor must hold as many
/// bytes as its shape says, and must serialise and parse back to itself.
inline int fuzzTensorProto(const uint8_t *data, size_t size) {
  auto r = rt::parseTensorProto(data, size);
  if (!r.isOk()) {
    if (r.status().message().empty())
      std::abort();
    return 0;
  }
  const rt::Tensor &t = r->tensor;
  std::string again = rt::serializeTensorProto(t, r->name);
  auto back = rt::parseTensorProto(
      reinterpret_cast<const uint8_t *>(again.data()), again.size());
  if (!back.isOk() || back->tensor.shape() != t.shape() ||
      back->tensor.byteSize() != t.byteSize() || back->name != r->name ||
      (t.byteSize() && std::memcmp(back->tensor.data(), t.data(), t.byteSize())))
    std::abort();
  return 0;
}

} // namespace moe::fuzz

#endif // MOE_TEST_FUZZ_FUZZTARGETS_H
