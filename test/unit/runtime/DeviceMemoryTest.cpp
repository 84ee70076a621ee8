//===- DeviceMemoryTest.cpp - Budgets, sizes, device tensors, host probes -===//

#include "runtime/DeviceMemory.h"
#include "runtime/HostMeasure.h"
#include "runtime/Tensor.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

using namespace moe::rt;

namespace {

TEST(MemoryBudget, ReservesReleasesAndTracksThePeak) {
  MemoryBudget b(1000);
  ASSERT_TRUE(b.reserve(600, "a").isOk());
  ASSERT_TRUE(b.reserve(400, "b").isOk());
  EXPECT_EQ(b.inUse(), 1000u);
  Status st = b.reserve(1, "weight `w1`");
  ASSERT_FALSE(st.isOk());
  EXPECT_EQ(st.message(), "device memory budget of 1000 B exceeded: weight "
                          "`w1` needs 1 B, 1000 B are in use");
  EXPECT_EQ(b.inUse(), 1000u); // a refused reservation takes nothing
  b.release(600);
  EXPECT_EQ(b.inUse(), 400u);
  EXPECT_EQ(b.peak(), 1000u);
  EXPECT_FALSE(b.reserve(uint64_t(-1), "huge").isOk()); // no overflow
}

TEST(MemoryBudget, ConcurrentReservationsNeverExceedIt) {
  MemoryBudget b(100);
  std::vector<std::thread> threads;
  std::vector<int> granted(8, 0);
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i)
        if (b.reserve(1, "x").isOk())
          ++granted[size_t(t)];
    });
  for (auto &t : threads)
    t.join();
  int total = 0;
  for (int g : granted)
    total += g;
  EXPECT_EQ(total, 100);
  EXPECT_EQ(b.inUse(), 100u);
}

TEST(DeviceMemory, FormatsAndParsesSizes) {
  EXPECT_EQ(formatBytes(640), "640 B");
  EXPECT_EQ(formatBytes(1536), "1.50 KiB");
  EXPECT_EQ(formatBytes(uint64_t(40) << 30), "40.0 GiB");
  EXPECT_EQ(*parseBytes("40G"), uint64_t(40) << 30);
  EXPECT_EQ(*parseBytes("512MiB"), uint64_t(512) << 20);
  EXPECT_EQ(*parseBytes("1.5k"), 1536u);
  EXPECT_EQ(*parseBytes("1073741824"), uint64_t(1) << 30);
  for (const char *bad : {"", "G", "12Q", "-1G", "1..2M", "1e400"})
    EXPECT_FALSE(parseBytes(bad).isOk()) << bad;
  EXPECT_EQ(parseBytes("12Q").status().message(),
            "'12Q' is not a size (e.g. 16G, 512M, 1073741824)");
}

TEST(DeviceMemory, DeviceTensorsRefuseHostAccess) {
  auto owner = std::make_shared<int>(0);
  int fake = 0; // never dereferenced
  Tensor t = Tensor::onDevice(DType::F32, {2, 3}, &fake, owner);
  EXPECT_TRUE(t.isOnDevice());
  EXPECT_FALSE(t.isView());
  EXPECT_TRUE(t.toVector<float>().empty());
  EXPECT_FALSE(t.clone().isOk());
  auto r = t.reshaped({3, 2});
  ASSERT_TRUE(r.isOk());
  EXPECT_TRUE(r->isOnDevice());
  EXPECT_EQ(r->data(), t.data());
}

TEST(HostMeasure, GivesPositiveRatesAndRejectsBadArguments) {
  auto bw = measureHostReadBandwidth(uint64_t(8) << 20, 2);
  ASSERT_TRUE(bw.isOk()) << bw.status().message();
  EXPECT_GT(*bw, 1e8); // any machine streams 8 MiB faster than 100 MB/s
  auto gemm = measureHostGemmRate(8, 64, 64, 2);
  ASSERT_TRUE(gemm.isOk()) << gemm.status().message();
  EXPECT_GT(*gemm, 1e6);
  EXPECT_FALSE(measureHostReadBandwidth(16, 1).isOk());
  EXPECT_FALSE(measureHostGemmRate(0, 1, 1, 1).isOk());
}

} // namespace
