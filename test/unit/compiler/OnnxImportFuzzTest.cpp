//===- OnnxImportFuzzTest.cpp - Mutated ONNX files never crash the importer ===//
//
// Replays random mutations (byte flips, truncations, inserted and deleted
// ranges) of a real model through the whole importer. Every outcome must be
// an imported, verified module or a one-line error; a crash, an abort or a
// multi-line message fails the test. Run under ASan/UBSan builds too.
//
//===----------------------------------------------------------------------===//

#include "frontends/onnx/OnnxImporter.h"
#include "frontends/onnx/WireScan.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>

namespace {

std::string fixture(const char *rel) {
  return std::string(MOE_FIXTURES_DIR) + "/onnx/" + rel;
}

std::vector<uint8_t> readFile(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

TEST(OnnxImportFuzz, MutatedModelsImportOrFailOnOneLine) {
  std::string path = fixture("synthetic/mixtral_block_dec_loop/model.onnx");
  std::vector<uint8_t> original = readFile(path);
  if (original.empty())
    GTEST_SKIP() << "fixture not found: " << path;
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("onnx-fuzz", dir));
  std::string file = (dir + "/model.onnx").str();
  std::mt19937 gen(7);
  int imported = 0, rejected = 0;
  for (int iter = 0; iter < 1500; ++iter) {
    std::vector<uint8_t> bytes = original;
    int edits = 1 + int(gen() % 4);
    for (int e = 0; e < edits && !bytes.empty(); ++e) {
      size_t at = gen() % bytes.size();
      switch (gen() % 4) {
      case 0:
        bytes[at] ^= uint8_t(1u << (gen() % 8));
        break;
      case 1:
        bytes.resize(at);
        break;
      case 2:
        bytes.insert(bytes.begin() + long(at), uint8_t(gen()));
        break;
      default:
        bytes.erase(bytes.begin() + long(at),
                    bytes.begin() + long(std::min(bytes.size(), at + 1 + gen() % 16)));
        break;
      }
    }
    {
      std::ofstream out(file, std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char *>(bytes.data()),
                std::streamsize(bytes.size()));
    }
    mlir::MLIRContext ctx;
    std::string diagnostics;
    mlir::ScopedDiagnosticHandler handler(&ctx, [&](mlir::Diagnostic &d) {
      diagnostics += d.str() + "\n";
      return mlir::success();
    });
    auto module = moe::onnx_frontend::importOnnxFile(file, ctx);
    if (module) {
      ++imported;
      continue;
    }
    std::string message = llvm::toString(module.takeError());
    ++rejected;
    ASSERT_FALSE(message.empty());
    ASSERT_EQ(message.find('\n'), std::string::npos) << message;
  }
  llvm::sys::fs::remove_directories(dir);
  EXPECT_GT(rejected, 0);
  EXPECT_GT(imported + rejected, 0);
}

TEST(OnnxImportFuzz, WireScanRejectsMalformedProtobuf) {
  moe::onnx_frontend::RawDataMap map;
  std::string error;
  // Field 7 (graph), length 100, but only 2 bytes follow.
  const uint8_t bad[] = {0x3a, 0x64, 0x01, 0x02};
  EXPECT_FALSE(moe::onnx_frontend::scanRawData(bad, sizeof(bad), map, error));
  EXPECT_NE(error.find("malformed"), std::string::npos);
  // A group wire type is not protobuf ONNX uses.
  const uint8_t group[] = {0x0b};
  EXPECT_FALSE(
      moe::onnx_frontend::scanRawData(group, sizeof(group), map, error));
}

TEST(OnnxImportFuzz, WireScanFindsInitializerBytes) {
  std::string path = fixture("synthetic/mixtral_block_dec_gather/model.onnx");
  std::vector<uint8_t> bytes = readFile(path);
  if (bytes.empty())
    GTEST_SKIP() << "fixture not found: " << path;
  moe::onnx_frontend::RawDataMap map;
  std::string error;
  ASSERT_TRUE(
      moe::onnx_frontend::scanRawData(bytes.data(), bytes.size(), map, error))
      << error;
  ASSERT_FALSE(map.initializers.empty());
  size_t withRaw = 0;
  for (const auto &r : map.initializers)
    if (r) {
      ++withRaw;
      EXPECT_LE(r->offset + r->size, bytes.size());
    }
  EXPECT_GT(withRaw, 0u);
}

} // namespace
