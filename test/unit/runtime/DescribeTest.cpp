//===- DescribeTest.cpp - Plans in words and JSON -------------------------===//

#include "test/unit/runtime/KernelTestUtil.h"
#include "test/unit/runtime/PlanBuilder.h"

#include "runtime/Describe.h"

#include <sstream>

using namespace moe::test;

namespace {

std::unique_ptr<moe::rt::LoadedPlan> describedPlan(std::vector<uint8_t> &bytes) {
  PlanBuilder pb;
  pb.producer = "moe-opt \"0.1\"";
  uint32_t x = pb.input("x", DType::F32, {-1, 4});
  uint32_t w = pb.weightF32("w", {4}, {1, 1, 1, 1});
  uint32_t n = pb.call1("nn.rms_norm", {x, w}, DType::F32, {-1, 4},
                        Attrs().setFloat("eps", 1e-5));
  uint32_t c = pb.copy(n, moe_plan::Device::CUDA);
  uint32_t s = pb.call1("nn.slice", {c}, DType::F32, {-1, 2},
                        Attrs().setInts("starts", {0}).setInts("ends", {2})
                            .setInts("axes", {1}));
  pb.free({n, c});
  pb.output(s);
  pb.metadata.setInt("experts", 8).setFloat("scale", 0.5).setString("arch", "mix\ntral");
  bytes = pb.fileBytes();
  auto r = moe::rt::loadPlanFromMemory(bytes.data(), bytes.size(), "p.moeplan");
  EXPECT_TRUE(r.isOk()) << r.status().message();
  return std::move(*r);
}

std::vector<std::string> lines(const std::string &s) {
  std::vector<std::string> out;
  std::istringstream is(s);
  for (std::string l; std::getline(is, l);)
    out.push_back(l);
  return out;
}

bool hasLine(const std::vector<std::string> &ls, const std::string &l) {
  return std::find(ls.begin(), ls.end(), l) != ls.end();
}

TEST(Describe, Text) {
  std::vector<uint8_t> bytes;
  auto plan = describedPlan(bytes);
  auto ls = lines(moe::rt::describeText(*plan));
  EXPECT_TRUE(hasLine(ls, "  0: %0 x : ?x4xf32")) << moe::rt::describeText(*plan);
  EXPECT_TRUE(hasLine(ls, "  0: %2 = nn.rms_norm(%0, %1) {eps = 1e-05} @cpu"));
  EXPECT_TRUE(hasLine(ls, "  1: %3 = copy %2 @cuda"));
  EXPECT_TRUE(hasLine(ls, "  2: %4 = nn.slice(%3) {starts = [0], ends = [2], axes = [1]} @cpu"));
  EXPECT_TRUE(hasLine(ls, "  3: free %2, %3"));
  EXPECT_TRUE(hasLine(ls, "weights: 1 (16 bytes; offsets +N from byte " +
                              std::to_string(plan->header().blobsOffset) +
                              " of the file)"));
}

TEST(Describe, JsonLayout) {
  std::vector<uint8_t> bytes;
  auto plan = describedPlan(bytes);
  std::string json = moe::rt::describeJson(*plan);
  auto ls = lines(json);
  ASSERT_GE(ls.size(), 10u);
  EXPECT_EQ(ls[0], "{");
  EXPECT_EQ(ls[1], "  \"plan\": \"p.moeplan\",");
  EXPECT_EQ(ls[2], "  \"version\": " + std::to_string(moe::plan::kPlanFormatVersion) + ",");
  EXPECT_EQ(ls[3], "  \"producer\": \"moe-opt \\\"0.1\\\"\",");
  EXPECT_EQ(ls[4], "  \"file_size\": " + std::to_string(bytes.size()) + ",");
  EXPECT_EQ(ls[5], "  \"weight_bytes\": 16,");
  EXPECT_EQ(ls[6], "  \"num_values\": 5,");
  EXPECT_EQ(ls[7], "  \"inputs\": [");
  EXPECT_EQ(ls[8], "    {\"index\": 0, \"value\": 0, \"name\": \"x\", \"dtype\": \"f32\", "
                   "\"shape\": [-1, 4]}");
  EXPECT_TRUE(hasLine(ls, "    {\"index\": 0, \"value\": 4, \"dtype\": \"f32\", \"shape\": [-1, 2]}"));
  EXPECT_TRUE(hasLine(ls, "    {\"index\": 0, \"name\": \"w\", \"dtype\": \"f32\", \"shape\": "
                          "[4], \"offset\": 0, \"size\": 16}"));
  EXPECT_TRUE(hasLine(ls, "    {\"index\": 0, \"kind\": \"call\", \"kernel\": \"nn.rms_norm\", "
                          "\"device\": \"cpu\", \"inputs\": [0, 1], \"outputs\": [2], "
                          "\"attrs\": {\"eps\": 1e-05}},"));
  EXPECT_TRUE(hasLine(ls, "    {\"index\": 1, \"kind\": \"copy\", \"device\": \"cuda\", "
                          "\"inputs\": [2], \"outputs\": [3]},"));
  EXPECT_TRUE(hasLine(ls, "    {\"index\": 3, \"kind\": \"free\", \"inputs\": [2, 3]}"));
  EXPECT_EQ(ls[ls.size() - 2], "  \"metadata\": {\"experts\": 8, \"scale\": 0.5, "
                               "\"arch\": \"mix\\ntral\"}");
  EXPECT_EQ(ls.back(), "}");
}

TEST(Describe, JsonNumbers) {
  EXPECT_EQ(moe::rt::jsonNumber(1e-5), "1e-05");
  EXPECT_EQ(moe::rt::jsonNumber(2.0), "2.0");
  EXPECT_EQ(moe::rt::jsonNumber(0.1), "0.1");
  EXPECT_EQ(std::stod(moe::rt::jsonNumber(1.0 / 3)), 1.0 / 3);
  EXPECT_EQ(moe::rt::jsonNumber(NAN), "null");
  EXPECT_EQ(moe::rt::jsonString("a\"b\\c\x01"), "\"a\\\"b\\\\c\\u0001\"");
}

} // namespace
