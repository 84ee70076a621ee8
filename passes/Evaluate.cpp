//===- Evaluate.cpp - Running tensor-level IR with the runtime kernels ----===//

#include "passes/Evaluate.h"
#include "passes/Passes.h"

#include "dialects/nn/NNDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <cstring>

namespace rt = ::moe::rt;
using namespace mlir;
using namespace mlir::moe;

rt::Attrs mlir::moe::toRuntimeAttrs(DictionaryAttr params) {
  rt::Attrs out;
  for (NamedAttribute a : params) {
    std::string name = a.getName().str();
    Attribute v = a.getValue();
    if (auto b = dyn_cast<BoolAttr>(v))
      out.setInt(name, b.getValue());
    else if (auto i = dyn_cast<IntegerAttr>(v))
      out.setInt(name, i.getValue().getSExtValue());
    else if (auto f = dyn_cast<FloatAttr>(v))
      out.setFloat(name, f.getValueAsDouble());
    else if (auto s = dyn_cast<StringAttr>(v))
      out.setString(name, s.str());
    else if (auto d = dyn_cast<DenseI64ArrayAttr>(v))
      out.setInts(name, std::vector<int64_t>(d.asArrayRef().begin(),
                                             d.asArrayRef().end()));
    else if (auto d = dyn_cast<DenseF64ArrayAttr>(v))
      out.setFloats(name, std::vector<double>(d.asArrayRef().begin(),
                                              d.asArrayRef().end()));
  }
  return out;
}

std::optional<rt::DType> mlir::moe::runtimeDType(Type t) {
  if (t.isF32())
    return rt::DType::F32;
  if (t.isF16())
    return rt::DType::F16;
  if (t.isBF16())
    return rt::DType::BF16;
  if (t.isF64())
    return rt::DType::F64;
  if (t.isInteger(64))
    return rt::DType::I64;
  if (t.isInteger(32))
    return rt::DType::I32;
  if (t.isUnsignedInteger(8))
    return rt::DType::U8;
  if (t.isInteger(8))
    return rt::DType::I8;
  if (t.isInteger(1))
    return rt::DType::I1;
  return std::nullopt;
}

Type mlir::moe::elementTypeOf(MLIRContext *ctx, rt::DType d) {
  Builder b(ctx);
  switch (d) {
  case rt::DType::F32:
    return b.getF32Type();
  case rt::DType::F16:
    return b.getF16Type();
  case rt::DType::BF16:
    return b.getBF16Type();
  case rt::DType::F64:
    return b.getF64Type();
  case rt::DType::I64:
    return b.getI64Type();
  case rt::DType::I32:
    return b.getI32Type();
  case rt::DType::I8:
    return b.getIntegerType(8);
  case rt::DType::U8:
    return b.getIntegerType(8, /*isSigned=*/false);
  case rt::DType::I1:
    return b.getI1Type();
  }
  return nullptr;
}

static rt::Shape shapeOf(ShapedType t) {
  return rt::Shape(t.getShape().begin(), t.getShape().end());
}

FailureOr<rt::Tensor> mlir::moe::tensorFromAttr(DenseElementsAttr attr) {
  auto type = cast<ShapedType>(attr.getType());
  std::optional<rt::DType> d = runtimeDType(type.getElementType());
  if (!d || !type.hasStaticShape())
    return failure();
  rt::StatusOr<rt::Tensor> t = rt::Tensor::allocate(*d, shapeOf(type));
  if (!t.isOk())
    return failure();
  auto *dst = static_cast<uint8_t *>(t->mutableData());
  int64_t n = type.getNumElements();
  if (type.getElementType().isInteger(1)) {
    int64_t i = 0;
    for (bool v : attr.getValues<bool>())
      dst[i++] = v ? 1 : 0;
    return std::move(*t);
  }
  ArrayRef<char> raw = attr.getRawData();
  if (attr.isSplat()) {
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(dst + size_t(i) * raw.size(), raw.data(), raw.size());
  } else if (!raw.empty()) {
    std::memcpy(dst, raw.data(), raw.size());
  }
  return std::move(*t);
}

static uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

void mlir::moe::cutIntoSlices(const uint8_t *src, uint8_t *dst,
                               ArrayRef<int64_t> shape, int64_t elemBytes,
                               int64_t dim, int64_t halves, int64_t parts) {
  uint64_t total = static_cast<uint64_t>(elemBytes);
  for (int64_t d : shape)
    total *= static_cast<uint64_t>(d);
  if (dim == 0) {
    for (int64_t r = 0; r < parts; ++r)
      std::memcpy(dst + uint64_t(r) * total, src, total);
    return;
  }
  // [A, halves, parts, m, B] (A: the dims before `dim`, B: the bytes of the
  // dims after it) to [parts, A, halves, m, B].
  uint64_t a = 1, b = static_cast<uint64_t>(elemBytes);
  for (int64_t i = 0; i < dim; ++i)
    a *= static_cast<uint64_t>(shape[size_t(i)]);
  for (size_t i = size_t(dim) + 1; i < shape.size(); ++i)
    b *= static_cast<uint64_t>(shape[i]);
  const uint64_t o = static_cast<uint64_t>(halves),
                 n = static_cast<uint64_t>(parts),
                 m = static_cast<uint64_t>(shape[size_t(dim)]) / (o * n);
  for (uint64_t r = 0; r < n; ++r)
    for (uint64_t i = 0; i < a; ++i)
      for (uint64_t h = 0; h < o; ++h)
        std::memcpy(dst + ((r * a + i) * o + h) * m * b,
                    src + ((i * o + h) * n + r) * m * b, m * b);
}

