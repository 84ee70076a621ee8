//===- MoeOps.td - Operations of the moe dialect -----------*- tablegen -*-===//

#ifndef MOE_MOE_OPS_TD
#define MOE_MOE_OPS_TD

include "dialects/moe/MoeAttrs.td"
include "mlir/IR/CommonAttrConstraints.td"
include "mlir/IR/CommonTypeConstraints.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Moe_FloatTensor2D : 2DTensorOf<[AnyFloat]>;
def Moe_IdTensor2D : 2DTensorOf<[I64]>;
def Moe_IdVector : 1DTensorOf<[I64]>;
def Moe_Weight3D : 3DTensorOf<[AnyFloat]>;
def Moe_Bias2D : 2DTensorOf<[AnyFloat]>;
def Moe_ExpertArrayAttr : TypedArrayAttrBase<Moe_ExpertAttr,
    "array of #moe.expert attributes">;

def Moe_RouteOp : Moe_Op<"route", [Pure, InferTypeOpAdaptor]> {
  let summary = "pick each token's top-k experts and routing weights";
  let description = [{
    From router logits `[T, E]`, computes scores with `scoring` (softmax over
    the E experts, or an independent sigmoid per expert), selects the `k`
    highest-scoring experts per token (ties go to the lower expert id) and
    returns their ids `[T, k]` (i64, best first) and scores `[T, k]`; with
    `normalize` the k scores of a token are divided by their sum.

    Pruning (set by `moe-prune-experts`; all off by default, and then the
    result is exactly the above):
    - `excluded` (one flag per expert): statically pruned experts are never
      chosen; a token takes its best k remaining experts.
    - `max_experts` / `batch_mass` (Lynx, batch-aware): of the experts the
      batch's tokens choose, only the `max_experts` with the most routing
      mass run, or the fewest holding `batch_mass` of it (at least k); each
      token takes its best k of those. With `keep_first`, every expert that
      is some token's first choice stays, whatever the cap.
    - `skip_threshold` (MC-MoE, token-level): a choice other than a token's
      first is skipped (id -1, weight 0) when its share of the token's
      weight is below the threshold, unless the token is important: its
      first choice's share is below `protect_confidence` (the router is
      unsure between experts, so every choice is kept).
    After re-routing or skipping, a token's weights are rescaled to the sum
    its unpruned top-k had (1 with `normalize`).

    Example:

    ```mlir
    %ids, %weights = moe.route %logits {k = 2 : i64, scoring = #moe.scoring<softmax>, normalize = true}
        : tensor<?x8xf32> -> tensor<?x2xi64>, tensor<?x2xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor2D:$logits,
                   ConfinedAttr<I64Attr, [IntPositive]>:$k,
                   DefaultValuedAttr<Moe_ScoringAttr,
                                     "::mlir::moe::Scoring::softmax">:$scoring,
                   DefaultValuedAttr<BoolAttr, "true">:$normalize,
                   DefaultValuedAttr<F64Attr, "0.0">:$skip_threshold,
                   DefaultValuedAttr<F64Attr, "0.0">:$protect_confidence,
                   DefaultValuedAttr<I64Attr, "0">:$max_experts,
                   DefaultValuedAttr<F64Attr, "0.0">:$batch_mass,
                   DefaultValuedAttr<BoolAttr, "false">:$keep_first,
                   OptionalAttr<DenseBoolArrayAttr>:$excluded);
  let results = (outs Moe_IdTensor2D:$ids, Moe_FloatTensor2D:$weights);
  let builders = [
    // Without pruning.
    OpBuilder<(ins "::mlir::Value":$logits, "uint64_t":$k,
                   "::mlir::moe::Scoring":$scoring, "bool":$normalize), [{
      build($_builder, $_state, logits, k, scoring, normalize,
            ::llvm::APFloat(0.0), ::llvm::APFloat(0.0), 0,
            ::llvm::APFloat(0.0), false, nullptr);
    }]>
  ];
  let assemblyFormat = [{
    $logits attr-dict `:` type($logits) `->` type($ids) `,` type($weights)
  }];
  let hasVerifier = 1;
}

def Moe_DispatchOp : Moe_Op<"dispatch", [Pure, InferTypeOpAdaptor]> {
  let summary = "permute token rows into expert order";
  let description = [{
    Takes hidden states `[T, H]` and the routed expert ids `[T, k]` and
    returns the T·k rows sorted by expert (stable in token order) `[T·k, H]`,
    the expert offsets `[E + 1]` (expert e owns rows `offsets[e]` up to
    `offsets[e + 1]`) and the permutation `[T·k]` (row r came from token
    `perm[r] / k`, slot `perm[r] mod k`) that `moe.combine` inverts.

    Example:

    ```mlir
    %rows, %offsets, %perm = moe.dispatch %x, %ids {num_experts = 8 : i64}
        : tensor<?x64xf32>, tensor<?x2xi64> -> tensor<?x64xf32>, tensor<9xi64>, tensor<?xi64>
    ```
  }];
  let arguments = (ins Moe_FloatTensor2D:$hidden, Moe_IdTensor2D:$ids,
                   ConfinedAttr<I64Attr, [IntPositive]>:$num_experts);
  let results = (outs Moe_FloatTensor2D:$rows, Moe_IdVector:$offsets,
                 Moe_IdVector:$perm);
  let assemblyFormat = [{
    $hidden `,` $ids attr-dict `:` type($hidden) `,` type($ids) `->` type(results)
  }];
}

def Moe_ExpertsOp : Moe_Op<"experts", [Pure, AttrSizedOperandSegments]> {
  let summary = "a bank of expert FFNs applied to expert-sorted rows";
  let description = [{
    Runs expert e on rows `offsets[e]` up to `offsets[e + 1]` of `input`
    `[R, H]` and returns `y = h · w2[e]ᵀ + b2[e]`. `w2` is `[E, H, F]`
    (PyTorch's `[out, in]` per expert); its dimension 2 is the FFN size F.
    Biases are optional.

    With `activation` `silu`, `gelu` (exact, erf), `gelu_tanh` (tanh
    approximation), `relu` or `identity`: `w1` (and `w3`) are `[E, F, H]`,
    `a = x · w1[e]ᵀ + b1[e]` and, with the up projection `w3`,
    `h = act(a) ⊙ (x · w3[e]ᵀ + b3[e])` (gated, as Mixtral's SwiGLU), else
    `h = act(a)`.

    With `swiglu`, the gate `g` and the linear part `l` (F values per row)
    come from the fc1 output according to `swiglu_fusion`:
    - 0: `g = x · w1[e]ᵀ + b1[e]`, `l = x · w3[e]ᵀ + b3[e]` (`w3` required);
    - 1: `u = x · w1[e]ᵀ + b1[e]` with `w1` `[E, 2F, H]` and `b1` `[E, 2F]`,
      interleaved gate first: `g[i] = u[2i]`, `l[i] = u[2i + 1]`;
    - 2: the same `u`, concatenated: `g[i] = u[i]`, `l[i] = u[F + i]`;
    fused forms take no `w3`/`b3`. Then, as ONNX Runtime's
    `com.microsoft.MoE` and `QMoE` define it:
    `G = min(g, limit)`, `L = clamp(l, -limit, limit)` (no clamp without
    `swiglu_limit`) and `h = G · sigmoid(alpha · G) · (L + beta)`, with
    `alpha` = `activation_alpha` (default 1.0) and `beta` =
    `activation_beta` (default 0.0). Like ONNX Runtime, the other
    activations ignore `activation_alpha`, `activation_beta` and
    `swiglu_limit`; `swiglu_fusion` must be 0 with them.

    `experts`, when present, holds one `#moe.expert` per expert with the
    placement, precision and pruning decisions of the passes.

    Example:

    ```mlir
    %y = moe.experts %rows, %offsets w1(%w1) w2(%w2) w3(%w3) {activation = #moe.activation<silu>, experts = [#moe.expert<placement = gpu>, #moe.expert<pruned = true>]}
        : (tensor<?x64xf32>, tensor<3xi64>, tensor<2x128x64xf32>, tensor<2x64x128xf32>, tensor<2x128x64xf32>) -> tensor<?x64xf32>
    // gpt-oss: fc1 rows interleaved (gate, linear), clamped at 7.
    %z = moe.experts %rows, %offsets w1(%f1) w2(%w2) b1(%c1) b2(%c2) {activation = #moe.activation<swiglu>, swiglu_fusion = 1 : i64, activation_alpha = 1.702 : f64, activation_beta = 1.0 : f64, swiglu_limit = 7.0 : f64}
        : (tensor<?x64xf32>, tensor<3xi64>, tensor<2x256x64xf32>, tensor<2x64x128xf32>, tensor<2x256xf32>, tensor<2x64xf32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor2D:$input, Moe_IdVector:$offsets,
                   Moe_Weight3D:$w1, Moe_Weight3D:$w2,
                   Optional<Moe_Weight3D>:$w3,
                   Optional<Moe_Bias2D>:$b1, Optional<Moe_Bias2D>:$b2,
                   Optional<Moe_Bias2D>:$b3,
                   DefaultValuedAttr<Moe_ActivationAttr,
                                     "::mlir::moe::Activation::silu">:$activation,
                   DefaultValuedAttr<F64Attr, "1.0">:$activation_alpha,
                   DefaultValuedAttr<F64Attr, "0.0">:$activation_beta,
                   OptionalAttr<F64Attr>:$swiglu_limit,
                   DefaultValuedAttr<ConfinedAttr<I64Attr,
                                                  [IntMinValue<0>,
                                                   IntMaxValue<2>]>,
                                     "0">:$swiglu_fusion,
                   OptionalAttr<Moe_ExpertArrayAttr>:$experts);
  let results = (outs Moe_FloatTensor2D:$result);
  let assemblyFormat = [{
    $input `,` $offsets `w1` `(` $w1 `)` `w2` `(` $w2 `)`
    (`w3` `(` $w3^ `)`)? (`b1` `(` $b1^ `)`)? (`b2` `(` $b2^ `)`)?
    (`b3` `(` $b3^ `)`)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// Number of experts (the leading dimension of the weights).
    int64_t getNumExperts() { return getW1().getType().getDimSize(0); }
    /// The FFN size F (w2 dimension 2; dynamic when unknown).
    int64_t getFfnSize() { return getW2().getType().getDimSize(2); }
    /// Whether w1 holds the gate and linear parts of swiglu (2F rows).
    bool isFusedSwiglu() {
      return getActivation() == ::mlir::moe::Activation::swiglu &&
             getSwigluFusion() != 0;
    }
    /// The properties of expert `e` (defaults when `experts` is absent).
    ::mlir::moe::ExpertAttr getExpert(int64_t e);
  }];
}

def Moe_CombineOp : Moe_Op<"combine", [Pure, InferTypeOpAdaptor]> {
  let summary = "weigh expert outputs and sum them back into token order";
  let description = [{
    Inverts `moe.dispatch`: `out[t] = Σ weights[t, s] · y[r]` over the rows r
    with `perm[r] = t · k + s`. `y` is `[T·k, H]`, `perm` `[T·k]`, `weights`
    `[T, k]`; the result is `[T, H]`.

    Example:

    ```mlir
    %out = moe.combine %y, %perm, %weights : tensor<?x64xf32>, tensor<?xi64>, tensor<?x2xf32>
    // %out : tensor<?x64xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor2D:$expert_output, Moe_IdVector:$perm,
                   Moe_FloatTensor2D:$weights);
  let results = (outs Moe_FloatTensor2D:$result);
  let assemblyFormat = [{
    $expert_output `,` $perm `,` $weights attr-dict `:` type($expert_output) `,` type($perm) `,` type($weights)
  }];
}

