//===- PlanEmitter.cpp - IR in plan form to a plan file -------------------===//
//
// Serialises the plan dialect one-to-one into runtime/schema/plan.fbs and
// writes the plan file (header, FlatBuffer, 64-byte aligned weight blobs)
// through the runtime's PlanFileWriter, so both sides share one definition
// of the container. Weight files are memory-mapped, never read whole.
//
//===----------------------------------------------------------------------===//

#include "compiler/PlanEmitter.h"

#include "dialects/plan/PlanDialect.h"
#include "kernels/cpu/Quant.h"
#include "passes/Evaluate.h"
#include "passes/Passes.h"
#include "passes/PlanTypes.h"
#include "runtime/PlanFile.h"
#include "runtime/PlanLoader.h"
#include "runtime/schema/plan_generated.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <cstring>

using namespace mlir;
namespace fb = flatbuffers;

namespace {

/// Bytes per element of a plan dtype.
int64_t dtypeSize(int64_t dtype) {
  switch (dtype) {
  case 0: // F32
  case 5: // I32
    return 4;
  case 1: // F16
  case 2: // BF16
    return 2;
  case 3: // F64
  case 4: // I64
    return 8;
  default: // I8, U8, I1
    return 1;
  }
}

/// Where the bytes of one weight blob come from.
struct BlobInfo {
  std::string name;
  int64_t dtype = 0;
  SmallVector<int64_t> shape;
  uint64_t elements = 0;
  uint64_t size = 0;
  std::unique_ptr<llvm::MemoryBuffer> file; // Mapped slice of a weight file.
  std::optional<int64_t> seed;
  double scale = 1.0;
  DenseElementsAttr constant;
  /// Packed (quantised) weights: one format per index of dimension 0, each
  /// slice a [rows, cols] matrix at sliceOffsets[i] in the blob.
  std::vector<::moe::kernels::cpu::QuantFormat> sliceFormats;
  std::vector<uint64_t> sliceOffsets, sliceSizes;
  int64_t sliceRows = 0, sliceCols = 0;
  /// EmitPlanOptions::dequantize: the slices' formats, applied and undone
  /// (the weight is written as plain f32 holding the dequantised values).
  std::vector<::moe::kernels::cpu::QuantFormat> roundTripFormats;

  /// plan.weight `shards` (dimension, halves, parts): the source has
  /// `sourceShape`, and is stored cut into `shardParts` slices per index of
  /// dimension 0.
  SmallVector<int64_t> sourceShape;
  int64_t shardDim = 0, shardHalves = 1, shardParts = 1;

  /// The bytes of a file or generated weight, in the stored layout (cut
  /// into tensor-parallel slices when shardParts > 1); `keep` holds them
  /// when they are not the mapped file's.
  const uint8_t *plain(std::vector<uint8_t> &keep) const {
    uint64_t bytes = elements * static_cast<uint64_t>(dtypeSize(dtype));
    // Copies (shards on dimension 0) come from 1/parts of the elements.
    uint64_t from = shardParts > 1 && shardDim == 0
                        ? elements / static_cast<uint64_t>(shardParts)
                        : elements;
    const uint8_t *src;
    if (file) {
      src = reinterpret_cast<const uint8_t *>(file->getBufferStart());
    } else {
      keep.assign(from * static_cast<uint64_t>(dtypeSize(dtype)), 0);
      mlir::moe::generateSeededWeights(*seed, scale, dtype, from, keep.data());
      src = keep.data();
    }
    if (shardParts <= 1)
      return src;
    // The stored layout: cut into slices, or (dimension 0) copies, whose
    // element count `elements` is already.
    std::vector<uint8_t> cut(bytes);
    mlir::moe::cutIntoSlices(src, cut.data(), sourceShape, dtypeSize(dtype),
                             shardDim, shardHalves, shardParts);
    keep = std::move(cut);
    return keep.data();
  }

