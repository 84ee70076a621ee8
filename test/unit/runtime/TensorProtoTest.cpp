//===- TensorProtoTest.cpp - The hand-written TensorProto codec -----------===//

#include "test/unit/runtime/KernelTestUtil.h"
#include "test/unit/runtime/PlanBuilder.h"

#include "runtime/io/TensorProto.h"

#include <unistd.h>

using namespace moe::test;
using moe::rt::parseTensorProto;
using moe::rt::serializeTensorProto;

namespace {

using Bytes = std::vector<uint8_t>;

auto parse(const Bytes &b) { return parseTensorProto(b.data(), b.size()); }

void varint(Bytes &b, uint64_t v) {
  while (v >= 0x80) {
    b.push_back(uint8_t(v | 0x80));
    v >>= 7;
  }
  b.push_back(uint8_t(v));
}
void key(Bytes &b, uint32_t field, uint32_t wire) { varint(b, (field << 3) | wire); }
void fixed32(Bytes &b, float f) {
  uint8_t p[4];
  std::memcpy(p, &f, 4);
  b.insert(b.end(), p, p + 4);
}

TEST(TensorProto, RoundTripEveryDtype) {
  std::mt19937 rng(50);
  for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::F64, DType::I64,
                   DType::I32, DType::I8, DType::U8, DType::I1}) {
    for (Shape shape : {Shape{}, Shape{0}, Shape{3}, Shape{2, 17}}) {
      Tensor t = *Tensor::allocate(dt, shape);
      auto *p = static_cast<uint8_t *>(t.mutableData());
      for (size_t i = 0; i < t.byteSize(); ++i)
        p[i] = dt == DType::I1 ? uint8_t(rng() & 1) : uint8_t(rng());
      std::string s = serializeTensorProto(t, "t_" + moe::rt::dtypeName(dt));
      auto r = parseTensorProto(reinterpret_cast<const uint8_t *>(s.data()), s.size());
      ASSERT_TRUE(r.isOk()) << r.status().message();
      EXPECT_EQ(r->name, "t_" + moe::rt::dtypeName(dt));
      EXPECT_EQ(r->tensor.dtype(), dt);
      EXPECT_EQ(r->tensor.shape(), shape);
      ASSERT_EQ(r->tensor.byteSize(), t.byteSize());
      if (t.byteSize()) {
        EXPECT_EQ(std::memcmp(r->tensor.data(), t.data(), t.byteSize()), 0);
      }
    }
  }
}

TEST(TensorProto, WriterLayoutIsStandard) {
  // dims 2, 1 (non-packed), data_type FLOAT, name "y", raw_data 8 bytes:
  // exactly what onnx.numpy_helper would write for this tensor.
  Tensor t = f32({2, 1}, {1.0f, 2.0f});
  std::string s = serializeTensorProto(t, "y");
  Bytes want = {0x08, 0x02, 0x08, 0x01, 0x10, 0x01, 0x42, 0x01, 'y', 0x4A, 0x08,
                0, 0, 0x80, 0x3F, 0, 0, 0, 0x40};
  EXPECT_EQ(Bytes(s.begin(), s.end()), want);
}

