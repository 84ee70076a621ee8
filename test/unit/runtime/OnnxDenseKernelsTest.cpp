//===- OnnxDenseKernelsTest.cpp - ONNX-semantics dense/elementwise kernels ===//
//
// The dense and elementwise rows of docs/onnx-import.md: integer arithmetic,
// cos/sin, comparisons, logic, where, clip, dequantize, and the ONNX corners
// of cast, matmul (1-D operands), the reductions, softmax and pow.
//
//===----------------------------------------------------------------------===//

#include "test/unit/runtime/KernelTestUtil.h"

#include "runtime/DType.h"

#include <array>
#include <functional>
#include <limits>
#include <type_traits>

using namespace moe::test;

namespace {

using Bytes = std::vector<uint8_t>;

Tensor i32(const Shape &shape, const std::vector<int32_t> &v) {
  StatusOr<Tensor> t = Tensor::fromVector(DType::I32, shape, v);
  EXPECT_TRUE(t.isOk()) << t.status().message();
  return *t;
}

Tensor i1(const Shape &shape, const Bytes &v) {
  StatusOr<Tensor> t = Tensor::fromVector(DType::I1, shape, v);
  EXPECT_TRUE(t.isOk()) << t.status().message();
  return *t;
}

Tensor u8(const Shape &shape, const Bytes &v) {
  StatusOr<Tensor> t = Tensor::fromVector(DType::U8, shape, v);
  EXPECT_TRUE(t.isOk()) << t.status().message();
  return *t;
}

Tensor f16(const Shape &shape, const std::vector<float> &v) {
  std::vector<uint16_t> h;
  for (float x : v)
    h.push_back(moe::rt::floatToHalf(x));
  StatusOr<Tensor> t = Tensor::fromVector(DType::F16, shape, h);
  EXPECT_TRUE(t.isOk()) << t.status().message();
  return *t;
}

/// The error message of a kernel run that must fail.
std::string errorOf(const std::string &name, std::vector<Tensor> inputs,
                    const Attrs &attrs = {}) {
  auto r = runKernel(name, std::move(inputs), attrs);
  EXPECT_FALSE(r.isOk()) << name << " succeeded";
  return r.isOk() ? std::string() : r.status().message();
}

/// Numpy broadcasting of shapes (known dims).
Shape broadcast(const std::vector<Shape> &shapes) {
  size_t rank = 0;
  for (const Shape &s : shapes)
    rank = std::max(rank, s.size());
  Shape out(rank, 1);
  for (const Shape &s : shapes)
    for (size_t d = 0; d < s.size(); ++d) {
      int64_t &o = out[rank - s.size() + d];
      if (s[d] != 1)
        o = s[d];
    }
  return out;
}

/// The flat element of `shape` read for output index `out` (broadcast).
int64_t broadcastIndex(const std::vector<int64_t> &out, const Shape &shape) {
  size_t lead = out.size() - shape.size();
  std::vector<int64_t> idx(shape.size());
  for (size_t d = 0; d < shape.size(); ++d)
    idx[d] = shape[d] == 1 ? 0 : out[lead + d];
  return ravel(idx, shape);
}

template <typename T>
std::vector<T> randomInts(int64_t n, std::mt19937 &rng, int64_t lo,
                          int64_t hi) {
  std::uniform_int_distribution<int64_t> dist(lo, hi);
  std::vector<T> v(static_cast<size_t>(n));
  for (T &x : v)
    x = T(dist(rng));
  return v;
}

/// Runs a registered kernel's shape function as the loader does.
Status verify(const std::string &name, std::vector<moe::rt::TensorType> in,
              std::vector<moe::rt::TensorType> out, const Attrs &attrs = {}) {
  const moe::rt::KernelDef *def = moe::rt::KernelRegistry::builtin().find(name);
  if (!def)
    return Status::error("no kernel " + name);
  moe::rt::KernelSignature sig;
  sig.inputs = std::move(in);
  sig.outputs = std::move(out);
  sig.attrs = &attrs;
  return moe::rt::KernelRegistry::verify(*def, sig);
}

// Shape pairs for the broadcast tests: rank 0, size-1 dims, empty dims,
// dims that coalesce and dims that do not.
const std::vector<std::pair<Shape, Shape>> kShapePairs = {
    {{}, {}},           {{}, {2, 3}},          {{2, 3}, {}},
    {{1}, {}},          {{4}, {4}},            {{3, 1}, {1, 5}},
    {{2, 3, 4}, {3, 1}}, {{2, 1, 4}, {1, 3, 4}}, {{0, 3}, {1, 3}},
    {{5, 0}, {1}},      {{1, 1, 1}, {2, 1, 3}}, {{6, 1}, {6, 7}},
};

//===----------------------------------------------------------------------===//
// Arithmetic
//===----------------------------------------------------------------------===//

TEST(OnnxDenseKernels, IntegerArithmeticHandComputed) {
  Tensor a = i32({2, 3}, {-7, 7, INT32_MIN, 9, INT32_MAX, 0});
  Tensor b = i32({3}, {2, -2, -1});
  Tensor q = run1("nn.div", {a, b});
  EXPECT_EQ(q.dtype(), DType::I32);
  EXPECT_EQ(q.shape(), (Shape{2, 3}));
  EXPECT_EQ(q.toVector<int32_t>(),
            (std::vector<int32_t>{-3, -3, INT32_MIN, 4, -1073741823, 0}));
  EXPECT_EQ(run1("nn.add", {a, b}).toVector<int32_t>(),
            (std::vector<int32_t>{-5, 5, INT32_MAX, 11, INT32_MAX - 2, -1}));
  EXPECT_EQ(run1("nn.sub", {a, b}).toVector<int32_t>(),
            (std::vector<int32_t>{-9, 9, INT32_MIN + 1, 7, INT32_MIN + 1, 1}));
  EXPECT_EQ(run1("nn.mul", {a, b}).toVector<int32_t>(),
            (std::vector<int32_t>{-14, -14, INT32_MIN, 18, 2, 0}));
  EXPECT_EQ(run1("nn.max", {a, b}).toVector<int32_t>(),
            (std::vector<int32_t>{2, 7, -1, 9, INT32_MAX, 0}));
  EXPECT_EQ(run1("nn.min", {a, b}).toVector<int32_t>(),
            (std::vector<int32_t>{-7, -2, INT32_MIN, 2, -2, -1}));
  // Overflow wraps.
  EXPECT_EQ(run1("nn.add", {i32({}, {INT32_MAX}), i32({}, {1})})
                .toVector<int32_t>(),
            (std::vector<int32_t>{INT32_MIN}));
  Tensor big = i64({}, {INT64_MAX});
  Tensor wrapped = run1("nn.mul", {big, i64({}, {2})});
  EXPECT_EQ(wrapped.shape(), Shape{});
  EXPECT_EQ(wrapped.toVector<int64_t>(), (std::vector<int64_t>{-2}));
  // Rank 0 with anything.
  Tensor s = run1("nn.sub", {i32({}, {10}), i32({2, 2}, {1, 2, 3, 4})});
  EXPECT_EQ(s.shape(), (Shape{2, 2}));
  EXPECT_EQ(s.toVector<int32_t>(), (std::vector<int32_t>{9, 8, 7, 6}));
  Tensor f = run1("nn.div", {f32({}, {1}), f32({}, {0})});
  EXPECT_TRUE(std::isinf(f.toVector<float>()[0]));
}

TEST(OnnxDenseKernels, IntegerArithmeticErrors) {
  Tensor a = i32({3}, {1, 2, 3});
  EXPECT_EQ(errorOf("nn.div", {a, i32({3}, {1, 0, 1})}),
            "integer division by zero");
  EXPECT_EQ(errorOf("nn.div", {i64({2, 1}, {1, 2}), i64({1}, {0})}),
            "integer division by zero");
  // A zero divisor in an empty output is never used.
  Tensor empty = run1("nn.div", {i32({0, 1}, {}), i32({1}, {0})});
  EXPECT_EQ(empty.shape(), (Shape{0, 1}));
  EXPECT_EQ(errorOf("nn.add", {a, i64({3}, {1, 2, 3})}),
            "input 1 has dtype i64, expected i32");
  EXPECT_EQ(errorOf("nn.add", {i1({1}, {1}), i1({1}, {1})}),
            "input 0 has dtype i1, expected f32, i64 or i32");
  EXPECT_EQ(errorOf("nn.pow", {a, a}), "input 0 has dtype i32, expected f32");
  EXPECT_EQ(errorOf("nn.max", {a, i32({2}, {1, 2})}),
            "shapes [3] and [2] do not broadcast");
  EXPECT_EQ(errorOf("nn.add", {a}), "expects 2 inputs, got 1");
}

template <typename T>
void checkIntBroadcast(DType dtype, std::mt19937 &rng) {
  using U = std::make_unsigned_t<T>;
  struct Case {
    const char *name;
    std::function<T(T, T)> fn;
  };
  std::vector<Case> cases = {
      {"nn.add", [](T x, T y) { return T(U(x) + U(y)); }},
      {"nn.sub", [](T x, T y) { return T(U(x) - U(y)); }},
      {"nn.mul", [](T x, T y) { return T(U(x) * U(y)); }},
      {"nn.div", [](T x, T y) { return T(x / y); }},
      {"nn.max", [](T x, T y) { return std::max(x, y); }},
      {"nn.min", [](T x, T y) { return std::min(x, y); }},
  };
  for (const Case &c : cases)
    for (const auto &[as, bs] : kShapePairs) {
      std::vector<T> av = randomInts<T>(count(as), rng, -1000, 1000);
      std::vector<T> bv = randomInts<T>(count(bs), rng, 1, 50);
      Tensor a = *Tensor::fromVector(dtype, as, av);
      Tensor b = *Tensor::fromVector(dtype, bs, bv);
      Tensor out = run1(c.name, {a, b});
      Shape os = broadcast({as, bs});
      ASSERT_EQ(out.shape(), os) << c.name;
      ASSERT_EQ(out.dtype(), dtype);
      std::vector<T> want;
      for (int64_t f = 0; f < count(os); ++f) {
        auto idx = unravel(f, os);
        want.push_back(c.fn(av[size_t(broadcastIndex(idx, as))],
                            bv[size_t(broadcastIndex(idx, bs))]));
      }
      EXPECT_EQ(out.toVector<T>(), want)
          << c.name << " " << moe::rt::formatShape(as) << " "
          << moe::rt::formatShape(bs);
    }
}

TEST(OnnxDenseKernels, IntegerBroadcastMatchesNaive) {
  std::mt19937 rng(11);
  checkIntBroadcast<int32_t>(DType::I32, rng);
  checkIntBroadcast<int64_t>(DType::I64, rng);
}

TEST(OnnxDenseKernels, LargeBroadcastRunsInParallelAndMatches) {
  // Big enough for TBB and for rows longer than one chunk.
  std::mt19937 rng(12);
  std::vector<std::pair<Shape, Shape>> shapes = {
      {{300, 1, 70}, {1, 50, 70}}, {{40000}, {40000}}, {{3, 50000}, {}},
      {{70, 1}, {70, 3000}}};
  for (const auto &[as, bs] : shapes) {
    Tensor a = randomF32(as, rng), b = randomF32(bs, rng);
    Tensor out = run1("nn.sub", {a, b});
    Shape os = broadcast({as, bs});
    ASSERT_EQ(out.shape(), os);
    const float *pa = a.data<float>(), *pb = b.data<float>(),
                *po = out.data<float>();
    for (int64_t f = 0; f < count(os); ++f) {
      auto idx = unravel(f, os);
      ASSERT_EQ(po[f], pa[broadcastIndex(idx, as)] - pb[broadcastIndex(idx, bs)])
          << f;
    }
  }
}

TEST(OnnxDenseKernels, NegOnEveryArithmeticDtype) {
  EXPECT_EQ(run1("nn.neg", {i64({4}, {INT64_MIN, -1, 0, 5})}).toVector<int64_t>(),
            (std::vector<int64_t>{INT64_MIN, 1, 0, -5}));
  Tensor n32 = run1("nn.neg", {i32({2, 2}, {INT32_MIN, -1, 0, 5})});
  EXPECT_EQ(n32.dtype(), DType::I32);
  EXPECT_EQ(n32.shape(), (Shape{2, 2}));
  EXPECT_EQ(n32.toVector<int32_t>(), (std::vector<int32_t>{INT32_MIN, 1, 0, -5}));
  expectClose(run1("nn.neg", {f32({}, {2.5f})}), {-2.5f});
  EXPECT_EQ(errorOf("nn.neg", {i1({1}, {1})}),
            "input 0 has dtype i1, expected f32, i64 or i32");
}

TEST(OnnxDenseKernels, CosAndSin) {
  std::mt19937 rng(13);
  Tensor x = randomF32({3, 17}, rng, -10, 10);
  Tensor c = run1("nn.cos", {x}), s = run1("nn.sin", {x});
  std::vector<float> wc, ws;
  for (int64_t i = 0; i < x.numElements(); ++i) {
    wc.push_back(float(std::cos(double(x.data<float>()[i]))));
    ws.push_back(float(std::sin(double(x.data<float>()[i]))));
  }
  expectClose(c, wc, 1e-6f);
  expectClose(s, ws, 1e-6f);
  expectClose(run1("nn.cos", {f32({}, {0})}), {1.0f});
  EXPECT_EQ(errorOf("nn.sin", {i64({1}, {1})}),
            "input 0 has dtype i64, expected f32");
}

TEST(OnnxDenseKernels, PowF32) {
  Tensor p = run1("nn.pow", {f32({4}, {-2, 2, 4, -2}), f32({}, {3})});
  expectClose(p, {-8, 8, 64, -8});
  Tensor q = run1("nn.pow", {f32({2, 1}, {4, -2}), f32({2}, {0.5f, 0})});
  EXPECT_EQ(q.shape(), (Shape{2, 2}));
  expectClose(q, {2, 1, NAN, 1});
}

//===----------------------------------------------------------------------===//
// Comparisons and logic
//===----------------------------------------------------------------------===//

TEST(OnnxDenseKernels, ComparisonsHandComputed) {
  Tensor a = f32({2, 3}, {1, 2, 3, NAN, 5, -1});
  Tensor b = f32({3}, {2, 2, 2});
  auto cmp = [&](const char *name) { return run1(name, {a, b}); };
  Tensor eq = cmp("nn.equal");
  EXPECT_EQ(eq.dtype(), DType::I1);
  EXPECT_EQ(eq.shape(), (Shape{2, 3}));
  EXPECT_EQ(eq.toVector<uint8_t>(), (Bytes{0, 1, 0, 0, 0, 0}));
  EXPECT_EQ(cmp("nn.greater").toVector<uint8_t>(), (Bytes{0, 0, 1, 0, 1, 0}));
  EXPECT_EQ(cmp("nn.greater_or_equal").toVector<uint8_t>(),
            (Bytes{0, 1, 1, 0, 1, 0}));
  EXPECT_EQ(cmp("nn.less").toVector<uint8_t>(), (Bytes{1, 0, 0, 0, 0, 1}));
  EXPECT_EQ(cmp("nn.less_or_equal").toVector<uint8_t>(),
            (Bytes{1, 1, 0, 0, 0, 1}));

  Tensor x = i64({3, 1}, {INT64_MIN, 0, INT64_MAX}), y = i64({2}, {0, INT64_MAX});
  EXPECT_EQ(run1("nn.less", {x, y}).toVector<uint8_t>(),
            (Bytes{1, 1, 0, 1, 0, 0}));
  EXPECT_EQ(run1("nn.equal", {x, y}).toVector<uint8_t>(),
            (Bytes{0, 0, 1, 0, 0, 1}));
  Tensor g = run1("nn.greater_or_equal", {i32({}, {3}), i32({}, {3})});
  EXPECT_EQ(g.shape(), Shape{});
  EXPECT_EQ(g.toVector<uint8_t>(), (Bytes{1}));
  // Booleans compare by truth value.
  Tensor be = run1("nn.equal", {i1({4}, {0, 1, 2, 0}), i1({4}, {0, 1, 1, 1})});
  EXPECT_EQ(be.toVector<uint8_t>(), (Bytes{1, 1, 1, 0}));

  EXPECT_EQ(errorOf("nn.greater", {i1({1}, {1}), i1({1}, {0})}),
            "input 0 has dtype i1, expected f32, i64 or i32");
  EXPECT_EQ(errorOf("nn.equal", {f32({1}, {1}), i64({1}, {1})}),
            "input 1 has dtype i64, expected f32");
  EXPECT_EQ(errorOf("nn.equal", {u8({1}, {1}), u8({1}, {1})}),
            "input 0 has dtype u8, expected f32, i64, i32 or i1");
  EXPECT_EQ(errorOf("nn.less", {i32({2}, {1, 2}), i32({3}, {1, 2, 3})}),
            "shapes [2] and [3] do not broadcast");
}

TEST(OnnxDenseKernels, ComparisonsBroadcastMatchNaive) {
  std::mt19937 rng(14);
  const char *names[] = {"nn.equal", "nn.greater", "nn.greater_or_equal",
                         "nn.less", "nn.less_or_equal"};
  for (const char *name : names)
    for (const auto &[as, bs] : kShapePairs) {
      // Few distinct values so that equality happens.
      std::vector<int32_t> av = randomInts<int32_t>(count(as), rng, -2, 2);
      std::vector<int32_t> bv = randomInts<int32_t>(count(bs), rng, -2, 2);
      Tensor out = run1(name, {i32(as, av), i32(bs, bv)});
      Shape os = broadcast({as, bs});
      ASSERT_EQ(out.shape(), os);
      std::string n = name;
      for (int64_t f = 0; f < count(os); ++f) {
        auto idx = unravel(f, os);
        int32_t x = av[size_t(broadcastIndex(idx, as))];
        int32_t y = bv[size_t(broadcastIndex(idx, bs))];
        bool want = n == "nn.equal"              ? x == y
                    : n == "nn.greater"          ? x > y
                    : n == "nn.greater_or_equal" ? x >= y
                    : n == "nn.less"             ? x < y
                                                 : x <= y;
        ASSERT_EQ(out.data<uint8_t>()[f], uint8_t(want)) << name << " at " << f;
      }
    }
}

TEST(OnnxDenseKernels, LogicOps) {
  Tensor a = i1({2, 1}, {0, 1}), b = i1({1, 2}, {0, 5}); // 5 is true
  Tensor andT = run1("nn.and", {a, b});
  EXPECT_EQ(andT.dtype(), DType::I1);
  EXPECT_EQ(andT.shape(), (Shape{2, 2}));
  EXPECT_EQ(andT.toVector<uint8_t>(), (Bytes{0, 0, 0, 1}));
  EXPECT_EQ(run1("nn.or", {a, b}).toVector<uint8_t>(), (Bytes{0, 1, 1, 1}));
  EXPECT_EQ(run1("nn.xor", {a, b}).toVector<uint8_t>(), (Bytes{0, 1, 1, 0}));
  Tensor s = run1("nn.or", {i1({}, {0}), i1({}, {0})});
  EXPECT_EQ(s.shape(), Shape{});
  EXPECT_EQ(s.toVector<uint8_t>(), (Bytes{0}));
  Tensor n = run1("nn.not", {i1({3}, {0, 1, 7})});
  EXPECT_EQ(n.dtype(), DType::I1);
  EXPECT_EQ(n.toVector<uint8_t>(), (Bytes{1, 0, 0}));
  EXPECT_EQ(errorOf("nn.and", {f32({1}, {1}), f32({1}, {1})}),
            "input 0 has dtype f32, expected i1");
  EXPECT_EQ(errorOf("nn.xor", {i1({1}, {1}), i64({1}, {1})}),
            "input 1 has dtype i64, expected i1");
  EXPECT_EQ(errorOf("nn.not", {i32({1}, {1})}),
            "input 0 has dtype i32, expected i1");
}

//===----------------------------------------------------------------------===//
// Where and clip
//===----------------------------------------------------------------------===//

TEST(OnnxDenseKernels, WhereHandComputed) {
  Tensor c = i1({2, 1}, {1, 0});
  Tensor x = f32({1, 3}, {1, 2, 3});
  Tensor y = f32({}, {-1});
  Tensor w = run1("nn.where", {c, x, y});
  EXPECT_EQ(w.dtype(), DType::F32);
  EXPECT_EQ(w.shape(), (Shape{2, 3}));
  expectClose(w, {1, 2, 3, -1, -1, -1});
  Tensor wi = run1("nn.where", {i1({3}, {0, 2, 1}), i64({3}, {1, 2, 3}),
                                i64({3}, {-1, -2, -3})});
  EXPECT_EQ(wi.toVector<int64_t>(), (std::vector<int64_t>{-1, 2, 3}));
  Tensor w32 = run1("nn.where", {i1({}, {1}), i32({}, {7}), i32({2}, {0, 0})});
  EXPECT_EQ(w32.toVector<int32_t>(), (std::vector<int32_t>{7, 7}));
  Tensor wb = run1("nn.where", {i1({2}, {1, 0}), i1({2}, {0, 1}), i1({}, {1})});
  EXPECT_EQ(wb.dtype(), DType::I1);
  EXPECT_EQ(wb.toVector<uint8_t>(), (Bytes{0, 1}));
  Tensor scalar = run1("nn.where", {i1({}, {0}), f32({}, {1}), f32({}, {2})});
  EXPECT_EQ(scalar.shape(), Shape{});
  expectClose(scalar, {2});

  EXPECT_EQ(errorOf("nn.where", {f32({1}, {1}), x, x}),
            "input 0 has dtype f32, expected i1");
  EXPECT_EQ(errorOf("nn.where", {c, x, i64({1}, {1})}),
            "input 2 has dtype i64, expected f32");
  EXPECT_EQ(errorOf("nn.where", {c, u8({1}, {1}), u8({1}, {1})}),
            "input 1 has dtype u8, expected f32, i64, i32 or i1");
  EXPECT_EQ(errorOf("nn.where", {c, x, f32({2}, {1, 2})}),
            "shapes [2, 3] and [2] do not broadcast");
}

TEST(OnnxDenseKernels, WhereBroadcastMatchesNaive) {
  std::mt19937 rng(15);
  std::vector<std::array<Shape, 3>> shapes = {
      {Shape{}, Shape{}, Shape{}},          {Shape{4}, Shape{}, Shape{4}},
      {Shape{2, 1, 3}, Shape{5, 1}, Shape{3}}, {Shape{1}, Shape{3, 4}, Shape{4}},
      {Shape{3, 4}, Shape{3, 4}, Shape{3, 4}}, {Shape{0, 2}, Shape{2}, Shape{}},
      {Shape{64, 1}, Shape{1, 700}, Shape{64, 700}}, // parallel
      {Shape{3000}, Shape{}, Shape{3000}}};
  for (const auto &s : shapes) {
    std::vector<uint8_t> cv = randomInts<uint8_t>(count(s[0]), rng, 0, 1);
    std::vector<int64_t> xv = randomInts<int64_t>(count(s[1]), rng, 0, 100);
    std::vector<int64_t> yv = randomInts<int64_t>(count(s[2]), rng, -100, -1);
    Tensor out = run1("nn.where", {i1(s[0], cv), i64(s[1], xv), i64(s[2], yv)});
    Shape os = broadcast({s[0], s[1], s[2]});
    ASSERT_EQ(out.shape(), os);
    for (int64_t f = 0; f < count(os); ++f) {
      auto idx = unravel(f, os);
      int64_t want = cv[size_t(broadcastIndex(idx, s[0]))]
                         ? xv[size_t(broadcastIndex(idx, s[1]))]
                         : yv[size_t(broadcastIndex(idx, s[2]))];
      ASSERT_EQ(out.data<int64_t>()[f], want) << f;
    }
  }
}

TEST(OnnxDenseKernels, Clip) {
  Tensor x = f32({2, 3}, {-5, -1, 0, 1, 5, NAN});
  Tensor c = run1("nn.clip", {x, f32({}, {-2}), f32({1}, {2})});
  EXPECT_EQ(c.shape(), (Shape{2, 3}));
  expectClose(c, {-2, -1, 0, 1, 2, NAN});
  // min > max: everything is max.
  expectClose(run1("nn.clip", {x, f32({}, {3}), f32({}, {1})}),
              {1, 1, 1, 1, 1, NAN});
  EXPECT_EQ(run1("nn.clip", {i64({3}, {INT64_MIN, 3, INT64_MAX}), i64({}, {0}),
                             i64({}, {INT64_MAX})})
                .toVector<int64_t>(),
            (std::vector<int64_t>{0, 3, INT64_MAX}));
  EXPECT_EQ(run1("nn.clip", {i32({}, {9}), i32({1, 1}, {1}), i32({}, {4})})
                .toVector<int32_t>(),
            (std::vector<int32_t>{4}));
  EXPECT_EQ(errorOf("nn.clip", {x, f32({2}, {0, 1}), f32({}, {1})}),
            "input 1 (min) has shape [2], expected one element");
  EXPECT_EQ(errorOf("nn.clip", {x, f32({}, {0}), i64({}, {1})}),
            "input 2 has dtype i64, expected f32");
  EXPECT_EQ(errorOf("nn.clip", {i1({1}, {1}), i1({}, {0}), i1({}, {1})}),
            "input 0 has dtype i1, expected f32, i64 or i32");
  EXPECT_EQ(errorOf("nn.clip", {x, f32({}, {0})}), "expects 3 inputs, got 2");
}

//===----------------------------------------------------------------------===//
// Dequantize
//===----------------------------------------------------------------------===//

Attrs bitsAttr(int64_t bits) { return Attrs().setInt("bits", bits); }

TEST(OnnxDenseKernels, DequantizeHandComputed) {
  // 4 bits, per-row scales, no zero points (zp = 8): byte 0x21 holds 1 then 2.
  Tensor q4 = u8({2, 2}, {0x21, 0xF0, 0x88, 0x7F});
  Tensor y = run1("nn.dequantize", {q4, f32({2}, {0.5f, 2}), u8({0}, {})},
                  bitsAttr(4));
  EXPECT_EQ(y.dtype(), DType::F32);
  EXPECT_EQ(y.shape(), (Shape{2, 4}));
  expectClose(y, {(1 - 8) * 0.5f, (2 - 8) * 0.5f, (0 - 8) * 0.5f,
                  (15 - 8) * 0.5f, 0, 0, (15 - 8) * 2.0f, (7 - 8) * 2.0f});

  // 4 bits, per-row zero points packed along the rows: 3 rows → 2 bytes.
  Tensor q3 = u8({3, 1}, {0x53, 0x53, 0x53});
  Tensor z3 = run1("nn.dequantize",
                   {q3, f32({3}, {1, 1, 1}), u8({2}, {0x21, 0x03})},
                   bitsAttr(4));
  // Values 3, 5; zero points 1, 2, 3.
  expectClose(z3, {2, 4, 1, 3, 0, 2});

  // 4 bits, blocks of 4 columns, zero points per block packed along blocks,
  // a leading (expert) dim and f16 scales.
  Tensor qb = u8({2, 1, 4}, {0x10, 0x32, 0x54, 0x76, 0xFF, 0xFF, 0xFF, 0xFF});
  Tensor sb = f16({2, 1, 2}, {1, 0.5f, 2, 0.25f});
  Tensor zb = u8({2, 1, 1}, {0x40, 0x0F}); // expert 0: 0 and 4; expert 1: 15 and 0
  Tensor yb = run1("nn.dequantize", {qb, sb, zb}, bitsAttr(4));
  EXPECT_EQ(yb.shape(), (Shape{2, 1, 8}));
  expectClose(yb, {0, 1, 2, 3, (4 - 4) * 0.5f, (5 - 4) * 0.5f, (6 - 4) * 0.5f,
                   (7 - 4) * 0.5f, 0, 0, 0, 0, 15 * 0.25f, 15 * 0.25f,
                   15 * 0.25f, 15 * 0.25f});

  // 2 bits: 0xE4 holds 0, 1, 2, 3; default zp 2; per-row zp packs 4 rows a byte.
  Tensor q2 = u8({1, 1}, {0xE4});
  expectClose(run1("nn.dequantize", {q2, f32({1}, {0.5f}), u8({0}, {})},
                   bitsAttr(2)),
              {-1, -0.5f, 0, 0.5f});
  expectClose(run1("nn.dequantize", {q2, f32({1}, {1}), u8({1}, {0xFD})},
                   bitsAttr(2)),
              {-1, 0, 1, 2});

  // 8 bits: zp 128 by default, or one byte per row.
  Tensor q8 = u8({2, 3}, {0, 128, 255, 10, 20, 30});
  expectClose(run1("nn.dequantize", {q8, f32({2}, {1, 0.5f}), u8({0}, {})},
                   bitsAttr(8)),
              {-128, 0, 127, -59, -54, -49});
  expectClose(run1("nn.dequantize", {q8, f32({2}, {1, 0.5f}), u8({2}, {0, 20})},
                   bitsAttr(8)),
              {0, 128, 255, -5, 0, 5});
  // 8 bits, blocks of one column with their own zero points.
  expectClose(run1("nn.dequantize",
                   {u8({1, 3}, {5, 5, 5}), f32({1, 3}, {1, 2, 3}),
                    u8({1, 3}, {5, 4, 3})},
                   bitsAttr(8)),
              {0, 2, 6});
}

/// Reference dequantisation written from the table row, element by element.
std::vector<float> naiveDequant(const Bytes &q, const std::vector<float> &s,
                                const Bytes *zp, int64_t batch, int64_t rows,
                                int64_t cols, int64_t nblocks, int bits) {
  auto at = [&](const Bytes &v, int64_t base, int64_t i) {
    int per = 8 / bits;
    return (v[size_t(base + i / per)] >> ((i % per) * bits)) & ((1 << bits) - 1);
  };
  std::vector<float> out;
  int64_t zpLast = nblocks ? nblocks : rows;
  int64_t zpBytes = (zpLast * bits + 7) / 8;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        int64_t row = b * rows + r;
        int v = at(q, row * cols * bits / 8, c);
        float scale;
        int z = 1 << (bits - 1);
        if (nblocks) {
          int64_t blk = c / (cols / nblocks);
          scale = s[size_t(row * nblocks + blk)];
          if (zp)
            z = at(*zp, row * zpBytes, blk);
        } else {
          scale = s[size_t(row)];
          if (zp)
            z = at(*zp, b * zpBytes, r);
        }
        out.push_back(float(v - z) * scale);
      }
  return out;
}