  /// Writes exactly `size` bytes to dst (zeroed by the caller).
  void produce(uint8_t *dst) const {
    std::vector<uint8_t> keep;
    if (!roundTripFormats.empty()) {
      // Plain f32 written first, then each slice quantised and dequantised
      // in place: exactly the values the packed kernels compute with.
      std::memcpy(dst, plain(keep), size);
      float *w = reinterpret_cast<float *>(dst);
      std::vector<uint8_t> packed;
      for (size_t i = 0; i < roundTripFormats.size(); ++i) {
        const auto &f = roundTripFormats[i];
        if (f.bits == ::moe::kernels::cpu::kAbsentBits)
          continue; // pruned: its values are never read
        packed.assign(static_cast<size_t>(
                          ::moe::kernels::cpu::quantLayout(f, sliceRows,
                                                           sliceCols)
                              .totalBytes),
                      0);
        float *slice = w + i * sliceRows * sliceCols;
        ::moe::kernels::cpu::quantizeMatrix(slice, sliceRows, sliceCols, f,
                                            packed.data());
        for (int64_t r = 0; r < sliceRows; ++r)
          ::moe::kernels::cpu::dequantizeRow(packed.data(), f, sliceRows,
                                             sliceCols, r,
                                             slice + r * sliceCols);
      }
      return;
    }
    if (!sliceFormats.empty()) {
      // The f32 source, then each slice quantised into its place.
      const float *src = reinterpret_cast<const float *>(plain(keep));
      for (size_t i = 0; i < sliceFormats.size(); ++i)
        ::moe::kernels::cpu::quantizeMatrix(
            src + i * sliceRows * sliceCols, sliceRows, sliceCols,
            sliceFormats[i], dst + sliceOffsets[i]);
      return;
    }
    if (file || seed) {
      std::memcpy(dst, plain(keep), size);
    } else if (constant.getElementType().isInteger(1)) {
      uint64_t i = 0;
      for (bool b : constant.getValues<bool>())
        dst[i++] = b ? 1 : 0;
    } else {
      ArrayRef<char> raw = constant.getRawData();
      if (constant.isSplat()) {
        for (uint64_t i = 0; i < elements; ++i)
          std::memcpy(dst + i * raw.size(), raw.data(), raw.size());
      } else {
        std::memcpy(dst, raw.data(), size);
      }
    }
  }
};

class Emitter {
public:
  Emitter(ModuleOp module, const ::moe::compiler::EmitPlanOptions &options)
      : module(module), options(options) {}

  LogicalResult run();

private:
  LogicalResult addBlob(Operation *op, MemRefType type, BlobInfo info);
  FailureOr<func::FuncOp> findEntry();
  LogicalResult buildAttrs(Operation *op, DictionaryAttr dict,
                           std::vector<fb::Offset<moe_plan::Attr>> &out);
  uint32_t newValue(Value v, moe_plan::ValueKind kind, int32_t weight,
                    int32_t input, StringRef name);

  ModuleOp module;
  const ::moe::compiler::EmitPlanOptions &options;
  fb::FlatBufferBuilder fbb{1 << 16};
  DenseMap<Value, uint32_t> ids;
  std::vector<fb::Offset<moe_plan::Value>> values;
  std::vector<BlobInfo> blobs;
};

} // namespace

uint32_t Emitter::newValue(Value v, moe_plan::ValueKind kind, int32_t weight,
                           int32_t input, StringRef name) {
  auto type = cast<MemRefType>(v.getType());
  std::vector<int64_t> shape;
  for (int64_t d : type.getShape())
    shape.push_back(ShapedType::isDynamic(d) ? -1 : d);
  auto dtype = static_cast<moe_plan::DType>(
      *mlir::moe::getPlanDType(type.getElementType()));
  uint32_t id = static_cast<uint32_t>(values.size());
  values.push_back(moe_plan::CreateValueDirect(fbb, dtype, &shape, kind, weight,
                                               input, name.str().c_str()));
  ids[v] = id;
  return id;
}

/// Lays out the packed slices of a quantised weight (64-byte aligned).
static void packSlices(BlobInfo &blob, ArrayRef<int64_t> bits,
                       ArrayRef<int64_t> groups, bool f16Scales,
                       ArrayRef<bool> zeroPoints) {
  blob.sliceRows = blob.shape[1];
  blob.sliceCols = 1;
  for (int64_t d : ArrayRef<int64_t>(blob.shape).drop_front(2))
    blob.sliceCols *= d;
  uint64_t offset = 0;
  for (auto [i, b, g] : llvm::enumerate(bits, groups)) {
    bool zp = i < zeroPoints.size() && zeroPoints[i];
    ::moe::kernels::cpu::QuantFormat f{static_cast<int>(b), static_cast<int>(g),
                                       f16Scales, zp};
    uint64_t size = static_cast<uint64_t>(
        ::moe::kernels::cpu::quantLayout(f, blob.sliceRows, blob.sliceCols)
            .totalBytes);
    blob.sliceFormats.push_back(f);
    blob.sliceOffsets.push_back(offset);
    blob.sliceSizes.push_back(size);
    offset = ::moe::plan::alignBlob(offset + size);
  }
  blob.size = blob.sliceOffsets.back() + blob.sliceSizes.back();
}

