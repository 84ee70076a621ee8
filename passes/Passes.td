//===- Passes.td - Passes of the MoE compiler --------------*- tablegen -*-===//

#ifndef MOE_PASSES_TD
#define MOE_PASSES_TD

include "mlir/Pass/PassBase.td"

def LowerToPlan : Pass<"moe-lower-to-plan", "mlir::ModuleOp"> {
  let summary = "lower nn and moe ops on tensors to plan steps on buffers";
  let description = [{
    Turns every function on tensors into a function on `memref` buffers whose
    body is a plan: `nn.weight` becomes `plan.weight`, `arith.constant`
    becomes `plan.constant`, every `nn` and `moe` op becomes a `plan.call` of
    the runtime kernel of the same name with its attributes converted to
    kernel parameters (docs/plan-format.md), and a `plan.free` follows the
    last use of every intermediate buffer. Steps keep the order of the input,
    which is a valid sequential schedule; all steps are placed on `device`.

    An op that has no runtime kernel is an error naming the op.

    Example: `nn.silu %x : tensor<?x64xf32>` becomes
    `plan.call "nn.silu"(%x) : (memref<?x64xf32>) -> memref<?x64xf32>`.
  }];
  let options = [
    Option<"device", "device", "std::string", /*default=*/"\"cpu\"",
           "device of every step: cpu or cuda">,
  ];
  let dependentDialects = ["mlir::plan::PlanDialect",
                           "mlir::func::FuncDialect"];
}

#endif // MOE_PASSES_TD
