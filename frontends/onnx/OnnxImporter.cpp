//===- OnnxImporter.cpp - ONNX ModelProto to nn/moe IR --------------------===//
//
// One pass over the (topologically sorted) graph. Each node is looked up in
// the op table by (domain, op type) and the opset the model imports for that
// domain; its handler emits `nn` ops through emit(), which
//  - computes result types with the runtime kernel's own shape function
//    (the kernel of the same name, docs/onnx-import.md), so the importer and
//    the runtime agree on every shape rule, and
//  - folds the op at import time with the runtime kernel when all operands
//    are small known constants (shape arithmetic: Shape of a static tensor,
//    Concat of constants, ...), so the plan only computes what is dynamic.
//
//===----------------------------------------------------------------------===//

#include "frontends/onnx/OnnxImporter.h"
#include "frontends/onnx/WireScan.h"

#include "dialects/moe/MoeDialect.h"
#include "dialects/nn/NNDialect.h"

#include "passes/Evaluate.h"
#include "runtime/Kernel.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <onnx/defs/parser.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <functional>
#include <limits>

using namespace mlir;
namespace rt = ::moe::rt;

namespace moe::onnx_frontend {

bool isOnnxPath(llvm::StringRef path) {
  return path.ends_with(".onnx") || path.ends_with(".onnxtext");
}

void loadImportDialects(MLIRContext &ctx) {
  ctx.loadDialect<func::FuncDialect, arith::ArithDialect, nn::NNDialect,
                  mlir::moe::MoeDialect>();
}

namespace {

/// Folded results and inlined constants up to this many elements stay in
/// the IR as `arith.constant`; larger ones are computed at run time.
constexpr int64_t kFoldLimit = 4096;
/// Integer initializers up to this many elements are inlined (shapes, axes,
/// indices); float initializers up to kInlineFloat elements (scalars).
constexpr int64_t kInlineInt = 4096;
constexpr int64_t kInlineFloat = 4;
/// The default-domain opsets the op table was written and tested for.
constexpr int64_t kMinOpset = 13;
constexpr int64_t kMaxOpset = 20;

/// A value of the graph being imported.
struct Val {
  Value value;
  RankedTensorType type;
  /// Known at import time (small constants and folded results).
  DenseElementsAttr constant;
  bool present() const { return static_cast<bool>(value); }
};

//===----------------------------------------------------------------------===//
// Types and constants
//===----------------------------------------------------------------------===//

Type elementTypeFor(MLIRContext *ctx, int32_t onnxType) {
  std::optional<rt::DType> d;
  switch (onnxType) {
  case onnx::TensorProto::FLOAT:
    d = rt::DType::F32;
    break;
  case onnx::TensorProto::FLOAT16:
    d = rt::DType::F16;
    break;
  case onnx::TensorProto::BFLOAT16:
    d = rt::DType::BF16;
    break;
  case onnx::TensorProto::DOUBLE:
    d = rt::DType::F64;
    break;
  case onnx::TensorProto::INT64:
    d = rt::DType::I64;
    break;
  case onnx::TensorProto::INT32:
    d = rt::DType::I32;
    break;
  case onnx::TensorProto::INT8:
    d = rt::DType::I8;
    break;
  case onnx::TensorProto::UINT8:
    d = rt::DType::U8;
    break;
  case onnx::TensorProto::BOOL:
    d = rt::DType::I1;
    break;
  default:
    return nullptr;
  }
  return mlir::moe::elementTypeOf(ctx, *d);
}

std::string onnxTypeName(int32_t t) {
  if (onnx::TensorProto_DataType_IsValid(t))
    return onnx::TensorProto_DataType_Name(
        static_cast<onnx::TensorProto_DataType>(t));
  return "type " + std::to_string(t);
}

rt::Shape toRtShape(ArrayRef<int64_t> shape) {
  rt::Shape s;
  for (int64_t d : shape)
    s.push_back(ShapedType::isDynamic(d) ? -1 : d);
  return s;
}

SmallVector<int64_t> toMlirShape(const rt::Shape &shape) {
  SmallVector<int64_t> s;
  for (int64_t d : shape)
    s.push_back(d < 0 ? ShapedType::kDynamic : d);
  return s;
}

DenseElementsAttr denseFromBytes(RankedTensorType type,
                                 ArrayRef<uint8_t> bytes) {
  if (type.getElementType().isInteger(1)) {
    SmallVector<bool> values;
    for (uint8_t v : bytes)
      values.push_back(v != 0);
    return DenseElementsAttr::get(type, values);
  }
  return DenseElementsAttr::getFromRawBuffer(
      type, ArrayRef<char>(reinterpret_cast<const char *>(bytes.data()),
                           bytes.size()));
}

//===----------------------------------------------------------------------===//
// The importer
//===----------------------------------------------------------------------===//

class Importer;
using Inputs = SmallVector<Val>;

/// What a handler sees of one node.
struct NodeCtx {
  const onnx::NodeProto &node;
  size_t index;
  int64_t opset;
  Inputs inputs;

  const Val &in(size_t i) const { return inputs[i]; }
  bool has(size_t i) const { return i < inputs.size() && inputs[i].present(); }

  const onnx::AttributeProto *attr(StringRef name) const {
    for (const onnx::AttributeProto &a : node.attribute())
      if (a.name() == name)
        return &a;
    return nullptr;
  }
  int64_t getInt(StringRef name, int64_t def) const {
    const onnx::AttributeProto *a = attr(name);
    return a ? a->i() : def;
  }
  double getFloat(StringRef name, double def) const {
    const onnx::AttributeProto *a = attr(name);
    return a ? a->f() : def;
  }
  std::string getString(StringRef name, StringRef def) const {
    const onnx::AttributeProto *a = attr(name);
    return a ? a->s() : def.str();
  }
  std::optional<SmallVector<int64_t>> getInts(StringRef name) const {
    const onnx::AttributeProto *a = attr(name);
    if (!a)
      return std::nullopt;
    return SmallVector<int64_t>(a->ints().begin(), a->ints().end());
  }
};

using Handler = std::function<LogicalResult(Importer &, const NodeCtx &)>;

struct OpEntry {
  std::string domain;
  std::string opType;
  int64_t minOpset, maxOpset;
  Handler handler;
};

class Importer {
public:
  Importer(MLIRContext &ctx, std::string modelPath,
           const onnx::ModelProto &model, const RawDataMap *raw)
      : ctx_(ctx), b_(&ctx), modelPath_(std::move(modelPath)),
        modelDir_(llvm::sys::path::parent_path(modelPath_).str()),
        fileName_(llvm::sys::path::filename(modelPath_).str()), model_(model),
        raw_(raw) {
    if (modelDir_.empty())
      modelDir_ = ".";
  }

  llvm::Expected<OwningOpRef<ModuleOp>> run();

  // --- used by the handlers ---
  MLIRContext *ctx() { return &ctx_; }
  Builder &builder() { return b_; }

  /// Reports an error about the current node; always returns failure().
  LogicalResult fail(const Twine &message) {
    if (error_.empty())
      error_ = (where_ + message).str();
    return failure();
  }

  /// Emits op `name` (an nn kernel of the same name) on `operands`; result
  /// types from the kernel's shape function unless given; folded when every
  /// operand is a known constant.
  FailureOr<SmallVector<Val>> emit(StringRef name, ArrayRef<Val> operands,
                                   ArrayRef<NamedAttribute> attrs = {},
                                   ArrayRef<NamedAttribute> rtOnly = {},
                                   ArrayRef<Type> types = {});
  FailureOr<Val> emit1(StringRef name, ArrayRef<Val> operands,
                       ArrayRef<NamedAttribute> attrs = {},
                       ArrayRef<NamedAttribute> rtOnly = {},
                       ArrayRef<Type> types = {}) {
    FailureOr<SmallVector<Val>> r = emit(name, operands, attrs, rtOnly, types);
    if (failed(r))
      return failure();
    return (*r)[0];
  }

  Val constant(DenseElementsAttr value);
  Val constI64(ArrayRef<int64_t> values, bool scalar = false);
  /// A rank-0 constant of `elementType` holding `v`.
  Val constScalar(Type elementType, double v);

