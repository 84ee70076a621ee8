//===- CostModelTest.cpp - The placement cost model on hand-computed cases ===//

#include "passes/Analysis/CostModel.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace cost = moe::cost;

namespace {

cost::DeviceProfile device() {
  cost::DeviceProfile d;
  d.gpuMemoryBytes = 1e9;
  d.hbmBytesPerSecond = 1e12;  // 1 MB: 1 us
  d.gpuFlopsPerSecond = 1e14;
  d.gpuLaunchSeconds = 2e-6;
  d.h2dBytesPerSecond = 1e10;  // 1 MB: 100 us
  d.d2hBytesPerSecond = 2e10;
  d.pcieLatencySeconds = 1e-5;
  d.hostReadBytesPerSecond = 5e10; // 1 MB: 20 us
  d.cpuFlopsPerSecond = 1e11;
  return d;
}

TEST(CostModel, ExpertSecondsPerPlacement) {
  cost::DeviceProfile d = device();
  cost::ExpertShape e{1000000, 2e6, 1024}; // 1 MB, 2 MFLOP per token
  cost::ExpertLoad always{4.0, 1.0};        // 4 tokens, used every step
  // GPU: 2 us launch + max(1 us, 4 * 2e6 / 1e14 = 0.08 us).
  EXPECT_NEAR(cost::expertSeconds(d, e, always, cost::Where::Gpu), 3e-6, 1e-12);
  // CPU: max(20 us, 80 us of FLOPs) + 2 * 10 us latency + 4 tokens * 1024 *
  // 4 bytes * (1/1e10 + 1/2e10) = 2.4576 us.
  EXPECT_NEAR(cost::expertSeconds(d, e, always, cost::Where::Cpu),
              80e-6 + 20e-6 + 16384.0 * 1.5e-10, 1e-12);
  // On demand: 100 us copy + 10 us latency + the GPU's 3 us.
  EXPECT_NEAR(cost::expertSeconds(d, e, always, cost::Where::OnDemand), 113e-6,
              1e-12);
  // Used in a quarter of the steps, with 4 tokens then: a quarter of it.
  cost::ExpertLoad rare{1.0, 0.25};
  EXPECT_NEAR(cost::expertSeconds(d, e, rare, cost::Where::OnDemand),
              0.25 * 113e-6, 1e-12);
  // Never used: free anywhere.
  EXPECT_EQ(cost::expertSeconds(d, e, cost::ExpertLoad{}, cost::Where::Cpu), 0);
}

TEST(CostModel, LoadsFromShares) {
  // Batch 4, top-2, a share of 0.25: 2 tokens expected; used unless all 8
  // picks miss it: 1 - 0.75^8.
  cost::ExpertLoad l = cost::ExpertLoad::fromShare(0.25, 4, 2);
  EXPECT_DOUBLE_EQ(l.tokensPerStep, 2.0);
  EXPECT_NEAR(l.useProbability, 1 - std::pow(0.75, 8), 1e-15);
  EXPECT_EQ(cost::ExpertLoad::fromShare(0, 4, 2).useProbability, 0);
}

TEST(CostModel, LayerIsTheSlowerSide) {
  cost::DeviceProfile d = device();
  std::vector<cost::ExpertShape> e(3, cost::ExpertShape{1000000, 2e6, 1024});
  std::vector<cost::ExpertLoad> l(3, cost::ExpertLoad{1.0, 1.0});
  // GPU side: 3 us + 113 us (on demand); CPU side: the CPU expert.
  std::vector<cost::Where> w = {cost::Where::Gpu, cost::Where::Cpu,
                                cost::Where::OnDemand};
  double cpu = cost::expertSeconds(d, e[1], l[1], cost::Where::Cpu);
  EXPECT_NEAR(cost::layerSeconds(d, e, l, w), std::max(116e-6, cpu), 1e-12);
  std::vector<cost::Where> allGpu(3, cost::Where::Gpu);
  EXPECT_NEAR(cost::layerSeconds(d, e, l, allGpu), 9e-6, 1e-12);
}

TEST(CostModel, ReadsDeviceProfiles) {
  const char *good = R"({"format": "moe-device-profile", "version": 1,
    "name": "x",
    "gpu": {"memory_bytes": 8e10, "hbm_read_bytes_per_s": 3e12,
            "flops_per_s": 5e14, "launch_s": 5e-6},
    "pcie": {"h2d_bytes_per_s": 5e10, "d2h_bytes_per_s": 5e10,
             "latency_s": 1e-5},
    "cpu": {"read_bytes_per_s": 9e10, "flops_per_s": 1e12}})";
  auto d = cost::parseDeviceProfile(good, "d.json");
  ASSERT_TRUE(bool(d)) << llvm::toString(d.takeError());
  EXPECT_EQ(d->name, "x");
  EXPECT_EQ(d->hbmBytesPerSecond, 3e12);
  EXPECT_EQ(d->pcieLatencySeconds, 1e-5);
  struct Case {
    std::string from, to, message;
  } cases[] = {
      {"moe-device-profile", "other", "not a device profile"},
      {"\"version\": 1", "\"version\": 2",
       "device profile version 2 is not supported"},
      {"\"flops_per_s\": 1e12", "\"flops_per_s\": -1",
       "`cpu.flops_per_s` must be positive"},
      {"\"launch_s\": 5e-6", "\"launch_s\": \"fast\"",
       "`gpu.launch_s` is missing or not a number"},
      {"\"name\": \"x\",", "\"name\": \"x\"", "not valid JSON"},
  };
  for (const Case &c : cases) {
    std::string text = good;
    size_t at = text.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from;
    text.replace(at, c.from.size(), c.to);
    auto bad = cost::parseDeviceProfile(text, "d.json");
    ASSERT_FALSE(bool(bad)) << c.to;
    std::string m = llvm::toString(bad.takeError());
    EXPECT_NE(m.find(c.message), std::string::npos) << m;
    EXPECT_EQ(m.rfind("d.json: ", 0), 0u) << m;
  }
}

TEST(CostModel, MutatedDeviceProfilesParseOrFailOnOneLine) {
  const std::string base = R"({"format": "moe-device-profile", "version": 1,
    "gpu": {"memory_bytes": 8e10, "hbm_read_bytes_per_s": 3e12,
            "flops_per_s": 5e14, "launch_s": 5e-6},
    "pcie": {"h2d_bytes_per_s": 5e10, "d2h_bytes_per_s": 5e10,
             "latency_s": 1e-5},
    "cpu": {"read_bytes_per_s": 9e10, "flops_per_s": 1e12}})";
  std::mt19937_64 rng(9);
  for (int i = 0; i < 2000; ++i) {
    std::string text = base;
    for (int k = 0; k < 1 + int(rng() % 3) && !text.empty(); ++k) {
      size_t at = rng() % text.size();
      if (rng() % 2)
        text[at] = "{}[]\",:0-9e"[rng() % 11];
      else
        text.erase(at, 1 + rng() % 6);
    }
    auto d = cost::parseDeviceProfile(text, "d.json");
    if (d) {
      EXPECT_GT(d->hbmBytesPerSecond, 0);
      EXPECT_GT(d->h2dBytesPerSecond, 0);
      continue;
    }
    std::string m = llvm::toString(d.takeError());
    EXPECT_EQ(m.rfind("d.json: ", 0), 0u) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}

} // namespace