TEST(OnnxDenseKernels, DequantizeMatchesNaive) {
  std::mt19937 rng(16);
  for (int bits : {2, 4, 8})
    for (int64_t nblocks : {0, 1, 4})
      for (bool withZp : {false, true})
        for (bool half : {false, true}) {
          int64_t batch = 3, rows = 5, cols = 32;
          Bytes q = randomInts<uint8_t>(batch * rows * cols * bits / 8, rng, 0, 255);
          Shape ss = nblocks ? Shape{batch, rows, nblocks} : Shape{batch, rows};
          std::vector<float> s;
          for (int64_t i = 0; i < count(ss); ++i) // exact in f16
            s.push_back(float(randomInts<int>(1, rng, -64, 64)[0]) / 32);
          Shape zs = ss;
          zs.back() = (zs.back() * bits + 7) / 8;
          Bytes z = randomInts<uint8_t>(count(zs), rng, 0, 255);
          Tensor out = run1("nn.dequantize",
                            {u8({batch, rows, cols * bits / 8}, q),
                             half ? f16(ss, s) : f32(ss, s),
                             withZp ? u8(zs, z) : u8({0}, {})},
                            bitsAttr(bits));
          ASSERT_EQ(out.shape(), (Shape{batch, rows, cols}));
          std::vector<float> want = naiveDequant(q, s, withZp ? &z : nullptr,
                                                 batch, rows, cols, nblocks, bits);
          ASSERT_EQ(out.toVector<float>(), want)
              << "bits " << bits << " nblocks " << nblocks << " zp " << withZp;
        }
}