  NamedAttribute named(StringRef n, Attribute a) {
    return b_.getNamedAttr(n, a);
  }
  NamedAttribute i64(StringRef n, int64_t v) {
    return named(n, b_.getI64IntegerAttr(v));
  }
  NamedAttribute f64(StringRef n, double v) {
    return named(n, b_.getF64FloatAttr(v));
  }
  NamedAttribute str(StringRef n, StringRef v) {
    return named(n, b_.getStringAttr(v));
  }
  NamedAttribute ints(StringRef n, ArrayRef<int64_t> v) {
    return named(n, b_.getDenseI64ArrayAttr(v));
  }

  void define(const onnx::NodeProto &node, size_t i, Val v) {
    if (i < size_t(node.output_size()) && !node.output(int(i)).empty())
      values_[node.output(int(i))] = v;
  }

  /// The values of a constant operand as int64 (fails unless known).
  FailureOr<SmallVector<int64_t>> constInts(const Val &v, StringRef what);

  /// Imports a TensorProto (initializer or Constant value).
  FailureOr<Val> importTensor(const onnx::TensorProto &t,
                              std::optional<ByteRange> raw, StringRef name);

  OpBuilder &opBuilder() { return ob_; }
  Location loc() { return loc_; }
  const std::string &modelDir() const { return modelDir_; }

private:
  LogicalResult importGraph(func::FuncOp func);
  FailureOr<DenseElementsAttr> tensorData(const onnx::TensorProto &t,
                                          RankedTensorType type,
                                          std::optional<ByteRange> raw);
  FailureOr<Val> externalTensor(const onnx::TensorProto &t,
                                RankedTensorType type, StringRef name);
  FailureOr<RankedTensorType> valueType(const onnx::ValueInfoProto &v);

  MLIRContext &ctx_;
  Builder b_;
  OpBuilder ob_{&ctx_};
  Location loc_ = UnknownLoc::get(&ctx_);
  std::string modelPath_, modelDir_, fileName_;
  const onnx::ModelProto &model_;
  const RawDataMap *raw_;
  std::string where_;
  std::string error_;
  llvm::StringMap<Val> values_;
  llvm::StringMap<int64_t> opsets_;
};

//===----------------------------------------------------------------------===//
// emit() and constants
//===----------------------------------------------------------------------===//

FailureOr<SmallVector<Val>> Importer::emit(StringRef name,
                                           ArrayRef<Val> operands,
                                           ArrayRef<NamedAttribute> attrs,
                                           ArrayRef<NamedAttribute> rtOnly,
                                           ArrayRef<Type> types) {
  const rt::KernelDef *def = rt::KernelRegistry::builtin().find(name.str());
  if (!def)
    return fail("internal: no runtime kernel `" + name + "`");
  SmallVector<NamedAttribute> all(attrs.begin(), attrs.end());
  all.append(rtOnly.begin(), rtOnly.end());
  rt::Attrs rtAttrs =
      mlir::moe::toRuntimeAttrs(DictionaryAttr::get(&ctx_, all));

  std::vector<rt::TensorType> inTypes;
  bool allConst = true;
  for (const Val &v : operands) {
    std::optional<rt::DType> d = mlir::moe::runtimeDType(v.type.getElementType());
    if (!d)
      return fail(name + ": an operand has an unsupported element type");
    inTypes.push_back({*d, toRtShape(v.type.getShape()), false});
    allConst &= static_cast<bool>(v.constant) &&
                v.type.getNumElements() <= kFoldLimit;
  }

  // Fold with the runtime kernel.
  if (allConst && !name.starts_with("moe.")) {
    std::vector<rt::Tensor> tensors;
    for (const Val &v : operands) {
      FailureOr<rt::Tensor> t = mlir::moe::tensorFromAttr(v.constant);
      if (failed(t))
        return fail(name + ": cannot fold a constant operand");
      tensors.push_back(std::move(*t));
    }
    rt::StatusOr<std::vector<rt::Tensor>> out =
        rt::KernelRegistry::runCpu(*def, std::move(tensors), rtAttrs);
    if (!out.isOk())
      return fail(name + ": " + out.status().message());
    bool small = true;
    for (const rt::Tensor &t : *out)
      small &= t.numElements() <= kFoldLimit;
    if (small) {
      SmallVector<Val> results;
      for (size_t i = 0; i < out->size(); ++i) {
        const rt::Tensor &t = (*out)[i];
        Type elem = mlir::moe::elementTypeOf(&ctx_, t.dtype());
        // A result type given by the caller wins for the element type.
        if (i < types.size())
          elem = cast<RankedTensorType>(types[i]).getElementType();
        auto type = RankedTensorType::get(toMlirShape(t.shape()), elem);
        const auto *p = static_cast<const uint8_t *>(t.data());
        results.push_back(constant(
            denseFromBytes(type, ArrayRef<uint8_t>(p, t.byteSize()))));
      }
      return results;
    }
  }

  SmallVector<Type> resultTypes(types.begin(), types.end());
  if (resultTypes.empty()) {
    rt::StatusOr<std::vector<rt::TensorType>> inferred =
        def->infer(inTypes, rtAttrs);
    if (!inferred.isOk())
      return fail(name + ": " + inferred.status().message());
    for (const rt::TensorType &t : *inferred)
      resultTypes.push_back(RankedTensorType::get(toMlirShape(t.shape),
                                                  mlir::moe::elementTypeOf(&ctx_, t.dtype)));
  }
  // A reshape to the operand's own static type is the operand.
  if ((name == "nn.reshape" || name == "nn.squeeze" ||
       name == "nn.unsqueeze" || name == "nn.flatten") &&
      resultTypes.size() == 1 && resultTypes[0] == operands[0].type &&
      operands[0].type.hasStaticShape())
    return SmallVector<Val>{operands[0]};
  OperationState state(loc_, name);
  for (const Val &v : operands)
    state.addOperands(v.value);
  state.addTypes(resultTypes);
  state.addAttributes(attrs);
  Operation *op = ob_.create(state);
  SmallVector<Val> results;
  for (Value r : op->getResults())
    results.push_back(Val{r, cast<RankedTensorType>(r.getType()), {}});
  return results;
}

Val Importer::constant(DenseElementsAttr value) {
  auto c = ob_.create<arith::ConstantOp>(loc_, value);
  return Val{c.getResult(), cast<RankedTensorType>(value.getType()), value};
}

Val Importer::constI64(ArrayRef<int64_t> values, bool scalar) {
  auto type = RankedTensorType::get(
      scalar ? ArrayRef<int64_t>{} : ArrayRef<int64_t>{int64_t(values.size())},
      b_.getI64Type());
  return constant(DenseElementsAttr::get(type, values));
}

Val Importer::constScalar(Type elementType, double v) {
  auto type = RankedTensorType::get({}, elementType);
  if (isa<FloatType>(elementType))
    return constant(DenseElementsAttr::get(
        type, ArrayRef<Attribute>{b_.getFloatAttr(elementType, v)}));
  if (elementType.isInteger(1))
    return constant(DenseElementsAttr::get(type, ArrayRef<bool>{v != 0}));
  return constant(DenseElementsAttr::get(
      type, ArrayRef<Attribute>{
                b_.getIntegerAttr(elementType, static_cast<int64_t>(v))}));
}

FailureOr<SmallVector<int64_t>> Importer::constInts(const Val &v,
                                                    StringRef what) {
  if (!v.constant)
    return fail(what + " must be a constant (computed at run time here)");
  SmallVector<int64_t> out;
  Type elem = v.type.getElementType();
  if (!elem.isInteger(64) && !elem.isInteger(32))
    return fail(what + " must be an integer tensor");
  for (APInt x : v.constant.getValues<APInt>())
    out.push_back(x.getSExtValue());
  return out;
}

//===----------------------------------------------------------------------===//
// Tensors: initializers and Constant values
//===----------------------------------------------------------------------===//

FailureOr<DenseElementsAttr>
Importer::tensorData(const onnx::TensorProto &t, RankedTensorType type,
                     std::optional<ByteRange> raw) {
  int64_t n = type.getNumElements();
  Type elem = type.getElementType();
  size_t elemSize = elem.isInteger(1) ? 1 : (elem.getIntOrFloatBitWidth() / 8);
  if (t.has_raw_data()) {
    const std::string &bytes = t.raw_data();
    if (bytes.size() != size_t(n) * elemSize)
      return fail("tensor '" + t.name() + "' has " +
                  std::to_string(bytes.size()) + " bytes of raw_data, its " +
                  "type needs " + std::to_string(size_t(n) * elemSize));
    return denseFromBytes(
        type, ArrayRef<uint8_t>(
                  reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size()));
  }
  (void)raw;
  auto count = [&](int size) -> LogicalResult {
    if (size == n)
      return success();
    return fail("tensor '" + t.name() + "' holds " + std::to_string(size) +
                " values, its shape needs " + std::to_string(n));
  };
  if (elem.isF32()) {
    if (failed(count(t.float_data_size())))
      return failure();
    return DenseElementsAttr::get(
        type, ArrayRef<float>(t.float_data().data(), t.float_data_size()));
  }
  if (elem.isF64()) {
    if (failed(count(t.double_data_size())))
      return failure();
    return DenseElementsAttr::get(
        type, ArrayRef<double>(t.double_data().data(), t.double_data_size()));
  }
  if (elem.isInteger(64)) {
    if (failed(count(t.int64_data_size())))
      return failure();
    return DenseElementsAttr::get(
        type, ArrayRef<int64_t>(t.int64_data().data(), t.int64_data_size()));
  }
  // int32_data carries i32, i8, u8, bool, f16 and bf16 (as bit patterns).
  if (failed(count(t.int32_data_size())))
    return failure();
  std::vector<uint8_t> bytes;
  for (int32_t v : t.int32_data())
    for (size_t k = 0; k < elemSize; ++k)
      bytes.push_back(uint8_t(uint32_t(v) >> (8 * k)));
  return denseFromBytes(type, bytes);
}

FailureOr<Val> Importer::externalTensor(const onnx::TensorProto &t,
                                        RankedTensorType type,
                                        StringRef name) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const onnx::StringStringEntryProto &e : t.external_data()) {
    if (e.key() == "location")
      location = e.value();
    else if (e.key() == "offset" || e.key() == "length") {
      char *end = nullptr;
      long long v = std::strtoll(e.value().c_str(), &end, 10);
      if (e.value().empty() || *end || v < 0)
        return fail("tensor '" + name + "': external data " + e.key() +
                    " '" + e.value() + "' is not a non-negative integer");
      (e.key() == "offset" ? offset : length) = v;
    }
  }
  if (location.empty())
    return fail("tensor '" + name + "': external data without a location");
  // Confine the path to the model's directory.
  if (llvm::sys::path::is_absolute(location) ||
      llvm::any_of(llvm::make_range(llvm::sys::path::begin(location),
                                    llvm::sys::path::end(location)),
                   [](StringRef c) { return c == ".."; }))
    return fail("tensor '" + name + "': external data location '" + location +
                "' leaves the model's directory");
  SmallString<256> path(modelDir_);
  llvm::sys::path::append(path, location);
  SmallString<256> realDir, realFile;
  if (llvm::sys::fs::real_path(modelDir_, realDir) ||
      llvm::sys::fs::real_path(path, realFile))
    return fail("tensor '" + name + "': external data file '" + location +
                "' is missing");
  if (!StringRef(realFile).starts_with((realDir + "/").str()))
    return fail("tensor '" + name + "': external data location '" + location +
                "' resolves outside the model's directory");
  uint64_t fileSize = 0;
  if (llvm::sys::fs::file_size(realFile, fileSize))
    return fail("tensor '" + name + "': cannot read external data file '" +
                location + "'");
  Type elem = type.getElementType();
  uint64_t need = uint64_t(type.getNumElements()) *
                  (elem.isInteger(1) ? 1 : elem.getIntOrFloatBitWidth() / 8);
  if (length >= 0 && uint64_t(length) != need)
    return fail("tensor '" + name + "': external data length " +
                std::to_string(length) + " does not match its type (" +
                std::to_string(need) + " bytes)");
  if (uint64_t(offset) > fileSize || need > fileSize - uint64_t(offset))
    return fail("tensor '" + name + "': external data file '" + location +
                "' is too short (" + std::to_string(fileSize) + " bytes, " +
                "needs " + std::to_string(offset + need) + ")");
  auto w = ob_.create<nn::WeightOp>(loc_, type, b_.getStringAttr(name),
                                    b_.getStringAttr(location),
                                    b_.getI64IntegerAttr(offset), nullptr,
                                    b_.getF64FloatAttr(1.0));
  return Val{w.getResult(), type, {}};
}

