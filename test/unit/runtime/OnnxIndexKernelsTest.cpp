//===- OnnxIndexKernelsTest.cpp - ONNX shape and index kernels ------------===//
//
// Hand-computed cases (most from the ONNX operator docs) for the shape and
// index kernels of docs/plan-format.md, their value-dependent output shapes,
// their errors, and the ONNX behaviour of nn.gather, nn.concat,
// nn.transpose and nn.slice.
//
//===----------------------------------------------------------------------===//

#include "test/unit/runtime/KernelTestUtil.h"
#include "test/unit/runtime/PlanBuilder.h"

#include "runtime/Executor.h"
#include "runtime/PlanLoader.h"

#include <cstring>
#include <limits>
#include <unistd.h>

using namespace moe::test;
using moe::rt::KernelDef;
using moe::rt::KernelRegistry;
using moe::rt::TensorType;

namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

Tensor i32(const Shape &shape, const std::vector<int32_t> &v) {
  StatusOr<Tensor> t = Tensor::fromVector(DType::I32, shape, v);
  EXPECT_TRUE(t.isOk()) << t.status().message();
  return *t;
}

Tensor i1(const Shape &shape, const std::vector<uint8_t> &v) {
  StatusOr<Tensor> t = Tensor::fromVector(DType::I1, shape, v);
  EXPECT_TRUE(t.isOk()) << t.status().message();
  return *t;
}

Tensor scalarI64(int64_t v) { return i64({}, {v}); }
Tensor scalarF32(float v) { return f32({}, {v}); }

using I64s = std::vector<int64_t>;
using F32s = std::vector<float>;
using U8s = std::vector<uint8_t>;

/// The error message of a kernel run that must fail.
std::string runError(const std::string &name, std::vector<Tensor> inputs,
                     const Attrs &attrs = {}) {
  StatusOr<std::vector<Tensor>> r = runKernel(name, std::move(inputs), attrs);
  EXPECT_FALSE(r.isOk()) << name << " succeeded";
  return r.isOk() ? std::string() : r.status().message();
}

const KernelDef &kernel(const std::string &name) {
  const KernelDef *def = KernelRegistry::builtin().find(name);
  EXPECT_NE(def, nullptr) << name;
  return *def;
}

/// The shape function on declared types (what the loader runs).
StatusOr<std::vector<TensorType>> infer(const std::string &name,
                                        const std::vector<TensorType> &in,
                                        const Attrs &attrs = {},
                                        std::optional<size_t> n = {}) {
  return KernelRegistry::inferOutputs(kernel(name), in, attrs, n);
}

std::string inferError(const std::string &name,
                       const std::vector<TensorType> &in,
                       const Attrs &attrs = {}) {
  auto r = infer(name, in, attrs);
  EXPECT_FALSE(r.isOk()) << name << " inferred";
  return r.isOk() ? std::string() : r.status().message();
}

// --- nn.shape, nn.constant_of_shape ----------------------------------------

TEST(OnnxIndexKernels, ShapeWithStartAndEnd) {
  Tensor x = f32({2, 3, 4}, F32s(24, 0));
  EXPECT_EQ(run1("nn.shape", {x}).toVector<int64_t>(), (I64s{2, 3, 4}));
  EXPECT_EQ(run1("nn.shape", {x}, Attrs().setInt("start", 1)).toVector<int64_t>(),
            (I64s{3, 4}));
  EXPECT_EQ(run1("nn.shape", {x}, Attrs().setInt("end", -1)).toVector<int64_t>(),
            (I64s{2, 3}));
  // Shape-15 clamps start and end; start after end gives [].
  Attrs wide = Attrs().setInt("start", -10).setInt("end", 10);
  EXPECT_EQ(run1("nn.shape", {x}, wide).toVector<int64_t>(), (I64s{2, 3, 4}));
  Tensor none = run1("nn.shape", {x}, Attrs().setInt("start", 2).setInt("end", 1));
  EXPECT_EQ(none.shape(), (Shape{0}));
  Tensor scalar = run1("nn.shape", {scalarF32(1)});
  EXPECT_EQ(scalar.shape(), (Shape{0}));
  EXPECT_EQ(scalar.dtype(), DType::I64);
  // Unknown dims are fine: the result has rank-many entries.
  auto t = infer("nn.shape", {{DType::I1, {-1, 5}}});
  ASSERT_TRUE(t.isOk());
  EXPECT_EQ((*t)[0].shape, (Shape{2}));
}

TEST(OnnxIndexKernels, ConstantOfShape) {
  Tensor y = run1("nn.constant_of_shape", {i64({2}, {2, 3})},
                  Attrs().setFloat("value", 1.5));
  EXPECT_EQ(y.dtype(), DType::F32);
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_EQ(y.toVector<float>(), F32s(6, 1.5f));
  Tensor zero = run1("nn.constant_of_shape", {i64({1}, {4})});
  EXPECT_EQ(zero.toVector<float>(), F32s(4, 0.0f));
  // An Int value converts exactly.
  Tensor big = run1("nn.constant_of_shape", {i64({1}, {2})},
                    Attrs().setInt("dtype", int64_t(DType::I64)).setInt("value", kMax));
  EXPECT_EQ(big.toVector<int64_t>(), (I64s{kMax, kMax}));
  Tensor b = run1("nn.constant_of_shape", {i64({2}, {1, 2})},
                  Attrs().setInt("dtype", int64_t(DType::I1)).setFloat("value", 1));
  EXPECT_EQ(b.dtype(), DType::I1);
  EXPECT_EQ(b.toVector<uint8_t>(), (U8s{1, 1}));
  Tensor i = run1("nn.constant_of_shape", {i64({1}, {3})},
                  Attrs().setInt("dtype", int64_t(DType::I32)).setFloat("value", -7));
  EXPECT_EQ(i.toVector<int32_t>(), (std::vector<int32_t>{-7, -7, -7}));
  // An empty shape gives a scalar; a 0 dim an empty tensor.
  Tensor s = run1("nn.constant_of_shape", {i64({0}, {})}, Attrs().setFloat("value", 2));
  EXPECT_EQ(s.shape(), Shape{});
  EXPECT_EQ(s.toVector<float>(), F32s{2});
  EXPECT_EQ(run1("nn.constant_of_shape", {i64({2}, {3, 0})}).shape(), (Shape{3, 0}));

  EXPECT_EQ(runError("nn.constant_of_shape", {i64({2}, {2, -3})}),
            "input 0 (shape) has -3 at position 1, expected a dim (≥ 0)");
  EXPECT_EQ(runError("nn.constant_of_shape", {i64({1}, {2})},
                     Attrs().setInt("dtype", 99)),
            "attribute `dtype` = 99 is not a dtype");
  EXPECT_EQ(runError("nn.constant_of_shape", {i64({1}, {kMax})}),
            "shape [9223372036854775807] is too large");
  EXPECT_EQ(inferError("nn.constant_of_shape", {{DType::I64, {-1}}}),
            "input 0 (shape) has an unknown length [?]: the result rank must be "
            "known");
  EXPECT_EQ(inferError("nn.constant_of_shape", {{DType::I32, {2}}}),
            "input 0 (shape) has dtype i32, expected i64");
  auto t = infer("nn.constant_of_shape", {{DType::I64, {3}}},
                 Attrs().setInt("dtype", int64_t(DType::I64)));
  ASSERT_TRUE(t.isOk());
  EXPECT_EQ((*t)[0].shape, (Shape{-1, -1, -1}));
  EXPECT_EQ((*t)[0].dtype, DType::I64);
}

// --- nn.expand, nn.tile, nn.range -------------------------------------------

TEST(OnnxIndexKernels, ExpandBroadcastsBothWays) {
  // ONNX example: [3, 1] expanded by [2, 1, 6] is [2, 3, 6].
  Tensor x = f32({3, 1}, {1, 2, 3});
  Tensor y = run1("nn.expand", {x, i64({3}, {2, 1, 6})});
  ASSERT_EQ(y.shape(), (Shape{2, 3, 6}));
  for (int64_t f = 0; f < 36; ++f)
    ASSERT_EQ(y.data<float>()[f], float((f / 6) % 3 + 1)) << f;
  // Fewer shape dims than x: [3, 1] by [4] is [3, 4]; 1s keep x's dims.
  Tensor z = run1("nn.expand", {x, i64({1}, {4})});
  ASSERT_EQ(z.shape(), (Shape{3, 4}));
  EXPECT_EQ(z.toVector<float>(), (F32s{1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}));
  Tensor same = run1("nn.expand", {x, i64({2}, {1, 1})});
  EXPECT_EQ(same.shape(), (Shape{3, 1}));
  // i64 and i1 data, a scalar, a zero-size dim.
  Tensor yi = run1("nn.expand", {i64({2}, {5, -6}), i64({2}, {2, 2})});
  EXPECT_EQ(yi.toVector<int64_t>(), (I64s{5, -6, 5, -6}));
  Tensor yb = run1("nn.expand", {i1({}, {1}), i64({1}, {3})});
  EXPECT_EQ(yb.toVector<uint8_t>(), (U8s{1, 1, 1}));
  EXPECT_EQ(run1("nn.expand", {f32({1, 2}, {1, 2}), i64({3}, {2, 0, 1})}).shape(),
            (Shape{2, 0, 2}));
}