LogicalResult Emitter::addBlob(Operation *op, MemRefType type, BlobInfo info) {
  std::optional<int64_t> dtype = mlir::moe::getPlanDType(type.getElementType());
  if (!dtype)
    return op->emitOpError("element type ")
           << type.getElementType() << " cannot be stored in a plan";
  info.dtype = *dtype;
  info.shape.assign(type.getShape().begin(), type.getShape().end());
  info.elements = static_cast<uint64_t>(type.getNumElements());
  info.size = info.elements * static_cast<uint64_t>(dtypeSize(*dtype));
  blobs.push_back(std::move(info));
  return success();
}

FailureOr<func::FuncOp> Emitter::findEntry() {
  SmallVector<func::FuncOp> funcs;
  for (auto f : module.getOps<func::FuncOp>())
    if (!f.isExternal())
      funcs.push_back(f);
  for (auto f : funcs)
    if (f.getSymName() == "main")
      return f;
  if (funcs.size() == 1)
    return funcs.front();
  return module.emitError("--emit-plan needs a function named `main` or "
                          "exactly one function; found ")
         << funcs.size();
}

/// An integer parameter; booleans (i1) are 0 or 1, not sign-extended to -1.
static int64_t intParam(IntegerAttr i) {
  return i.getType().isInteger(1) ? static_cast<int64_t>(i.getValue().isOne())
                                  : i.getValue().getSExtValue();
}

LogicalResult
Emitter::buildAttrs(Operation *op, DictionaryAttr dict,
                    std::vector<fb::Offset<moe_plan::Attr>> &out) {
  for (NamedAttribute named : dict) {
    std::string name = named.getName().str();
    Attribute a = named.getValue();
    if (auto i = dyn_cast<IntegerAttr>(a)) {
      out.push_back(moe_plan::CreateAttrDirect(
          fbb, name.c_str(), moe_plan::AttrKind::Int, intParam(i)));
    } else if (auto f = dyn_cast<FloatAttr>(a)) {
      out.push_back(moe_plan::CreateAttrDirect(fbb, name.c_str(),
                                               moe_plan::AttrKind::Float, 0,
                                               f.getValue().convertToDouble()));
    } else if (auto s = dyn_cast<StringAttr>(a)) {
      out.push_back(moe_plan::CreateAttrDirect(
          fbb, name.c_str(), moe_plan::AttrKind::String, 0, 0, nullptr, nullptr,
          s.str().c_str()));
    } else if (auto ints = dyn_cast<DenseI64ArrayAttr>(a)) {
      std::vector<int64_t> v(ints.asArrayRef().begin(),
                             ints.asArrayRef().end());
      out.push_back(moe_plan::CreateAttrDirect(
          fbb, name.c_str(), moe_plan::AttrKind::Ints, 0, 0, &v));
    } else if (auto floats = dyn_cast<DenseF64ArrayAttr>(a)) {
      std::vector<double> v(floats.asArrayRef().begin(),
                            floats.asArrayRef().end());
      out.push_back(moe_plan::CreateAttrDirect(
          fbb, name.c_str(), moe_plan::AttrKind::Floats, 0, 0, nullptr, &v));
    } else if (auto array = dyn_cast<ArrayAttr>(a)) {
      std::vector<int64_t> iv;
      std::vector<double> fv;
      for (Attribute e : array) {
        if (auto i = dyn_cast<IntegerAttr>(e))
          iv.push_back(intParam(i));
        else if (auto f = dyn_cast<FloatAttr>(e))
          fv.push_back(f.getValue().convertToDouble());
        else
          return op->emitOpError("parameter '")
                 << name << "' holds a non-numeric element";
      }
      if (!iv.empty() && !fv.empty())
        return op->emitOpError("parameter '")
               << name << "' mixes integers and floats";
      if (fv.empty())
        out.push_back(moe_plan::CreateAttrDirect(
            fbb, name.c_str(), moe_plan::AttrKind::Ints, 0, 0, &iv));
      else
        out.push_back(moe_plan::CreateAttrDirect(
            fbb, name.c_str(), moe_plan::AttrKind::Floats, 0, 0, nullptr, &fv));
    } else {
      return op->emitOpError("parameter '")
             << name << "' cannot be stored in a plan: " << a;
    }
  }
  return success();
}

