//===- DenseKernelsTest.cpp - nn.* dense kernels vs naive loops -----------===//

#include "test/unit/runtime/KernelTestUtil.h"

#include "kernels/cpu/Elementwise.h"

#include <functional>
#include <limits>

using namespace moe::test;

namespace {

const int64_t kSizes[] = {1, 3, 17, 33};

/// Numpy broadcast index: the element of `shape` read for output index `out`.
int64_t broadcastIndex(const std::vector<int64_t> &out, const Shape &shape) {
  size_t lead = out.size() - shape.size();
  std::vector<int64_t> idx(shape.size());
  for (size_t d = 0; d < shape.size(); ++d)
    idx[d] = shape[d] == 1 ? 0 : out[lead + d];
  return ravel(idx, shape);
}

TEST(DenseKernels, MatmulBroadcastMatchesNaive) {
  std::mt19937 rng(1);
  for (int64_t m : kSizes)
    for (int64_t k : kSizes)
      for (int64_t n : {int64_t(1), int64_t(17)}) {
        Shape as = {2, 1, m, k}, bs = {3, k, n}, cs = {2, 3, m, n};
        Tensor a = randomF32(as, rng), b = randomF32(bs, rng);
        Tensor c = run1("nn.matmul", {a, b});
        ASSERT_EQ(c.shape(), cs);
        std::vector<float> want(size_t(count(cs)));
        for (int64_t flat = 0; flat < count(cs); ++flat) {
          auto idx = unravel(flat, cs);
          double acc = 0;
          for (int64_t kk = 0; kk < k; ++kk) {
            std::vector<int64_t> ai = {idx[0], 0, idx[2], kk};
            std::vector<int64_t> bi = {idx[1], kk, idx[3]};
            acc += double(a.data<float>()[ravel(ai, as)]) *
                   b.data<float>()[ravel(bi, bs)];
          }
          want[size_t(flat)] = float(acc);
        }
        expectClose(c, want, 1e-4f);
      }
}

TEST(DenseKernels, MatmulRejectsMismatchedK) {
  std::mt19937 rng(2);
  auto r = runKernel("nn.matmul", {randomF32({2, 3}, rng), randomF32({4, 5}, rng)});
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().message(), "input 1 dim 0 is 4, expected 3 (K of input 0)");
}

TEST(DenseKernels, LinearWithAndWithoutBias) {
  std::mt19937 rng(3);
  for (int64_t k : kSizes)
    for (int64_t n : kSizes)
      for (bool bias : {false, true}) {
        Shape xs = {2, 3, k};
        Tensor x = randomF32(xs, rng), w = randomF32({n, k}, rng),
               b = randomF32({n}, rng);
        std::vector<Tensor> in = {x, w};
        if (bias)
          in.push_back(b);
        Tensor y = run1("nn.linear", in);
        ASSERT_EQ(y.shape(), (Shape{2, 3, n}));
        std::vector<float> want;
        for (int64_t r = 0; r < 6; ++r)
          for (int64_t j = 0; j < n; ++j) {
            double acc = bias ? b.data<float>()[j] : 0.0;
            for (int64_t kk = 0; kk < k; ++kk)
              acc += double(x.data<float>()[r * k + kk]) * w.data<float>()[j * k + kk];
            want.push_back(float(acc));
          }
        expectClose(y, want, 1e-4f);
      }
}

TEST(DenseKernels, LinearAcrossTiles) {
  // Several 64×64 tiles with tails, large enough to run in parallel.
  std::mt19937 rng(9);
  const int64_t rows = 130, k = 67, n = 131;
  Tensor x = randomF32({rows, k}, rng), w = randomF32({n, k}, rng),
         b = randomF32({n}, rng);
  Tensor y = run1("nn.linear", {x, w, b});
  std::vector<float> want;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) {
      double acc = b.data<float>()[j];
      for (int64_t kk = 0; kk < k; ++kk)
        acc += double(x.data<float>()[r * k + kk]) * w.data<float>()[j * k + kk];
      want.push_back(float(acc));
    }
  expectClose(y, want, 1e-4f);
}

struct BinaryCase {
  const char *kernel;
  std::function<float(float, float)> fn;
};