FailureOr<Val> Importer::importTensor(const onnx::TensorProto &t,
                                      std::optional<ByteRange> raw,
                                      StringRef name) {
  Type elem = elementTypeFor(&ctx_, t.data_type());
  if (!elem)
    return fail("tensor '" + name + "' has element type " +
                onnxTypeName(t.data_type()) + ", which is not supported");
  SmallVector<int64_t> dims;
  for (int64_t d : t.dims()) {
    if (d < 0)
      return fail("tensor '" + name + "' has a negative dimension");
    dims.push_back(d);
  }
  auto type = RankedTensorType::get(dims, elem);
  int64_t n = 1;
  for (int64_t d : dims)
    if (__builtin_mul_overflow(n, d, &n) || n > (int64_t(1) << 40))
      return fail("tensor '" + name + "' is too large");
  if (t.data_location() == onnx::TensorProto::EXTERNAL)
    return externalTensor(t, type, name);
  bool integer = isa<IntegerType>(elem);
  bool inline_ = integer ? n <= kInlineInt : n <= kInlineFloat;
  if (!inline_ && raw && t.has_raw_data()) {
    Type e = elem;
    uint64_t need =
        uint64_t(n) * (e.isInteger(1) ? 1 : e.getIntOrFloatBitWidth() / 8);
    if (raw->size != need)
      return fail("tensor '" + name + "' has " + std::to_string(raw->size) +
                  " bytes of raw_data, its type needs " + std::to_string(need));
    auto w = ob_.create<nn::WeightOp>(
        loc_, type, b_.getStringAttr(name), b_.getStringAttr(fileName_),
        b_.getI64IntegerAttr(int64_t(raw->offset)), nullptr,
        b_.getF64FloatAttr(1.0));
    return Val{w.getResult(), type, {}};
  }
  // Small tensors, and tensors stored in typed fields (which have no byte
  // range to refer to), are inlined.
  FailureOr<DenseElementsAttr> data = tensorData(t, type, raw);
  if (failed(data))
    return failure();
  return constant(*data);
}

FailureOr<RankedTensorType>
Importer::valueType(const onnx::ValueInfoProto &v) {
  if (!v.type().has_tensor_type())
    return fail("graph input/output '" + v.name() + "' is not a tensor");
  const onnx::TypeProto_Tensor &tt = v.type().tensor_type();
  Type elem = elementTypeFor(&ctx_, tt.elem_type());
  if (!elem)
    return fail("graph input/output '" + v.name() + "' has element type " +
                onnxTypeName(tt.elem_type()) + ", which is not supported");
  if (!tt.has_shape())
    return fail("graph input/output '" + v.name() +
                "' has no shape (its rank must be known)");
  SmallVector<int64_t> dims;
  for (const onnx::TensorShapeProto_Dimension &d : tt.shape().dim())
    dims.push_back(d.has_dim_value() && d.dim_value() >= 0
                       ? d.dim_value()
                       : ShapedType::kDynamic);
  return RankedTensorType::get(dims, elem);
}

//===----------------------------------------------------------------------===//
// Op handlers
//===----------------------------------------------------------------------===//

/// A handler that maps a node 1:1 onto kernel `name` with its inputs.
Handler direct(std::string name) {
  return [name](Importer &im, const NodeCtx &n) -> LogicalResult {
    FailureOr<SmallVector<Val>> r = im.emit(name, n.inputs);
    if (failed(r))
      return failure();
    for (size_t i = 0; i < r->size(); ++i)
      im.define(n.node, i, (*r)[i]);
    return success();
  };
}

LogicalResult checkInputs(Importer &im, const NodeCtx &n, size_t min,
                          size_t max) {
  size_t count = n.inputs.size();
  if (count < min || count > max)
    return im.fail("expects " + std::to_string(min) +
                   (min == max ? "" : " to " + std::to_string(max)) +
                   " inputs, has " + std::to_string(count));
  for (size_t i = 0; i < min; ++i)
    if (!n.has(i))
      return im.fail("input " + std::to_string(i) + " is required");
  return success();
}

LogicalResult defineOne(Importer &im, const NodeCtx &n, FailureOr<Val> v) {
  if (failed(v))
    return failure();
  im.define(n.node, 0, *v);
  return success();
}