TEST(OnnxDenseKernels, DequantizeErrors) {
  Tensor q = u8({2, 2}, {0, 0, 0, 0});
  Tensor s = f32({2}, {1, 1});
  Tensor none = u8({0}, {});
  EXPECT_EQ(errorOf("nn.dequantize", {q, s, none}, bitsAttr(3)),
            "attribute `bits` is 3, expected 2, 4 or 8");
  EXPECT_EQ(errorOf("nn.dequantize", {q, s, none}),
            "missing attribute `bits`");
  EXPECT_EQ(errorOf("nn.dequantize", {f32({2, 2}, {0, 0, 0, 0}), s, none},
                    bitsAttr(4)),
            "input 0 has dtype f32, expected u8");
  EXPECT_EQ(errorOf("nn.dequantize", {u8({4}, {0, 0, 0, 0}), s, none},
                    bitsAttr(4)),
            "input 0 has rank 1, expected at least 2");
  EXPECT_EQ(errorOf("nn.dequantize", {q, i64({2}, {1, 1}), none}, bitsAttr(4)),
            "input 1 (scales) has dtype i64, expected f32 or f16");
  EXPECT_EQ(errorOf("nn.dequantize", {q, f32({}, {1}), none}, bitsAttr(4)),
            "input 1 (scales) has rank 0, expected 1 (per row) or 2 (per block)");
  EXPECT_EQ(errorOf("nn.dequantize", {q, f32({3}, {1, 1, 1}), none}, bitsAttr(4)),
            "input 1 dim 0 is 3, expected 2 (dim 0 of input 0)");
  EXPECT_EQ(errorOf("nn.dequantize", {q, f32({2, 3}, {1, 1, 1, 1, 1, 1}), none},
                    bitsAttr(4)),
            "input 1 (scales) has 3 blocks per row, which do not divide the 4 "
            "columns");
  EXPECT_EQ(errorOf("nn.dequantize", {q, f32({2, 0}, {}), none}, bitsAttr(4)),
            "input 1 (scales) has 0 blocks per row");
  EXPECT_EQ(errorOf("nn.dequantize", {q, s, u8({2}, {8, 8})}, bitsAttr(4)),
            "input 2 (zero points) has shape [2], expected [1] or [0] (none)");
  EXPECT_EQ(errorOf("nn.dequantize", {q, s, i64({0}, {})}, bitsAttr(4)),
            "input 2 has dtype i64, expected u8");
}

