//===- MoeAttrs.td - Attributes of the moe dialect ---------*- tablegen -*-===//

#ifndef MOE_MOE_ATTRS_TD
#define MOE_MOE_ATTRS_TD

include "dialects/moe/MoeDialect.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

class Moe_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<Moe_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def Moe_ScoringSoftmax : I32EnumAttrCase<"softmax", 0>;
def Moe_ScoringSigmoid : I32EnumAttrCase<"sigmoid", 1>;
def Moe_ScoringSparseMixer : I32EnumAttrCase<"sparsemixer", 2>;
def Moe_Scoring : I32EnumAttr<"Scoring", "router scoring",
    [Moe_ScoringSoftmax, Moe_ScoringSigmoid, Moe_ScoringSparseMixer]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::moe";
}
def Moe_ScoringAttr : EnumAttr<Moe_Dialect, Moe_Scoring, "scoring"> {
  let assemblyFormat = "`<` $value `>`";
}

def Moe_ActSilu : I32EnumAttrCase<"silu", 0>;
def Moe_ActGelu : I32EnumAttrCase<"gelu", 1>;
def Moe_ActRelu : I32EnumAttrCase<"relu", 2>;
def Moe_ActGeluTanh : I32EnumAttrCase<"gelu_tanh", 3>;
def Moe_ActIdentity : I32EnumAttrCase<"identity", 4>;
def Moe_ActSwiglu : I32EnumAttrCase<"swiglu", 5>;
// `gelu` is exact (erf); `gelu_tanh` is the tanh approximation (ONNX
// Runtime's MoE "gelu"); `swiglu` is ONNX Runtime's clamped SwiGLU, whose
// gate and linear parts come from w1 and w3 or from a fused w1
// (`moe.experts` documents it).
def Moe_Activation : I32EnumAttr<"Activation", "expert activation",
    [Moe_ActSilu, Moe_ActGelu, Moe_ActRelu, Moe_ActGeluTanh, Moe_ActIdentity,
     Moe_ActSwiglu]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::moe";
}
def Moe_ActivationAttr : EnumAttr<Moe_Dialect, Moe_Activation, "activation"> {
  let assemblyFormat = "`<` $value `>`";
}

def Moe_PlaceUnassigned : I32EnumAttrCase<"unassigned", 0>;
def Moe_PlaceGpu : I32EnumAttrCase<"gpu", 1>;
def Moe_PlaceCpu : I32EnumAttrCase<"cpu", 2>;
def Moe_PlaceOnDemand : I32EnumAttrCase<"on_demand", 3>;
def Moe_Placement : I32EnumAttr<"Placement", "expert placement",
    [Moe_PlaceUnassigned, Moe_PlaceGpu, Moe_PlaceCpu, Moe_PlaceOnDemand]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::moe";
}

def Moe_SchedDirect : I32EnumAttrCase<"direct", 0>;
def Moe_SchedHierarchical : I32EnumAttrCase<"hierarchical", 1>;
def Moe_SchedPipelined : I32EnumAttrCase<"pipelined", 2>;
def Moe_Schedule : I32EnumAttr<"Schedule", "all-to-all schedule",
    [Moe_SchedDirect, Moe_SchedHierarchical, Moe_SchedPipelined]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::moe";
}
def Moe_ScheduleAttr : EnumAttr<Moe_Dialect, Moe_Schedule, "schedule"> {
  let assemblyFormat = "`<` $value `>`";
}

//===----------------------------------------------------------------------===//
// Per-expert properties
//===----------------------------------------------------------------------===//

def Moe_ExpertAttr : Moe_Attr<"Expert", "expert"> {
  let summary = "the compiler's decisions for one expert";
  let description = [{
    One entry per expert of a `moe.experts` op:
    - `placement`: `unassigned` (default), `gpu` (resident), `cpu` (computed
      where its weights are, in host memory) or `on_demand` (streamed to the
      GPU when used); set by `moe-place-experts`.
    - `bits`: the weight precision chosen by `moe-assign-precision`; 0 (the
      default) keeps the precision the weights are stored in. One of 0, 16, 8,
      4, 3, 2.
    - `group_size`: quantisation group size along the input dimension (0:
      none); one of 0, 32, 64, 128.
    - `pruned`: removed by `moe-prune-experts`; rows still routed to a pruned
      expert contribute zeros.
    - `zero_points`: with bits 8/4/3/2, each group also stores an 8-bit zero
      point (asymmetric quantisation: 2^bits levels between the group's
      minimum and maximum instead of 2^bits - 1 symmetric ones; worth most
      at 2 and 3 bits).

    Example:

    ```mlir
    #moe.expert<placement = gpu, bits = 4, group_size = 128>
    #moe.expert<pruned = true>
    #moe.expert<bits = 2, group_size = 64, zero_points = true>
    ```
  }];
  let parameters = (ins
    DefaultValuedParameter<"::mlir::moe::Placement",
                           "::mlir::moe::Placement::unassigned">:$placement,
    DefaultValuedParameter<"int64_t", "0">:$bits,
    DefaultValuedParameter<"int64_t", "0">:$group_size,
    DefaultValuedParameter<"bool", "false">:$pruned,
    DefaultValuedParameter<"bool", "false">:$zero_points);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

#endif // MOE_MOE_ATTRS_TD
