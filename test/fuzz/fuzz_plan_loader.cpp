//===- fuzz_plan_loader.cpp - libFuzzer target for the plan loader --------===//
//
// Not built by default. Build by hand (one command line), e.g.:
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address -I. -Ibuild
//     test/fuzz/fuzz_plan_loader.cpp build/lib/libmoe_runtime.a
//     build/lib/libmoe_kernels_cpu.a build/lib/libmoe_plan_file.a -ltbb
// The gtest FuzzReplay.PlanLoader runs the same body on mutations in CI.
//
//===----------------------------------------------------------------------===//

#include "test/fuzz/FuzzTargets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return moe::fuzz::fuzzPlanLoader(data, size);
}
