//===- MoeDialect.td - The expert-aware dialect ------------*- tablegen -*-===//

#ifndef MOE_MOE_DIALECT_TD
#define MOE_MOE_DIALECT_TD

include "mlir/IR/OpBase.td"

def Moe_Dialect : Dialect {
  let name = "moe";
  let cppNamespace = "::mlir::moe";
  let summary = "Expert-aware operations of sparse Mixture-of-Experts models";
  let description = [{
    The `moe` dialect describes an MoE layer as four steps on tensors:
    `moe.route` picks each token's top-k experts and routing weights,
    `moe.dispatch` permutes tokens into expert order, `moe.experts` runs a bank
    of expert FFNs over the permuted rows, and `moe.combine` weighs and sums
    the expert outputs back into token order. When experts are partitioned
    across ranks, `moe.all_to_all` moves rows between dispatch and experts.

    Per-expert decisions of the optimisation passes — placement (MoNDE),
    precision (MC-MoE), pruning (MC-MoE, Lynx) — are typed `#moe.expert`
    attributes of `moe.experts`, one per expert, never loose discardable
    attributes.
  }];
  let useDefaultAttributePrinterParser = 1;
}

class Moe_Op<string mnemonic, list<Trait> traits = []>
    : Op<Moe_Dialect, mnemonic, traits>;

#endif // MOE_MOE_DIALECT_TD