TEST(TensorProto, TypedFieldsPackedAndNot) {
  // float_data non-packed, dims packed.
  Bytes a;
  key(a, 1, 2);
  a.push_back(2);
  a.push_back(1);
  a.push_back(2);
  key(a, 2, 0);
  varint(a, 1);
  for (float f : {1.5f, -2.0f}) {
    key(a, 4, 5);
    fixed32(a, f);
  }
  auto ra = parse(a);
  ASSERT_TRUE(ra.isOk()) << ra.status().message();
  EXPECT_EQ(ra->tensor.shape(), (Shape{1, 2}));
  EXPECT_EQ(ra->tensor.toVector<float>(), (std::vector<float>{1.5f, -2.0f}));

  // int64_data packed with a negative value, plus unknown fields to skip:
  // doc_string (12), a fixed64 field 99 and a varint field 50.
  Bytes b;
  key(b, 12, 2);
  varint(b, 3);
  b.insert(b.end(), {'d', 'o', 'c'});
  key(b, 1, 0);
  varint(b, 3);
  key(b, 2, 0);
  varint(b, 7);
  key(b, 99, 1);
  for (int i = 0; i < 8; ++i)
    b.push_back(0xAA);
  key(b, 50, 0);
  varint(b, 123456);
  Bytes packed;
  varint(packed, uint64_t(int64_t(-5)));
  varint(packed, 0);
  varint(packed, 1ull << 40);
  key(b, 7, 2);
  varint(b, packed.size());
  b.insert(b.end(), packed.begin(), packed.end());
  auto rb = parse(b);
  ASSERT_TRUE(rb.isOk()) << rb.status().message();
  EXPECT_EQ(rb->tensor.toVector<int64_t>(), (std::vector<int64_t>{-5, 0, 1ll << 40}));

  // int8 in int32_data (non-packed, negative as a 10-byte varint).
  Bytes c;
  key(c, 1, 0);
  varint(c, 2);
  key(c, 2, 0);
  varint(c, 3);
  key(c, 5, 0);
  varint(c, uint64_t(int64_t(-128)));
  key(c, 5, 0);
  varint(c, 127);
  auto rc = parse(c);
  ASSERT_TRUE(rc.isOk()) << rc.status().message();
  EXPECT_EQ(rc->tensor.toVector<int8_t>(), (std::vector<int8_t>{-128, 127}));

  // double_data and a scalar (no dims).
  Bytes d;
  key(d, 2, 0);
  varint(d, 11);
  key(d, 10, 1);
  double v = 3.25;
  uint8_t p[8];
  std::memcpy(p, &v, 8);
  d.insert(d.end(), p, p + 8);
  auto rd = parse(d);
  ASSERT_TRUE(rd.isOk()) << rd.status().message();
  EXPECT_EQ(rd->tensor.shape(), Shape{});
  EXPECT_EQ(rd->tensor.toVector<double>(), (std::vector<double>{3.25}));

  // float16 bits in int32_data.
  Bytes h;
  key(h, 1, 0);
  varint(h, 1);
  key(h, 2, 0);
  varint(h, 10);
  key(h, 5, 0);
  varint(h, 0x3C00);
  auto rh = parse(h);
  ASSERT_TRUE(rh.isOk());
  EXPECT_EQ(moe::rt::halfToFloat(rh->tensor.toVector<uint16_t>()[0]), 1.0f);
}

std::string errorOf(const Bytes &b) {
  auto r = parse(b);
  EXPECT_FALSE(r.isOk());
  return r.isOk() ? "" : r.status().message();
}

Bytes header(uint64_t dtype, std::vector<uint64_t> dims) {
  Bytes b;
  for (uint64_t d : dims) {
    key(b, 1, 0);
    varint(b, d);
  }
  key(b, 2, 0);
  varint(b, dtype);
  return b;
}

