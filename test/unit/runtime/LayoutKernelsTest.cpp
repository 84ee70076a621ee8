//===- LayoutKernelsTest.cpp - reshape/transpose/gather/concat/slice/cast -===//

#include "test/unit/runtime/KernelTestUtil.h"

#include <limits>

using namespace moe::test;

namespace {

TEST(LayoutKernels, ReshapeInfersMinusOneAndSharesStorage) {
  std::mt19937 rng(10);
  Tensor x = randomF32({3, 4, 5}, rng);
  Tensor y = run1("nn.reshape", {x}, Attrs().setInts("shape", {-1, 10}));
  EXPECT_EQ(y.shape(), (Shape{6, 10}));
  EXPECT_EQ(y.data(), x.data()); // zero-copy
  auto bad = runKernel("nn.reshape", {x}, Attrs().setInts("shape", {7, -1}));
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("cannot reshape [3, 4, 5]"), std::string::npos);
  auto two = runKernel("nn.reshape", {x}, Attrs().setInts("shape", {-1, -1}));
  ASSERT_FALSE(two.isOk());
  EXPECT_EQ(two.status().message(), "attribute `shape` has more than one -1");
  auto missing = runKernel("nn.reshape", {x});
  ASSERT_FALSE(missing.isOk());
  EXPECT_EQ(missing.status().message(), "missing attribute `shape`");
}

TEST(LayoutKernels, TransposeMatchesNaiveForEveryDtypeSize) {
  std::mt19937 rng(11);
  Shape s = {3, 17, 5};
  std::vector<Shape> perms = {{2, 0, 1}, {1, 0, 2}, {0, 1, 2}, {2, 1, 0}};
  Tensor xf = randomF32(s, rng);
  std::vector<int64_t> iv(size_t(count(s)));
  for (size_t i = 0; i < iv.size(); ++i)
    iv[i] = int64_t(i) * 7 - 100;
  Tensor xi = i64(s, iv);
  for (const Shape &perm : perms) {
    Tensor yf = run1("nn.transpose", {xf}, Attrs().setInts("perm", perm));
    Tensor yi = run1("nn.transpose", {xi}, Attrs().setInts("perm", perm));
    Shape os = {s[perm[0]], s[perm[1]], s[perm[2]]};
    ASSERT_EQ(yf.shape(), os);
    for (int64_t f = 0; f < count(os); ++f) {
      auto o = unravel(f, os);
      std::vector<int64_t> in(3);
      for (size_t d = 0; d < 3; ++d)
        in[size_t(perm[d])] = o[d];
      ASSERT_EQ(yf.data<float>()[f], xf.data<float>()[ravel(in, s)]);
      ASSERT_EQ(yi.data<int64_t>()[f], iv[size_t(ravel(in, s))]);
    }
  }
  Tensor rev = run1("nn.transpose", {xf}); // default: reversed dims
  EXPECT_EQ(rev.shape(), (Shape{5, 17, 3}));
  auto bad = runKernel("nn.transpose", {xf}, Attrs().setInts("perm", {0, 0, 1}));
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().message(), "attribute `perm` is not a permutation");
}

TEST(LayoutKernels, GatherWrapsNegativeAndRejectsOutOfRange) {
  std::mt19937 rng(12);
  Shape s = {3, 17, 4};
  Tensor data = randomF32(s, rng);
  std::vector<int64_t> idx = {0, 16, -1, -17, 5, 5};
  Tensor y = run1("nn.gather", {data, i64({2, 3}, idx)}, Attrs().setInt("axis", 1));
  ASSERT_EQ(y.shape(), (Shape{3, 2, 3, 4}));
  for (int64_t o = 0; o < 3; ++o)
    for (int64_t i = 0; i < 6; ++i)
      for (int64_t r = 0; r < 4; ++r) {
        int64_t j = idx[size_t(i)] < 0 ? idx[size_t(i)] + 17 : idx[size_t(i)];
        ASSERT_EQ(y.data<float>()[(o * 6 + i) * 4 + r],
                  data.data<float>()[(o * 17 + j) * 4 + r]);
      }
  Tensor i32 = *Tensor::fromVector<int32_t>(DType::I32, {2}, {2, -3});
  Tensor y0 = run1("nn.gather", {data, i32}, Attrs().setInt("axis", 0));
  ASSERT_EQ(y0.shape(), (Shape{2, 17, 4}));
  EXPECT_EQ(y0.data<float>()[0], data.data<float>()[2 * 68]);
  EXPECT_EQ(y0.data<float>()[68], data.data<float>()[0]);
  auto bad = runKernel("nn.gather", {data, i64({2}, {1, 17})}, Attrs().setInt("axis", 1));
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().message(), "index 17 at position 1 is outside [-17, 17)");
  auto neg = runKernel("nn.gather", {data, i64({1}, {-18})}, Attrs().setInt("axis", 1));
  ASSERT_FALSE(neg.isOk());
  auto fidx = runKernel("nn.gather", {data, data});
  ASSERT_FALSE(fidx.isOk());
  EXPECT_EQ(fidx.status().message(), "input 1 has dtype f32, expected i64 or i32");
}