TEST(OnnxIndexKernels, ExpandErrorsAndTypes) {
  Tensor x = f32({2, 3}, F32s(6, 0));
  EXPECT_EQ(runError("nn.expand", {x, i64({1}, {4})}),
            "cannot expand x [2, 3] to input 1 (shape) [4]: dim 1 of the result "
            "is 3 in x and 4 in the shape");
  EXPECT_EQ(runError("nn.expand", {x, i64({2}, {-1, 3})}),
            "input 1 (shape) has -1 at position 0, expected a dim (≥ 0)");
  Tensor one = f32({1}, {7});
  EXPECT_EQ(run1("nn.expand", {one, i64({1}, {0})}).shape(), (Shape{0}));
  auto t = infer("nn.expand", {{DType::F32, {3, 1, -1}}, {DType::I64, {4}}});
  ASSERT_TRUE(t.isOk());
  EXPECT_EQ((*t)[0].shape, (Shape{-1, 3, -1, -1}));
  EXPECT_EQ(inferError("nn.expand", {{DType::F32, {3}}, {DType::I64, {-1}}}),
            "input 1 (shape) has an unknown length [?]: the result rank must be "
            "known");
}

TEST(OnnxIndexKernels, Tile) {
  // ONNX example: [[0, 1], [2, 3]] tiled by [2, 2].
  Tensor x = f32({2, 2}, {0, 1, 2, 3});
  Tensor y = run1("nn.tile", {x, i64({2}, {2, 2})});
  ASSERT_EQ(y.shape(), (Shape{4, 4}));
  EXPECT_EQ(y.toVector<float>(),
            (F32s{0, 1, 0, 1, 2, 3, 2, 3, 0, 1, 0, 1, 2, 3, 2, 3}));
  Tensor r = run1("nn.tile", {i64({1, 3}, {1, 2, 3}), i64({2}, {2, 1})});
  EXPECT_EQ(r.shape(), (Shape{2, 3}));
  EXPECT_EQ(r.toVector<int64_t>(), (I64s{1, 2, 3, 1, 2, 3}));
  Tensor b = run1("nn.tile", {i1({2}, {1, 0}), i64({1}, {3})});
  EXPECT_EQ(b.toVector<uint8_t>(), (U8s{1, 0, 1, 0, 1, 0}));
  EXPECT_EQ(run1("nn.tile", {x, i64({2}, {0, 3})}).shape(), (Shape{0, 6}));
  Tensor s = run1("nn.tile", {scalarF32(4), i64({0}, {})});
  EXPECT_EQ(s.toVector<float>(), F32s{4});

  EXPECT_EQ(runError("nn.tile", {x, i64({2}, {1, -1})}),
            "input 1 (repeats) has -1 at position 1, expected a count (≥ 0)");
  EXPECT_EQ(runError("nn.tile", {x, i64({2}, {kMax, 1})}),
            "tiling [2, 2] by [9223372036854775807, 1] is too large");
  EXPECT_EQ(runError("nn.tile", {x, i64({3}, {1, 1, 1})}),
            "input 1 (repeats) has 3 entries, expected 2 (the rank of input 0)");
  auto t = infer("nn.tile", {{DType::F32, {0, -1, 3}}, {DType::I64, {-1}}});
  ASSERT_TRUE(t.isOk());
  EXPECT_EQ((*t)[0].shape, (Shape{0, -1, -1}));
}

TEST(OnnxIndexKernels, Range) {
  EXPECT_EQ(run1("nn.range", {scalarI64(0), scalarI64(10), scalarI64(3)})
                .toVector<int64_t>(),
            (I64s{0, 3, 6, 9}));
  // ONNX example: Range(10, 4, -3) = [10, 7].
  EXPECT_EQ(run1("nn.range", {scalarI64(10), scalarI64(4), scalarI64(-3)})
                .toVector<int64_t>(),
            (I64s{10, 7}));
  EXPECT_EQ(run1("nn.range", {scalarI64(5), scalarI64(1), scalarI64(1)}).shape(),
            (Shape{0}));
  // ONNX example: Range(3, 9, 3) in f32 = [3, 6]; Range(1, 2, 0.3) has 4.
  EXPECT_EQ(run1("nn.range", {scalarF32(3), scalarF32(9), scalarF32(3)})
                .toVector<float>(),
            (F32s{3, 6}));
  expectClose(run1("nn.range", {scalarF32(1), scalarF32(2), scalarF32(0.3f)}),
              {1.0f, 1.3f, 1.6f, 1.9f});
  Tensor r32 = run1("nn.range", {i32({}, {-2}), i32({}, {2}), i32({1}, {2})});
  EXPECT_EQ(r32.dtype(), DType::I32);
  EXPECT_EQ(r32.toVector<int32_t>(), (std::vector<int32_t>{-2, 0}));
  // The full i64 line: limit - start does not fit in int64.
  EXPECT_EQ(run1("nn.range", {scalarI64(kMin), scalarI64(kMax),
                              scalarI64(int64_t(1) << 62)})
                .toVector<int64_t>(),
            (I64s{kMin, kMin + (int64_t(1) << 62), 0, int64_t(1) << 62}));

  EXPECT_EQ(runError("nn.range", {scalarI64(0), scalarI64(10), scalarI64(0)}),
            "input 2 (delta) is 0");
  EXPECT_EQ(runError("nn.range", {scalarF32(0), scalarF32(INFINITY), scalarF32(1)}),
            "input 1 (limit) is not finite");
  EXPECT_EQ(runError("nn.range", {scalarI64(kMin), scalarI64(kMax), scalarI64(1)}),
            "the range has 18446744073709551615 elements, too many");
  EXPECT_EQ(runError("nn.range", {scalarI64(0), scalarF32(1), scalarI64(1)}),
            "input 1 (limit) has dtype f32, expected i64 (the dtype of input 0 "
            "(start))");
  EXPECT_EQ(runError("nn.range", {i64({2}, {0, 1}), scalarI64(1), scalarI64(1)}),
            "input 0 (start) has shape [2], expected a scalar (rank 0 or [1])");
  EXPECT_EQ(runError("nn.range", {i1({}, {0}), i1({}, {1}), i1({}, {1})}),
            "input 0 (start) has dtype i1, expected f32, i64 or i32");
}

// --- Reshapes ----------------------------------------------------------------