static std::string resolvePath(StringRef file, StringRef baseDir) {
  if (llvm::sys::path::is_absolute(file))
    return file.str();
  SmallString<256> path(baseDir);
  llvm::sys::path::append(path, file);
  return std::string(path.str());
}

LogicalResult Emitter::run() {
  FailureOr<func::FuncOp> entryOr = findEntry();
  if (failed(entryOr))
    return failure();
  func::FuncOp entry = *entryOr;
  if (!entry.getBody().hasOneBlock())
    return entry.emitOpError("must have one block to be emitted as a plan");
  Block &body = entry.getBody().front();

  // Values the function returns take the name of their result
  // (`moe.name`, e.g. an ONNX graph output), so that moe-exec can tell.
  DenseMap<Value, std::string> resultNames;
  if (auto ret = dyn_cast<func::ReturnOp>(body.getTerminator()))
    for (auto [i, v] : llvm::enumerate(ret.getOperands()))
      if (auto n = entry.getResultAttrOfType<StringAttr>(unsigned(i),
                                                         "moe.name"))
        resultNames.try_emplace(v, n.str());
  auto tempName = [&](Value v) -> std::string {
    auto it = resultNames.find(v);
    return it == resultNames.end() ? std::string() : it->second;
  };

  std::vector<uint32_t> inputs, outputs;
  for (BlockArgument arg : body.getArguments()) {
    if (!isa<MemRefType>(arg.getType()) ||
        !mlir::moe::getPlanDType(
            cast<MemRefType>(arg.getType()).getElementType()))
      return entry.emitOpError("argument ")
             << arg.getArgNumber() << " of type " << arg.getType()
             << " cannot be a plan input";
    std::string name = "input_" + std::to_string(arg.getArgNumber());
    if (auto n =
            entry.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "moe.name"))
      name = n.str();
    inputs.push_back(newValue(arg, moe_plan::ValueKind::Input, -1,
                              static_cast<int32_t>(arg.getArgNumber()), name));
  }

  std::vector<fb::Offset<moe_plan::Step>> steps;
  std::vector<Operation *> stepOps;
  std::vector<int64_t> expertsPerLayer, topK;
  auto idsOf = [&](ValueRange vs) {
    std::vector<uint32_t> out;
    for (Value v : vs)
      out.push_back(ids.lookup(v));
    return out;
  };
  auto checkBuffers = [&](Operation *op, ValueRange vs) -> LogicalResult {
    for (Value v : vs) {
      auto t = dyn_cast<MemRefType>(v.getType());
      if (!t || !mlir::moe::getPlanDType(t.getElementType()))
        return op->emitOpError("result type ")
               << v.getType() << " cannot be stored in a plan";
    }
    return success();
  };

  for (Operation &op : body) {
    if (auto w = dyn_cast<plan::WeightOp>(op)) {
      BlobInfo info;
      info.name = w.getName().str();
      MemRefType type = w.getType();
      if (w.getFile()) {
        std::string path = resolvePath(*w.getFile(), options.baseDir);
        std::optional<int64_t> dtype =
            mlir::moe::getPlanDType(type.getElementType());
        uint64_t need = dtype ? static_cast<uint64_t>(type.getNumElements()) *
                                    dtypeSize(*dtype)
                              : 0;
        // A weight stored as copies (shards on dimension 0) reads one.
        if (std::optional<ArrayRef<int64_t>> shards = w.getShards();
            shards && (*shards)[0] == 0)
          need /= static_cast<uint64_t>((*shards)[2]);
        uint64_t fileSize = 0;
        if (std::error_code ec = llvm::sys::fs::file_size(path, fileSize))
          return w.emitOpError("weight '") << w.getName() << "': cannot open '"
                                           << path << "': " << ec.message();
        uint64_t offset = static_cast<uint64_t>(w.getOffset());
        if (offset > fileSize || need > fileSize - offset)
          return w.emitOpError("weight '")
                 << w.getName() << "' needs bytes [" << offset << ", "
                 << offset + need << ") but '" << path << "' has only "
                 << fileSize;
        auto buffer = llvm::MemoryBuffer::getFileSlice(path, need, offset,
                                                       /*IsVolatile=*/false);
        if (!buffer)
          return w.emitOpError("weight '")
                 << w.getName() << "': cannot read '" << path
                 << "': " << buffer.getError().message();
        info.file = std::move(*buffer);
      } else {
        info.seed = *w.getSeed();
        info.scale = w.getScale().convertToDouble();
      }
      if (std::optional<ArrayRef<int64_t>> shards = w.getShards()) {
        info.shardDim = (*shards)[0];
        info.shardHalves = (*shards)[1];
        info.shardParts = (*shards)[2];
        info.sourceShape.assign(type.getShape().begin(),
                                type.getShape().end());
        info.sourceShape[0] /= info.shardParts;
        if (info.shardDim > 0) // else copies: the other dims as they are
          info.sourceShape[size_t(info.shardDim)] *= info.shardParts;
      }
      int32_t index = static_cast<int32_t>(blobs.size());
      if (failed(addBlob(w, type, std::move(info))))
        return failure();
      if (auto bits = w.getBits()) {
        BlobInfo &blob = blobs.back();
        uint64_t plainSize = blob.size;
        packSlices(blob, *bits, *w.getGroupSizes(),
                   w.getQuantScale() == "f16",
                   w.getZeroPoints().value_or(ArrayRef<bool>()));
        if (options.dequantize) {
          // Keep the formats for produce(), store plain f32.
          blob.roundTripFormats = std::move(blob.sliceFormats);
          blob.sliceFormats.clear();
          blob.sliceOffsets.clear();
          blob.sliceSizes.clear();
          blob.size = plainSize;
        }
      }
      newValue(w.getResult(), moe_plan::ValueKind::Weight, index, -1,
               w.getName());
    } else if (auto c = dyn_cast<plan::ConstantOp>(op)) {
      auto dense = dyn_cast<DenseElementsAttr>(c.getValue());
      if (!dense)
        return c.emitOpError("only dense constants can be stored in a plan");
      BlobInfo info;
      info.name = "constant_" + std::to_string(blobs.size());
      info.constant = dense;
      int32_t index = static_cast<int32_t>(blobs.size());
      std::string name = info.name;
      if (failed(addBlob(c, c.getType(), std::move(info))))
        return failure();
      newValue(c.getResult(), moe_plan::ValueKind::Weight, index, -1, name);
    } else if (auto call = dyn_cast<plan::CallOp>(op)) {
      if (failed(checkBuffers(call, call.getResults())))
        return failure();
      std::vector<fb::Offset<moe_plan::Attr>> attrs;
      if (failed(buildAttrs(call, call.getParams(), attrs)))
        return failure();
      std::vector<uint32_t> in = idsOf(call.getArgs());
      std::vector<uint32_t> out;
      for (Value r : call.getResults())
        out.push_back(
            newValue(r, moe_plan::ValueKind::Temp, -1, -1, tempName(r)));
      auto device = call.getDevice() == plan::Device::cuda
                        ? moe_plan::Device::CUDA
                        : moe_plan::Device::CPU;
      stepOps.push_back(&op);
      steps.push_back(moe_plan::CreateStepDirect(fbb, moe_plan::StepKind::Call,
                                                 call.getKernel().str().c_str(),
                                                 &in, &out, &attrs, device));
      if (call.getKernel() == "moe.experts")
        if (auto e = call.getParams().getAs<IntegerAttr>("num_experts"))
          expertsPerLayer.push_back(e.getInt());
      if (call.getKernel() == "moe.route")
        if (auto k = call.getParams().getAs<IntegerAttr>("k"))
          topK.push_back(k.getInt());
    } else if (auto copy = dyn_cast<plan::CopyOp>(op)) {
      std::vector<uint32_t> in = idsOf(copy->getOperands());
      std::vector<uint32_t> out = {
          newValue(copy.getResult(), moe_plan::ValueKind::Temp, -1, -1,
                   tempName(copy.getResult()))};
      auto device = copy.getDevice() == plan::Device::cuda
                        ? moe_plan::Device::CUDA
                        : moe_plan::Device::CPU;
      stepOps.push_back(&op);
      steps.push_back(moe_plan::CreateStepDirect(
          fbb, moe_plan::StepKind::Copy, "", &in, &out, nullptr, device));
    } else if (auto free = dyn_cast<plan::FreeOp>(op)) {
      std::vector<uint32_t> in = idsOf(free.getBuffers());
      stepOps.push_back(&op);
      steps.push_back(moe_plan::CreateStepDirect(fbb, moe_plan::StepKind::Free,
                                                 "", &in, nullptr, nullptr));
    } else if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      outputs = idsOf(ret.getOperands());
    } else {
      return op.emitOpError("is not a plan step; run moe-lower-to-plan "
                            "before --emit-plan");
    }
  }

  // Blob layout and checksums.
  std::vector<::moe::plan::BlobSource> layout(blobs.size());
  for (size_t i = 0; i < blobs.size(); ++i)
    layout[i].size = blobs[i].size;
  uint64_t blobsSize = ::moe::plan::layoutBlobs(layout);
  std::vector<fb::Offset<moe_plan::Weight>> weights;
  std::vector<uint8_t> scratch;
  for (size_t i = 0; i < blobs.size(); ++i) {
    const BlobInfo &b = blobs[i];
    scratch.assign(b.size, 0);
    b.produce(scratch.data());
    uint64_t checksum = ::moe::plan::hashBytes(scratch.data(), b.size);
    std::vector<int64_t> shape(b.shape.begin(), b.shape.end());
    std::vector<fb::Offset<moe_plan::WeightSlice>> slices;
    for (size_t j = 0; j < b.sliceFormats.size(); ++j) {
      const auto &f = b.sliceFormats[j];
      slices.push_back(moe_plan::CreateWeightSlice(
          fbb, static_cast<uint8_t>(f.bits), static_cast<uint16_t>(f.groupSize),
          f.f16Scales ? moe_plan::DType::F16 : moe_plan::DType::F32,
          f.zeroPoints, b.sliceOffsets[j], b.sliceSizes[j]));
    }
    // Expert banks ([E, ...], rank 3 and up) also get a checksum per
    // expert, so that a rank can check only the experts it reads.
    std::vector<uint64_t> sliceSums;
    if (shape.size() >= 3 && shape[0] > 1) {
      for (int64_t j = 0; j < shape[0]; ++j) {
        uint64_t at = b.sliceFormats.empty()
                          ? b.size / uint64_t(shape[0]) * uint64_t(j)
                          : b.sliceOffsets[size_t(j)];
        uint64_t n = b.sliceFormats.empty() ? b.size / uint64_t(shape[0])
                                            : b.sliceSizes[size_t(j)];
        sliceSums.push_back(::moe::plan::hashBytes(scratch.data() + at, n));
      }
    }
    weights.push_back(moe_plan::CreateWeightDirect(
        fbb, b.name.c_str(), static_cast<moe_plan::DType>(b.dtype), &shape,
        layout[i].offset, b.size, checksum,
        slices.empty() ? nullptr : &slices,
        sliceSums.empty() ? nullptr : &sliceSums));
  }

  std::vector<fb::Offset<moe_plan::Attr>> metadata;
  metadata.push_back(
      moe_plan::CreateAttrDirect(fbb, "moe_layers", moe_plan::AttrKind::Int,
                                 static_cast<int64_t>(expertsPerLayer.size())));
  if (!expertsPerLayer.empty())
    metadata.push_back(moe_plan::CreateAttrDirect(fbb, "experts_per_layer",
                                                  moe_plan::AttrKind::Ints, 0,
                                                  0, &expertsPerLayer));
  if (!topK.empty())
    metadata.push_back(moe_plan::CreateAttrDirect(
        fbb, "top_k", moe_plan::AttrKind::Ints, 0, 0, &topK));
  // moe-place-experts' predictions, for --describe.
  std::vector<double> predictedUs;
  if (auto placement = module->getAttrOfType<DictionaryAttr>("moe.placement"))
    if (auto us = placement.getAs<DenseF64ArrayAttr>("predicted_layer_us"))
      predictedUs.assign(us.asArrayRef().begin(), us.asArrayRef().end());
  if (!predictedUs.empty())
    metadata.push_back(moe_plan::CreateAttrDirect(
        fbb, "predicted_layer_us", moe_plan::AttrKind::Floats, 0, 0, nullptr,
        &predictedUs));
  if (auto partition = module->getAttrOfType<StringAttr>("moe.partition"))
    metadata.push_back(moe_plan::CreateAttrDirect(
        fbb, "partition", moe_plan::AttrKind::String, 0, 0, nullptr, nullptr,
        partition.getValue().str().c_str()));
  if (auto id = module->getAttrOfType<StringAttr>("moe.model_id"))
    metadata.push_back(moe_plan::CreateAttrDirect(
        fbb, "model_id", moe_plan::AttrKind::String, 0, 0, nullptr, nullptr,
        id.getValue().str().c_str()));
  if (!options.source.empty())
    metadata.push_back(moe_plan::CreateAttrDirect(
        fbb, "source", moe_plan::AttrKind::String, 0, 0, nullptr, nullptr,
        options.source.c_str()));

  auto program = moe_plan::CreateProgramDirect(
      fbb, entry.getSymName().str().c_str(), &inputs, &outputs, &steps);
  auto planOffset = moe_plan::CreatePlanDirect(
      fbb, ::moe::plan::kPlanFormatVersion, options.producer.c_str(), &values,
      &weights, program, &metadata);
  moe_plan::FinishPlanBuffer(fbb, planOffset);

  // Written under a temporary name, checked by the runtime's own loader and
  // only then renamed: a plan that moe-exec would reject is never left.
  std::string partial = options.path + ".partial";
  ::moe::rt::Status status = ::moe::plan::PlanFileWriter::write(
      partial, fbb.GetBufferPointer(), fbb.GetSize(), layout, blobsSize,
      [&](size_t i, uint8_t *dst) {
        blobs[i].produce(dst);
        return ::moe::rt::Status::ok();
      });
  if (!status.isOk())
    return module.emitError("cannot write plan: ") << status.message();
  if (options.verify) {
    ::moe::rt::LoadOptions load;
    load.verifyWeights = false; // Checksums were computed from these bytes.
    auto loaded = ::moe::rt::loadPlan(partial, load);
    if (!loaded.isOk()) {
      llvm::sys::fs::remove(partial);
      // Point at the op of the failing step ("<path>: step N `k`: ...").
      StringRef message = loaded.status().message();
      message.consume_front(partial);
      message.consume_front(": ");
      Operation *at = module;
      unsigned step;
      StringRef rest = message;
      if (rest.consume_front("step ") && !rest.consumeInteger(10, step) &&
          step < stepOps.size())
        at = stepOps[step];
      return at->emitError("the emitted plan does not pass the runtime's "
                           "verifier: ")
             << message;
    }
  }
  if (std::error_code ec = llvm::sys::fs::rename(partial, options.path)) {
    llvm::sys::fs::remove(partial);
    return module.emitError("cannot write plan '")
           << options.path << "': " << ec.message();
  }
  return success();
}

