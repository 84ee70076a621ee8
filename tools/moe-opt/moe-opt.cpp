//===- moe-opt.cpp - The MoE compiler driver ------------------------------===//
//
// mlir-opt for the nn/moe/plan dialects, plus `--emit-plan FILE`. Test modes
// (--verify-diagnostics, --split-input-file, ...) go through MlirOptMain
// unchanged; the normal path runs the same pipeline with a diagnostic handler
// that reports each error as one line (`file:line:col: error: message`).
//
//===----------------------------------------------------------------------===//

#include "compiler/PlanEmitter.h"
#include "compiler/Registration.h"
#include "frontends/onnx/OnnxImporter.h"

#include "mlir/Bytecode/BytecodeWriter.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Support/Timing.h"
#include "mlir/Tools/ParseUtilities.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace mlir;

static llvm::cl::OptionCategory moeCategory("moe-opt options");

static llvm::cl::opt<std::string>
    emitPlanFile("emit-plan",
                 llvm::cl::desc("Write the compiled module as a plan file "
                                "(lowering to the plan dialect first if "
                                "needed). Without -o the IR is not printed."),
                 llvm::cl::value_desc("file"), llvm::cl::cat(moeCategory));

static llvm::cl::opt<bool> emitDequantized(
    "emit-dequantized",
    llvm::cl::desc("With --emit-plan: store quantised expert weights as "
                   "plain f32 holding their dequantised values (the "
                   "reference a quantised plan must reproduce)"),
    llvm::cl::init(false), llvm::cl::cat(moeCategory));

static llvm::cl::opt<std::string> weightsDir(
    "weights-dir",
    llvm::cl::desc("Directory against which relative weight file paths are "
                   "resolved (default: the input file's directory)"),
    llvm::cl::value_desc("dir"), llvm::cl::cat(moeCategory));

static constexpr const char *kOverview = R"(moe-opt: the MoE compiler driver

Reads MLIR in the nn, moe and plan dialects (and the upstream func, arith,
tensor, memref dialects) or an ONNX model (*.onnx, or *.onnxtext in ONNX's
text syntax), runs passes, prints the result and, with --emit-plan FILE,
writes an executable plan for moe-exec.

  moe-opt model.onnx                                # print the imported IR
  moe-opt model.onnx --moe-compile --emit-plan model.moeplan
  moe-opt block.mlir --moe-compile --emit-plan block.moeplan
  moe-opt block.mlir --moe-lower-to-plan            # print the plan-level IR
  moe-opt block.mlir --pass-pipeline='builtin.module(moe-lower-to-plan)'

Every mlir-opt flag works (--pass-pipeline, --mlir-print-ir-after-all,
--load-pass-plugin, --load-dialect-plugin, --verify-diagnostics, ...).
)";

/// Prints each error as one line; notes are folded into it.
static void installOneLineDiagnostics(MLIRContext &ctx) {
  ctx.getDiagEngine().registerHandler([](Diagnostic &diag) {
    std::string text;
    llvm::raw_string_ostream os(text);
    // Imported ONNX ops carry `node-name`(file:0:0): print "file: node 'n':".
    if (auto loc = diag.getLocation()->findInstanceOf<FileLineColLoc>()) {
      if (loc.getLine() == 0)
        os << loc.getFilename().getValue() << ": ";
      else
        os << loc.getFilename().getValue() << ":" << loc.getLine() << ":"
           << loc.getColumn() << ": ";
    }
    if (auto name = diag.getLocation()->findInstanceOf<NameLoc>())
      os << "node '" << name.getName().getValue() << "': ";
    switch (diag.getSeverity()) {
    case DiagnosticSeverity::Error:
      os << "error: ";
      break;
    case DiagnosticSeverity::Warning:
      os << "warning: ";
      break;
    default:
      os << "note: ";
      break;
    }
    os << diag.str();
    for (Diagnostic &note : diag.getNotes())
      os << " (note: " << note.str() << ")";
    os.flush();
    std::replace(text.begin(), text.end(), '\n', ' ');
    llvm::errs() << text << "\n";
    return success();
  });
}

