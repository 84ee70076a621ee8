//===- AssignPrecision.cpp - One weight format per expert (MC-MoE) --------===//
//
// Measures what each candidate format costs each expert (its bytes and its
// error), weighs the error by the expert's importance from a routing
// profile, and lets GLPK pick the formats under a byte budget. Passes.td has
// the user-facing description.
//
//===----------------------------------------------------------------------===//

#include "passes/Analysis/ExpertInventory.h"
#include "passes/Analysis/PrecisionSolver.h"
#include "passes/Analysis/QuantError.h"
#include "passes/Analysis/RoutingProfile.h"
#include "passes/Evaluate.h"
#include "passes/Passes.h"

#include "dialects/nn/NNDialect.h"
#include "runtime/Kernel.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cctype>
#include <cmath>
#include <optional>

namespace mlir::moe {
#define GEN_PASS_DEF_ASSIGNPRECISION
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;
namespace rt = ::moe::rt;
namespace precision = ::moe::precision;

namespace {

/// A pin: the experts it names and their format.
struct Pin : ExpertPin {
  precision::Format format;
};

/// One expert's matrices (w1, w2, w3 slices) as [rows, cols] f32 views.
struct Matrix {
  const float *data;
  int64_t rows, cols;
};

/// The least rows of sampled tokens routed to an expert for its output error
/// to use them; with fewer, every sample of the layer is used.
constexpr int64_t kMinRoutedSamples = 8;

struct AssignPrecisionPass
    : public mlir::moe::impl::AssignPrecisionBase<AssignPrecisionPass> {
  using AssignPrecisionBase::AssignPrecisionBase;

  void runOnOperation() override;

private:
  LogicalResult fail(const Twine &message) {
    return getOperation().emitError("moe-assign-precision: ") << message;
  }
  FailureOr<SmallVector<precision::Format>> parseFormats();
  FailureOr<SmallVector<Pin>> parsePins();
  /// Whether the op's w1/w2/w3 are f32 nn.weights used by it alone (what
  /// moe-lower-to-plan can quantise).
  bool quantisable(ExpertsOp op);

public:
  struct LayerPlan {
    ExpertsOp op;
    bool included = false;
    int64_t firstGroup = 0;
  };

private:
  /// GPTQ on w1/w3 of every quantised expert; writes the calibrated weights
  /// to calibration-dir and points the nn.weights there.
  LogicalResult
  calibrateGptq(ArrayRef<LayerPlan> layers,
                const std::vector<SmallVector<precision::Format>> &formats,
                const precision::Solution &sol, const RoutingProfile &routing,
                const std::string &weightsDir, bool f16Scales);
};

FailureOr<SmallVector<precision::Format>> AssignPrecisionPass::parseFormats() {
  SmallVector<precision::Format> out;
  if (formats.empty()) {
    for (const precision::Format &f : precision::defaultFormats())
      out.push_back(f);
    return out;
  }
  for (const std::string &text : formats) {
    rt::StatusOr<precision::Format> f = precision::parseFormat(text);
    if (!f.isOk()) {
      (void)fail("formats: " + f.status().message());
      return failure();
    }
    if (!llvm::is_contained(out, *f))
      out.push_back(*f);
  }
  return out;
}

FailureOr<SmallVector<Pin>> AssignPrecisionPass::parsePins() {
  SmallVector<Pin> out;
  for (const std::string &text : pins) {
    FailureOr<ExpertPin> parsed = parseExpertPin(text);
    if (failed(parsed)) {
      (void)fail("pin '" + text + "': expected L:E=FORMAT (L, E an index "
                 "or *)");
      return failure();
    }
    Pin pin;
    static_cast<ExpertPin &>(pin) = *parsed;
    rt::StatusOr<precision::Format> f = precision::parseFormat(parsed->value);
    if (!f.isOk()) {
      (void)fail("pin '" + text + "': " + f.status().message());
      return failure();
    }
    pin.format = *f;
    out.push_back(pin);
  }
  return out;
}

bool AssignPrecisionPass::quantisable(ExpertsOp op) {
  for (Value w : {op.getW1(), op.getW2(), op.getW3()}) {
    if (!w)
      continue;
    auto weight = w.getDefiningOp<nn::WeightOp>();
    if (!weight || !weight.getType().getElementType().isF32() ||
        !w.hasOneUse())
      return false;
  }
  return true;
}

/// A contiguous slice [index] of dimension 0 of `t`, as a new tensor of
/// shape [1, ...].
rt::Tensor sliceOf(const rt::Tensor &t, int64_t index) {
  rt::Shape shape = t.shape();
  int64_t n = t.numElements() / shape[0];
  shape[0] = 1;
  rt::StatusOr<rt::Tensor> out = rt::Tensor::allocate(t.dtype(), shape);
  std::memcpy(out->mutableData(), t.data<float>() + index * n,
              size_t(n) * sizeof(float));
  return *out;
}

double squaredNorm(const float *x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i)
    s += double(x[i]) * double(x[i]);
  return s;
}

/// Rows of the layer's samples routed to expert x (all rows when fewer than
/// kMinRoutedSamples were).
std::vector<float> samplesOf(const LayerRouting &lr, int64_t x) {
  std::vector<int64_t> picked;
  for (int64_t r = 0; r < lr.sampleRows; ++r)
    for (int64_t j = 0; j < lr.topK; ++j)
      if (lr.sampleIds[size_t(r * lr.topK + j)] == x) {
        picked.push_back(r);
        break;
      }
  if (int64_t(picked.size()) < kMinRoutedSamples) {
    picked.clear();
    for (int64_t r = 0; r < lr.sampleRows; ++r)
      picked.push_back(r);
  }
  std::vector<float> rows;
  for (int64_t r : picked)
    rows.insert(rows.end(), lr.samples.begin() + r * lr.hidden,
                lr.samples.begin() + (r + 1) * lr.hidden);
  return rows;
}

LogicalResult AssignPrecisionPass::calibrateGptq(
    ArrayRef<LayerPlan> layers,
    const std::vector<SmallVector<precision::Format>> &formats,
    const precision::Solution &sol, const RoutingProfile &routing,
    const std::string &weightsDir, bool f16Scales) {
  if (std::error_code ec = llvm::sys::fs::create_directories(calibrationDir))
    return fail("cannot create calibration-dir '" + calibrationDir +
                "': " + ec.message());
  SmallString<256> absDir(calibrationDir);
  if (std::error_code ec = llvm::sys::fs::make_absolute(absDir))
    return fail("calibration-dir: " + ec.message());
  Evaluator eval(weightsDir);
  bool progress = llvm::errs().is_displayed();
  for (const LayerPlan &lp : layers) {
    if (!lp.included)
      continue;
    ExpertsOp op = lp.op;
    unsigned index = 0;
    for (const LayerPlan &other : layers) {
      if (other.op == op)
        break;
      ++index;
    }
    if (progress)
      llvm::errs() << "\rmoe-assign-precision: GPTQ layer " << index + 1;
    const LayerRouting &lr = routing.layers[index];
    for (Value w : {op.getW1(), op.getW3()}) {
      if (!w)
        continue;
      auto weight = w.getDefiningOp<nn::WeightOp>();
      eval.clear();
      FailureOr<rt::Tensor> t = eval.eval(w);
      if (failed(t))
        return op.emitError("moe-assign-precision: ") << eval.error();
      const rt::Shape &shape = t->shape();
      int64_t e = shape[0], rows = shape[1], cols = t->numElements() / e / rows;
      if (cols != lr.hidden)
        return op.emitError("moe-assign-precision: GPTQ: weight '")
               << weight.getName() << "' takes " << cols
               << " inputs, the samples have " << lr.hidden;
      std::vector<float> data(t->data<float>(),
                              t->data<float>() + t->numElements());
      for (int64_t x = 0; x < e; ++x) {
        size_t g = size_t(lp.firstGroup + x);
        const precision::Format &f = formats[g][size_t(sol.choice[g])];
        if (f.bits == 0 || f.bits == 16 || op.getExpert(x).getPruned())
          continue;
        // The tokens routed to the expert when there are enough of them for
        // a well-conditioned Hessian (twice its inputs), else every sample
        // of the layer: with fewer, GPTQ fits the few rows and does worse
        // than round-to-nearest (measured on mixtral_tiny).
        std::vector<float> xs = samplesOf(lr, x);
        if (int64_t(xs.size()) < 2 * cols * cols)
          xs = lr.samples;
        float *slice = data.data() + x * rows * cols;
        std::vector<float> calibrated(size_t(rows * cols));
        if (precision::gptqCalibrate(slice, rows, cols, xs.data(),
                                     int64_t(xs.size()) / cols, f, f16Scales,
                                     calibrated.data()))
          std::copy(calibrated.begin(), calibrated.end(), slice);
      }
      // One file per weight, named after it.
      std::string name;
      for (char c : weight.getName())
        name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      SmallString<256> path(absDir);
      llvm::sys::path::append(path, name + ".gptq.f32");
      std::error_code ec;
      llvm::raw_fd_ostream os(path, ec);
      if (ec)
        return fail("cannot write '" + path.str() + "': " + ec.message());
      os.write(reinterpret_cast<const char *>(data.data()),
               data.size() * sizeof(float));
      os.close();
      if (os.has_error())
        return fail("cannot write '" + path.str() + "'");
      Builder b(op.getContext());
      weight.setFileAttr(b.getStringAttr(path));
      weight.setOffsetAttr(b.getI64IntegerAttr(0));
      weight->removeAttr("seed");
      weight.setScaleAttr(b.getF64FloatAttr(1.0));
    }
  }
  if (progress)
    llvm::errs() << "\r\033[K";
  return success();
}

void AssignPrecisionPass::runOnOperation() {
  ModuleOp module = getOperation();
  MLIRContext *ctx = module.getContext();

  // Options.
  if ((budgetBits > 0) == (budgetBytes > 0)) {
    (void)fail("give exactly one budget: budget-bits (average bits per "
               "expert weight) or budget-bytes");
    return signalPassFailure();
  }
  if (budgetBits < 0 || budgetBytes < 0) {
    (void)fail("the budget must be positive");
    return signalPassFailure();
  }
  if (!parseImportanceKind(importance)) {
    (void)fail("importance must be energy, mixed, frequency, weight or "
               "uniform, not '" +
               importance + "'");
    return signalPassFailure();
  }
  if (!(frequencyWeight >= 0 && frequencyWeight <= 1) ||
      !(importanceFloor >= 0 && importanceFloor <= 1)) {
    (void)fail("frequency-weight and importance-floor must be in [0, 1]");
    return signalPassFailure();
  }
  if (!llvm::is_contained({"auto", "output", "relative-output", "weight"},
                          errorKind.getValue())) {
    (void)fail("error must be auto, output, relative-output or weight, not '" +
               errorKind + "'");
    return signalPassFailure();
  }
  if (quantScale != "f16" && quantScale != "f32") {
    (void)fail("quant-scale must be f16 or f32");
    return signalPassFailure();
  }
  if (calibration != "rtn" && calibration != "gptq") {
    (void)fail("calibration must be rtn or gptq, not '" + calibration + "'");
    return signalPassFailure();
  }
  if (calibration == "gptq" && calibrationDir.empty()) {
    (void)fail("calibration=gptq needs calibration-dir (where the calibrated "
               "weights are written)");
    return signalPassFailure();
  }
  if (!(timeLimit > 0)) {
    (void)fail("time-limit must be positive");
    return signalPassFailure();
  }
  bool f16Scales = quantScale == "f16";
  FailureOr<SmallVector<precision::Format>> cands = parseFormats();
  if (failed(cands))
    return signalPassFailure();
  FailureOr<SmallVector<Pin>> pinList = parsePins();
  if (failed(pinList))
    return signalPassFailure();

  ExpertInventory inventory(module);
  if (inventory.layers().empty()) {
    (void)fail("the module has no moe.experts op");
    return signalPassFailure();
  }
  for (const Pin &pin : *pinList) {
    if (pin.layer >= int64_t(inventory.layers().size())) {
      (void)fail("pin: layer " + Twine(pin.layer) + " does not exist (the "
                 "module has " + Twine(inventory.layers().size()) + ")");
      return signalPassFailure();
    }
    if (pin.expert >= 0)
      for (const ExpertLayer &layer : inventory.layers())
        if ((pin.layer < 0 || pin.layer == int64_t(layer.index)) &&
            pin.expert >= layer.numExperts) {
          (void)fail("pin: layer " + Twine(layer.index) + " has no expert " +
                     Twine(pin.expert));
          return signalPassFailure();
        }
  }

  llvm::Expected<std::optional<RoutingProfile>> loaded =
      loadProfileFor(profile, module);
  if (!loaded) {
    (void)fail(llvm::toString(loaded.takeError()));
    return signalPassFailure();
  }
  std::optional<RoutingProfile> routing = std::move(*loaded);
  if (!routing && importance != "uniform") {
    // Without a profile every expert matters the same.
    module.emitWarning("moe-assign-precision: no profile given: every expert "
                       "gets the same importance (record one with moe-exec "
                       "--profile)");
  }
  if (calibration == "gptq" &&
      (!routing || llvm::any_of(routing->layers, [](const LayerRouting &l) {
         return l.sampleRows == 0;
       }))) {
    (void)fail("calibration=gptq needs a profile with sampled hidden states "
               "(moe-exec --profile-samples N with N > 0)");
    return signalPassFailure();
  }
  if ((errorKind == "output" || errorKind == "relative-output") &&
      (!routing || llvm::any_of(routing->layers, [](const LayerRouting &l) {
         return l.sampleRows == 0;
       }))) {
    (void)fail("error=output needs a profile with sampled hidden states "
               "(moe-exec --profile-samples N with N > 0)");
    return signalPassFailure();
  }

  std::string dir = weightsDir;
  if (dir.empty())
    if (auto a = module->getAttrOfType<StringAttr>("moe.weights_dir"))
      dir = a.str();
  if (dir.empty())
    dir = ".";
  Evaluator eval(dir);
  const rt::KernelDef *expertsKernel =
      rt::KernelRegistry::builtin().find("moe.experts");

  // Per layer and expert: the candidates, then the solver's groups.
  SmallVector<LayerPlan> layers;
  std::vector<precision::Group> groups;
  // The format of each candidate of each group (a pinned format that is not
  // a candidate is appended to its group).
  std::vector<SmallVector<precision::Format>> groupFormats;
  int64_t elementsTotal = 0;
  bool progress = llvm::errs().is_displayed();
  for (const ExpertLayer &layer : inventory.layers()) {
    LayerPlan lp;
    lp.op = layer.op;
    ExpertsOp op = layer.op;
    if (!quantisable(op)) {
      op.emitWarning("moe-assign-precision: layer ")
          << layer.index
          << ": the expert weights are not f32 nn.weight ops used only by "
             "this op; its experts keep their stored precision";
      layers.push_back(lp);
      continue;
    }
    if (progress)
      llvm::errs() << "\rmoe-assign-precision: measuring layer "
                   << layer.index + 1 << "/" << inventory.layers().size();
    eval.clear();
    // Operands after x and offsets, evaluated (weights are read from their
    // files); w1, w2, w3 are the first one to three of them.
    SmallVector<rt::Tensor> operands;
    for (Value v : op.getOperands().drop_front(2)) {
      FailureOr<rt::Tensor> t = eval.eval(v);
      if (failed(t) || t->dtype() != rt::DType::F32) {
        op.emitError("moe-assign-precision: cannot read the expert weights: ")
            << (failed(t) ? eval.error() : std::string("not f32"));
        return signalPassFailure();
      }
      operands.push_back(*t);
    }
    size_t numW = op.getW3() ? 3 : 2;
    int64_t e = layer.numExperts;
    const LayerRouting *lr = routing ? &routing->layers[layer.index] : nullptr;
    bool useOutput = errorKind == "output" || errorKind == "relative-output" ||
                     (errorKind == "auto" && lr && lr->sampleRows > 0);
    bool relativeOutput = errorKind == "relative-output";
    rt::Attrs attrs;
    if (useOutput) {
      FailureOr<DictionaryAttr> params = buildKernelParams(op);
      if (failed(params) || !expertsKernel) {
        op.emitError("moe-assign-precision: no kernel parameters for the op");
        return signalPassFailure();
      }
      attrs = toRuntimeAttrs(*params);
      attrs.setInt("num_experts", 1)
          .setInts("bits", {0})
          .setInts("pruned", {0})
          .setInts("placement", {0});
    }
    // Importance per expert.
    std::vector<double> imp =
        expertImportance(lr, e, *parseImportanceKind(importance),
                         frequencyWeight, importanceFloor);

    lp.included = true;
    lp.firstGroup = int64_t(groups.size());
    // With error=output the candidates' errors are first the mean squared
    // error of one output row; they are divided, once the layer is done, by
    // the layer output's energy: Σ_e importance_e · mean ||y_e||².
    std::vector<double> energy(static_cast<size_t>(e), 0.0);
    for (int64_t x = 0; x < e; ++x) {
      SmallVector<Matrix> mats;
      SmallVector<rt::Tensor> slices;
      for (size_t k = 0; k < operands.size(); ++k)
        slices.push_back(sliceOf(operands[k], x));
      for (size_t k = 0; k < numW; ++k) {
        const rt::Shape &s = operands[k].shape();
        int64_t cols = 1;
        for (size_t d = 2; d < s.size(); ++d)
          cols *= s[d];
        mats.push_back({slices[k].data<float>(), s[1], cols});
        elementsTotal += s[1] * cols;
      }
      // Output error setup: the sampled rows routed to x (or all).
      rt::Tensor rows, reference;
      double refNorm = 0;
      if (useOutput) {
        std::vector<float> picked = samplesOf(*lr, x);
        int64_t h = lr->hidden, n = int64_t(picked.size()) / h;
        rows = *rt::Tensor::fromVector<float>(rt::DType::F32, {n, h}, picked);
      }
      auto runExpert = [&](ArrayRef<rt::Tensor> ws) -> FailureOr<rt::Tensor> {
        int64_t n = rows.shape()[0];
        std::vector<rt::Tensor> in;
        in.push_back(rows);
        in.push_back(*rt::Tensor::fromVector<int64_t>(rt::DType::I64, {2},
                                                      {0, n}));
        for (const rt::Tensor &t : ws)
          in.push_back(t);
        rt::StatusOr<std::vector<rt::Tensor>> out =
            rt::KernelRegistry::runCpu(*expertsKernel, std::move(in), attrs, 1);
        if (!out.isOk()) {
          op.emitError("moe-assign-precision: expert ")
              << x << ": " << out.status().message();
          return failure();
        }
        return (*out)[0];
      };
      if (useOutput) {
        FailureOr<rt::Tensor> y = runExpert(slices);
        if (failed(y))
          return signalPassFailure();
        reference = *y;
        refNorm = squaredNorm(reference.data<float>(), reference.numElements());
        energy[size_t(x)] = refNorm / double(reference.shape()[0]);
      }
      double weightNorm = 0;
      for (const Matrix &m : mats)
        weightNorm += squaredNorm(m.data, m.rows * m.cols);

      precision::Group group;
      group.importance = imp[size_t(x)];
      SmallVector<precision::Format> formatsOfGroup(cands->begin(),
                                                    cands->end());
      for (const precision::Format &f : *cands) {
        precision::Candidate c;
        double err = 0;
        for (const Matrix &m : mats)
          c.bytes += precision::packedBytes(f, m.rows, m.cols, f16Scales);
        if (useOutput && refNorm > 0) {
          SmallVector<rt::Tensor> q(slices.begin(), slices.end());
          for (size_t k = 0; k < numW; ++k) {
            q[k] = *rt::Tensor::allocate(rt::DType::F32, slices[k].shape());
            precision::roundTrip(mats[k].data, mats[k].rows, mats[k].cols, f,
                                 f16Scales, q[k].mutableData<float>());
          }
          FailureOr<rt::Tensor> y = runExpert(q);
          if (failed(y))
            return signalPassFailure();
          const float *a = y->data<float>(), *b = reference.data<float>();
          for (int64_t i = 0; i < y->numElements(); ++i) {
            double d = double(a[i]) - double(b[i]);
            err += d * d;
          }
          err /= relativeOutput ? refNorm : double(y->shape()[0]);
        } else {
          for (const Matrix &m : mats)
            err += precision::squaredError(m.data, m.rows, m.cols, f,
                                           f16Scales);
          err = weightNorm > 0 ? err / weightNorm : 0.0;
        }
        c.error = err;
        group.candidates.push_back(c);
      }
      // Pins: the last matching one wins; a pruned expert takes the
      // cheapest format (its rows give zeros whatever it holds).
      for (const Pin &pin : *pinList)
        if (pin.matches(int64_t(layer.index), x)) {
          const auto *it = llvm::find(*cands, pin.format);
          if (it == cands->end()) {
            // A pinned format need not be a candidate: add it.
            precision::Candidate c;
            for (const Matrix &m : mats)
              c.bytes += precision::packedBytes(pin.format, m.rows, m.cols,
                                                f16Scales);
            double err = 0;
            for (const Matrix &m : mats)
              err += precision::squaredError(m.data, m.rows, m.cols,
                                             pin.format, f16Scales);
            c.error = weightNorm > 0 ? err / weightNorm : 0.0;
            group.candidates.push_back(c);
            formatsOfGroup.push_back(pin.format);
            group.pinned = int(group.candidates.size()) - 1;
          } else {
            group.pinned = int(it - cands->begin());
          }
        }
      if (op.getExpert(x).getPruned() && group.pinned < 0) {
        int best = 0;
        for (size_t c = 1; c < group.candidates.size(); ++c)
          if (group.candidates[c].bytes < group.candidates[size_t(best)].bytes)
            best = int(c);
        group.pinned = best;
        group.importance = 0;
      }
      groups.push_back(std::move(group));
      groupFormats.push_back(std::move(formatsOfGroup));
    }
    if (useOutput && !relativeOutput) {
      double layerEnergy = 0, impSum = 0;
      for (int64_t x = 0; x < e; ++x) {
        layerEnergy += imp[size_t(x)] * energy[size_t(x)];
        impSum += imp[size_t(x)];
      }
      layerEnergy = impSum > 0 ? layerEnergy / impSum : 0.0;
      for (int64_t x = 0; x < e; ++x)
        for (precision::Candidate &c :
             groups[size_t(lp.firstGroup + x)].candidates)
          if (energy[size_t(x)] > 0 && layerEnergy > 0)
            c.error /= layerEnergy;
    }
    layers.push_back(lp);
  }
  if (progress)
    llvm::errs() << "\r\033[K";
  eval.clear();
  if (groups.empty()) {
    (void)fail("no layer has quantisable expert weights");
    return signalPassFailure();
  }

  precision::SolveOptions so;
  so.budget = budgetBytes > 0
                  ? int64_t(budgetBytes)
                  : int64_t(std::floor(budgetBits * double(elementsTotal) / 8));
  so.timeLimitSeconds = timeLimit;
  rt::StatusOr<precision::Solution> sol = precision::solve(groups, so);
  if (!sol.isOk()) {
    (void)fail(sol.status().message());
    return signalPassFailure();
  }

  // Record the choice.
  Builder b(ctx);
  if (calibration == "gptq") {
    // The model keeps its identity although its weights move.
    if (!module->hasAttr("moe.model_id"))
      module->setAttr("moe.model_id",
                      b.getStringAttr(modelFingerprint(module)));
    if (failed(calibrateGptq(layers, groupFormats, *sol, *routing, dir,
                             f16Scales)))
      return signalPassFailure();
  }
  for (const LayerPlan &lp : layers) {
    if (!lp.included)
      continue;
    ExpertsOp op = lp.op;
    SmallVector<Attribute> experts;
    SmallVector<double> errors;
    std::string line;
    for (int64_t x = 0; x < op.getNumExperts(); ++x) {
      const precision::Group &g = groups[size_t(lp.firstGroup + x)];
      int choice = sol->choice[size_t(lp.firstGroup + x)];
      precision::Format f =
          groupFormats[size_t(lp.firstGroup + x)][size_t(choice)];
      ExpertAttr old = op.getExpert(x);
      int64_t bits = f.bits, group = f.bits == 0 || f.bits == 16 ? 0
                                                                   : f.groupSize;
      experts.push_back(ExpertAttr::get(ctx, old.getPlacement(), bits, group,
                                        old.getPruned(),
                                        group != 0 && f.zeroPoints));
      errors.push_back(g.candidates[size_t(choice)].error);
      line += (x ? ", " : "") + precision::formatName(f);
      ++numExperts;
    }
    op.setExpertsAttr(ArrayAttr::get(ctx, experts));
    op->setAttr("moe.precision_error", b.getDenseF64ArrayAttr(errors));
    if (report)
      op.emitRemark("moe-assign-precision: ") << line;
  }
  double avgBits = elementsTotal ? 8.0 * double(sol->bytes) /
                                       double(elementsTotal)
                                 : 0.0;
  NamedAttrList info;
  info.append("budget_bytes", b.getI64IntegerAttr(so.budget));
  info.append("bytes", b.getI64IntegerAttr(sol->bytes));
  info.append("average_bits", b.getF64FloatAttr(avgBits));
  info.append("objective", b.getF64FloatAttr(sol->objective));
  info.append("optimal", b.getBoolAttr(sol->optimal));
  module->setAttr("moe.precision", info.getDictionary(ctx));
  if (report) {
    std::string text;
    llvm::raw_string_ostream os(text);
    os << sol->bytes << " bytes of " << so.budget << " ("
       << llvm::format("%.3f", avgBits) << " bits per weight), objective "
       << llvm::format("%.4g", sol->objective)
       << (sol->optimal ? ", optimal" : ", not proven optimal") << ", "
       << llvm::format("%.2f", sol->seconds) << " s";
    module.emitRemark("moe-assign-precision: ") << os.str();
  }
}

} // namespace
