//===- RepackTest.cpp - ORT QMoE weights in the plan's packed format ------===//
//
// repackMatrix must store ONNX Runtime's layout without loss: every element
// dequantised from the repacked matrix equals the dequantised original.

#include "kernels/cpu/Dequant.h"
#include "kernels/cpu/Half.h"
#include "kernels/cpu/Quant.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace kc = moe::kernels::cpu;

namespace {

struct Case {
  int bits;
  int64_t rows, cols, nblocks;
  bool zeroPoints, f16;
};

void checkCase(const Case &c) {
  std::mt19937 gen(int(c.bits * 1000 + c.cols + c.nblocks));
  const int64_t batch = 3;
  int64_t qCols = c.cols * c.bits / 8;
  std::vector<uint8_t> q(size_t(batch * c.rows * qCols));
  for (auto &b : q)
    b = uint8_t(gen());
  int64_t nScales = batch * c.rows * (c.nblocks ? c.nblocks : 1);
  std::vector<float> s32(static_cast<size_t>(nScales));
  std::vector<uint16_t> s16(static_cast<size_t>(nScales));
  for (int64_t i = 0; i < nScales; ++i) {
    s32[size_t(i)] = 0.01f + float(gen() % 100) / 1000.f;
    s16[size_t(i)] = kc::floatToHalf(s32[size_t(i)]);
  }
  int64_t zpLast = c.nblocks ? c.nblocks : c.rows;
  int64_t zpStride = (zpLast * c.bits + 7) / 8;
  std::vector<uint8_t> zp(size_t(batch * (c.nblocks ? c.rows : 1) * zpStride));
  for (auto &b : zp)
    b = uint8_t(gen());
  kc::DequantArgs a;
  a.q = q.data();
  a.batch = batch;
  a.rows = c.rows;
  a.cols = c.cols;
  a.bits = c.bits;
  if (c.f16)
    a.scalesF16 = s16.data();
  else
    a.scalesF32 = s32.data();
  a.nblocks = c.nblocks;
  a.zeroPoints = c.zeroPoints ? zp.data() : nullptr;
  std::vector<float> want(size_t(batch * c.rows * c.cols));
  a.out = want.data();
  ASSERT_TRUE(kc::dequantize(a).isOk());
  int group = kc::repackGroupSize(a);
  ASSERT_GT(group, 0);
  kc::QuantFormat f{c.bits, group, false, c.zeroPoints};
  kc::QuantLayout l = kc::quantLayout(f, c.rows, c.cols);
  std::vector<uint8_t> packed(static_cast<size_t>(l.totalBytes));
  std::vector<float> row(static_cast<size_t>(c.cols));
  for (int64_t b = 0; b < batch; ++b) {
    kc::repackMatrix(a, b, group, packed.data());
    for (int64_t r = 0; r < c.rows; ++r) {
      kc::dequantizeRow(packed.data(), f, c.rows, c.cols, r, row.data());
      for (int64_t k = 0; k < c.cols; ++k)
        ASSERT_EQ(row[size_t(k)], want[size_t((b * c.rows + r) * c.cols + k)])
            << "bits " << c.bits << " batch " << b << " row " << r << " col "
            << k;
    }
  }
}

TEST(Repack, OrtLayoutsAreStoredWithoutLoss) {
  for (Case c : {Case{4, 5, 256, 0, false, false}, Case{4, 5, 256, 2, true, false},
                 Case{4, 3, 96, 3, true, true}, Case{8, 4, 160, 0, true, false},
                 Case{8, 4, 256, 4, false, true}, Case{2, 6, 128, 1, true, false},
                 Case{2, 6, 64, 0, false, true}, Case{4, 7, 16, 0, false, false}})
    checkCase(c);
}

TEST(Repack, BlocksWithoutAnExactGroupAreRefused) {
  kc::DequantArgs a;
  a.bits = 4;
  a.cols = 48;
  a.nblocks = 3; // blocks of 16
  EXPECT_EQ(kc::repackGroupSize(a), 0);
  a.nblocks = 1; // one block of 48: 32 does not divide it
  EXPECT_EQ(kc::repackGroupSize(a), 0);
  a.cols = 256;
  a.nblocks = 2;
  EXPECT_EQ(kc::repackGroupSize(a), 128);
  a.bits = 3;
  EXPECT_EQ(kc::repackGroupSize(a), 0);
}

} // namespace