def Moe_AllToAllOp : Moe_Op<"all_to_all", [Pure, InferTypeOpAdaptor]> {
  let summary = "exchange expert-sorted rows between ranks";
  let description = [{
    The exchanges of an expert-parallel layer whose experts are partitioned
    over `ranks` ranks, each rank holding its own tokens. Between
    `moe.dispatch` and `moe.experts` (the dispatch exchange) it sends each
    rank the rows of the experts it holds and returns the received rows and
    their expert offsets. With `combine`, between `moe.experts` and
    `moe.combine`, it is the inverse: every computed row goes back to the rank
    that sent it, and `offsets` are that rank's dispatch offsets (the rows come
    back in its dispatch order). `schedule` is the AllToAll algorithm chosen
    by `moe-partition` (`direct`; `hierarchical`: inside the node first, over
    nodes of `ranks_per_node` ranks; `pipelined`: direct, split into `chunks`
    overlapped with expert compute; a hierarchical exchange may be chunked
    too). `ranks_per_node` 0 means one node. With one rank both are the
    identity.

    With `peers_of_nodes` P > 0 (the hybrid layout: expert parallel across
    nodes of P ranks, tensor parallel inside them) the exchange runs among
    peers, the ranks with the same index in their nodes; the experts' ranks
    are node numbers, and every rank of a node holds a slice of each of the
    node's experts (`moe.tensor_parallel` = P on the `moe.experts` op). The
    runtime gathers a node's received rows for the slices and sums the
    slices' outputs back inside the node.

    `moe-lower-to-plan` folds a dispatch exchange, the `moe.experts` it feeds
    and the combine exchange of that op's result into one runtime step (so the
    exchanges of a pipelined schedule can overlap the compute); any other use
    of `moe.all_to_all` is an error there.

    Example:

    ```mlir
    %r, %o = moe.all_to_all %rows, %offsets {ranks = 4 : i64, schedule = #moe.schedule<pipelined>, chunks = 4 : i64} : tensor<?x64xf32>, tensor<9xi64>
    %y = moe.experts %r, %o ...
    %b, %bo = moe.all_to_all %y, %offsets {ranks = 4 : i64, schedule = #moe.schedule<pipelined>, chunks = 4 : i64, combine} : tensor<?x64xf32>, tensor<9xi64>
    ```
  }];
  let arguments = (ins Moe_FloatTensor2D:$rows, Moe_IdVector:$offsets,
                   ConfinedAttr<I64Attr, [IntPositive]>:$ranks,
                   DefaultValuedAttr<Moe_ScheduleAttr,
                                     "::mlir::moe::Schedule::direct">:$schedule,
                   DefaultValuedAttr<ConfinedAttr<I64Attr, [IntPositive]>,
                                     "1">:$chunks,
                   DefaultValuedAttr<ConfinedAttr<I64Attr, [IntNonNegative]>,
                                     "0">:$ranks_per_node,
                   UnitAttr:$combine,
                   DefaultValuedAttr<ConfinedAttr<I64Attr, [IntNonNegative]>,
                                     "0">:$peers_of_nodes);
  let results = (outs Moe_FloatTensor2D:$result_rows,
                 Moe_IdVector:$result_offsets);
  let assemblyFormat = [{
    $rows `,` $offsets attr-dict `:` type($rows) `,` type($offsets)
  }];
}