Handler binary(std::string name) {
  return [name](Importer &im, const NodeCtx &n) -> LogicalResult {
    if (failed(checkInputs(im, n, 2, 2)))
      return failure();
    return defineOne(im, n, im.emit1(name, {n.in(0), n.in(1)}));
  };
}

Handler unary(std::string name) {
  return [name](Importer &im, const NodeCtx &n) -> LogicalResult {
    if (failed(checkInputs(im, n, 1, 1)))
      return failure();
    return defineOne(im, n, im.emit1(name, {n.in(0)}));
  };
}

/// Max/Min/Sum with any number of inputs.
Handler variadic(std::string name) {
  return [name](Importer &im, const NodeCtx &n) -> LogicalResult {
    if (n.inputs.empty())
      return im.fail("needs at least one input");
    Val acc = n.in(0);
    for (size_t i = 1; i < n.inputs.size(); ++i) {
      FailureOr<Val> r = im.emit1(name, {acc, n.in(i)});
      if (failed(r))
        return failure();
      acc = *r;
    }
    im.define(n.node, 0, acc);
    return success();
  };
}

LogicalResult importConstant(Importer &im, const NodeCtx &n,
                             std::optional<ByteRange> raw) {
  Builder &b = im.builder();
  const onnx::NodeProto &node = n.node;
  if (node.attribute_size() != 1)
    return im.fail("Constant needs exactly one value attribute");
  const onnx::AttributeProto &a = node.attribute(0);
  if (a.name() == "value")
    return defineOne(im, n, im.importTensor(a.t(), raw, node.output(0)));
  if (a.name() == "value_float")
    return defineOne(im, n, im.constScalar(b.getF32Type(), a.f()));
  if (a.name() == "value_int")
    return defineOne(im, n, im.constI64({a.i()}, /*scalar=*/true));
  if (a.name() == "value_ints")
    return defineOne(im, n, im.constI64(SmallVector<int64_t>(a.ints().begin(),
                                                              a.ints().end())));
  if (a.name() == "value_floats") {
    SmallVector<float> v(a.floats().begin(), a.floats().end());
    auto type = RankedTensorType::get({int64_t(v.size())}, b.getF32Type());
    return defineOne(im, n, im.constant(DenseElementsAttr::get(
                                type, ArrayRef<float>(v))));
  }
  return im.fail("Constant attribute '" + a.name() + "' is not supported");
}

LogicalResult importCast(Importer &im, const NodeCtx &n) {
  if (failed(checkInputs(im, n, 1, 1)))
    return failure();
  int64_t to = n.getInt("to", 0);
  Type elem = elementTypeFor(im.ctx(), int32_t(to));
  if (!elem)
    return im.fail("cast to " + onnxTypeName(int32_t(to)) +
                   " is not supported");
  auto type = RankedTensorType::get(n.in(0).type.getShape(), elem);
  return defineOne(im, n,
                   im.emit1("nn.cast", {n.in(0)}, {},
                            {im.i64("to", int64_t(*mlir::moe::runtimeDType(elem)))}, {type}));
}

LogicalResult importClip(Importer &im, const NodeCtx &n) {
  if (failed(checkInputs(im, n, 1, 3)))
    return failure();
  Type elem = n.in(0).type.getElementType();
  double lo, hi;
  if (isa<FloatType>(elem)) {
    lo = -std::numeric_limits<double>::infinity();
    hi = std::numeric_limits<double>::infinity();
  } else if (elem.isInteger(32)) {
    lo = std::numeric_limits<int32_t>::min();
    hi = std::numeric_limits<int32_t>::max();
  } else {
    lo = double(std::numeric_limits<int64_t>::min());
    hi = 9.2233720368547748e18; // rounds to INT64_MAX's neighbour; clamped
  }
  Val minV = n.has(1) ? n.in(1) : im.constScalar(elem, lo);
  Val maxV;
  if (n.has(2)) {
    maxV = n.in(2);
  } else if (elem.isInteger(64)) {
    auto type = RankedTensorType::get({}, elem);
    maxV = im.constant(DenseElementsAttr::get(
        type, ArrayRef<Attribute>{im.builder().getIntegerAttr(
                  elem, std::numeric_limits<int64_t>::max())}));
  } else {
    maxV = im.constScalar(elem, hi);
  }
  return defineOne(im, n, im.emit1("nn.clip", {n.in(0), minV, maxV}));
}

LogicalResult importShape(Importer &im, const NodeCtx &n) {
  if (failed(checkInputs(im, n, 1, 1)))
    return failure();
  int64_t rank = n.in(0).type.getRank();
  int64_t start = n.getInt("start", 0);
  int64_t end = n.getInt("end", rank);
  auto clampIdx = [&](int64_t i) {
    if (i < 0)
      i += rank;
    return std::clamp<int64_t>(i, 0, rank);
  };
  start = clampIdx(start);
  end = clampIdx(end);
  // Static dims give a constant.
  ArrayRef<int64_t> shape = n.in(0).type.getShape();
  bool known = true;
  SmallVector<int64_t> dims;
  for (int64_t i = start; i < end; ++i) {
    known &= !ShapedType::isDynamic(shape[i]);
    dims.push_back(shape[i]);
  }
  if (known)
    return defineOne(im, n, im.constI64(dims));
  return defineOne(im, n,
                   im.emit1("nn.shape", {n.in(0)},
                            {im.i64("start", start), im.i64("end", end)}));
}

LogicalResult importConstantOfShape(Importer &im, const NodeCtx &n) {
  if (failed(checkInputs(im, n, 1, 1)))
    return failure();
  Type elem = im.builder().getF32Type();
  double value = 0;
  if (const onnx::AttributeProto *a = n.attr("value")) {
    FailureOr<Val> v = im.importTensor(a->t(), std::nullopt, "value");
    if (failed(v))
      return failure();
    if (!v->constant || v->type.getNumElements() != 1)
      return im.fail("attribute 'value' must hold one element");
    elem = v->type.getElementType();
    if (isa<FloatType>(elem))
      value = (*v->constant.getValues<APFloat>().begin()).convertToDouble();
    else if (elem.isInteger(1))
      value = *v->constant.getValues<bool>().begin() ? 1 : 0;
    else
      value = double((*v->constant.getValues<APInt>().begin()).getSExtValue());
    v->value.getDefiningOp()->erase();
  }
  const Val &shape = n.in(0);
  if (shape.type.getRank() != 1 ||
      ShapedType::isDynamic(shape.type.getDimSize(0)))
    return im.fail("input 'input' must be a 1-D tensor of known length");
  int64_t rank = shape.type.getDimSize(0);
  SmallVector<int64_t> dims(rank, ShapedType::kDynamic);
  if (shape.constant) {
    FailureOr<SmallVector<int64_t>> d = im.constInts(shape, "input 'input'");
    if (failed(d))
      return failure();
    dims = *d;
  }
  auto type = RankedTensorType::get(dims, elem);
  return defineOne(
      im, n,
      im.emit1("nn.constant_of_shape", {shape}, {im.f64("value", value)},
               {im.i64("dtype", int64_t(*mlir::moe::runtimeDType(elem)))}, {type}));
}

LogicalResult importReshape(Importer &im, const NodeCtx &n) {
  if (failed(checkInputs(im, n, 2, 2)))
    return failure();
  int64_t allowzero = n.getInt("allowzero", 0);
  const Val &x = n.in(0), &shape = n.in(1);
  if (shape.type.getRank() != 1 ||
      ShapedType::isDynamic(shape.type.getDimSize(0)))
    return im.fail("input 'shape' must be a 1-D tensor of known length");
  if (shape.constant) {
    FailureOr<SmallVector<int64_t>> dims = im.constInts(shape, "shape");
    if (failed(dims))
      return failure();
    bool resolved = true;
    for (auto [i, d] : llvm::enumerate(*dims)) {
      if (d != 0 || allowzero)
        continue;
      if (int64_t(i) >= x.type.getRank())
        return im.fail("shape entry " + std::to_string(i) +
                       " is 0 (copy) but the input has rank " +
                       std::to_string(x.type.getRank()));
      if (ShapedType::isDynamic(x.type.getDimSize(i)))
        resolved = false;
      else
        d = x.type.getDimSize(i);
    }
    if (resolved)
      return defineOne(im, n, im.emit1("nn.reshape", {x},
                                       {im.ints("shape", *dims)}));
  }
  return defineOne(im, n, im.emit1("nn.dynamic_reshape", {x, shape},
                                   {im.i64("allowzero", allowzero)}));
}