TEST(DenseKernels, BinaryF32Broadcast) {
  std::mt19937 rng(4);
  std::vector<BinaryCase> cases = {
      {"nn.add", [](float a, float b) { return a + b; }},
      {"nn.sub", [](float a, float b) { return a - b; }},
      {"nn.mul", [](float a, float b) { return a * b; }},
      {"nn.div", [](float a, float b) { return a / b; }},
      {"nn.max", [](float a, float b) { return std::max(a, b); }},
      {"nn.min", [](float a, float b) { return std::min(a, b); }},
      {"nn.pow", [](float a, float b) { return std::pow(a, b); }},
  };
  std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 1, 17}, {5, 1}}, {{33}, {33}}, {{1}, {4, 3}}, {{}, {2, 3}}, {{17, 3}, {17, 1}}};
  for (const BinaryCase &c : cases)
    for (const auto &[as, bs] : shapes) {
      bool isPow = std::string(c.kernel) == "nn.pow";
      Tensor a = randomF32(as, rng, isPow ? 0.1f : -1, 2),
             b = randomF32(bs, rng, 0.5f, 2);
      Tensor out = run1(c.kernel, {a, b});
      size_t rank = std::max(as.size(), bs.size());
      Shape os(rank);
      for (size_t d = 0; d < rank; ++d) {
        int64_t da = d < rank - as.size() ? 1 : as[d - (rank - as.size())];
        int64_t db = d < rank - bs.size() ? 1 : bs[d - (rank - bs.size())];
        os[d] = std::max(da, db);
      }
      ASSERT_EQ(out.shape(), os) << c.kernel;
      std::vector<float> want;
      for (int64_t f = 0; f < count(os); ++f) {
        auto idx = unravel(f, os);
        want.push_back(c.fn(a.data<float>()[broadcastIndex(idx, as)],
                            b.data<float>()[broadcastIndex(idx, bs)]));
      }
      expectClose(out, want, 1e-6f);
    }
}

TEST(DenseKernels, BinaryI64TruncatesAndRejectsZeroDivisor) {
  Tensor a = i64({4}, {-7, 7, INT64_MIN, 9}), b = i64({4}, {2, -2, -1, 3});
  Tensor q = run1("nn.div", {a, b});
  EXPECT_EQ(q.toVector<int64_t>(), (std::vector<int64_t>{-3, -3, INT64_MIN, 3}));
  Tensor s = run1("nn.add", {a, i64({1}, {1})});
  EXPECT_EQ(s.toVector<int64_t>(), (std::vector<int64_t>{-6, 8, INT64_MIN + 1, 10}));
  auto r = runKernel("nn.div", {a, i64({4}, {1, 0, 1, 1})});
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().message(), "integer division by zero");
  auto mixed = runKernel("nn.add", {a, f32({4}, {1, 2, 3, 4})});
  ASSERT_FALSE(mixed.isOk());
  EXPECT_EQ(mixed.status().message(), "input 1 has dtype f32, expected i64");
  auto ipow = runKernel("nn.pow", {a, b});
  ASSERT_FALSE(ipow.isOk());
  auto bad = runKernel("nn.add", {f32({3}, {1, 2, 3}), f32({2}, {1, 2})});
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().message(), "shapes [3] and [2] do not broadcast");
}