TEST(TensorProto, RejectsWhatItDoesNotSupport) {
  Bytes s = header(1, {1});
  key(s, 6, 2);
  varint(s, 1);
  s.push_back('a');
  EXPECT_EQ(errorOf(s), "string tensors (string_data) are not supported");
  Bytes ext = header(1, {1});
  key(ext, 14, 0);
  varint(ext, 1);
  EXPECT_EQ(errorOf(ext), "data_location is EXTERNAL; save the tensor with its data inline");
  Bytes ext2 = header(1, {1});
  key(ext2, 13, 2);
  varint(ext2, 0);
  EXPECT_NE(errorOf(ext2).find("external data"), std::string::npos);
  Bytes seg = header(1, {1});
  key(seg, 3, 2);
  varint(seg, 0);
  EXPECT_NE(errorOf(seg).find("segment"), std::string::npos);
  EXPECT_EQ(errorOf(header(4, {1})), "data_type 4 (UINT16) is not supported");
  EXPECT_EQ(errorOf(header(8, {1})), "data_type 8 (STRING) is not supported");
  EXPECT_EQ(errorOf(header(0, {1})), "data_type is missing (UNDEFINED)");
  EXPECT_EQ(errorOf(header(1, {2})), "float_data has 0 values, a 2xf32 tensor needs 2");
  Bytes raw = header(1, {2});
  key(raw, 9, 2);
  varint(raw, 4);
  raw.insert(raw.end(), 4, 0);
  EXPECT_EQ(errorOf(raw), "raw_data has 4 bytes, a 2xf32 tensor needs 8");
  Bytes both = raw;
  key(both, 4, 5);
  fixed32(both, 1.0f);
  EXPECT_EQ(errorOf(both), "the tensor has both raw_data and float_data");
  Bytes wrong = header(7, {1});
  key(wrong, 4, 5);
  fixed32(wrong, 1.0f);
  EXPECT_EQ(errorOf(wrong), "a 1xi64 tensor may only use int64_data or raw_data");
  Bytes range = header(2, {1});
  key(range, 5, 0);
  varint(range, 256);
  EXPECT_EQ(errorOf(range), "int32_data[0] = 256 is out of range for u8");
  EXPECT_EQ(errorOf(header(1, {uint64_t(int64_t(-2))})), "dims has negative entry -2");
  EXPECT_NE(errorOf(header(1, {1ull << 40, 1ull << 40})).find("too large"),
            std::string::npos);
  Bytes wire = header(1, {1});
  key(wire, 8, 0); // name as a varint
  varint(wire, 1);
  EXPECT_NE(errorOf(wire).find("field name has wire type 0"), std::string::npos);
  Bytes group = header(1, {0});
  key(group, 77, 3);
  EXPECT_NE(errorOf(group).find("unsupported wire type 3"), std::string::npos);
  Bytes field0 = {0x00};
  EXPECT_NE(errorOf(field0).find("invalid field number 0"), std::string::npos);
  Bytes longVarint(11, 0xFF);
  EXPECT_NE(errorOf(longVarint).find("varint"), std::string::npos);
  Bytes packedOdd = header(1, {1});
  key(packedOdd, 4, 2);
  varint(packedOdd, 3);
  packedOdd.insert(packedOdd.end(), 3, 0);
  EXPECT_NE(errorOf(packedOdd).find("not a multiple of 4"), std::string::npos);
}

TEST(TensorProto, EveryPrefixIsRejected) {
  std::mt19937 rng(51);
  for (const Tensor &t : {randomF32({3, 5}, rng), i64({2}, {7, -9})}) {
    std::string s = serializeTensorProto(t, "prefix");
    Bytes b(s.begin(), s.end());
    for (size_t len = 0; len < b.size(); ++len) {
      auto r = parseTensorProto(b.data(), len);
      ASSERT_FALSE(r.isOk()) << len;
      ASSERT_FALSE(r.status().message().empty());
    }
    EXPECT_TRUE(parseTensorProto(b.data(), b.size()).isOk());
  }
}

TEST(TensorProto, Files) {
  std::string path = tempPath("t.pb");
  Tensor t = f32({2, 2}, {1, 2, 3, 4});
  ASSERT_TRUE(moe::rt::writeTensorProtoFile(path, t, "x").isOk());
  auto r = moe::rt::readTensorProtoFile(path);
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->name, "x");
  EXPECT_EQ(r->tensor.toVector<float>(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_NE(access((path + ".tmp").c_str(), F_OK), 0);
  writeFile(path, {'g', 'a', 'r', 'b'});
  auto bad = moe::rt::readTensorProtoFile(path);
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().message().rfind(path + ": ", 0), 0u);
  ::unlink(path.c_str());
  auto missing = moe::rt::readTensorProtoFile(path);
  ASSERT_FALSE(missing.isOk());
  EXPECT_NE(missing.status().message().find("cannot open"), std::string::npos);
}

} // namespace