/// Axes from the attribute (old opsets) or the constant second input.
FailureOr<std::optional<SmallVector<int64_t>>>
axesOf(Importer &im, const NodeCtx &n, size_t input) {
  if (n.has(input)) {
    FailureOr<SmallVector<int64_t>> a = im.constInts(n.in(input), "axes");
    if (failed(a))
      return failure();
    return std::optional<SmallVector<int64_t>>(*a);
  }
  return n.getInts("axes");
}

Handler squeezeLike(std::string name) {
  return [name](Importer &im, const NodeCtx &n) -> LogicalResult {
    if (failed(checkInputs(im, n, 1, 2)))
      return failure();
    FailureOr<std::optional<SmallVector<int64_t>>> axes = axesOf(im, n, 1);
    if (failed(axes))
      return failure();
    if (!*axes && name == "nn.unsqueeze")
      return im.fail("Unsqueeze needs axes");
    SmallVector<int64_t> a = axes->value_or(SmallVector<int64_t>{});
    return defineOne(im, n, im.emit1(name, {n.in(0)}, {im.ints("axes", a)}));
  };
}

LogicalResult importFlatten(Importer &im, const NodeCtx &n) {
  if (failed(checkInputs(im, n, 1, 1)))
    return failure();
  return defineOne(im, n, im.emit1("nn.flatten", {n.in(0)},
                                   {im.i64("axis", n.getInt("axis", 1))}));
}

LogicalResult importSlice(Importer &im, const NodeCtx &n) {
  if (failed(checkInputs(im, n, 3, 5)))
    return failure();
  const Val &starts = n.in(1), &ends = n.in(2);
  if (starts.type.getRank() != 1 ||
      ShapedType::isDynamic(starts.type.getDimSize(0)))
    return im.fail("input 'starts' must be a 1-D tensor of known length");
  int64_t count = starts.type.getDimSize(0);
  Val axes = n.has(3) ? n.in(3) : Val{};
  Val steps = n.has(4) ? n.in(4) : Val{};
  bool allConst = starts.constant && ends.constant &&
                  (!axes.present() || axes.constant) &&
                  (!steps.present() || steps.constant);
  if (allConst) {
    FailureOr<SmallVector<int64_t>> s = im.constInts(starts, "starts");
    FailureOr<SmallVector<int64_t>> e = im.constInts(ends, "ends");
    if (failed(s) || failed(e))
      return failure();
    SmallVector<int64_t> a, st(count, 1);
    if (axes.present()) {
      FailureOr<SmallVector<int64_t>> v = im.constInts(axes, "axes");
      if (failed(v))
        return failure();
      a = *v;
    } else {
      for (int64_t i = 0; i < count; ++i)
        a.push_back(i);
    }
    if (steps.present()) {
      FailureOr<SmallVector<int64_t>> v = im.constInts(steps, "steps");
      if (failed(v))
        return failure();
      st = *v;
    }
    return defineOne(im, n,
                     im.emit1("nn.slice", {n.in(0)},
                              {im.ints("starts", *s), im.ints("ends", *e),
                               im.ints("axes", a), im.ints("steps", st)}));
  }
  if (!axes.present()) {
    SmallVector<int64_t> a;
    for (int64_t i = 0; i < count; ++i)
      a.push_back(i);
    axes = im.constI64(a);
  }
  if (!steps.present())
    steps = im.constI64(SmallVector<int64_t>(count, 1));
  return defineOne(im, n, im.emit1("nn.dynamic_slice",
                                   {n.in(0), starts, ends, axes, steps}));
}

LogicalResult importGemm(Importer &im, const NodeCtx &n) {
  if (failed(checkInputs(im, n, 2, 3)))
    return failure();
  Val a = n.in(0), b = n.in(1);
  if (n.getInt("transA", 0)) {
    FailureOr<Val> t = im.emit1("nn.transpose", {a}, {im.ints("perm", {1, 0})});
    if (failed(t))
      return failure();
    a = *t;
  }
  if (n.getInt("transB", 0)) {
    FailureOr<Val> t = im.emit1("nn.transpose", {b}, {im.ints("perm", {1, 0})});
    if (failed(t))
      return failure();
    b = *t;
  }
  FailureOr<Val> y = im.emit1("nn.matmul", {a, b});
  if (failed(y))
    return failure();
  Type f32 = im.builder().getF32Type();
  double alpha = n.getFloat("alpha", 1.0), beta = n.getFloat("beta", 1.0);
  if (alpha != 1.0) {
    y = im.emit1("nn.mul", {*y, im.constScalar(f32, alpha)});
    if (failed(y))
      return failure();
  }
  if (n.has(2)) {
    Val c = n.in(2);
    if (beta != 1.0) {
      FailureOr<Val> cb = im.emit1("nn.mul", {c, im.constScalar(f32, beta)});
      if (failed(cb))
        return failure();
      c = *cb;
    }
    y = im.emit1("nn.add", {*y, c});
  }
  return defineOne(im, n, y);
}

LogicalResult importTranspose(Importer &im, const NodeCtx &n) {
  if (failed(checkInputs(im, n, 1, 1)))
    return failure();
  SmallVector<int64_t> perm;
  if (auto p = n.getInts("perm"))
    perm = *p;
  else
    for (int64_t i = n.in(0).type.getRank() - 1; i >= 0; --i)
      perm.push_back(i);
  return defineOne(im, n,
                   im.emit1("nn.transpose", {n.in(0)}, {im.ints("perm", perm)}));
}

Handler withAxis(std::string name, int64_t def) {
  return [name, def](Importer &im, const NodeCtx &n) -> LogicalResult {
    FailureOr<SmallVector<Val>> r =
        im.emit(name, n.inputs, {im.i64("axis", n.getInt("axis", def))});
    if (failed(r))
      return failure();
    for (size_t i = 0; i < r->size(); ++i)
      im.define(n.node, i, (*r)[i]);
    return success();
  };
}

LogicalResult importSoftmax(Importer &im, const NodeCtx &n) {
  if (failed(checkInputs(im, n, 1, 1)))
    return failure();
  return defineOne(im, n, im.emit1("nn.softmax", {n.in(0)},
                                   {im.i64("axis", n.getInt("axis", -1))}));
}

Handler reduce(std::string name) {
  return [name](Importer &im, const NodeCtx &n) -> LogicalResult {
    if (failed(checkInputs(im, n, 1, 2)))
      return failure();
    FailureOr<std::optional<SmallVector<int64_t>>> axes = axesOf(im, n, 1);
    if (failed(axes))
      return failure();
    SmallVector<int64_t> a = axes->value_or(SmallVector<int64_t>{});
    if (a.empty() && n.getInt("noop_with_empty_axes", 0)) {
      im.define(n.node, 0, n.in(0));
      return success();
    }
    bool keep = n.getInt("keepdims", 1) != 0;
    return defineOne(im, n,
                     im.emit1(name, {n.in(0)},
                              {im.ints("axes", a),
                               im.named("keepdims",
                                        im.builder().getBoolAttr(keep))}));
  };
}

LogicalResult importGather(Importer &im, const NodeCtx &n) {
  if (failed(checkInputs(im, n, 2, 2)))
    return failure();
  return defineOne(im, n, im.emit1("nn.gather", {n.in(0), n.in(1)},
                                   {im.i64("axis", n.getInt("axis", 0))}));
}

LogicalResult importGatherND(Importer &im, const NodeCtx &n) {
  if (failed(checkInputs(im, n, 2, 2)))
    return failure();
  return defineOne(im, n,
                   im.emit1("nn.gather_nd", {n.in(0), n.in(1)},
                            {im.i64("batch_dims", n.getInt("batch_dims", 0))}));
}

LogicalResult importScatterElements(Importer &im, const NodeCtx &n) {
  if (failed(checkInputs(im, n, 3, 3)))
    return failure();
  return defineOne(
      im, n,
      im.emit1("nn.scatter_elements", {n.in(0), n.in(1), n.in(2)},
               {im.i64("axis", n.getInt("axis", 0)),
                im.str("reduction", n.getString("reduction", "none"))}));
}