TEST(OnnxIndexKernels, DynamicReshapeFollowsOnnxAndSharesStorage) {
  std::mt19937 rng(50);
  Tensor x = randomF32({2, 3, 4}, rng);
  Tensor y = run1("nn.dynamic_reshape", {x, i64({2}, {0, -1})});
  EXPECT_EQ(y.shape(), (Shape{2, 12}));
  EXPECT_EQ(y.data(), x.data()); // zero-copy
  EXPECT_EQ(run1("nn.dynamic_reshape", {x, i64({3}, {-1, 0, 2})}).shape(),
            (Shape{4, 3, 2}));
  EXPECT_EQ(run1("nn.dynamic_reshape", {x, i64({1}, {24})}).shape(), (Shape{24}));
  // allowzero: a 0 is a zero-size dim.
  Tensor empty = f32({0, 3}, {});
  EXPECT_EQ(run1("nn.dynamic_reshape", {empty, i64({2}, {3, 0})},
                 Attrs().setInt("allowzero", 1))
                .shape(),
            (Shape{3, 0}));
  EXPECT_EQ(run1("nn.dynamic_reshape", {empty, i64({2}, {0, 3})}).shape(),
            (Shape{0, 3}));
  Tensor s = run1("nn.dynamic_reshape", {i64({1}, {5}), i64({0}, {})});
  EXPECT_EQ(s.shape(), Shape{});
  EXPECT_EQ(s.toVector<int64_t>(), I64s{5});

  EXPECT_EQ(runError("nn.dynamic_reshape", {x, i64({2}, {-1, -1})}),
            "input 1 (shape) [-1, -1] has more than one -1");
  EXPECT_EQ(runError("nn.dynamic_reshape", {x, i64({2}, {-2, 12})}),
            "input 1 (shape) has -2 at position 0, expected a dim (≥ 0)");
  EXPECT_EQ(runError("nn.dynamic_reshape", {x, i64({4}, {1, 1, 1, 0})}),
            "input 1 (shape) [1, 1, 1, 0] copies dim 3 (a 0) but input 0 has rank "
            "3");
  EXPECT_EQ(runError("nn.dynamic_reshape", {x, i64({2}, {5, -1})}),
            "cannot reshape [2, 3, 4] (24 elements) to input 1 (shape) [5, -1]");
  EXPECT_EQ(runError("nn.dynamic_reshape", {x, i64({2}, {5, 5})}),
            "cannot reshape [2, 3, 4] (24 elements) to input 1 (shape) [5, 5]");
  EXPECT_EQ(runError("nn.dynamic_reshape", {empty, i64({2}, {0, -1})}),
            "cannot reshape [0, 3] (0 elements) to input 1 (shape) [0, -1]");
  EXPECT_EQ(runError("nn.dynamic_reshape", {empty, i64({2}, {0, -1})},
                     Attrs().setInt("allowzero", 1)),
            "input 1 (shape) [0, -1] has both 0 and -1 with allowzero");
  EXPECT_EQ(runError("nn.dynamic_reshape", {x, i64({2}, {kMax, kMax})}),
            "input 1 (shape) [9223372036854775807, 9223372036854775807] is too "
            "large");
  auto t = infer("nn.dynamic_reshape", {{DType::F32, {-1, 4}}, {DType::I64, {3}}});
  ASSERT_TRUE(t.isOk());
  EXPECT_EQ((*t)[0].shape, (Shape{-1, -1, -1}));
  EXPECT_EQ(inferError("nn.dynamic_reshape", {{DType::F32, {2}}, {DType::I64, {-1}}}),
            "input 1 (shape) has an unknown length [?]: the result rank must be "
            "known");
}

TEST(OnnxIndexKernels, SqueezeUnsqueezeFlatten) {
  std::mt19937 rng(51);
  Tensor x = randomF32({1, 3, 1, 2}, rng);
  Tensor all = run1("nn.squeeze", {x});
  EXPECT_EQ(all.shape(), (Shape{3, 2}));
  EXPECT_EQ(all.data(), x.data());
  EXPECT_EQ(run1("nn.squeeze", {x}, Attrs().setInts("axes", {-2})).shape(),
            (Shape{1, 3, 2}));
  EXPECT_EQ(run1("nn.squeeze", {x}, Attrs().setInts("axes", {0, 2})).shape(),
            (Shape{3, 2}));
  EXPECT_EQ(run1("nn.squeeze", {i64({1}, {9})}).shape(), Shape{});
  EXPECT_EQ(runError("nn.squeeze", {x}, Attrs().setInts("axes", {1})),
            "input 0 dim 1 is 3, cannot squeeze it (only size 1)");
  EXPECT_EQ(runError("nn.squeeze", {x}, Attrs().setInts("axes", {0, -4})),
            "attribute `axes` repeats axis -4");
  EXPECT_EQ(runError("nn.squeeze", {x}, Attrs().setInts("axes", {4})),
            "attribute `axes` entry 4 is outside [-4, 4)");
  EXPECT_EQ(inferError("nn.squeeze", {{DType::F32, {-1, 1}}}),
            "attribute `axes` is empty and input 0 has unknown dims [?, 1]: the "
            "result rank depends on their values");
  auto sq = infer("nn.squeeze", {{DType::F32, {-1, 1}}}, Attrs().setInts("axes", {1}));
  ASSERT_TRUE(sq.isOk());
  EXPECT_EQ((*sq)[0].shape, (Shape{-1}));

  Tensor y = randomF32({3, 4}, rng);
  Tensor u = run1("nn.unsqueeze", {y}, Attrs().setInts("axes", {0, -1}));
  EXPECT_EQ(u.shape(), (Shape{1, 3, 4, 1}));
  EXPECT_EQ(u.data(), y.data());
  EXPECT_EQ(run1("nn.unsqueeze", {y}, Attrs().setInts("axes", {1})).shape(),
            (Shape{3, 1, 4}));
  EXPECT_EQ(run1("nn.unsqueeze", {y}, Attrs().setInts("axes", {3, 1})).shape(),
            (Shape{3, 1, 4, 1}));
  EXPECT_EQ(run1("nn.unsqueeze", {scalarI64(3)}, Attrs().setInts("axes", {0})).shape(),
            (Shape{1}));
  EXPECT_EQ(runError("nn.unsqueeze", {y}, Attrs().setInts("axes", {3})),
            "attribute `axes` entry 3 is outside [-3, 3)");
  EXPECT_EQ(runError("nn.unsqueeze", {y}, Attrs().setInts("axes", {1, -3})),
            "attribute `axes` repeats axis -3");
  EXPECT_EQ(runError("nn.unsqueeze", {y}), "missing attribute `axes`");

  Tensor z = randomF32({2, 3, 4}, rng);
  Tensor f = run1("nn.flatten", {z});
  EXPECT_EQ(f.shape(), (Shape{2, 12}));
  EXPECT_EQ(f.data(), z.data());
  EXPECT_EQ(run1("nn.flatten", {z}, Attrs().setInt("axis", 0)).shape(), (Shape{1, 24}));
  EXPECT_EQ(run1("nn.flatten", {z}, Attrs().setInt("axis", -1)).shape(), (Shape{6, 4}));
  EXPECT_EQ(run1("nn.flatten", {z}, Attrs().setInt("axis", 3)).shape(), (Shape{24, 1}));
  EXPECT_EQ(run1("nn.flatten", {scalarF32(1)}, Attrs().setInt("axis", 0)).shape(),
            (Shape{1, 1}));
  EXPECT_EQ(runError("nn.flatten", {z}, Attrs().setInt("axis", 4)),
            "attribute `axis` 4 is outside [-3, 3]");
  auto fl = infer("nn.flatten", {{DType::I1, {-1, 3, 4}}}, Attrs().setInt("axis", 1));
  ASSERT_TRUE(fl.isOk());
  EXPECT_EQ((*fl)[0].shape, (Shape{-1, 12}));
}

// --- Slices ------------------------------------------------------------------

/// The indices ONNX Slice picks along one axis (the spec's clamping rules).
std::vector<int64_t> onnxSliceIndices(int64_t dim, int64_t start, int64_t end,
                                      int64_t step) {
  auto adjust = [&](int64_t v) { return v < 0 ? (v < -dim ? -dim - 1 : v + dim) : v; };
  start = adjust(start);
  end = adjust(end);
  std::vector<int64_t> out;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    for (int64_t i = start; i < end; i += step)
      out.push_back(i);
  } else if (dim > 0) {
    start = std::clamp<int64_t>(start, 0, dim - 1);
    end = std::clamp<int64_t>(end, -1, dim - 1);
    for (int64_t i = start; i > end; i += step)
      out.push_back(i);
  }
  return out;
}