TEST(OnnxDenseKernels, DequantizeVerifiesUnknownDims) {
  using TT = moe::rt::TensorType;
  EXPECT_TRUE(verify("nn.dequantize",
                     {TT{DType::U8, {-1, 64, 16}}, TT{DType::F32, {-1, 64}},
                      TT{DType::U8, {0}}},
                     {TT{DType::F32, {-1, 64, 32}}}, bitsAttr(4))
                  .isOk());
  EXPECT_TRUE(verify("nn.dequantize",
                     {TT{DType::U8, {8, 64, -1}}, TT{DType::F16, {8, -1, 2}},
                      TT{DType::U8, {8, 64, 1}}},
                     {TT{DType::F32, {8, 64, -1}}}, bitsAttr(4))
                  .isOk());
  Status st = verify("nn.dequantize",
                     {TT{DType::U8, {8, 64, 16}}, TT{DType::F32, {8, 64}},
                      TT{DType::U8, {0}}},
                     {TT{DType::F32, {8, 64, 16}}}, bitsAttr(4));
  ASSERT_FALSE(st.isOk());
  EXPECT_EQ(st.message(), "output 0 has shape [8, 64, 16], expected [8, 64, 32]");
}

//===----------------------------------------------------------------------===//
// Cast, matmul, reductions, softmax: the ONNX corners
//===----------------------------------------------------------------------===//