LogicalResult importScatterND(Importer &im, const NodeCtx &n) {
  if (failed(checkInputs(im, n, 3, 3)))
    return failure();
  return defineOne(
      im, n,
      im.emit1("nn.scatter_nd", {n.in(0), n.in(1), n.in(2)},
               {im.str("reduction", n.getString("reduction", "none"))}));
}

LogicalResult importOneHot(Importer &im, const NodeCtx &n) {
  if (failed(checkInputs(im, n, 3, 3)))
    return failure();
  return defineOne(im, n, im.emit1("nn.one_hot", {n.in(0), n.in(1), n.in(2)},
                                   {im.i64("axis", n.getInt("axis", -1))}));
}

LogicalResult importTopK(Importer &im, const NodeCtx &n) {
  if (failed(checkInputs(im, n, 2, 2)))
    return failure();
  SmallVector<NamedAttribute> attrs{im.i64("axis", n.getInt("axis", -1)),
                                    im.i64("largest", n.getInt("largest", 1)),
                                    im.i64("sorted", n.getInt("sorted", 1))};
  // With a constant k the size along the axis is known.
  SmallVector<Type> types;
  const Val &x = n.in(0);
  if (n.in(1).constant) {
    FailureOr<SmallVector<int64_t>> k = im.constInts(n.in(1), "k");
    if (failed(k))
      return failure();
    int64_t rank = x.type.getRank(), axis = n.getInt("axis", -1);
    if (k->size() != 1 || (*k)[0] < 0)
      return im.fail("k must hold one non-negative value");
    if (axis < -rank || axis >= rank)
      return im.fail("axis " + std::to_string(axis) + " is out of range");
    if (axis < 0)
      axis += rank;
    int64_t dim = x.type.getDimSize(axis);
    if (!ShapedType::isDynamic(dim) && (*k)[0] > dim)
      return im.fail("k = " + std::to_string((*k)[0]) +
                     " is larger than the axis (" + std::to_string(dim) + ")");
    SmallVector<int64_t> shape(x.type.getShape());
    shape[axis] = (*k)[0];
    types = {RankedTensorType::get(shape, x.type.getElementType()),
             RankedTensorType::get(shape, im.builder().getI64Type())};
  }
  FailureOr<SmallVector<Val>> r =
      im.emit("nn.topk", {n.in(0), n.in(1)}, attrs, {}, types);
  if (failed(r))
    return failure();
  im.define(n.node, 0, (*r)[0]);
  im.define(n.node, 1, (*r)[1]);
  return success();
}

LogicalResult importSplit(Importer &im, const NodeCtx &n) {
  if (failed(checkInputs(im, n, 1, 2)))
    return failure();
  int64_t outputs = n.node.output_size();
  SmallVector<Val> operands{n.in(0)};
  if (n.has(1))
    operands.push_back(n.in(1));
  else if (auto s = n.getInts("split"))
    operands.push_back(im.constI64(*s));
  FailureOr<SmallVector<Val>> r =
      im.emit("nn.split", operands,
              {im.i64("axis", n.getInt("axis", 0)),
               im.i64("num_outputs", outputs)});
  if (failed(r))
    return failure();
  if (int64_t(r->size()) != outputs)
    return im.fail("split produced " + std::to_string(r->size()) +
                   " results for " + std::to_string(outputs) + " outputs");
  for (int64_t i = 0; i < outputs; ++i)
    im.define(n.node, size_t(i), (*r)[size_t(i)]);
  return success();
}

LogicalResult importPow(Importer &im, const NodeCtx &n) {
  if (failed(checkInputs(im, n, 2, 2)))
    return failure();
  Val base = n.in(0), exp = n.in(1);
  Type elem = base.type.getElementType();
  if (exp.type.getElementType() != elem) {
    auto type = RankedTensorType::get(exp.type.getShape(), elem);
    FailureOr<Val> c = im.emit1("nn.cast", {exp}, {},
                                {im.i64("to", int64_t(*mlir::moe::runtimeDType(elem)))}, {type});
    if (failed(c))
      return failure();
    exp = *c;
  }
  return defineOne(im, n, im.emit1("nn.pow", {base, exp}));
}

//===----------------------------------------------------------------------===//
// com.microsoft.MoE / QMoE
//===----------------------------------------------------------------------===//

LogicalResult importMoE(Importer &im, const NodeCtx &n, bool quantised) {
  static const StringRef moeAttrs[] = {
      "k", "activation_type", "normalize_routing_weights", "use_sparse_mixer",
      "swiglu_fusion", "activation_alpha", "activation_beta", "swiglu_limit",
      "expert_weight_bits", "block_size"};
  for (const onnx::AttributeProto &a : n.node.attribute())
    if (!llvm::is_contained(moeAttrs, StringRef(a.name())) ||
        (!quantised && (a.name() == "expert_weight_bits" ||
                        a.name() == "block_size")))
      return im.fail("attribute '" + a.name() + "' is not supported");
  if (n.getInt("use_sparse_mixer", 0))
    return im.fail("use_sparse_mixer=1 (SparseMixer routing) is not supported");
  Builder &b = im.builder();
  // Input positions: MoE: input, router_probs, fc1, fc1_bias, fc2, fc2_bias,
  // fc3, fc3_bias. QMoE: input, router_probs, fc1, fc1_scales, fc1_bias, fc2,
  // fc2_scales, fc2_bias, fc3, fc3_scales, fc3_bias, fc1_zp, fc2_zp, fc3_zp.
  struct Fc {
    std::optional<size_t> w, scales, bias, zp;
  } fc[3];
  if (quantised) {
    fc[0] = {2, 3, 4, 11};
    fc[1] = {5, 6, 7, 12};
    fc[2] = {8, 9, 10, 13};
  } else {
    fc[0] = {2, std::nullopt, 3, std::nullopt};
    fc[1] = {4, std::nullopt, 5, std::nullopt};
    fc[2] = {6, std::nullopt, 7, std::nullopt};
  }
  if (failed(checkInputs(im, n, 2, quantised ? 14 : 8)))
    return failure();
  const Val &input = n.in(0), &router = n.in(1);
  if (!n.has(*fc[0].w) || !n.has(*fc[1].w))
    return im.fail("fc1_experts_weights and fc2_experts_weights are required");
  int64_t bits = quantised ? n.getInt("expert_weight_bits", 4) : 0;
  if (quantised && bits != 2 && bits != 4 && bits != 8)
    return im.fail("expert_weight_bits=" + std::to_string(bits) +
                   " is not supported (2, 4 or 8; fp4/fp8 are not)");

  // Weights: float, or dequantised from ORT's packed layout.
  auto weight = [&](const Fc &f, StringRef what) -> FailureOr<Val> {
    if (!n.has(*f.w))
      return Val{};
    const Val &w = n.in(*f.w);
    if (!quantised) {
      if (!w.type.getElementType().isF32())
        return im.fail(what + " must be float32");
      return w;
    }
    if (!n.has(*f.scales))
      return im.fail(what + " needs its scales");
    if (!w.type.getElementType().isUnsignedInteger(8))
      return im.fail(what + " must be uint8 (packed " + std::to_string(bits) +
                     "-bit values)");
    Val zp = n.has(*f.zp)
                 ? n.in(*f.zp)
                 : im.constant(DenseElementsAttr::get(
                       RankedTensorType::get({0}, b.getIntegerType(8, false)),
                       ArrayRef<uint8_t>{}));
    SmallVector<int64_t> shape(w.type.getShape());
    if (!shape.empty() && !ShapedType::isDynamic(shape.back()))
      shape.back() = shape.back() * 8 / bits;
    auto type = RankedTensorType::get(shape, b.getF32Type());
    return im.emit1("nn.dequantize", {w, n.in(*f.scales), zp},
                    {im.i64("bits", bits)}, {}, {type});
  };
  FailureOr<Val> w1 = weight(fc[0], "fc1_experts_weights");
  FailureOr<Val> w2 = weight(fc[1], "fc2_experts_weights");
  FailureOr<Val> w3 = weight(fc[2], "fc3_experts_weights");
  if (failed(w1) || failed(w2) || failed(w3))
    return failure();
  if (w1->type.getRank() != 3 || w2->type.getRank() != 3)
    return im.fail("expert weights must be 3-D [E, out, in]");
  int64_t experts = w1->type.getDimSize(0);
  int64_t hidden = input.type.getShape().back();
  if (ShapedType::isDynamic(experts) || ShapedType::isDynamic(hidden))
    return im.fail("the number of experts and the hidden size must be static");
  if (w1->type.getDimSize(2) != hidden)
    return im.fail("fc1_experts_weights is " +
                   std::to_string(w1->type.getDimSize(1)) + "x" +
                   std::to_string(w1->type.getDimSize(2)) +
                   " per expert; expected [out, in] with in = hidden size " +
                   std::to_string(hidden) + " (the [E, in, out] layout of "
                   "older ONNX Runtime versions is not supported)");
  int64_t k = n.getInt("k", 1);
  std::string act = n.getString("activation_type", "relu");

  // Flatten tokens: [.., H] → [T, H]; logits [T, E].
  FailureOr<Val> x2 = im.emit1("nn.reshape", {input},
                               {im.ints("shape", {-1, hidden})});
  FailureOr<Val> logits = im.emit1("nn.reshape", {router},
                                   {im.ints("shape", {-1, experts})});
  if (failed(x2) || failed(logits))
    return failure();
  OpBuilder &ob = im.opBuilder();
  Location loc = im.loc();

  auto route = ob.create<mlir::moe::RouteOp>(
      loc, logits->value, uint64_t(k), mlir::moe::Scoring::softmax,
      n.getInt("normalize_routing_weights", 0) != 0);
  auto dispatch = ob.create<mlir::moe::DispatchOp>(
      loc, x2->value, route.getIds(), uint64_t(experts));

  // ONNX Runtime's MoE `gelu` is the tanh approximation.
  std::optional<mlir::moe::Activation> activation =
      mlir::moe::symbolizeActivation(act == "gelu" ? "gelu_tanh" : act);
  if (!activation)
    return im.fail("activation_type '" + act + "' is not supported");
  auto opt = [&](std::optional<size_t> i) -> Value {
    return i && n.has(*i) ? n.in(*i).value : Value();
  };
  Value w3v = w3->present() ? w3->value : Value();
  Value b1 = opt(fc[0].bias), b2 = opt(fc[1].bias), b3 = opt(fc[2].bias);
  FloatAttr limit;
  if (n.attr("swiglu_limit"))
    limit = b.getF64FloatAttr(n.getFloat("swiglu_limit", 0.0));
  auto experts_ = ob.create<mlir::moe::ExpertsOp>(
      loc, dispatch.getRows().getType(), dispatch.getRows(),
      dispatch.getOffsets(), w1->value, w2->value, w3v, b1, b2, b3,
      *activation, APFloat(n.getFloat("activation_alpha", 1.0)),
      APFloat(n.getFloat("activation_beta", 0.0)), limit,
      uint64_t(act == "swiglu" ? n.getInt("swiglu_fusion", 0) : 0),
      ArrayAttr());
  auto combine = ob.create<mlir::moe::CombineOp>(
      loc, experts_.getResult(), dispatch.getPerm(), route.getWeights());
  Val flat{combine.getResult(), cast<RankedTensorType>(combine.getType()), {}};
  // Back to the input's shape.
  SmallVector<int64_t> outShape;
  for (int64_t d : input.type.getShape())
    outShape.push_back(ShapedType::isDynamic(d) ? -1 : d);
  if (llvm::count(outShape, -1) <= 1)
    return defineOne(im, n, im.emit1("nn.reshape", {flat},
                                     {im.ints("shape", outShape)}));
  FailureOr<Val> shape =
      im.emit1("nn.shape", {input}, {im.i64("start", 0),
                                     im.i64("end", input.type.getRank())});
  if (failed(shape))
    return failure();
  return defineOne(im, n, im.emit1("nn.dynamic_reshape", {flat, *shape},
                                   {im.i64("allowzero", 0)}, {},
                                   {input.type}));
}

