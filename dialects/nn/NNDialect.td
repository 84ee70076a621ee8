//===- NNDialect.td - The dense tensor dialect -------------*- tablegen -*-===//

#ifndef MOE_NN_DIALECT_TD
#define MOE_NN_DIALECT_TD

include "mlir/IR/OpBase.td"

def NN_Dialect : Dialect {
  let name = "nn";
  let cppNamespace = "::mlir::nn";
  let summary = "Dense tensor operations of a transformer, at inference granularity";
  let description = [{
    The `nn` dialect holds the dense operations that a transformer block needs
    (matmul/linear, elementwise, activations, softmax, reductions, norms and the
    data movement ops), on ranked tensors with inferred result types. No op here
    knows about experts: expert structure lives in the `moe` dialect. The ONNX
    importer maps ONNX operators onto these ops, and `moe-lower-to-plan` turns
    each into a `plan.call` of the runtime kernel of the same name
    (docs/plan-format.md lists the kernel ABI).

    ONNX operators whose shapes are computed at run time or whose axes and
    sizes are tensors have ops of their own with ONNX semantics
    (docs/onnx-import.md). Every op with an inferred result type also accepts
    an explicitly given one of the same element type and rank whose
    dimensions are compatible (`?` matches anything).

    Weights are never inlined: `nn.weight` refers to data in a file (or to a
    documented deterministic generator), so large models import in bounded
    memory.
  }];
}

class NN_Op<string mnemonic, list<Trait> traits = []>
    : Op<NN_Dialect, mnemonic, traits>;

#endif // MOE_NN_DIALECT_TD