TEST(OnnxIndexKernels, DynamicSliceMatchesTheOnnxRule) {
  Shape s = {7, 3};
  std::vector<float> xv(21);
  for (size_t i = 0; i < xv.size(); ++i)
    xv[i] = float(i);
  Tensor x = f32(s, xv);
  struct Case {
    int64_t start, end, step;
  };
  std::vector<Case> cases = {{0, 7, 1},    {-3, 100, 2},    {-1, kMin, -1},
                             {5, 1, -2},   {kMax, 0, -1},   {-100, kMin, -1},
                             {-100, 3, 1}, {2, kMax, 3},    {3, 3, 1},
                             {6, -8, -3},  {100, -100, -1}, {0, -1, kMax},
                             {6, 0, kMin}};
  for (const Case &c : cases) {
    std::vector<int64_t> rows = onnxSliceIndices(7, c.start, c.end, c.step);
    for (bool use32 : {false, true}) {
      if (use32 && (c.start != int32_t(c.start) || c.end != int32_t(c.end) ||
                    c.step != int32_t(c.step)))
        continue;
      std::vector<Tensor> in = {x};
      if (use32) {
        in.push_back(i32({1}, {int32_t(c.start)}));
        in.push_back(i32({1}, {int32_t(c.end)}));
        in.push_back(i32({1}, {0}));
        in.push_back(i32({1}, {int32_t(c.step)}));
      } else {
        in.push_back(i64({1}, {c.start}));
        in.push_back(i64({1}, {c.end}));
        in.push_back(i64({1}, {-2}));
        in.push_back(i64({1}, {c.step}));
      }
      Tensor y = run1("nn.dynamic_slice", in);
      ASSERT_EQ(y.shape(), (Shape{int64_t(rows.size()), 3}))
          << c.start << ":" << c.end << ":" << c.step;
      for (size_t r = 0; r < rows.size(); ++r)
        for (int64_t j = 0; j < 3; ++j)
          ASSERT_EQ(y.data<float>()[int64_t(r) * 3 + j], xv[size_t(rows[r] * 3 + j)]);
      // The attribute form (nn.slice) agrees.
      Tensor z = run1("nn.slice", {x},
                      Attrs()
                          .setInts("starts", {c.start})
                          .setInts("ends", {c.end})
                          .setInts("axes", {0})
                          .setInts("steps", {c.step}));
      EXPECT_EQ(z.toVector<float>(), y.toVector<float>());
    }
  }
  // Both axes, the last one reversed; defaults for axes and steps.
  Tensor both = run1("nn.dynamic_slice", {x, i64({2}, {1, -1}), i64({2}, {3, kMin}),
                                          i64({2}, {0, 1}), i64({2}, {1, -1})});
  EXPECT_EQ(both.toVector<float>(), (F32s{5, 4, 3, 8, 7, 6}));
  Tensor def = run1("nn.dynamic_slice", {x, i64({1}, {5}), i64({1}, {kMax})});
  EXPECT_EQ(def.shape(), (Shape{2, 3}));
  Tensor none = run1("nn.dynamic_slice", {x, i64({0}, {}), i64({0}, {}), i64({0}, {}),
                                          i64({0}, {})});
  EXPECT_EQ(none.toVector<float>(), xv);
  Tensor bits = run1("nn.dynamic_slice", {i1({4}, {1, 0, 0, 1}), i64({1}, {-1}),
                                          i64({1}, {kMin}), i64({1}, {0}), i64({1}, {-2})});
  EXPECT_EQ(bits.toVector<uint8_t>(), (U8s{1, 0}));
  // A zero-size dim, negative step.
  Tensor e = run1("nn.dynamic_slice", {f32({0, 2}, {}), i64({1}, {-1}), i64({1}, {kMin}),
                                       i64({1}, {0}), i64({1}, {-1})});
  EXPECT_EQ(e.shape(), (Shape{0, 2}));

  EXPECT_EQ(runError("nn.dynamic_slice", {x, i64({1}, {0}), i64({1}, {1}), i64({1}, {0}),
                                          i64({1}, {0})}),
            "input 4 (steps) has a 0 at position 0");
  EXPECT_EQ(runError("nn.dynamic_slice", {x, i64({2}, {0, 0}), i64({2}, {1, 1}),
                                          i64({2}, {0, -2}), i64({2}, {1, 1})}),
            "input 3 (axes) repeats axis -2");
  EXPECT_EQ(runError("nn.dynamic_slice", {x, i64({1}, {0}), i64({1}, {1}), i64({1}, {2}),
                                          i64({1}, {1})}),
            "input 3 (axes) has 2 at position 0, outside [-2, 2)");
  EXPECT_EQ(runError("nn.dynamic_slice", {x, i64({1}, {0}), i64({2}, {1, 1})}),
            "input 2 (ends) has 2 entries, input 1 (starts) 1");
  EXPECT_EQ(runError("nn.dynamic_slice", {x, f32({1}, {0}), i64({1}, {1})}),
            "input 1 (starts) has dtype f32, expected i64 or i32");
  auto t = infer("nn.dynamic_slice", {{DType::F32, {7, 3}}, {DType::I64, {-1}},
                                      {DType::I64, {1}}, {DType::I64, {1}}, {DType::I64, {1}}});
  ASSERT_TRUE(t.isOk());
  EXPECT_EQ((*t)[0].shape, (Shape{-1, -1}));
}

TEST(OnnxIndexKernels, SliceClampsANegativeStepStartIntoTheAxis) {
  // ONNX: with a negative step the start is clamped into [0, dim - 1], so a
  // start before the first element still selects it (numpy would not).
  Tensor x = f32({5}, {0, 1, 2, 3, 4});
  Tensor y = run1("nn.slice", {x},
                  Attrs().setInts("starts", {-100}).setInts("ends", {kMin}).setInts("steps", {-1}));
  EXPECT_EQ(y.toVector<float>(), F32s{0});
  Tensor z = run1("nn.slice", {x},
                  Attrs().setInts("starts", {kMax}).setInts("ends", {-4}).setInts("steps", {-2}));
  EXPECT_EQ(z.toVector<float>(), (F32s{4, 2}));
  Tensor e = run1("nn.slice", {f32({0}, {})},
                  Attrs().setInts("starts", {0}).setInts("ends", {kMin}).setInts("steps", {-1}));
  EXPECT_EQ(e.shape(), (Shape{0}));
}

// --- Gathers and scatters -----------------------------------------------------