//===----------------------------------------------------------------------===//
// The op table
//===----------------------------------------------------------------------===//

const std::vector<OpEntry> &opTable() {
  static const std::vector<OpEntry> table = [] {
    std::vector<OpEntry> t;
    auto add = [&](std::string op, Handler h) {
      t.push_back({"", std::move(op), kMinOpset, kMaxOpset, std::move(h)});
    };
    for (auto [op, k] : {std::pair{"Add", "nn.add"}, {"Sub", "nn.sub"},
                         {"Mul", "nn.mul"}, {"Div", "nn.div"},
                         {"Equal", "nn.equal"}, {"Greater", "nn.greater"},
                         {"GreaterOrEqual", "nn.greater_or_equal"},
                         {"Less", "nn.less"}, {"LessOrEqual", "nn.less_or_equal"},
                         {"And", "nn.and"}, {"Or", "nn.or"}, {"Xor", "nn.xor"}})
      add(op, binary(k));
    for (auto [op, k] : {std::pair{"Max", "nn.max"}, {"Min", "nn.min"},
                         {"Sum", "nn.add"}})
      add(op, variadic(k));
    for (auto [op, k] :
         {std::pair{"Neg", "nn.neg"}, {"Sqrt", "nn.sqrt"},
          {"Reciprocal", "nn.reciprocal"}, {"Sigmoid", "nn.sigmoid"},
          {"Relu", "nn.relu"}, {"Tanh", "nn.tanh"}, {"Exp", "nn.exp"},
          {"Log", "nn.log"}, {"Abs", "nn.abs"}, {"Cos", "nn.cos"},
          {"Sin", "nn.sin"}, {"Not", "nn.not"}, {"NonZero", "nn.nonzero"}})
      add(op, unary(k));
    add("Where", direct("nn.where"));
    add("Expand", direct("nn.expand"));
    add("Range", direct("nn.range"));
    add("Tile", direct("nn.tile"));
    add("MatMul", binary("nn.matmul"));
    add("Pow", importPow);
    add("Identity", [](Importer &im, const NodeCtx &n) -> LogicalResult {
      if (failed(checkInputs(im, n, 1, 1)))
        return failure();
      im.define(n.node, 0, n.in(0));
      return success();
    });
    add("Cast", importCast);
    add("Clip", importClip);
    add("Shape", importShape);
    add("ConstantOfShape", importConstantOfShape);
    add("Reshape", importReshape);
    add("Squeeze", squeezeLike("nn.squeeze"));
    add("Unsqueeze", squeezeLike("nn.unsqueeze"));
    add("Flatten", importFlatten);
    add("Slice", importSlice);
    add("Gemm", importGemm);
    add("Transpose", importTranspose);
    add("Concat", withAxis("nn.concat", 0));
    add("Softmax", importSoftmax);
    add("ReduceSum", reduce("nn.reduce_sum"));
    add("ReduceMean", reduce("nn.reduce_mean"));
    add("ReduceMax", reduce("nn.reduce_max"));
    add("Gather", importGather);
    add("GatherND", importGatherND);
    add("ScatterElements", importScatterElements);
    add("ScatterND", importScatterND);
    add("OneHot", importOneHot);
    add("TopK", importTopK);
    add("Split", importSplit);
    t.push_back({"com.microsoft", "MoE", 1, 1,
                 [](Importer &im, const NodeCtx &n) {
                   return importMoE(im, n, false);
                 }});
    t.push_back({"com.microsoft", "QMoE", 1, 1,
                 [](Importer &im, const NodeCtx &n) {
                   return importMoE(im, n, true);
                 }});
    return t;
  }();
  return table;
}

//===----------------------------------------------------------------------===//
// Graph
//===----------------------------------------------------------------------===//

