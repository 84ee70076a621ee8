//===- fuzz_tensorproto.cpp - libFuzzer target for the TensorProto codec --===//
//
// Not built by default (see fuzz_plan_loader.cpp for a command line). The
// gtest FuzzReplay.TensorProto runs the same body on mutations in CI.
//
//===----------------------------------------------------------------------===//

#include "test/fuzz/FuzzTargets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return moe::fuzz::fuzzTensorProto(data, size);
}