static LogicalResult runDriver(std::unique_ptr<llvm::MemoryBuffer> input,
                               StringRef inputFile, llvm::raw_ostream &os,
                               bool printIR, DialectRegistry &registry,
                               const MlirOptMainConfig &config) {
  MLIRContext ctx(registry);
  ctx.allowUnregisteredDialects(config.shouldAllowUnregisteredDialects());
  // One line per error: no dump of the failing operation as a note.
  ctx.printOpOnDiagnostic(false);
  installOneLineDiagnostics(ctx);
  OwningOpRef<Operation *> op;
  if (moe::onnx_frontend::isOnnxPath(inputFile)) {
    llvm::Expected<OwningOpRef<ModuleOp>> module =
        moe::onnx_frontend::importOnnxFile(inputFile, ctx);
    if (!module) {
      llvm::errs() << "moe-opt: error: " << llvm::toString(module.takeError())
                   << "\n";
      return failure();
    }
    op = OwningOpRef<Operation *>(module->release());
  } else {
    auto sourceMgr = std::make_shared<llvm::SourceMgr>();
    sourceMgr->AddNewSourceBuffer(std::move(input), llvm::SMLoc());
    ParserConfig parserConfig(&ctx);
    op = parseSourceFileForTool(sourceMgr, parserConfig,
                                !config.shouldUseExplicitModule());
  }
  if (!op)
    return failure();
  PassManager pm(op.get()->getName(), PassManager::Nesting::Implicit);
  pm.enableVerifier(config.shouldVerifyPasses());
  if (failed(applyPassManagerCLOptions(pm)))
    return failure();
  DefaultTimingManager tm;
  applyDefaultTimingManagerCLOptions(tm);
  TimingScope timing = tm.getRootScope();
  pm.enableTiming(timing);
  if (failed(config.setupPassPipeline(pm)))
    return failure();
  if (failed(pm.run(*op)))
    return failure();
  if (!printIR)
    return success();
  if (config.shouldEmitBytecode())
    return writeBytecodeToFile(op.get(), os);
  op.get()->print(os);
  os << "\n";
  return success();
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  DialectRegistry registry;
  moe::compiler::registerDialects(registry);
  moe::compiler::registerPasses();

  auto [inputFile, outputFile] =
      registerAndParseCLIOptions(argc, argv, kOverview, registry);
  MlirOptMainConfig config = MlirOptMainConfig::createFromCLOptions();

  if (!emitPlanFile.empty()) {
    moe::compiler::EmitPlanOptions emit;
    emit.path = emitPlanFile;
    emit.dequantize = emitDequantized;
    emit.source = inputFile == "-" ? "<stdin>"
                                   : llvm::sys::path::filename(inputFile).str();
    if (!weightsDir.empty())
      emit.baseDir = weightsDir;
    else if (inputFile != "-")
      emit.baseDir = llvm::sys::path::parent_path(inputFile).str();
    if (emit.baseDir.empty())
      emit.baseDir = ".";
    MlirOptMainConfig base = config;
    config.setPassPipelineSetupFn([base, emit](PassManager &pm) {
      if (failed(base.setupPassPipeline(pm)))
        return failure();
      pm.addPass(moe::compiler::createEmitPlanPass(emit));
      return success();
    });
  }

  std::string error;
  std::unique_ptr<llvm::MemoryBuffer> input = openInputFile(inputFile, &error);
  if (!input) {
    llvm::errs() << "moe-opt: error: " << error << "\n";
    return 1;
  }
  // With --emit-plan the plan is the product; print IR only when asked (-o).
  bool printIR = emitPlanFile.empty() || outputFile != "-";
  std::unique_ptr<llvm::ToolOutputFile> output =
      openOutputFile(printIR ? outputFile : "-", &error);
  if (!output) {
    llvm::errs() << "moe-opt: error: " << error << "\n";
    return 1;
  }

  bool testMode =
      !moe::onnx_frontend::isOnnxPath(inputFile) &&
      (config.shouldVerifyDiagnostics() || !config.inputSplitMarker().empty() ||
       config.shouldShowDialects() || config.shouldRunReproducer() ||
       config.shouldDumpPassPipeline() || config.shouldVerifyRoundtrip() ||
       !config.getIrdlFile().empty());
  LogicalResult result =
      testMode ? MlirOptMain(printIR ? output->os() : llvm::nulls(),
                             std::move(input), registry, config)
               : runDriver(std::move(input), inputFile, output->os(), printIR,
                           registry, config);
  if (failed(result))
    return 1;
  output->keep();
  return 0;
}