Tensor castTo(const Tensor &x, DType to) {
  return run1("nn.cast", {x}, Attrs().setInt("to", int64_t(to)));
}

TEST(OnnxDenseKernels, CastOnnxConversions) {
  // float → int truncates toward zero.
  EXPECT_EQ(castTo(f32({3}, {-2.7f, 2.7f, -0.5f}), DType::I32).toVector<int32_t>(),
            (std::vector<int32_t>{-2, 2, 0}));
  Tensor d = *Tensor::fromVector<double>(DType::F64, {3}, {-3.9, 1e15, 0.25});
  EXPECT_EQ(castTo(d, DType::I64).toVector<int64_t>(),
            (std::vector<int64_t>{-3, 1000000000000000, 0}));
  expectClose(castTo(d, DType::F32), {-3.9f, 1e15f, 0.25f});
  // Between integers: widening keeps the value, narrowing wraps.
  EXPECT_EQ(castTo(i32({2}, {-5, INT32_MAX}), DType::I64).toVector<int64_t>(),
            (std::vector<int64_t>{-5, INT32_MAX}));
  EXPECT_EQ(castTo(i64({2}, {(int64_t(1) << 32) + 7, -1}), DType::I32)
                .toVector<int32_t>(),
            (std::vector<int32_t>{7, -1}));
  EXPECT_EQ(castTo(i64({2}, {256 + 3, -1}), DType::U8).toVector<uint8_t>(),
            (Bytes{3, 255}));
  EXPECT_EQ(castTo(u8({2}, {200, 0}), DType::I64).toVector<int64_t>(),
            (std::vector<int64_t>{200, 0}));
  expectClose(castTo(u8({2}, {200, 0}), DType::F32), {200, 0});
  // Booleans: any nonzero is true, true is 1.
  expectClose(castTo(i1({3}, {0, 1, 2}), DType::F32), {0, 1, 1});
  EXPECT_EQ(castTo(i1({2}, {3, 0}), DType::I64).toVector<int64_t>(),
            (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(castTo(f32({4}, {0.0f, -0.0f, 0.1f, NAN}), DType::I1).toVector<uint8_t>(),
            (Bytes{0, 0, 1, 1}));
  EXPECT_EQ(castTo(i32({2}, {0, -3}), DType::I1).toVector<uint8_t>(), (Bytes{0, 1}));
  // f16 both ways.
  Tensor h = castTo(i64({3}, {-3, 2048, 70000}), DType::F16);
  std::vector<float> hb = castTo(h, DType::F32).toVector<float>();
  EXPECT_EQ(hb[0], -3.0f);
  EXPECT_EQ(hb[1], 2048.0f);
  EXPECT_TRUE(std::isinf(hb[2]) && hb[2] > 0); // overflow to infinity
  EXPECT_EQ(castTo(f16({2}, {-2.5f, 3.75f}), DType::I64).toVector<int64_t>(),
            (std::vector<int64_t>{-2, 3}));
  EXPECT_EQ(castTo(f16({2}, {0, 1}), DType::I1).toVector<uint8_t>(), (Bytes{0, 1}));
  // Rank 0 and empty tensors.
  EXPECT_EQ(castTo(f32({}, {4.5f}), DType::I32).shape(), Shape{});
  EXPECT_EQ(castTo(f32({0, 3}, {}), DType::I1).shape(), (Shape{0, 3}));
}

TEST(OnnxDenseKernels, MatmulOneDimensionalOperands) {
  Tensor v = f32({3}, {1, 2, 3});
  Tensor m = f32({3, 2}, {1, 2, 3, 4, 5, 6});
  Tensor vm = run1("nn.matmul", {v, m});
  EXPECT_EQ(vm.shape(), (Shape{2}));
  expectClose(vm, {22, 28});
  Tensor mt = f32({2, 3}, {1, 3, 5, 2, 4, 6});
  Tensor mv = run1("nn.matmul", {mt, v});
  EXPECT_EQ(mv.shape(), (Shape{2}));
  expectClose(mv, {22, 28});
  Tensor vv = run1("nn.matmul", {v, v});
  EXPECT_EQ(vv.shape(), Shape{});
  expectClose(vv, {14});
  // 1-D against a batch of matrices, both ways.
  Tensor bm = f32({2, 3, 1}, {1, 0, 0, 0, 0, 1});
  Tensor vbm = run1("nn.matmul", {v, bm});
  EXPECT_EQ(vbm.shape(), (Shape{2, 1}));
  expectClose(vbm, {1, 3});
  Tensor bmt = f32({2, 1, 3}, {1, 0, 0, 0, 0, 1});
  Tensor bmv = run1("nn.matmul", {bmt, v});
  EXPECT_EQ(bmv.shape(), (Shape{2, 1}));
  expectClose(bmv, {1, 3});
  // Empty K: zeros.
  Tensor e = run1("nn.matmul", {f32({2, 0}, {}), f32({0}, {})});
  EXPECT_EQ(e.shape(), (Shape{2}));
  expectClose(e, {0, 0});

  EXPECT_EQ(errorOf("nn.matmul", {v, f32({4}, {1, 2, 3, 4})}),
            "input 1 dim 0 is 4, expected 3 (K of input 0)");
  EXPECT_EQ(errorOf("nn.matmul", {f32({}, {1}), v}),
            "input 0 has rank 0, expected at least 1");
  EXPECT_EQ(errorOf("nn.matmul", {f32({2, 2, 3}, std::vector<float>(12, 1)),
                                  f32({3, 3, 1}, std::vector<float>(9, 1))}),
            "shapes [2] and [3] do not broadcast");

  using TT = moe::rt::TensorType;
  EXPECT_TRUE(verify("nn.matmul", {TT{DType::F32, {-1}}, TT{DType::F32, {-1, 5}}},
                     {TT{DType::F32, {5}}})
                  .isOk());
  EXPECT_TRUE(verify("nn.matmul",
                     {TT{DType::F32, {-1, 1, 7, -1}}, TT{DType::F32, {-1}}},
                     {TT{DType::F32, {-1, 1, 7}}})
                  .isOk());
}

TEST(OnnxDenseKernels, MatmulBatchBroadcastAndVectorPath) {
  std::mt19937 rng(17);
  // [1, M, K] against [4, K, N], and N = 1 (the dot-product path).
  for (int64_t n : {int64_t(1), int64_t(5)}) {
    Shape as = {1, 3, 33}, bs = {4, 33, n};
    Tensor a = randomF32(as, rng), b = randomF32(bs, rng);
    Tensor c = run1("nn.matmul", {a, b});
    ASSERT_EQ(c.shape(), (Shape{4, 3, n}));
    std::vector<float> want;
    for (int64_t bi = 0; bi < 4; ++bi)
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double acc = 0;
          for (int64_t k = 0; k < 33; ++k)
            acc += double(a.data<float>()[i * 33 + k]) *
                   b.data<float>()[(bi * 33 + k) * n + j];
          want.push_back(float(acc));
        }
    expectClose(c, want, 1e-5f);
  }
}

TEST(OnnxDenseKernels, ReductionsNegativeAxesAndIntegers) {
  Tensor x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor s = run1("nn.reduce_sum", {x}, Attrs().setInts("axes", {-1}).setInt("keepdims", 0));
  EXPECT_EQ(s.shape(), (Shape{2}));
  expectClose(s, {6, 15});
  Tensor m = run1("nn.reduce_mean", {x}, Attrs().setInts("axes", {-2}));
  EXPECT_EQ(m.shape(), (Shape{1, 3}));
  expectClose(m, {2.5f, 3.5f, 4.5f});
  Tensor mx = run1("nn.reduce_max", {x}, Attrs().setInts("axes", {-1, -2}).setInt("keepdims", 0));
  EXPECT_EQ(mx.shape(), Shape{});
  expectClose(mx, {6});

  Tensor xi = i64({2, 2}, {INT64_MAX, 1, -3, 4});
  Tensor si = run1("nn.reduce_sum", {xi}, Attrs().setInts("axes", {-1}));
  EXPECT_EQ(si.dtype(), DType::I64);
  EXPECT_EQ(si.shape(), (Shape{2, 1}));
  EXPECT_EQ(si.toVector<int64_t>(), (std::vector<int64_t>{INT64_MIN, 1})); // wraps
  Tensor all = run1("nn.reduce_sum", {xi}, Attrs().setInt("keepdims", 0));
  EXPECT_EQ(all.shape(), Shape{});
  EXPECT_EQ(all.toVector<int64_t>(), (std::vector<int64_t>{INT64_MIN + 1}));
  Tensor m32 = run1("nn.reduce_max", {i32({2, 3}, {-1, -7, 2, -9, -8, -3})},
                    Attrs().setInts("axes", {0}).setInt("keepdims", 0));
  EXPECT_EQ(m32.dtype(), DType::I32);
  EXPECT_EQ(m32.toVector<int32_t>(), (std::vector<int32_t>{-1, -7, 2}));
  Tensor s32 = run1("nn.reduce_sum", {i32({3}, {1, 2, 3})});
  EXPECT_EQ(s32.shape(), (Shape{1}));
  EXPECT_EQ(s32.toVector<int32_t>(), (std::vector<int32_t>{6}));
  // Empty reductions: sum 0, max the minimum.
  Tensor empty = i64({2, 0}, {});
  EXPECT_EQ(run1("nn.reduce_sum", {empty}, Attrs().setInts("axes", {1}))
                .toVector<int64_t>(),
            (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(run1("nn.reduce_max", {empty}, Attrs().setInts("axes", {1}))
                .toVector<int64_t>(),
            (std::vector<int64_t>{INT64_MIN, INT64_MIN}));

  EXPECT_EQ(errorOf("nn.reduce_mean", {xi}), "input 0 has dtype i64, expected f32");
  EXPECT_EQ(errorOf("nn.reduce_sum", {i1({1}, {1})}),
            "input 0 has dtype i1, expected f32, i64 or i32");
  EXPECT_EQ(errorOf("nn.reduce_sum", {xi}, Attrs().setInts("axes", {-3})),
            "axis -3 is outside [-2, 2)");
}

TEST(OnnxDenseKernels, SoftmaxNegativeAxis) {
  Tensor x = f32({2, 2}, {0, 0, 1, 3});
  Tensor y = run1("nn.softmax", {x}, Attrs().setInt("axis", -2));
  float e1 = 1 / (1 + std::exp(1.0f)), e3 = 1 / (1 + std::exp(3.0f));
  expectClose(y, {e1, e3, 1 - e1, 1 - e3}, 1e-6f);
  Tensor z = run1("nn.softmax", {x}); // default -1
  float e2 = 1 / (1 + std::exp(2.0f));
  expectClose(z, {0.5f, 0.5f, e2, 1 - e2}, 1e-6f);
}

TEST(OnnxDenseKernels, ElementwiseVerifierHandlesUnknownDims) {
  using TT = moe::rt::TensorType;
  EXPECT_TRUE(verify("nn.less", {TT{DType::I64, {-1, 1}}, TT{DType::I64, {4}}},
                     {TT{DType::I1, {-1, 4}}})
                  .isOk());
  EXPECT_TRUE(verify("nn.where",
                     {TT{DType::I1, {-1}}, TT{DType::I32, {}}, TT{DType::I32, {3, 1}}},
                     {TT{DType::I32, {3, -1}}})
                  .isOk());
  EXPECT_TRUE(verify("nn.clip",
                     {TT{DType::F32, {-1, 8}}, TT{DType::F32, {-1}}, TT{DType::F32, {}}},
                     {TT{DType::F32, {-1, 8}}})
                  .isOk());
  Status st = verify("nn.equal", {TT{DType::F32, {2}}, TT{DType::F32, {2}}},
                     {TT{DType::F32, {2}}});
  ASSERT_FALSE(st.isOk());
  EXPECT_EQ(st.message(), "output 0 has dtype f32, expected i1");
}

} // namespace