LogicalResult Importer::importGraph(func::FuncOp func) {
  const onnx::GraphProto &g = model_.graph();
  Block *entry = func.addEntryBlock();
  ob_.setInsertionPointToStart(entry);
  auto fileLoc = FileLineColLoc::get(&ctx_, fileName_, 0, 0);
  loc_ = fileLoc;

  // Initializers.
  llvm::StringSet<> initNames;
  for (int i = 0; i < g.initializer_size(); ++i) {
    const onnx::TensorProto &t = g.initializer(i);
    where_ = fileName_ + ": initializer '" + t.name() + "': ";
    std::optional<ByteRange> raw;
    if (raw_ && size_t(i) < raw_->initializers.size())
      raw = raw_->initializers[size_t(i)];
    FailureOr<Val> v = importTensor(t, raw, t.name());
    if (failed(v))
      return failure();
    values_[t.name()] = *v;
    initNames.insert(t.name());
  }
  // Arguments: the graph inputs that are not initializers.
  unsigned argIndex = 0;
  for (const onnx::ValueInfoProto &in : g.input()) {
    if (initNames.contains(in.name()))
      continue;
    BlockArgument arg = func.getArgument(argIndex++);
    values_[in.name()] =
        Val{arg, cast<RankedTensorType>(arg.getType()), {}};
  }

  const std::vector<OpEntry> &table = opTable();
  for (int i = 0; i < g.node_size(); ++i) {
    const onnx::NodeProto &node = g.node(i);
    std::string domain = node.domain() == "ai.onnx" ? "" : node.domain();
    auto it = opsets_.find(domain);
    int64_t opset = it == opsets_.end() ? -1 : it->second;
    std::string nodeName =
        node.name().empty() ? "#" + std::to_string(i) : node.name();
    where_ = fileName_ + ": node '" + nodeName + "' (" + node.op_type() +
             ", domain '" + domain + "', opset " + std::to_string(opset) +
             "): ";
    loc_ = NameLoc::get(b_.getStringAttr(nodeName), fileLoc);
    if (opset < 0)
      return fail("the model does not import the domain");
    NodeCtx n{node, size_t(i), opset, {}};
    for (const std::string &name : node.input()) {
      if (name.empty()) {
        n.inputs.push_back(Val{});
        continue;
      }
      auto v = values_.find(name);
      if (v == values_.end())
        return fail("input '" + name + "' is not defined before this node");
      n.inputs.push_back(v->second);
    }
    // Drop trailing absent inputs.
    while (!n.inputs.empty() && !n.inputs.back().present())
      n.inputs.pop_back();
    if (node.op_type() == "Constant" && domain.empty()) {
      std::optional<ByteRange> raw;
      if (raw_) {
        auto c = raw_->constants.find(size_t(i));
        if (c != raw_->constants.end())
          raw = c->second;
      }
      if (failed(importConstant(*this, n, raw)))
        return failure();
      continue;
    }
    const OpEntry *found = nullptr;
    bool otherOpset = false;
    for (const OpEntry &e : table) {
      if (e.domain != domain || e.opType != node.op_type())
        continue;
      if (opset >= e.minOpset && opset <= e.maxOpset) {
        found = &e;
        break;
      }
      otherOpset = true;
    }
    if (!found)
      return fail(otherOpset ? "this opset is not supported for the op "
                               "(supported: default domain opsets " +
                                   std::to_string(kMinOpset) + "-" +
                                   std::to_string(kMaxOpset) + ")"
                             : "unsupported op");
    if (failed(found->handler(*this, n)))
      return failure();
    for (const std::string &out : node.output())
      if (!out.empty() && !values_.count(out))
        return fail("internal: output '" + out + "' was not defined");
  }

  where_ = fileName_ + ": ";
  SmallVector<Value> results;
  for (const onnx::ValueInfoProto &out : g.output()) {
    auto v = values_.find(out.name());
    if (v == values_.end())
      return fail("graph output '" + out.name() + "' is never computed");
    results.push_back(v->second.value);
  }
  loc_ = fileLoc;
  ob_.create<func::ReturnOp>(loc_, results);
  SmallVector<Type> resultTypes;
  for (Value r : results)
    resultTypes.push_back(r.getType());
  func.setFunctionType(
      FunctionType::get(&ctx_, func.getArgumentTypes(), resultTypes));
  // Constants that only fed folded ops are dead.
  for (Operation &op : llvm::make_early_inc_range(
           llvm::reverse(func.getBody().front())))
    if (isa<arith::ConstantOp>(op) && op.use_empty())
      op.erase();
  return success();
}

llvm::Expected<OwningOpRef<ModuleOp>> Importer::run() {
  auto err = [&](const std::string &msg) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s",
                                   msg.c_str());
  };
  for (const onnx::OperatorSetIdProto &o : model_.opset_import())
    opsets_[o.domain() == "ai.onnx" ? "" : o.domain()] = o.version();
  const onnx::GraphProto &g = model_.graph();
  llvm::StringSet<> initNames;
  for (const onnx::TensorProto &t : g.initializer())
    initNames.insert(t.name());
  SmallVector<Type> argTypes;
  SmallVector<std::string> argNames;
  for (const onnx::ValueInfoProto &in : g.input()) {
    if (initNames.contains(in.name()))
      continue;
    where_ = fileName_ + ": ";
    FailureOr<RankedTensorType> t = valueType(in);
    if (failed(t))
      return err(error_);
    argTypes.push_back(*t);
    argNames.push_back(in.name());
  }
  if (g.output_size() == 0)
    return err(fileName_ + ": the graph has no outputs");

  OwningOpRef<ModuleOp> module =
      ModuleOp::create(FileLineColLoc::get(&ctx_, fileName_, 0, 0));
  ob_.setInsertionPointToEnd(module->getBody());
  auto func = ob_.create<func::FuncOp>(
      module->getLoc(), "main", FunctionType::get(&ctx_, argTypes, {}));
  for (auto [i, name] : llvm::enumerate(argNames))
    func.setArgAttr(unsigned(i), "moe.name", b_.getStringAttr(name));
  if (failed(importGraph(func)))
    return err(error_.empty() ? fileName_ + ": import failed" : error_);
  SmallVector<Attribute> outNames;
  for (const onnx::ValueInfoProto &out : g.output())
    outNames.push_back(b_.getStringAttr(out.name()));
  for (auto [i, name] : llvm::enumerate(outNames))
    func.setResultAttr(unsigned(i), "moe.name", name);
  module->getOperation()->setAttr("moe.source", b_.getStringAttr(fileName_));
  // Passes that read weights (moe-raise-experts checks its rewrites) find
  // the relative weight files here.
  SmallString<256> dir;
  if (!llvm::sys::fs::real_path(modelDir_, dir))
    module->getOperation()->setAttr("moe.weights_dir", b_.getStringAttr(dir));
  if (!model_.producer_name().empty())
    module->getOperation()->setAttr(
        "moe.producer",
        b_.getStringAttr(
            StringRef(model_.producer_name() + " " + model_.producer_version())
                .trim()));
  return std::move(module);
}

} // namespace

llvm::Expected<OwningOpRef<ModuleOp>> importOnnxFile(llvm::StringRef path,
                                                     MLIRContext &ctx) {
  auto err = [&](const Twine &msg) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s",
                                   msg.str().c_str());
  };
  std::string file = llvm::sys::path::filename(path).str();
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                  /*RequiresNullTerminator=*/true);
  if (!buffer)
    return err(path + ": cannot open: " + buffer.getError().message());
  loadImportDialects(ctx);
  onnx::ModelProto model;
  RawDataMap raw;
  bool haveRaw = false;
  if (path.ends_with(".onnxtext")) {
    onnx::Status st =
        onnx::OnnxParser::Parse(model, (*buffer)->getBufferStart());
    if (!st.IsOK())
      return err(file + ": not a valid ONNX text model: " +
                 StringRef(st.ErrorMessage()).trim());
  } else {
    const auto *data =
        reinterpret_cast<const uint8_t *>((*buffer)->getBufferStart());
    size_t size = (*buffer)->getBufferSize();
    if (size > size_t(std::numeric_limits<int>::max()))
      return err(file + ": models over 2 GiB must keep their weights as "
                        "external data");
    std::string scanError;
    if (!scanRawData(data, size, raw, scanError))
      return err(file + ": not an ONNX model (" + scanError + ")");
    if (!model.ParseFromArray(data, int(size)))
      return err(file + ": not an ONNX model (protobuf parse failed)");
    if (!model.has_graph() || model.ir_version() <= 0)
      return err(file + ": not an ONNX model (no graph or IR version)");
    if (raw.initializers.size() != size_t(model.graph().initializer_size()) ||
        raw.nodeCount != size_t(model.graph().node_size()))
      return err(file + ": internal: raw data scan does not match the model");
    haveRaw = true;
  }
  Importer importer(ctx, path.str(), model, haveRaw ? &raw : nullptr);
  llvm::Expected<OwningOpRef<ModuleOp>> module = importer.run();
  if (!module)
    return module.takeError();
  if (failed(verify(**module)))
    return err(file + ": the imported IR does not verify (see the error "
                      "above)");
  return module;
}

} // namespace moe::onnx_frontend