TEST(DenseKernels, UnaryMatchesStd) {
  std::mt19937 rng(5);
  using Fn = std::function<double(double)>;
  std::vector<std::pair<const char *, Fn>> cases = {
      {"nn.silu", [](double x) { return x / (1 + std::exp(-x)); }},
      {"nn.sigmoid", [](double x) { return 1 / (1 + std::exp(-x)); }},
      {"nn.relu", [](double x) { return x > 0 ? x : 0; }},
      {"nn.tanh", [](double x) { return std::tanh(x); }},
      {"nn.exp", [](double x) { return std::exp(x); }},
      {"nn.log", [](double x) { return std::log(x); }},
      {"nn.neg", [](double x) { return -x; }},
      {"nn.abs", [](double x) { return std::fabs(x); }},
      {"nn.sqrt", [](double x) { return std::sqrt(x); }},
      {"nn.rsqrt", [](double x) { return 1 / std::sqrt(x); }},
      {"nn.reciprocal", [](double x) { return 1 / x; }},
  };
  for (const auto &[name, fn] : cases)
    for (int64_t n : kSizes) {
      bool positive = std::string(name) == "nn.log" ||
                      std::string(name).find("sqrt") != std::string::npos ||
                      std::string(name) == "nn.reciprocal";
      Tensor x = randomF32({n, 3}, rng, positive ? 0.1f : -4, 4);
      Tensor y = run1(name, {x});
      std::vector<float> want;
      for (int64_t i = 0; i < x.numElements(); ++i)
        want.push_back(float(fn(x.data<float>()[i])));
      expectClose(y, want, 2e-6f);
    }
  Tensor x = randomF32({33}, rng, -3, 3);
  Tensor erf = run1("nn.gelu", {x});
  Tensor tanhG = run1("nn.gelu", {x}, Attrs().setString("approximate", "tanh"));
  std::vector<float> wantErf, wantTanh;
  for (int64_t i = 0; i < 33; ++i) {
    double v = x.data<float>()[i];
    wantErf.push_back(float(0.5 * v * (1 + std::erf(v / std::sqrt(2.0)))));
    wantTanh.push_back(float(
        0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)))));
  }
  expectClose(erf, wantErf, 1e-5f);
  expectClose(tanhG, wantTanh, 1e-5f);
  auto bad = runKernel("nn.gelu", {x}, Attrs().setString("approximate", "fast"));
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().message(),
            "attribute `approximate` is 'fast', expected 'none' or 'tanh'");
}

TEST(DenseKernels, SoftmaxEveryAxis) {
  std::mt19937 rng(6);
  Shape s = {3, 17, 5};
  Tensor x = randomF32(s, rng, -20, 20);
  for (int64_t axis : {0, 1, 2, -1}) {
    Tensor y = run1("nn.softmax", {x}, Attrs().setInt("axis", axis));
    size_t ax = size_t(axis < 0 ? axis + 3 : axis);
    std::vector<float> want(size_t(count(s)));
    for (int64_t f = 0; f < count(s); ++f) {
      auto idx = unravel(f, s);
      double mx = -1e30, sum = 0;
      for (int64_t j = 0; j < s[ax]; ++j) {
        auto k = idx;
        k[ax] = j;
        mx = std::max(mx, double(x.data<float>()[ravel(k, s)]));
      }
      for (int64_t j = 0; j < s[ax]; ++j) {
        auto k = idx;
        k[ax] = j;
        sum += std::exp(x.data<float>()[ravel(k, s)] - mx);
      }
      want[size_t(f)] = float(std::exp(x.data<float>()[f] - mx) / sum);
    }
    expectClose(y, want, 1e-5f);
  }
  auto bad = runKernel("nn.softmax", {x}, Attrs().setInt("axis", 3));
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().message(), "attribute `axis` 3 is outside [-3, 3)");
  auto kind = runKernel("nn.softmax", {x}, Attrs().setString("axis", "1"));
  ASSERT_FALSE(kind.isOk());
  EXPECT_EQ(kind.status().message(), "attribute `axis` is string, expected int");
}

TEST(DenseKernels, ReductionsMatchNaive) {
  std::mt19937 rng(7);
  Shape s = {3, 17, 4};
  Tensor x = randomF32(s, rng);
  std::vector<std::vector<int64_t>> axesCases = {{1}, {0, 2}, {}, {-1}};
  for (const char *kernel : {"nn.reduce_sum", "nn.reduce_mean", "nn.reduce_max"})
    for (const auto &axes : axesCases)
      for (int64_t keep : {0, 1}) {
        Tensor y = run1(kernel, {x},
                        Attrs().setInts("axes", axes).setInt("keepdims", keep));
        std::vector<bool> red(3, axes.empty());
        for (int64_t a : axes)
          red[size_t(a < 0 ? a + 3 : a)] = true;
        Shape os, keptShape;
        for (size_t d = 0; d < 3; ++d) {
          if (!red[d]) {
            os.push_back(s[d]);
            keptShape.push_back(s[d]);
          } else if (keep) {
            os.push_back(1);
          }
        }
        ASSERT_EQ(y.shape(), os) << kernel;
        std::vector<double> sum(size_t(count(keptShape)), 0),
            mx(size_t(count(keptShape)), -1e30);
        std::vector<int64_t> n(size_t(count(keptShape)), 0);
        for (int64_t f = 0; f < count(s); ++f) {
          auto idx = unravel(f, s);
          std::vector<int64_t> kept;
          for (size_t d = 0; d < 3; ++d)
            if (!red[d])
              kept.push_back(idx[d]);
          size_t o = size_t(ravel(kept, keptShape));
          sum[o] += x.data<float>()[f];
          mx[o] = std::max(mx[o], double(x.data<float>()[f]));
          ++n[o];
        }
        std::vector<float> want;
        for (size_t o = 0; o < sum.size(); ++o) {
          std::string k = kernel;
          want.push_back(float(k == "nn.reduce_sum"    ? sum[o]
                               : k == "nn.reduce_mean" ? sum[o] / double(n[o])
                                                       : mx[o]));
        }
        expectClose(y, want, 1e-5f);
      }
  auto dup = runKernel("nn.reduce_sum", {x}, Attrs().setInts("axes", {1, -2}));
  ASSERT_FALSE(dup.isOk());
  EXPECT_EQ(dup.status().message(), "attribute `axes` repeats axis -2");
}