static LogicalResult
emitPlanImpl(ModuleOp module, const ::moe::compiler::EmitPlanOptions &options) {
  return Emitter(module, options).run();
}

static LogicalResult
emitPlanImpl(ModuleOp module, const ::moe::compiler::EmitPlanOptions &options);

namespace {
/// True when some function still computes on tensors.
bool needsLowering(ModuleOp module) {
  for (auto f : module.getOps<func::FuncOp>())
    for (Type t : f.getFunctionType().getInputs())
      if (isa<TensorType>(t))
        return true;
  for (auto f : module.getOps<func::FuncOp>())
    for (Type t : f.getFunctionType().getResults())
      if (isa<TensorType>(t))
        return true;
  return false;
}

struct EmitPlanPass
    : public PassWrapper<EmitPlanPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(EmitPlanPass)
  explicit EmitPlanPass(::moe::compiler::EmitPlanOptions options)
      : options(std::move(options)) {}
  StringRef getArgument() const override { return "moe-emit-plan"; }
  StringRef getDescription() const override {
    return "write the module as a plan file";
  }
  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<plan::PlanDialect>();
  }
  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (needsLowering(module)) {
      OpPassManager pm(ModuleOp::getOperationName());
      pm.addPass(mlir::moe::createLowerToPlan());
      if (failed(runPipeline(pm, module)))
        return signalPassFailure();
    }
    if (failed(emitPlanImpl(module, options)))
      signalPassFailure();
  }
  ::moe::compiler::EmitPlanOptions options;
};
} // namespace

namespace moe::compiler {
mlir::LogicalResult emitPlan(mlir::ModuleOp module,
                             const EmitPlanOptions &options) {
  return emitPlanImpl(module, options);
}

std::unique_ptr<mlir::Pass> createEmitPlanPass(EmitPlanOptions options) {
  return std::make_unique<EmitPlanPass>(std::move(options));
}
} // namespace moe::compiler