TEST(LayoutKernels, ConcatAlongEachAxis) {
  std::mt19937 rng(13);
  for (int64_t axis : {0, 1, -1}) {
    std::vector<Shape> shapes;
    for (int64_t len : {1, 3, 17}) {
      Shape s = {2, 3, 5};
      s[size_t(axis < 0 ? axis + 3 : axis)] = len;
      shapes.push_back(s);
    }
    std::vector<Tensor> xs;
    for (const Shape &s : shapes)
      xs.push_back(randomF32(s, rng));
    Tensor y = run1("nn.concat", xs, Attrs().setInt("axis", axis));
    size_t ax = size_t(axis < 0 ? axis + 3 : axis);
    Shape os = shapes[0];
    os[ax] = 21;
    ASSERT_EQ(y.shape(), os);
    for (int64_t f = 0; f < count(os); ++f) {
      auto idx = unravel(f, os);
      int64_t pos = idx[ax];
      size_t which = 0;
      while (pos >= shapes[which][ax])
        pos -= shapes[which++][ax];
      idx[ax] = pos;
      ASSERT_EQ(y.data<float>()[f], xs[which].data<float>()[ravel(idx, shapes[which])]);
    }
  }
  auto bad = runKernel("nn.concat", {randomF32({2, 3}, rng), randomF32({3, 3}, rng)},
                       Attrs().setInt("axis", 1));
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().message(), "input 1 dim 0 is 3, expected 2 (other inputs)");
}

/// The indices ONNX Slice picks along one axis, by iteration.
std::vector<int64_t> sliceIndices(int64_t dim, int64_t start, int64_t end,
                                  int64_t step) {
  auto adjust = [&](int64_t v) { return v < 0 ? std::max<int64_t>(v + dim, -1) : v; };
  start = adjust(start);
  end = adjust(end);
  std::vector<int64_t> out;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    for (int64_t i = start; i < end; i += step)
      out.push_back(i);
  } else {
    start = std::clamp<int64_t>(start, -1, dim - 1);
    end = std::clamp<int64_t>(end, -1, dim - 1);
    for (int64_t i = start; i > end; i += step)
      out.push_back(i);
  }
  return out;
}

TEST(LayoutKernels, SliceFollowsOnnx) {
  std::mt19937 rng(14);
  Shape s = {17, 5};
  Tensor x = randomF32(s, rng);
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  const int64_t kMin = std::numeric_limits<int64_t>::min();
  struct Case {
    int64_t start, end, step;
  };
  std::vector<Case> cases = {{0, 17, 1},  {-3, 100, 2}, {-1, kMin, -1}, {10, 2, -3},
                             {5, 5, 1},    {16, -100, -4}, {-100, 3, 1}, {2, kMax, 33},
                             {kMax, 0, -1}, {3, 1, 1}};
  for (const Case &c : cases) {
    Tensor y = run1("nn.slice", {x},
                    Attrs()
                        .setInts("starts", {c.start})
                        .setInts("ends", {c.end})
                        .setInts("axes", {0})
                        .setInts("steps", {c.step}));
    std::vector<int64_t> rows = sliceIndices(17, c.start, c.end, c.step);
    ASSERT_EQ(y.shape(), (Shape{int64_t(rows.size()), 5}))
        << c.start << ":" << c.end << ":" << c.step;
    for (size_t r = 0; r < rows.size(); ++r)
      for (int64_t j = 0; j < 5; ++j)
        ASSERT_EQ(y.data<float>()[int64_t(r) * 5 + j], x.data<float>()[rows[r] * 5 + j]);
  }
  // x[::-1] along both axes, and explicit numpy results for one case.
  Tensor small = f32({2, 3}, {0, 1, 2, 3, 4, 5});
  Tensor rev = run1("nn.slice", {small},
                    Attrs()
                        .setInts("starts", {-1, -1})
                        .setInts("ends", {kMin, kMin})
                        .setInts("axes", {0, 1})
                        .setInts("steps", {-1, -1}));
  EXPECT_EQ(rev.toVector<float>(), (std::vector<float>{5, 4, 3, 2, 1, 0}));
  Tensor col = run1("nn.slice", {small},
                    Attrs().setInts("starts", {1}).setInts("ends", {3}).setInts("axes", {-1}));
  EXPECT_EQ(col.toVector<float>(), (std::vector<float>{1, 2, 4, 5}));
  auto zero = runKernel("nn.slice", {small},
                        Attrs().setInts("starts", {0}).setInts("ends", {1}).setInts("steps", {0}));
  ASSERT_FALSE(zero.isOk());
  EXPECT_EQ(zero.status().message(), "attribute `steps` has a 0");
  auto lens = runKernel("nn.slice", {small},
                        Attrs().setInts("starts", {0}).setInts("ends", {1, 2}));
  ASSERT_FALSE(lens.isOk());
}

