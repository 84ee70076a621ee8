//===- OnnxImporter.h - ONNX ModelProto to nn/moe IR ------------*- C++ -*-===//
//
// Imports an ONNX model as a module with one `func.func @main`: graph inputs
// become arguments (symbolic dims stay `?`), graph outputs the results.
// Every ONNX operator maps to `nn` ops with ONNX semantics (docs/onnx-import.md);
// `com.microsoft.MoE`/`QMoE` import directly as moe.route/dispatch/experts/
// combine. Initializers stay references (`nn.weight` with file and offset)
// into the model file or its external data files; small integer tensors
// (shapes, axes) become `arith.constant` so that shape arithmetic folds.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_FRONTENDS_ONNX_ONNXIMPORTER_H
#define MOE_FRONTENDS_ONNX_ONNXIMPORTER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

namespace mlir {
class MLIRContext;
} // namespace mlir

namespace moe::onnx_frontend {

/// True for the file names the importer reads: `*.onnx` (binary ModelProto)
/// and `*.onnxtext` (ONNX's textual syntax, for tests).
bool isOnnxPath(llvm::StringRef path);

/// Imports the model at `path`. Weight references are relative to the
/// model's directory. Errors are one line: "<file>: node 'n' (Op, domain
/// '', opset 17): what is wrong".
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
importOnnxFile(llvm::StringRef path, mlir::MLIRContext &ctx);

/// The dialects the imported IR uses (to load before importing).
void loadImportDialects(mlir::MLIRContext &ctx);

} // namespace moe::onnx_frontend

#endif // MOE_FRONTENDS_ONNX_ONNXIMPORTER_H