TEST(DenseKernels, NormsMatchNaive) {
  std::mt19937 rng(8);
  for (int64_t d : kSizes) {
    Tensor x = randomF32({3, 2, d}, rng), w = randomF32({d}, rng),
           b = randomF32({d}, rng);
    double eps = 1e-3;
    Tensor rms = run1("nn.rms_norm", {x, w}, Attrs().setFloat("eps", eps));
    Tensor ln = run1("nn.layer_norm", {x, w}, Attrs().setFloat("eps", eps));
    Tensor lnb = run1("nn.layer_norm", {x, w, b}, Attrs().setFloat("eps", eps));
    std::vector<float> wantRms, wantLn, wantLnb;
    for (int64_t r = 0; r < 6; ++r) {
      const float *px = x.data<float>() + r * d;
      double ss = 0, mean = 0, var = 0;
      for (int64_t i = 0; i < d; ++i) {
        ss += double(px[i]) * px[i];
        mean += px[i];
      }
      mean /= double(d);
      for (int64_t i = 0; i < d; ++i)
        var += (px[i] - mean) * (px[i] - mean);
      var /= double(d);
      for (int64_t i = 0; i < d; ++i) {
        double wi = w.data<float>()[i];
        wantRms.push_back(float(px[i] / std::sqrt(ss / double(d) + eps) * wi));
        double norm = (px[i] - mean) / std::sqrt(var + eps);
        wantLn.push_back(float(norm * wi));
        wantLnb.push_back(float(norm * wi + b.data<float>()[i]));
      }
    }
    expectClose(rms, wantRms, 1e-5f);
    expectClose(ln, wantLn, 1e-4f);
    expectClose(lnb, wantLnb, 1e-4f);
  }
  auto bad = runKernel("nn.rms_norm", {randomF32({2, 4}, rng), randomF32({5}, rng)});
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().message(),
            "input 1 dim 0 is 5, expected 4 (last dim of input 0)");
}

TEST(DenseKernels, VerifierHandlesUnknownDims) {
  const moe::rt::KernelDef *mm = moe::rt::KernelRegistry::builtin().find("nn.matmul");
  ASSERT_NE(mm, nullptr);
  Attrs none;
  moe::rt::KernelSignature sig;
  sig.inputs = {{DType::F32, {-1, 64}}, {DType::F32, {64, 8}}};
  sig.outputs = {{DType::F32, {-1, 8}}};
  sig.attrs = &none;
  EXPECT_TRUE(moe::rt::KernelRegistry::verify(*mm, sig).isOk());
  sig.outputs = {{DType::F32, {-1, 9}}};
  moe::rt::Status st = moe::rt::KernelRegistry::verify(*mm, sig);
  ASSERT_FALSE(st.isOk());
  EXPECT_EQ(st.message(), "output 0 has shape [?, 9], expected [?, 8]");
  sig.inputs = {{DType::F32, {-1, -1}}, {DType::F32, {64, 8}}};
  sig.outputs = {{DType::F32, {-1, 8}}};
  EXPECT_TRUE(moe::rt::KernelRegistry::verify(*mm, sig).isOk());
  sig.outputs = {{DType::I64, {-1, 8}}};
  st = moe::rt::KernelRegistry::verify(*mm, sig);
  ASSERT_FALSE(st.isOk());
  EXPECT_EQ(st.message(), "output 0 has dtype i64, expected f32");
}

} // namespace