TEST(OnnxIndexKernels, GatherNDFollowsTheOnnxExamples) {
  Tensor d2 = i64({2, 2}, {0, 1, 2, 3});
  EXPECT_EQ(run1("nn.gather_nd", {d2, i64({2, 2}, {0, 0, 1, 1})}).toVector<int64_t>(),
            (I64s{0, 3}));
  Tensor rows = run1("nn.gather_nd", {d2, i64({2, 1}, {1, 0})});
  EXPECT_EQ(rows.shape(), (Shape{2, 2}));
  EXPECT_EQ(rows.toVector<int64_t>(), (I64s{2, 3, 0, 1}));
  Tensor d3 = f32({2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  Tensor y3 = run1("nn.gather_nd", {d3, i64({2, 2}, {0, 1, 1, 0})});
  EXPECT_EQ(y3.shape(), (Shape{2, 2}));
  EXPECT_EQ(y3.toVector<float>(), (F32s{2, 3, 4, 5}));
  Tensor y4 = run1("nn.gather_nd", {d3, i64({2, 1, 2}, {0, 1, 1, 0})});
  EXPECT_EQ(y4.shape(), (Shape{2, 1, 2}));
  EXPECT_EQ(y4.toVector<float>(), (F32s{2, 3, 4, 5}));
  Tensor yb = run1("nn.gather_nd", {d3, i64({2, 1}, {1, 0})}, Attrs().setInt("batch_dims", 1));
  EXPECT_EQ(yb.shape(), (Shape{2, 2}));
  EXPECT_EQ(yb.toVector<float>(), (F32s{2, 3, 4, 5}));
  // Negative indices wrap once; full-rank tuples give scalars.
  Tensor neg = run1("nn.gather_nd", {d3, i64({3}, {-1, -2, -1})});
  EXPECT_EQ(neg.shape(), Shape{});
  EXPECT_EQ(neg.toVector<float>(), F32s{5});
  Tensor bits = run1("nn.gather_nd", {i1({3}, {0, 1, 0}), i64({2, 1}, {1, 2})});
  EXPECT_EQ(bits.toVector<uint8_t>(), (U8s{1, 0}));

  EXPECT_EQ(runError("nn.gather_nd", {d3, i64({2, 2}, {0, 1, 2, 0})}),
            "input 1 (indices): index 2 at position 2 is outside [-2, 2) (data dim 0)");
  EXPECT_EQ(runError("nn.gather_nd", {d2, i64({1, 3}, {0, 0, 0})}),
            "input 1 (indices) has last dim 3, expected 1 to 2 (data rank - "
            "batch_dims)");
  EXPECT_EQ(runError("nn.gather_nd", {d3, i64({3, 1}, {0, 0, 0})},
                     Attrs().setInt("batch_dims", 1)),
            "input 1 (indices) dim 0 is 3, expected 2 (batch dim of input 0)");
  EXPECT_EQ(runError("nn.gather_nd", {d2, i64({2}, {0, 0})}, Attrs().setInt("batch_dims", 1)),
            "attribute `batch_dims` 1 is outside [0, 1)");
  EXPECT_EQ(runError("nn.gather_nd", {d2, i32({1}, {0})}),
            "input 1 (indices) has dtype i32, expected i64");
  EXPECT_EQ(inferError("nn.gather_nd", {{DType::F32, {2, 2}}, {DType::I64, {3, -1}}}),
            "input 1 (indices) has an unknown last dim [3, ?]: the result rank "
            "depends on it");
}

TEST(OnnxIndexKernels, ScatterElementsFollowsTheOnnxExamples) {
  Tensor data = f32({3, 3}, F32s(9, 0));
  Tensor y = run1("nn.scatter_elements",
                  {data, i64({2, 3}, {1, 0, 2, 0, 2, 1}),
                   f32({2, 3}, {1.0f, 1.1f, 1.2f, 2.0f, 2.1f, 2.2f})});
  EXPECT_EQ(y.toVector<float>(), (F32s{2.0f, 1.1f, 0, 1.0f, 0, 2.2f, 0, 2.1f, 1.2f}));
  Tensor row = f32({1, 5}, {1, 2, 3, 4, 5});
  Attrs axis1 = Attrs().setInt("axis", 1);
  EXPECT_EQ(run1("nn.scatter_elements",
                 {row, i64({1, 2}, {1, 3}), f32({1, 2}, {1.1f, 2.1f})}, axis1)
                .toVector<float>(),
            (F32s{1, 1.1f, 3, 2.1f, 5}));
  // Negative indices (i32), axis -1.
  EXPECT_EQ(run1("nn.scatter_elements",
                 {row, i32({1, 2}, {1, -3}), f32({1, 2}, {1.1f, 2.1f})},
                 Attrs().setInt("axis", -1))
                .toVector<float>(),
            (F32s{1, 1.1f, 2.1f, 4, 5}));
  // Reductions with a repeated index.
  auto reduce = [&](const char *r) {
    return run1("nn.scatter_elements",
                {row, i64({1, 2}, {1, 1}), f32({1, 2}, {1.1f, 2.1f})},
                Attrs().setInt("axis", 1).setString("reduction", r))
        .toVector<float>();
  };
  EXPECT_EQ(reduce("add"), (F32s{1, 2 + 1.1f + 2.1f, 3, 4, 5}));
  EXPECT_EQ(reduce("mul"), (F32s{1, 2 * 1.1f * 2.1f, 3, 4, 5}));
  EXPECT_EQ(reduce("max"), (F32s{1, 2.1f, 3, 4, 5}));
  EXPECT_EQ(reduce("min"), (F32s{1, 1.1f, 3, 4, 5}));
  EXPECT_EQ(reduce("none"), (F32s{1, 2.1f, 3, 4, 5})); // the last one wins
  Tensor yi = run1("nn.scatter_elements",
                   {i64({4}, {1, 2, 3, 4}), i64({3}, {0, 0, 3}), i64({3}, {5, 6, -1})},
                   Attrs().setString("reduction", "mul"));
  EXPECT_EQ(yi.toVector<int64_t>(), (I64s{30, 2, 3, -4}));
  Tensor yb = run1("nn.scatter_elements",
                   {i1({3}, {0, 1, 0}), i64({2}, {0, 1}), i1({2}, {1, 0})});
  EXPECT_EQ(yb.toVector<uint8_t>(), (U8s{1, 0, 0}));
  Tensor yo = run1("nn.scatter_elements",
                   {i1({3}, {0, 1, 0}), i64({2}, {0, 1}), i1({2}, {1, 0})},
                   Attrs().setString("reduction", "add"));
  EXPECT_EQ(yo.toVector<uint8_t>(), (U8s{1, 1, 0}));
  // The input is not modified.
  EXPECT_EQ(row.toVector<float>(), (F32s{1, 2, 3, 4, 5}));

  EXPECT_EQ(runError("nn.scatter_elements",
                     {row, i64({1, 2}, {1, 5}), f32({1, 2}, {1, 2})}, axis1),
            "input 1 (indices): index 5 at position 1 is outside [-5, 5) (data dim 1)");
  EXPECT_EQ(runError("nn.scatter_elements",
                     {row, i64({1, 2}, {1, 2}), f32({1, 3}, {1, 2, 3})}, axis1),
            "input 2 (updates) dim 1 is 3, expected 2 (the shape of input 1 "
            "(indices))");
  EXPECT_EQ(runError("nn.scatter_elements",
                     {row, i64({2, 1}, {1, 2}), f32({2, 1}, {1, 2})}, axis1),
            "input 1 (indices) dim 0 is 2, larger than input 0 (data)'s 1");
  EXPECT_EQ(runError("nn.scatter_elements",
                     {row, i64({1, 1}, {1}), f32({1, 1}, {1})},
                     Attrs().setString("reduction", "sum")),
            "attribute `reduction` is `sum`, expected none, add, mul, max or min");
  EXPECT_EQ(runError("nn.scatter_elements",
                     {row, i64({1, 1}, {1}), i64({1, 1}, {1})}),
            "input 2 (updates) has dtype i64, expected f32 (the dtype of input 0 "
            "(data))");
}

TEST(OnnxIndexKernels, ScatterNDFollowsTheOnnxExamples) {
  Tensor data = f32({8}, {1, 2, 3, 4, 5, 6, 7, 8});
  Tensor y = run1("nn.scatter_nd",
                  {data, i64({4, 1}, {4, 3, 1, 7}), f32({4}, {9, 10, 11, 12})});
  EXPECT_EQ(y.toVector<float>(), (F32s{1, 11, 3, 10, 9, 6, 7, 12}));
  // ONNX example 2: slices of a [4, 4, 4] tensor.
  std::vector<float> dv(64), uv(32);
  for (size_t i = 0; i < 64; ++i)
    dv[i] = float(i);
  for (size_t i = 0; i < 32; ++i)
    uv[i] = float(100 + i);
  Tensor y3 = run1("nn.scatter_nd", {f32({4, 4, 4}, dv), i64({2, 1}, {0, -2}), f32({2, 4, 4}, uv)});
  std::vector<float> want = dv;
  for (size_t i = 0; i < 16; ++i) {
    want[i] = uv[i];
    want[32 + i] = uv[16 + i];
  }
  EXPECT_EQ(y3.toVector<float>(), want);
  // Element tuples, a reduction with a repeated index, i64 data.
  Tensor yi = run1("nn.scatter_nd",
                   {i64({2, 2}, {1, 2, 3, 4}), i64({3, 2}, {0, 0, 1, 1, 0, 0}),
                    i64({3}, {10, 20, 30})},
                   Attrs().setString("reduction", "add"));
  EXPECT_EQ(yi.toVector<int64_t>(), (I64s{41, 2, 3, 24}));
  Tensor ym = run1("nn.scatter_nd",
                   {i64({2, 2}, {1, 2, 3, 4}), i64({2, 2}, {0, 0, 1, 1}), i64({2}, {-5, 2})},
                   Attrs().setString("reduction", "min"));
  EXPECT_EQ(ym.toVector<int64_t>(), (I64s{-5, 2, 3, 2}));
  Tensor yb = run1("nn.scatter_nd", {i1({2}, {0, 0}), i64({1, 1}, {1}), i1({1}, {1})});
  EXPECT_EQ(yb.toVector<uint8_t>(), (U8s{0, 1}));

  EXPECT_EQ(runError("nn.scatter_nd", {data, i64({1, 1}, {8}), f32({1}, {0})}),
            "input 1 (indices): index 8 at position 0 is outside [-8, 8) (data dim 0)");
  EXPECT_EQ(runError("nn.scatter_nd", {data, i64({2, 1}, {0, 1}), f32({3}, {0, 0, 0})}),
            "input 2 (updates) has shape [3], expected [2]");
  EXPECT_EQ(runError("nn.scatter_nd", {data, i64({1, 2}, {0, 1}), f32({1}, {0})}),
            "input 1 (indices) has last dim 2, larger than the rank of input 0 "
            "(data) 1");
}

// --- NonZero, OneHot, TopK, Split -------------------------------------------

TEST(OnnxIndexKernels, NonZero) {
  Tensor y = run1("nn.nonzero", {i64({2, 2}, {1, 0, 1, 1})});
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_EQ(y.toVector<int64_t>(), (I64s{0, 1, 1, 0, 0, 1}));
  Tensor f = run1("nn.nonzero", {f32({5}, {0.0f, -0.0f, NAN, 2.0f, 0.0f})});
  EXPECT_EQ(f.shape(), (Shape{1, 2}));
  EXPECT_EQ(f.toVector<int64_t>(), (I64s{2, 3}));
  Tensor b = run1("nn.nonzero", {i1({2, 3}, {0, 0, 1, 1, 0, 0})});
  EXPECT_EQ(b.toVector<int64_t>(), (I64s{0, 1, 2, 0}));
  Tensor i = run1("nn.nonzero", {i32({3}, {0, 5, 0})});
  EXPECT_EQ(i.toVector<int64_t>(), I64s{1});
  Tensor none = run1("nn.nonzero", {f32({2, 2}, {0, 0, 0, 0})});
  EXPECT_EQ(none.shape(), (Shape{2, 0}));
  // A scalar is treated as [1] (as numpy and ONNX Runtime do).
  EXPECT_EQ(run1("nn.nonzero", {scalarF32(3)}).shape(), (Shape{1, 1}));
  EXPECT_EQ(run1("nn.nonzero", {scalarF32(0)}).shape(), (Shape{1, 0}));
  auto t = infer("nn.nonzero", {{DType::F32, {-1, 4, 2}}});
  ASSERT_TRUE(t.isOk());
  EXPECT_EQ((*t)[0].shape, (Shape{3, -1}));
  EXPECT_EQ((*t)[0].dtype, DType::I64);
}

TEST(OnnxIndexKernels, OneHot) {
  // Negative indices wrap once; out of range gives a row of `off`.
  Tensor y = run1("nn.one_hot", {i64({4}, {1, 9, -1, -6}), scalarI64(5), f32({2}, {0, 3})});
  ASSERT_EQ(y.shape(), (Shape{4, 5}));
  EXPECT_EQ(y.toVector<float>(), (F32s{0, 3, 0, 0, 0, /**/ 0, 0, 0, 0, 0,
                                       /**/ 0, 0, 0, 0, 3, /**/ 0, 0, 0, 0, 0}));
  // ONNX example: axis 1 on [2, 2] indices.
  Tensor z = run1("nn.one_hot", {i32({2, 2}, {0, 2, 1, -1}), i32({1}, {3}),
                                 i64({2}, {-1, 1})},
                  Attrs().setInt("axis", 1));
  ASSERT_EQ(z.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(z.dtype(), DType::I64);
  EXPECT_EQ(z.toVector<int64_t>(), (I64s{1, -1, -1, -1, -1, 1, /**/ -1, -1, 1, -1, -1, 1}));
  // Float indices and depth truncate; axis 0; i1 values.
  Tensor w = run1("nn.one_hot", {f32({2}, {1.7f, 0.2f}), scalarF32(2.9f), i1({2}, {0, 1})},
                  Attrs().setInt("axis", 0));
  ASSERT_EQ(w.shape(), (Shape{2, 2}));
  EXPECT_EQ(w.toVector<uint8_t>(), (U8s{0, 1, 1, 0}));
  Tensor s = run1("nn.one_hot", {scalarI64(2), scalarI64(3), f32({2}, {0, 1})});
  EXPECT_EQ(s.toVector<float>(), (F32s{0, 0, 1}));

  Tensor v = f32({2}, {0, 1});
  EXPECT_EQ(runError("nn.one_hot", {i64({1}, {0}), scalarI64(0), v}),
            "input 1 (depth) is 0, expected at least 1");
  EXPECT_EQ(runError("nn.one_hot", {i64({1}, {0}), scalarF32(NAN), v}),
            "input 1 (depth) is nan, not an integer in range");
  EXPECT_EQ(runError("nn.one_hot", {i64({1}, {0}), scalarI64(2), f32({3}, {0, 1, 2})}),
            "input 2 (values) has 3 entries, expected 2 (off, on)");
  EXPECT_EQ(runError("nn.one_hot", {i64({1}, {0}), i64({2}, {2, 2}), v}),
            "input 1 (depth) has shape [2], expected a scalar (rank 0 or [1])");
  EXPECT_EQ(runError("nn.one_hot", {i64({1}, {0}), scalarI64(2), v}, Attrs().setInt("axis", 2)),
            "attribute `axis` 2 is outside [-2, 2)");
  auto t = infer("nn.one_hot", {{DType::I64, {-1, 3}}, {DType::I64, {}}, {DType::F32, {2}}},
                 Attrs().setInt("axis", 1));
  ASSERT_TRUE(t.isOk());
  EXPECT_EQ((*t)[0].shape, (Shape{-1, -1, 3}));
}

TEST(OnnxIndexKernels, TopKSortsAndBreaksTiesToTheLowerIndex) {
  // ONNX example.
  Tensor x = f32({3, 4}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  auto r = runKernel("nn.topk", {x, i64({1}, {3})});
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ((*r)[0].shape(), (Shape{3, 3}));
  EXPECT_EQ((*r)[0].toVector<float>(), (F32s{3, 2, 1, 7, 6, 5, 11, 10, 9}));
  EXPECT_EQ((*r)[1].toVector<int64_t>(), (I64s{3, 2, 1, 3, 2, 1, 3, 2, 1}));
  // Ties: the lower index first, largest and smallest; axis 0; NaN is
  // above every number.
  Tensor t = f32({6}, {1, 3, 3, NAN, 2, 1});
  auto big = runKernel("nn.topk", {t, i64({1}, {3})});
  ASSERT_TRUE(big.isOk());
  EXPECT_EQ((*big)[1].toVector<int64_t>(), (I64s{3, 1, 2}));
  auto small = runKernel("nn.topk", {t, i64({1}, {3})}, Attrs().setInt("largest", 0));
  ASSERT_TRUE(small.isOk());
  EXPECT_EQ((*small)[0].toVector<float>(), (F32s{1, 1, 2}));
  EXPECT_EQ((*small)[1].toVector<int64_t>(), (I64s{0, 5, 4}));
  Tensor xi = i64({3, 2}, {5, 1, 5, 7, 2, 7});
  auto col = runKernel("nn.topk", {xi, scalarI64(2)}, Attrs().setInt("axis", 0));
  ASSERT_TRUE(col.isOk()) << col.status().message();
  EXPECT_EQ((*col)[0].shape(), (Shape{2, 2}));
  EXPECT_EQ((*col)[0].toVector<int64_t>(), (I64s{5, 7, 5, 7}));
  EXPECT_EQ((*col)[1].toVector<int64_t>(), (I64s{0, 1, 1, 2}));
  auto zero = runKernel("nn.topk", {x, i64({1}, {0})});
  ASSERT_TRUE(zero.isOk());
  EXPECT_EQ((*zero)[0].shape(), (Shape{3, 0}));

  EXPECT_EQ(runError("nn.topk", {x, i64({1}, {5})}),
            "input 1 (k) is 5, outside [0, 4] (dim 1 of input 0)");
  EXPECT_EQ(runError("nn.topk", {x, i64({1}, {-1})}),
            "input 1 (k) is -1, outside [0, 4] (dim 1 of input 0)");
  EXPECT_EQ(runError("nn.topk", {x, i32({1}, {1})}),
            "input 1 (k) has dtype i32, expected i64");
  EXPECT_EQ(runError("nn.topk", {i1({2}, {0, 1}), i64({1}, {1})}),
            "input 0 (x) has dtype i1, expected f32, i64 or i32");
  auto ty = infer("nn.topk", {{DType::F32, {-1, 8}}, {DType::I64, {1}}});
  ASSERT_TRUE(ty.isOk());
  ASSERT_EQ(ty->size(), 2u);
  EXPECT_EQ((*ty)[0].shape, (Shape{-1, -1}));
  EXPECT_EQ((*ty)[1].dtype, DType::I64);
}

/// Runs nn.split telling it the declared output count (as the executor does
/// for a step).
StatusOr<std::vector<Tensor>> runSplit(std::vector<Tensor> in, const Attrs &attrs,
                                       std::optional<size_t> n) {
  return KernelRegistry::runCpu(kernel("nn.split"), std::move(in), attrs, n);
}

TEST(OnnxIndexKernels, Split) {
  Tensor x = f32({6}, {1, 2, 3, 4, 5, 6});
  auto r = runSplit({x, i64({2}, {2, 4})}, {}, std::nullopt);
  ASSERT_TRUE(r.isOk()) << r.status().message();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].toVector<float>(), (F32s{1, 2}));
  EXPECT_EQ((*r)[1].toVector<float>(), (F32s{3, 4, 5, 6}));
  // Without `split`: N equal parts (N declared), the last one smaller.
  auto eq = runSplit({x}, {}, 3);
  ASSERT_TRUE(eq.isOk()) << eq.status().message();
  ASSERT_EQ(eq->size(), 3u);
  EXPECT_EQ((*eq)[2].toVector<float>(), (F32s{5, 6}));
  Tensor x7 = i64({7}, {0, 1, 2, 3, 4, 5, 6});
  auto uneven = runSplit({x7}, {}, 4);
  ASSERT_TRUE(uneven.isOk()) << uneven.status().message();
  EXPECT_EQ((*uneven)[0].toVector<int64_t>(), (I64s{0, 1}));
  EXPECT_EQ((*uneven)[3].toVector<int64_t>(), (I64s{6}));
  auto attr = runSplit({x7}, Attrs().setInt("num_outputs", 2), std::nullopt);
  ASSERT_TRUE(attr.isOk()) << attr.status().message();
  EXPECT_EQ((*attr)[0].toVector<int64_t>(), (I64s{0, 1, 2, 3}));
  EXPECT_EQ((*attr)[1].toVector<int64_t>(), (I64s{4, 5, 6}));
  // Along axis -1 of a 2-D i1 tensor, with a zero-size part.
  Tensor b = i1({2, 3}, {1, 0, 1, 0, 1, 1});
  auto cols = runSplit({b, i64({3}, {1, 0, 2})}, Attrs().setInt("axis", -1), 3);
  ASSERT_TRUE(cols.isOk()) << cols.status().message();
  EXPECT_EQ((*cols)[0].toVector<uint8_t>(), (U8s{1, 0}));
  EXPECT_EQ((*cols)[1].shape(), (Shape{2, 0}));
  EXPECT_EQ((*cols)[2].toVector<uint8_t>(), (U8s{0, 1, 1, 1}));

  auto sum = runSplit({x, i64({2}, {2, 3})}, {}, 2);
  ASSERT_FALSE(sum.isOk());
  EXPECT_EQ(sum.status().message(), "input 1 (split) [2, 3] does not add up to dim 0 of input 0 (6)");
  auto neg = runSplit({x, i64({2}, {-1, 7})}, {}, 2);
  ASSERT_FALSE(neg.isOk());
  EXPECT_EQ(neg.status().message(), "input 1 (split) has -1 at position 0, expected a dim (≥ 0)");
  auto many = runSplit({f32({5}, F32s(5, 0))}, {}, 4);
  ASSERT_FALSE(many.isOk());
  EXPECT_EQ(many.status().message(), "cannot split dim 5 into 4 parts of 2 (the last smaller)");
  auto both = runSplit({x, i64({2}, {2, 4})}, Attrs().setInt("num_outputs", 3), 3);
  ASSERT_FALSE(both.isOk());
  EXPECT_EQ(both.status().message(),
            "input 1 (split) has 2 entries, attribute `num_outputs` is 3");
  auto unknown = runSplit({x}, {}, std::nullopt);
  ASSERT_FALSE(unknown.isOk());
  EXPECT_EQ(unknown.status().message(),
            "without input 1 (split) or attribute `num_outputs`, the number of "
            "outputs must be given");

  // The verifier passes the declared outputs.
  moe::rt::KernelSignature sig;
  sig.inputs = {{DType::F32, {-1, 6}}};
  sig.outputs = {{DType::F32, {-1, 2}}, {DType::F32, {-1, 2}}, {DType::F32, {-1, 2}}};
  Attrs axis1 = Attrs().setInt("axis", 1);
  sig.attrs = &axis1;
  EXPECT_TRUE(KernelRegistry::verify(kernel("nn.split"), sig).isOk());
  sig.outputs[2].shape = {-1, 3};
  Status st = KernelRegistry::verify(kernel("nn.split"), sig);
  ASSERT_FALSE(st.isOk());
  EXPECT_EQ(st.message(), "output 2 has shape [?, 3], expected [?, 2]");
  sig.inputs.push_back({DType::I64, {2}});
  st = KernelRegistry::verify(kernel("nn.split"), sig);
  ASSERT_FALSE(st.isOk());
  EXPECT_EQ(st.message(), "has 3 outputs, expected 2");
  // A `split` of unknown length: `num_outputs`, else the declared count.
  sig.inputs[1].shape = {-1};
  sig.outputs[2].shape = {-1, -1};
  EXPECT_TRUE(KernelRegistry::verify(kernel("nn.split"), sig).isOk());
  Attrs two = Attrs().setInt("axis", 1).setInt("num_outputs", 2);
  sig.attrs = &two;
  st = KernelRegistry::verify(kernel("nn.split"), sig);
  ASSERT_FALSE(st.isOk());
  EXPECT_EQ(st.message(), "has 3 outputs, expected 2");
}

// --- Existing kernels with ONNX semantics -------------------------------------

TEST(OnnxIndexKernels, GatherConcatTransposeOnEveryDtype) {
  // Gather with rank-0 indices drops the axis; negative indices wrap.
  Tensor d = i64({2, 3}, {0, 1, 2, 3, 4, 5});
  Tensor g = run1("nn.gather", {d, scalarI64(-1)}, Attrs().setInt("axis", 1));
  EXPECT_EQ(g.shape(), (Shape{2}));
  EXPECT_EQ(g.toVector<int64_t>(), (I64s{2, 5}));
  Tensor g0 = run1("nn.gather", {d, i32({}, {1})});
  EXPECT_EQ(g0.shape(), (Shape{3}));
  EXPECT_EQ(g0.toVector<int64_t>(), (I64s{3, 4, 5}));
  Tensor gb = run1("nn.gather", {i1({3}, {0, 1, 1}), i64({2, 2}, {0, 2, -3, 1})});
  EXPECT_EQ(gb.shape(), (Shape{2, 2}));
  EXPECT_EQ(gb.toVector<uint8_t>(), (U8s{0, 1, 0, 1}));
  Tensor gf = run1("nn.gather", {f32({3}, {1, 2, 3}), i64({0}, {})});
  EXPECT_EQ(gf.shape(), (Shape{0}));
  Tensor gs = run1("nn.gather", {i32({3}, {7, 8, 9}), scalarI64(2)});
  EXPECT_EQ(gs.shape(), Shape{});
  EXPECT_EQ(gs.toVector<int32_t>(), std::vector<int32_t>{9});
  EXPECT_EQ(runError("nn.gather", {d, scalarI64(3)}, Attrs().setInt("axis", 1)),
            "index 3 at position 0 is outside [-3, 3)");

  // Concat of i64 shape vectors, one of them empty; i1 data.
  Tensor c = run1("nn.concat", {i64({2}, {1, 2}), i64({0}, {}), i64({1}, {3})},
                  Attrs().setInt("axis", 0));
  EXPECT_EQ(c.toVector<int64_t>(), (I64s{1, 2, 3}));
  Tensor cb = run1("nn.concat", {i1({1, 2}, {1, 0}), i1({1, 0}, {}), i1({1, 1}, {1})},
                   Attrs().setInt("axis", -1));
  EXPECT_EQ(cb.shape(), (Shape{1, 3}));
  EXPECT_EQ(cb.toVector<uint8_t>(), (U8s{1, 0, 1}));
  Tensor ce = run1("nn.concat", {f32({0, 2}, {}), f32({0, 2}, {})}, Attrs().setInt("axis", 0));
  EXPECT_EQ(ce.shape(), (Shape{0, 2}));
  auto big = infer("nn.concat", {{DType::F32, {kMax}}, {DType::F32, {1}}},
                   Attrs().setInt("axis", 0));
  ASSERT_FALSE(big.isOk());
  EXPECT_EQ(big.status().message(), "concatenated dim 0 is too large");

  // Transpose on i1 and i32.
  Tensor tb = run1("nn.transpose", {i1({2, 3}, {1, 0, 0, 0, 1, 1})},
                   Attrs().setInts("perm", {1, 0}));
  EXPECT_EQ(tb.toVector<uint8_t>(), (U8s{1, 0, 0, 1, 0, 1}));
  Tensor ti = run1("nn.transpose", {i32({2, 1, 2}, {1, 2, 3, 4})},
                   Attrs().setInts("perm", {2, 1, -3}));
  EXPECT_EQ(ti.shape(), (Shape{2, 1, 2}));
  EXPECT_EQ(ti.toVector<int32_t>(), (std::vector<int32_t>{1, 3, 2, 4}));
  Tensor ts = run1("nn.transpose", {scalarI64(4)});
  EXPECT_EQ(ts.toVector<int64_t>(), I64s{4});
}

TEST(OnnxIndexKernels, LargeShapesMatchNaiveLoops) {
  // Big enough for the parallel paths.
  std::mt19937 rng(52);
  Tensor x = randomF32({1, 37, 1}, rng);
  Shape es = {5, 37, 300};
  Tensor e = run1("nn.expand", {x, i64({3}, es)});
  ASSERT_EQ(e.shape(), es);
  for (int64_t f = 0; f < count(es); ++f)
    ASSERT_EQ(e.data<float>()[f], x.data<float>()[unravel(f, es)[1]]) << f;

  Shape ts = {3, 5, 7};
  Tensor t = randomF32(ts, rng);
  Shape reps = {4, 1, 60};
  Tensor y = run1("nn.tile", {t, i64({3}, reps)});
  Shape ys = {12, 5, 420};
  ASSERT_EQ(y.shape(), ys);
  for (int64_t f = 0; f < count(ys); ++f) {
    auto o = unravel(f, ys);
    std::vector<int64_t> in = {o[0] % 3, o[1] % 5, o[2] % 7};
    ASSERT_EQ(y.data<float>()[f], t.data<float>()[ravel(in, ts)]) << f;
  }

  // TopK along the middle axis with many ties (values from a small set).
  Shape ks = {20, 300, 9};
  std::vector<int64_t> kv(size_t(count(ks)));
  std::uniform_int_distribution<int64_t> small(0, 9);
  for (int64_t &v : kv)
    v = small(rng);
  Tensor kx = i64(ks, kv);
  for (int64_t largest : {0, 1}) {
    auto r = runKernel("nn.topk", {kx, scalarI64(17)},
                       Attrs().setInt("axis", 1).setInt("largest", largest));
    ASSERT_TRUE(r.isOk()) << r.status().message();
    for (int64_t o = 0; o < 20; ++o)
      for (int64_t i = 0; i < 9; ++i) {
        std::vector<std::pair<int64_t, int64_t>> line;
        for (int64_t j = 0; j < 300; ++j)
          line.push_back({largest ? -kv[size_t((o * 300 + j) * 9 + i)]
                                  : kv[size_t((o * 300 + j) * 9 + i)],
                          j});
        std::sort(line.begin(), line.end());
        for (int64_t j = 0; j < 17; ++j) {
          int64_t at = (o * 17 + j) * 9 + i;
          ASSERT_EQ((*r)[1].data<int64_t>()[at], line[size_t(j)].second);
          ASSERT_EQ((*r)[0].data<int64_t>()[at],
                    kv[size_t((o * 300 + line[size_t(j)].second) * 9 + i)]);
        }
      }
  }

  // NonZero of a large mostly-zero tensor.
  Shape ns = {40, 50, 30};
  std::vector<float> nv(size_t(count(ns)), 0.0f);
  std::vector<int64_t> hits;
  for (int64_t f = 0; f < count(ns); f += 7)
    if (small(rng) < 3) {
      nv[size_t(f)] = 1.0f;
      hits.push_back(f);
    }
  Tensor nz = run1("nn.nonzero", {f32(ns, nv)});
  int64_t n = int64_t(hits.size());
  ASSERT_EQ(nz.shape(), (Shape{3, n}));
  for (int64_t j = 0; j < n; ++j) {
    auto c = unravel(hits[size_t(j)], ns);
    for (size_t d = 0; d < 3; ++d)
      ASSERT_EQ(nz.data<int64_t>()[int64_t(d) * n + j], c[d]);
  }

  // GatherND of rows, split of columns.
  Shape gs = {64, 40, 33};
  Tensor g = randomF32(gs, rng);
  std::vector<int64_t> gi;
  std::uniform_int_distribution<int64_t> row(-64, 63), col(-40, 39);
  for (int i = 0; i < 500; ++i) {
    gi.push_back(row(rng));
    gi.push_back(col(rng));
  }
  Tensor gy = run1("nn.gather_nd", {g, i64({500, 2}, gi)});
  ASSERT_EQ(gy.shape(), (Shape{500, 33}));
  for (int64_t i = 0; i < 500; ++i) {
    int64_t a = gi[size_t(2 * i)], b = gi[size_t(2 * i + 1)];
    a += a < 0 ? 64 : 0;
    b += b < 0 ? 40 : 0;
    for (int64_t k = 0; k < 33; ++k)
      ASSERT_EQ(gy.data<float>()[i * 33 + k], g.data<float>()[(a * 40 + b) * 33 + k]);
  }
  auto parts = runSplit({g, i64({3}, {10, 0, 30})}, Attrs().setInt("axis", 1), 3);
  ASSERT_TRUE(parts.isOk()) << parts.status().message();
  for (int64_t f = 0; f < count(gs); ++f) {
    auto c = unravel(f, gs);
    const Tensor &p = c[1] < 10 ? (*parts)[0] : (*parts)[2];
    Shape ps = p.shape();
    if (c[1] >= 10)
      c[1] -= 10;
    ASSERT_EQ(p.data<float>()[ravel(c, ps)], g.data<float>()[f]);
  }
}

// --- The run-time shape mechanism ---------------------------------------------

TEST(OnnxIndexKernels, RunCpuChecksOutputsAgainstTheShapeFunction) {
  // A kernel whose body disagrees with its shape function is caught.
  KernelDef bad{"test.bad",
                [](const std::vector<TensorType> &in, const Attrs &) {
                  return StatusOr<std::vector<TensorType>>(
                      std::vector<TensorType>{{DType::F32, {-1, 2}}});
                },
                [](moe::rt::KernelContext &ctx) {
                  return ctx.allocateOutput(0, DType::F32, {3});
                },
                true};
  auto r = KernelRegistry::runCpu(bad, {f32({1}, {0})}, {});
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().message(), "kernel produced output 0 of shape [3], expected [?, 2]");
  // A kernel that does not allocate cannot have unknown dims.
  bad.allocatesOutputs = false;
  r = KernelRegistry::runCpu(bad, {f32({1}, {0})}, {});
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().message(), "the shape of output 0 is unknown ([?, 2])");
}