void mlir::moe::generateSeededWeights(int64_t seed, double scale,
                                      int64_t dtype, uint64_t count,
                                      uint8_t *dst) {
  uint64_t base = static_cast<uint64_t>(seed) * 0x9E3779B97F4A7C15ull;
  for (uint64_t i = 0; i < count; ++i) {
    double u = static_cast<double>(splitmix64(base + i) >> 40) / 16777216.0;
    double v = scale * (2.0 * u - 1.0);
    switch (dtype) {
    case 0: {
      float f = static_cast<float>(v);
      std::memcpy(dst + 4 * i, &f, 4);
      break;
    }
    case 3:
      std::memcpy(dst + 8 * i, &v, 8);
      break;
    default: { // F16 / BF16, rounded to nearest even.
      llvm::APFloat ap(static_cast<float>(v));
      bool lost;
      ap.convert(dtype == 1 ? llvm::APFloat::IEEEhalf()
                            : llvm::APFloat::BFloat(),
                 llvm::APFloat::rmNearestTiesToEven, &lost);
      uint16_t bits = static_cast<uint16_t>(ap.bitcastToAPInt().getZExtValue());
      std::memcpy(dst + 2 * i, &bits, 2);
      break;
    }
    }
  }
}

void Evaluator::reset() { values_.clear(); }

FailureOr<rt::Tensor> Evaluator::eval(Value root) {
  // Post-order over the definitions, with an explicit stack.
  SmallVector<std::pair<Value, bool>> stack{{root, false}};
  while (!stack.empty()) {
    auto [v, expanded] = stack.pop_back_val();
    if (values_.count(v) || constants_.count(v))
      continue;
    Operation *op = v.getDefiningOp();
    if (!op) {
      (void)fail("reaches an unbound argument");
      return failure();
    }
    if (expanded) {
      if (failed(evalOp(op)))
        return failure();
      continue;
    }
    stack.push_back({v, true});
    for (Value operand : op->getOperands())
      if (!values_.count(operand) && !constants_.count(operand))
        stack.push_back({operand, false});
  }
  auto it = values_.find(root);
  if (it != values_.end())
    return it->second;
  return constants_.find(root)->second;
}

LogicalResult Evaluator::evalOp(Operation *op) {
  if (op->getNumResults() && (values_.count(op->getResult(0)) ||
                              constants_.count(op->getResult(0))))
    return success();
  auto type = op->getNumResults()
                  ? dyn_cast<RankedTensorType>(op->getResult(0).getType())
                  : RankedTensorType();
  if (auto c = dyn_cast<arith::ConstantOp>(op)) {
    auto dense = dyn_cast<DenseElementsAttr>(c.getValue());
    FailureOr<rt::Tensor> t =
        dense ? tensorFromAttr(dense) : FailureOr<rt::Tensor>(failure());
    if (failed(t))
      return fail("cannot evaluate a non-dense or unsupported constant");
    constants_[c.getResult()] = std::move(*t);
    return success();
  }
  if (auto w = dyn_cast<nn::WeightOp>(op)) {
    std::optional<rt::DType> d = runtimeDType(type.getElementType());
    if (!d)
      return fail("weight '" + w.getName().str() + "' has an unsupported type");
    rt::StatusOr<rt::Tensor> t = rt::Tensor::allocate(*d, shapeOf(type));
    if (!t.isOk())
      return fail(t.status().message());
    uint64_t bytes = t->byteSize();
    if (bytes > budget_ || weightBytes_ + bytes > budget_)
      return fail("weights read exceed the evaluation budget");
    weightBytes_ += bytes;
    if (auto file = w.getFile()) {
      SmallString<256> path(*file);
      if (!llvm::sys::path::is_absolute(path)) {
        path = baseDir_;
        llvm::sys::path::append(path, *file);
      }
      auto buf = llvm::MemoryBuffer::getFileSlice(
          path, bytes, uint64_t(w.getOffset()), /*IsVolatile=*/false);
      if (!buf || (*buf)->getBufferSize() != bytes)
        return fail("cannot read weight '" + w.getName().str() + "' from '" +
                    std::string(path) + "'");
      std::memcpy(t->mutableData(), (*buf)->getBufferStart(), bytes);
    } else {
      generateSeededWeights(*w.getSeed(), w.getScale().convertToDouble(),
                            int64_t(*d), uint64_t(t->numElements()),
                            static_cast<uint8_t *>(t->mutableData()));
    }
    constants_[w.getResult()] = std::move(*t);
    return success();
  }
  const rt::KernelDef *def =
      rt::KernelRegistry::builtin().find(op->getName().getStringRef().str());
  if (!def)
    return fail("no runtime kernel for '" +
                op->getName().getStringRef().str() + "'");
  FailureOr<DictionaryAttr> params = buildKernelParams(op);
  if (failed(params))
    return fail("cannot build the parameters of '" +
                op->getName().getStringRef().str() + "'");
  std::vector<rt::Tensor> inputs;
  for (Value operand : op->getOperands()) {
    auto it = values_.find(operand);
    inputs.push_back(it != values_.end() ? it->second
                                         : constants_.find(operand)->second);
  }
  rt::StatusOr<std::vector<rt::Tensor>> out =
      rt::KernelRegistry::runCpu(*def, std::move(inputs),
                                 toRuntimeAttrs(*params), op->getNumResults());
  if (!out.isOk())
    return fail(op->getName().getStringRef().str() + ": " +
                out.status().message());
  if (out->size() != op->getNumResults())
    return fail(op->getName().getStringRef().str() +
                ": wrong number of results");
  for (auto [r, t] : llvm::zip(op->getResults(), *out))
    values_[r] = std::move(t);
  return success();
}
