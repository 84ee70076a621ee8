//===- PlanBuilder.cpp - Building small plans in tests --------------------===//

#include "test/unit/runtime/PlanBuilder.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <unistd.h>

namespace moe::test {

uint32_t PlanBuilder::input(const std::string &name, DType dtype, Shape shape) {
  BValue v;
  v.dtype = dtype;
  v.shape = std::move(shape);
  v.kind = moe_plan::ValueKind::Input;
  v.input = int32_t(inputs.size());
  v.name = name;
  values.push_back(v);
  inputs.push_back(uint32_t(values.size() - 1));
  return inputs.back();
}

uint32_t PlanBuilder::weight(const std::string &name, DType dtype, Shape shape,
                             std::vector<uint8_t> bytes) {
  BWeight w;
  w.name = name;
  w.dtype = dtype;
  w.shape = shape;
  w.bytes = std::move(bytes);
  weights.push_back(std::move(w));
  BValue v;
  v.dtype = dtype;
  v.shape = std::move(shape);
  v.kind = moe_plan::ValueKind::Weight;
  v.weight = int32_t(weights.size() - 1);
  v.name = name;
  values.push_back(v);
  return uint32_t(values.size() - 1);
}

uint32_t PlanBuilder::weightF32(const std::string &name, Shape shape,
                                const std::vector<float> &data) {
  std::vector<uint8_t> bytes(data.size() * 4);
  if (!data.empty())
    std::memcpy(bytes.data(), data.data(), bytes.size());
  return weight(name, DType::F32, std::move(shape), std::move(bytes));
}

uint32_t PlanBuilder::weightPacked(
    const std::string &name, Shape shape, const std::vector<float> &data,
    const std::vector<kernels::cpu::QuantFormat> &formats) {
  int64_t rows = shape.at(1), cols = 1;
  for (size_t d = 2; d < shape.size(); ++d)
    cols *= shape[d];
  EXPECT_EQ(int64_t(formats.size()), shape[0]);
  EXPECT_EQ(data.size(), size_t(shape[0] * rows * cols));
  std::vector<BSlice> slices;
  std::vector<uint8_t> bytes;
  for (size_t i = 0; i < formats.size(); ++i) {
    const kernels::cpu::QuantFormat &f = formats[i];
    BSlice s;
    s.bits = uint8_t(f.bits);
    s.groupSize = uint16_t(f.groupSize);
    s.scaleDType = f.f16Scales ? DType::F16 : DType::F32;
    s.zeroPoints = f.zeroPoints;
    s.offset = plan::alignBlob(bytes.size());
    s.size = uint64_t(kernels::cpu::quantLayout(f, rows, cols).totalBytes);
    bytes.resize(s.offset + s.size, 0);
    kernels::cpu::quantizeMatrix(data.data() + i * rows * cols, rows, cols, f,
                                 bytes.data() + s.offset);
    slices.push_back(s);
  }
  uint32_t id = weight(name, DType::F32, std::move(shape), std::move(bytes));
  weights.back().slices = std::move(slices);
  return id;
}

uint32_t PlanBuilder::temp(DType dtype, Shape shape, const std::string &name) {
  BValue v;
  v.dtype = dtype;
  v.shape = std::move(shape);
  v.name = name;
  values.push_back(v);
  return uint32_t(values.size() - 1);
}

std::vector<uint32_t>
PlanBuilder::call(const std::string &kernel, std::vector<uint32_t> ins,
                  const std::vector<rt::TensorType> &outs, rt::Attrs attrs) {
  BStep s;
  s.kernel = kernel;
  s.inputs = std::move(ins);
  for (const rt::TensorType &t : outs)
    s.outputs.push_back(temp(t.dtype, t.shape));
  s.attrs = std::move(attrs);
  steps.push_back(s);
  return s.outputs;
}

uint32_t PlanBuilder::call1(const std::string &kernel,
                            std::vector<uint32_t> ins, DType dtype, Shape shape,
                            rt::Attrs attrs) {
  return call(kernel, std::move(ins), {{dtype, std::move(shape)}},
              std::move(attrs))[0];
}

void PlanBuilder::free(std::vector<uint32_t> ids) {
  BStep s;
  s.kind = moe_plan::StepKind::Free;
  s.inputs = std::move(ids);
  steps.push_back(s);
}

uint32_t PlanBuilder::copy(uint32_t id, moe_plan::Device device) {
  BStep s;
  s.kind = moe_plan::StepKind::Copy;
  s.inputs = {id};
  s.outputs = {temp(values[id].dtype, values[id].shape)};
  s.device = device;
  steps.push_back(s);
  return s.outputs[0];
}

namespace {

flatbuffers::Offset<
    flatbuffers::Vector<flatbuffers::Offset<moe_plan::Attr>>>
buildAttrs(flatbuffers::FlatBufferBuilder &fbb, const rt::Attrs &attrs) {
  std::vector<flatbuffers::Offset<moe_plan::Attr>> out;
  for (const rt::AttrValue &a : attrs.all())
    out.push_back(moe_plan::CreateAttrDirect(
        fbb, a.name.c_str(), a.kind, a.i, a.f,
        a.kind == rt::AttrKind::Ints ? &a.ints : nullptr,
        a.kind == rt::AttrKind::Floats ? &a.floats : nullptr,
        a.kind == rt::AttrKind::String ? a.s.c_str() : nullptr));
  return fbb.CreateVector(out);
}

/// Blob layout of the builder's weights, honouring offset overrides.
std::vector<plan::BlobSource> layout(const std::vector<BWeight> &weights,
                                     uint64_t &total) {
  std::vector<plan::BlobSource> blobs;
  for (const BWeight &w : weights)
    blobs.push_back({w.bytes.size(), 0});
  total = plan::layoutBlobs(blobs);
  return blobs;
}

} // namespace

std::vector<uint64_t> sliceChecksums(const BWeight &w) {
  std::vector<uint64_t> sums;
  for (int64_t j = 0; j < w.shape[0]; ++j) {
    uint64_t at = w.slices.empty()
                      ? w.bytes.size() / uint64_t(w.shape[0]) * uint64_t(j)
                      : w.slices[size_t(j)].offset;
    uint64_t n = w.slices.empty() ? w.bytes.size() / uint64_t(w.shape[0])
                                  : w.slices[size_t(j)].size;
    sums.push_back(plan::hashBytes(w.bytes.data() + at, n));
  }
  return sums;
}

std::vector<uint8_t> PlanBuilder::flatbuffer() const {
  flatbuffers::FlatBufferBuilder fbb;
  uint64_t total = 0;
  std::vector<plan::BlobSource> blobs = layout(weights, total);
  std::vector<flatbuffers::Offset<moe_plan::Weight>> ws;
  for (size_t i = 0; i < weights.size(); ++i) {
    const BWeight &w = weights[i];
    std::vector<flatbuffers::Offset<moe_plan::WeightSlice>> slices;
    for (const BSlice &s : w.slices)
      slices.push_back(moe_plan::CreateWeightSlice(fbb, s.bits, s.groupSize,
                                                   s.scaleDType, s.zeroPoints,
                                                   s.offset, s.size));
    ws.push_back(moe_plan::CreateWeightDirect(
        fbb, w.name.c_str(), w.dtype, &w.shape,
        w.offset.value_or(blobs[i].offset), w.size.value_or(w.bytes.size()),
        w.checksum.value_or(plan::hashBytes(w.bytes.data(), w.bytes.size())),
        w.slices.empty() ? nullptr : &slices,
        w.sliceChecksums.empty() ? nullptr : &w.sliceChecksums));
  }
  std::vector<flatbuffers::Offset<moe_plan::Value>> vs;
  for (const BValue &v : values)
    vs.push_back(moe_plan::CreateValueDirect(fbb, v.dtype, &v.shape, v.kind,
                                             v.weight, v.input,
                                             v.name.c_str()));
  std::vector<flatbuffers::Offset<moe_plan::Step>> ss;
  for (const BStep &s : steps) {
    auto attrs = buildAttrs(fbb, s.attrs);
    auto kernel = s.kernel.empty() ? 0 : fbb.CreateString(s.kernel);
    auto ins = fbb.CreateVector(s.inputs);
    auto outs = fbb.CreateVector(s.outputs);
    ss.push_back(moe_plan::CreateStep(fbb, s.kind, kernel, ins, outs, attrs,
                                      s.device));
  }
  auto prog = moe_plan::CreateProgramDirect(fbb, programName.c_str(), &inputs,
                                            &outputs, &ss);
  auto meta = buildAttrs(fbb, metadata);
  auto plan = moe_plan::CreatePlan(fbb, version, fbb.CreateString(producer),
                                   fbb.CreateVector(vs), fbb.CreateVector(ws),
                                   prog, meta);
  moe_plan::FinishPlanBuffer(fbb, plan);
  return std::vector<uint8_t>(fbb.GetBufferPointer(),
                              fbb.GetBufferPointer() + fbb.GetSize());
}

rt::Status PlanBuilder::write(const std::string &path) const {
  std::vector<uint8_t> fb = flatbuffer();
  uint64_t total = 0;
  std::vector<plan::BlobSource> blobs = layout(weights, total);
  return plan::PlanFileWriter::write(
      path, fb.data(), fb.size(), blobs, total,
      [&](size_t i, uint8_t *dst) {
        if (!weights[i].bytes.empty())
          std::memcpy(dst, weights[i].bytes.data(), weights[i].bytes.size());
        return rt::Status::ok();
      });
}

std::vector<uint8_t> PlanBuilder::fileBytes() const {
  std::string path = tempPath("bytes");
  rt::Status st = write(path);
  EXPECT_TRUE(st.isOk()) << st.message();
  std::vector<uint8_t> bytes = readFile(path);
  ::unlink(path.c_str());
  return bytes;
}

std::string tempPath(const std::string &stem) {
  static std::atomic<int> counter{0};
  return testing::TempDir() + "moe-rt-" + std::to_string(::getpid()) + "-" +
         std::to_string(counter++) + "-" + stem;
}

void writeFile(const std::string &path, const std::vector<uint8_t> &bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char *>(bytes.data()),
          std::streamsize(bytes.size()));
}

std::vector<uint8_t> readFile(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f),
                              std::istreambuf_iterator<char>());
}

} // namespace moe::test
