//===- fuzz_onnx_wirescan.cpp - libFuzzer target for the ONNX wire scan ---===//
//
// Not built by default: test/fuzz/run.sh builds it with ASan+UBSan. Every
// byte range the scan reports must lie inside the input; malformed input is
// an error with a message. (The whole importer is fuzzed in CI by the gtest
// OnnxImportFuzz.MutatedModelsImportOrFailOnOneLine.)
//
//===----------------------------------------------------------------------===//

#include "frontends/onnx/WireScan.h"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  moe::onnx_frontend::RawDataMap map;
  std::string error;
  if (!moe::onnx_frontend::scanRawData(data, size, map, error)) {
    if (error.empty())
      std::abort();
    return 0;
  }
  auto inside = [&](const moe::onnx_frontend::ByteRange &r) {
    return r.offset <= size && r.size <= size - r.offset;
  };
  for (const auto &r : map.initializers)
    if (r && !inside(*r))
      std::abort();
  for (const auto &[node, r] : map.constants)
    if (!inside(r) || node >= map.nodeCount)
      std::abort();
  return 0;
}