def Moe_AllGatherOp : Moe_Op<"all_gather", [Pure, InferTypeOpAdaptor]> {
  let summary = "concatenate the ranks' rows, in rank order";
  let description = [{
    The token exchange of a tensor-parallel layer over `ranks` ranks, each
    rank holding its own tokens: every rank gets the rows (dimension 0) of
    every rank, rank 0's first, for each input (the inputs share their row
    count, and travel together). Ranks may hold different numbers of rows,
    so the results' dimension 0 is dynamic. `moe-partition` gathers the
    hidden rows, expert ids and routing weights of a layer before
    `moe.dispatch`, so that every rank computes its slice of every expert
    on every token. With one rank it is the identity.

    Example:

    ```mlir
    %all, %ids_all = moe.all_gather %x, %ids {ranks = 2 : i64} : tensor<4x64xf32>, tensor<4x2xi64> -> tensor<?x64xf32>, tensor<?x2xi64>
    ```
  }];
  let arguments = (ins Variadic<AnyRankedTensor>:$inputs,
                   ConfinedAttr<I64Attr, [IntPositive]>:$ranks);
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let assemblyFormat = [{
    $inputs attr-dict `:` type($inputs) `->` type($results)
  }];
  let hasVerifier = 1;
}

def Moe_ReduceScatterOp : Moe_Op<"reduce_scatter", [Pure, InferTypeOpAdaptor]> {
  let summary = "sum the ranks' rows and give each rank its own";
  let description = [{
    The inverse of `moe.all_gather` for partial sums: `input` holds, in the
    gathered order, this rank's partial result for the rows of every rank;
    the result is the sum over the ranks of the rows of this rank.
    `like` has this rank's rows (its dimension 0 is the result's), as the
    input of the matching `moe.all_gather` does. With one rank it is the
    identity.

    Example:

    ```mlir
    %mine = moe.reduce_scatter %partial, %x {ranks = 2 : i64} : tensor<?x64xf32>, tensor<4x64xf32> -> tensor<4x64xf32>
    ```
  }];
  let arguments = (ins Moe_FloatTensor2D:$input, AnyRankedTensor:$like,
                   ConfinedAttr<I64Attr, [IntPositive]>:$ranks);
  let results = (outs Moe_FloatTensor2D:$result);
  let assemblyFormat = [{
    $input `,` $like attr-dict `:` type($input) `,` type($like) `->` type($result)
  }];
}

#endif // MOE_MOE_OPS_TD