TEST(LayoutKernels, CastBetweenDtypes) {
  Tensor x = f32({7}, {-1.7f, 2.9f, 0.0f, 1e10f, -1e10f, NAN, 0.5f});
  Tensor toI64 = run1("nn.cast", {x}, Attrs().setInt("to", int64_t(DType::I64)));
  EXPECT_EQ(toI64.dtype(), DType::I64);
  EXPECT_EQ(toI64.toVector<int64_t>(),
            (std::vector<int64_t>{-1, 2, 0, 10000000000, -10000000000, 0, 0}));
  Tensor toI32 = run1("nn.cast", {x}, Attrs().setInt("to", int64_t(DType::I32)));
  EXPECT_EQ(toI32.toVector<int32_t>(),
            (std::vector<int32_t>{-1, 2, 0, INT32_MAX, INT32_MIN, 0, 0}));
  Tensor toU8 = run1("nn.cast", {x}, Attrs().setInt("to", int64_t(DType::U8)));
  EXPECT_EQ(toU8.toVector<uint8_t>(), (std::vector<uint8_t>{0, 2, 0, 255, 0, 0, 0}));
  Tensor toI1 = run1("nn.cast", {x}, Attrs().setInt("to", int64_t(DType::I1)));
  EXPECT_EQ(toI1.toVector<uint8_t>(), (std::vector<uint8_t>{1, 1, 0, 1, 1, 1, 1}));
  // f16/bf16 round trips of exactly representable values, and rounding.
  Tensor h = f32({5}, {1.0f, -2.5f, 65504.0f, 1.0f / 1024, 1.0f + 1.0f / 4096});
  Tensor f16 = run1("nn.cast", {h}, Attrs().setInt("to", int64_t(DType::F16)));
  Tensor back = run1("nn.cast", {f16}, Attrs().setInt("to", int64_t(DType::F32)));
  EXPECT_EQ(back.toVector<float>(),
            (std::vector<float>{1.0f, -2.5f, 65504.0f, 1.0f / 1024, 1.0f}));
  EXPECT_EQ(f16.toVector<uint16_t>()[0], 0x3C00);
  Tensor bf = run1("nn.cast", {h}, Attrs().setInt("to", int64_t(DType::BF16)));
  EXPECT_EQ(bf.toVector<uint16_t>()[0], 0x3F80);
  Tensor bfBack = run1("nn.cast", {bf}, Attrs().setInt("to", int64_t(DType::F64)));
  EXPECT_EQ(bfBack.toVector<double>()[1], -2.5);
  Tensor ints = i64({3}, {-3, 300, 1});
  Tensor i8 = run1("nn.cast", {ints}, Attrs().setInt("to", int64_t(DType::I8)));
  EXPECT_EQ(i8.toVector<int8_t>(), (std::vector<int8_t>{-3, 44, 1})); // wraps
  Tensor fl = run1("nn.cast", {ints}, Attrs().setInt("to", int64_t(DType::F32)));
  EXPECT_EQ(fl.toVector<float>(), (std::vector<float>{-3, 300, 1}));
  auto bad = runKernel("nn.cast", {x}, Attrs().setInt("to", 42));
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().message(), "attribute `to` = 42 is not a dtype");
}

TEST(LayoutKernels, HalfConversionsAreExactOnAllHalfValues) {
  // Every finite f16 converts to float and back to the same bits.
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    uint16_t h = uint16_t(bits);
    if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF))
      continue; // NaN payloads
    ASSERT_EQ(moe::rt::floatToHalf(moe::rt::halfToFloat(h)), h) << bits;
  }
  // Ties round to even; overflow to infinity; tiny values to zero.
  EXPECT_EQ(moe::rt::floatToHalf(1.0f + 1.0f / 2048), 0x3C00);
  EXPECT_EQ(moe::rt::floatToHalf(1.0f + 3.0f / 2048), 0x3C02);
  EXPECT_EQ(moe::rt::floatToHalf(70000.0f), 0x7C00);
  EXPECT_EQ(moe::rt::floatToHalf(1e-10f), 0x0000);
  EXPECT_EQ(moe::rt::floatToBf16(1.0f + 1.0f / 256), 0x3F80);
  EXPECT_TRUE(std::isnan(moe::rt::bf16ToFloat(moe::rt::floatToBf16(NAN))));
}

} // namespace