std::vector<uint8_t> bytesOf(const std::vector<int64_t> &v) {
  std::vector<uint8_t> b(v.size() * 8);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

TEST(OnnxIndexKernels, ShapeDependentPlanRunsWithTwoInputShapes) {
  // x [?, 4] → Shape → ConstantOfShape (ones like x); x reshaped by a
  // weight [-1, 2]; split by a weight; NonZero of a Range.
  PlanBuilder pb;
  uint32_t x = pb.input("x", DType::F32, {-1, 4});
  uint32_t s = pb.call1("nn.shape", {x}, DType::I64, {2});
  uint32_t ones = pb.call1("nn.constant_of_shape", {s}, DType::F32, {-1, -1},
                           Attrs().setFloat("value", 1));
  uint32_t target = pb.weight("target", DType::I64, {2}, bytesOf({-1, 2}));
  uint32_t y = pb.call1("nn.dynamic_reshape", {x, target}, DType::F32, {-1, 2});
  uint32_t parts = pb.weight("parts", DType::I64, {2}, bytesOf({1, 3}));
  std::vector<uint32_t> halves =
      pb.call("nn.split", {x, parts}, {{DType::F32, {-1, 1}}, {DType::F32, {-1, 3}}},
              Attrs().setInt("axis", 1));
  uint32_t n = pb.call1("nn.shape", {x}, DType::I64, {1}, Attrs().setInt("end", 1));
  uint32_t zero = pb.weight("zero", DType::I64, {1}, bytesOf({0}));
  uint32_t one = pb.weight("one", DType::I64, {1}, bytesOf({1}));
  uint32_t seq = pb.call1("nn.range", {zero, n, one}, DType::I64, {-1});
  uint32_t nz = pb.call1("nn.nonzero", {seq}, DType::I64, {1, -1});
  pb.output(ones);
  pb.output(y);
  pb.output(halves[1]);
  pb.output(nz);
  std::string path = tempPath("onnx-index.moeplan");
  ASSERT_TRUE(pb.write(path).isOk());
  auto plan = moe::rt::loadPlan(path);
  ::unlink(path.c_str());
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  auto ex = moe::rt::Executor::create(**plan, {});
  ASSERT_TRUE(ex.isOk()) << ex.status().message();
  for (int64_t rows : {1, 3}) {
    std::vector<float> xv(size_t(rows * 4));
    for (size_t i = 0; i < xv.size(); ++i)
      xv[i] = float(i);
    auto out = (*ex)->run({f32({rows, 4}, xv)});
    ASSERT_TRUE(out.isOk()) << out.status().message();
    EXPECT_EQ((*out)[0].shape(), (Shape{rows, 4}));
    EXPECT_EQ((*out)[0].toVector<float>(), F32s(size_t(rows * 4), 1));
    EXPECT_EQ((*out)[1].shape(), (Shape{rows * 2, 2}));
    EXPECT_EQ((*out)[2].shape(), (Shape{rows, 3}));
    EXPECT_EQ((*out)[2].toVector<float>()[0], 1.0f);
    I64s want;
    for (int64_t i = 1; i < rows; ++i)
      want.push_back(i);
    EXPECT_EQ((*out)[3].toVector<int64_t>(), want);
  }
}

TEST(OnnxIndexKernels, LoaderRejectsAnUnknownResultRank) {
  PlanBuilder pb;
  uint32_t x = pb.input("x", DType::F32, {6});
  uint32_t s = pb.input("s", DType::I64, {-1});
  uint32_t y = pb.call1("nn.dynamic_reshape", {x, s}, DType::F32, {-1, -1});
  pb.output(y);
  std::string path = tempPath("onnx-index-bad.moeplan");
  ASSERT_TRUE(pb.write(path).isOk());
  auto plan = moe::rt::loadPlan(path);
  ::unlink(path.c_str());
  ASSERT_FALSE(plan.isOk());
  EXPECT_NE(plan.status().message().find(
                "input 1 (shape) has an unknown length [?]: the result rank must be known"),
            std::string::npos)
      << plan.status().message();
}

} // namespace
