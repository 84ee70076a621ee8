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

    Experts whose `#moe.expert` asks for 16 (bf16), 8, 4, 3 or 2 bits get their weights
    (`w1`, `w2`, `w3`, which must be `nn.weight`s used by that op alone)
    quantised when the plan is written: the `plan.weight` records each
    expert's bits and group size, with the scale dtype and zero points from
    this pass's options.

    An op that has no runtime kernel is an error naming the op.

    Example: `nn.silu %x : tensor<?x64xf32>` becomes
    `plan.call "nn.silu"(%x) : (memref<?x64xf32>) -> memref<?x64xf32>`.
  }];
  let options = [
    Option<"device", "device", "std::string", /*default=*/"\"cpu\"",
           "device of every step: cpu or cuda">,
    Option<"quantScale", "quant-scale", "std::string", /*default=*/"\"f16\"",
           "scale dtype of quantised expert weights: f16 or f32">,
    Option<"quantZeroPoints", "quant-zero-points", "bool", /*default=*/"false",
           "store 8-bit zero points with quantised expert weights">,
  ];
  let dependentDialects = ["mlir::plan::PlanDialect",
                           "mlir::func::FuncDialect"];
}

def SetExpertPrecision : Pass<"moe-set-expert-precision", "mlir::ModuleOp"> {
  let summary = "give every expert the same weight precision";
  let description = [{
    Sets `bits` and `group_size` of every expert (pruned ones included) of
    every `moe.experts` op, keeping placement and pruning: the uniform
    baseline that per-expert assignment (`moe-assign-precision`) improves
    on. `bits = 0` keeps the stored precision. `moe-opt --moe-compile=
    "expert-bits=4 expert-group-size=128"` runs it before lowering.

    Example: `moe-set-expert-precision{bits=4 group-size=64}` turns
    `#moe.expert<placement = gpu>` into
    `#moe.expert<placement = gpu, bits = 4, group_size = 64>`.
  }];
  let options = [
    Option<"bits", "bits", "int64_t", /*default=*/"4",
           "bits per weight: 0 (as stored), 8, 4, 3 or 2">,
    Option<"groupSize", "group-size", "int64_t", /*default=*/"128",
           "elements per quantisation group: 32, 64 or 128">,
    Option<"zeroPoints", "zero-points", "bool", /*default=*/"false",
           "store an 8-bit zero point per group (asymmetric)">,
  ];
  let dependentDialects = ["mlir::moe::MoeDialect"];
}

def AssignPrecision : Pass<"moe-assign-precision", "mlir::ModuleOp"> {
  let summary = "give each expert its own weight format under a size budget (MC-MoE)";
  let description = [{
    Chooses one weight format per expert of every `moe.experts` op so that
    the importance-weighted quantisation error is least while the experts'
    bytes stay within a budget, and records the choice in each expert's
    `#moe.expert<bits, group_size>` (applied when the plan is emitted).

    - Error of a candidate format (`formats`) for an expert: with
      `error=output` (the default when the profile holds sampled hidden
      states), the mean squared error of one output row of the expert on
      the sampled tokens routed to it (all samples when fewer than 8 were),
      computed with the runtime's own `moe.experts` kernel on the
      quantised-then-dequantised weights, divided by the layer's output
      energy (Σ importance · mean squared output row), so that layers weigh
      alike; `error=relative-output` divides by the expert's own output
      energy instead; `error=weight` is the relative squared error of the
      weights themselves (the default without samples).
    - Importance of an expert (`importance`), from the profile
      (`moe-exec PLAN --profile FILE`): `energy` (default) = the expert's
      share of Σ routing weight² — with `error=output` the objective is then
      the expected squared error each expert adds to the layer's output;
      `mixed` = a·f + (1-a)·w as MC-MoE weighs experts, with f the expert's
      share of its layer's picks, w its share of the routing weight and
      a = `frequency-weight`; `frequency`; `weight`; or `uniform` (also used
      without a profile). Every expert gets at least `importance-floor`
      times its layer's mean: the tokens a rare expert serves suffer all of
      its error, which the expected error understates (measured in
      bench/results/precision-fidelity.json).
    - The integer program (one format per expert, Σ bytes ≤ budget,
      minimise Σ importance·error) is solved with GLPK's branch-and-cut
      (passes/Analysis/PrecisionSolver.h). The budget is `budget-bits`
      (average bits per expert weight, scales included) or `budget-bytes`.
    - `pin` fixes experts: `L:E=FORMAT`, with `*` for every layer or expert.

    With `calibration=gptq`, the input projections (`w1`, `w3`) of every
    expert stored in 8/4/3/2 bits are calibrated with GPTQ on the profile's
    sampled tokens routed to it: the quantisation error of each column is
    spread over the columns not yet quantised through the inverse Hessian of
    the inputs. The calibrated weights, whose round-to-nearest quantisation
    is the GPTQ result, are written to `calibration-dir` and the `nn.weight`s
    point there (the module keeps its `moe.model_id`). `w2` stays round to
    nearest, and the choice of formats still uses round-to-nearest errors.

    Experts whose weights are not f32 `nn.weight`s used only by their op
    keep their stored precision and count neither in the budget nor in the
    objective (a warning names the layer). The module gets `moe.precision`
    (budget, bytes, average bits, objective, whether proven optimal) and
    each op `moe.precision_error` (the chosen format's error per expert).

    Example: `moe-assign-precision{profile=p.json budget-bits=2.5}` may turn
    a hot expert into `#moe.expert<bits = 4, group_size = 64>` and a cold
    one into `#moe.expert<bits = 2, group_size = 128>`.
  }];
  let options = [
    Option<"profile", "profile", "std::string", /*default=*/"\"\"",
           "routing profile from moe-exec --profile (importance, samples)">,
    Option<"budgetBits", "budget-bits", "double", /*default=*/"0.0",
           "average bits per expert weight, scales included (0: unset)">,
    Option<"budgetBytes", "budget-bytes", "int64_t", /*default=*/"0",
           "total bytes of the expert weights (0: unset)">,
    ListOption<"formats", "formats", "std::string",
           "candidate formats (f32, bf16, int8/g128, int4/g64, int2/g64/zp, "
           "...); default: bf16, int8/g128, and 4/3/2 bits with groups "
           "32/64/128, symmetric or with zero points">,
    Option<"importance", "importance", "std::string", /*default=*/"\"energy\"",
           "energy, mixed, frequency, weight or uniform">,
    Option<"frequencyWeight", "frequency-weight", "double", /*default=*/"0.5",
           "in mixed importance, the weight of the activation frequency "
           "(the rest goes to the routing-weight share)">,
    Option<"importanceFloor", "importance-floor", "double", /*default=*/"0.5",
           "least importance of an expert, as a fraction of its layer's mean">,
    Option<"errorKind", "error", "std::string", /*default=*/"\"auto\"",
           "auto (output when the profile has samples, else weight), output, "
           "relative-output or weight">,
    ListOption<"pins", "pin", "std::string",
           "experts fixed to a format: L:E=FORMAT (L, E may be *)">,
    Option<"weightsDir", "weights-dir", "std::string", /*default=*/"\"\"",
           "directory of relative weight files (default: the module's "
           "moe.weights_dir, else the current directory)">,
    Option<"quantScale", "quant-scale", "std::string", /*default=*/"\"f16\"",
           "scale dtype the plan will use (f16 or f32), for the byte count">,
    Option<"timeLimit", "time-limit", "double", /*default=*/"30.0",
           "seconds the solver may spend improving its solution">,
    Option<"calibration", "calibration", "std::string", /*default=*/"\"rtn\"",
           "rtn (round to nearest) or gptq (GPTQ on w1/w3 with the profile's "
           "samples; needs calibration-dir)">,
    Option<"calibrationDir", "calibration-dir", "std::string",
           /*default=*/"\"\"",
           "directory for the GPTQ-calibrated weight files (created)">,
    Option<"report", "report", "bool", /*default=*/"false",
           "emit a remark per layer with the chosen formats">,
  ];
  let statistics = [
    Statistic<"numExperts", "num-experts", "experts given a format">,
  ];
  let dependentDialects = ["mlir::moe::MoeDialect"];
}

def Partition : Pass<"moe-partition", "mlir::ModuleOp"> {
  let summary = "choose each MoE layer's parallel layout and AllToAll schedule (MoNTA)";
  let description = [{
    For a topology (`topology`, docs/partitioning.md), picks per MoE layer
    the candidate the traffic model (passes/Analysis/TrafficModel.h)
    predicts fastest: expert parallel, tensor parallel inside experts, or
    TP inside nodes with EP across them; direct or hierarchical AllToAll;
    optionally chunked into 2-8 pieces pipelined with the expert compute
    (`layout` / `schedule` override the choice). It then assigns the experts
    to ranks (or nodes, for the hybrid) balancing the profile's load
    (`profile`; uniform without one): most loaded first, each to the least
    loaded rank, and an expert whose load exceeds a rank's fair share by
    half is replicated on enough ranks to split it. For layouts that route
    tokens it inserts `moe.all_to_all` (ranks, schedule, chunks) between
    `moe.dispatch` and `moe.experts`, and its combine twin between
    `moe.experts` and its users. For the tensor-parallel layout it gathers
    the ranks' tokens (`moe.all_gather` of the rows, ids and routing
    weights before `moe.dispatch`), sums the partial outputs back
    (`moe.reduce_scatter` after `moe.combine`) and marks the op
    `moe.tensor_parallel`, for which `moe-lower-to-plan` cuts the expert
    weights into one slice of F per rank.

    Records on each `moe.experts` op `moe.partition` (layout, schedule,
    chunks, ranks, predicted µs, and the rejected candidates with their
    predicted times) and `moe.expert_ranks` (the ranks of each expert), and
    on the module a one-line summary that the plan keeps (`partition` in
    `moe-exec --describe`). `mpirun -np N moe-exec` runs the plan
    (docs/partitioning.md).
  }];
  let options = [
    Option<"topology", "topology", "std::string", /*default=*/"\"\"",
           "topology JSON (docs/partitioning.md)">,
    Option<"profile", "profile", "std::string", /*default=*/"\"\"",
           "routing profile from moe-exec --profile (expert loads)">,
    Option<"tokens", "tokens", "int64_t", /*default=*/"1024",
           "tokens per rank and step">,
    Option<"flopsPerRank", "flops-per-rank", "double", /*default=*/"1e14",
           "expert compute rate of one rank (FLOP/s)">,
    Option<"memoryBytesPerRank", "memory-bytes-per-s", "double",
           /*default=*/"0", "expert weight read rate of one rank (B/s); "
           "with it the expert compute is a roofline of FLOPs and weight "
           "bytes (0: FLOPs only)">,
    Option<"computeModel", "compute-model", "std::string",
           /*default=*/"\"roofline\"", "with memory-bytes-per-s: roofline "
           "(the larger of FLOP and weight-read time) or serial (their sum: "
           "kernels that do not overlap them, like the CPU ones)">,
    Option<"activationBytes", "activation-bytes", "double",
           /*default=*/"4.0", "bytes per activation element on the wire "
           "(the CPU runtime sends f32 rows)">,
    Option<"layout", "layout", "std::string", /*default=*/"\"auto\"",
           "auto, ep, tp or hybrid">,
    Option<"schedule", "schedule", "std::string", /*default=*/"\"auto\"",
           "auto, direct or hierarchical">,
    Option<"minPipelineGain", "min-pipeline-gain", "double",
           /*default=*/"0.05", "pipeline only when the model predicts at "
           "least this share of the layer time saved">,
    Option<"chunks", "chunks", "int64_t", /*default=*/"0",
           "pipeline the exchanges in 1, 2, 4 or 8 chunks (0: the fastest)">,
    Option<"report", "report", "bool", /*default=*/"false",
           "emit a remark per layer with the choice and the rejected "
           "candidates">,
  ];
  let dependentDialects = ["mlir::moe::MoeDialect"];
}

def PlaceExperts : Pass<"moe-place-experts", "mlir::ModuleOp"> {
  let summary = "choose per expert: GPU-resident, CPU-computed or GPU on demand (MoNDE)";
  let description = [{
    Under a GPU memory budget, places every expert of every `moe.experts`
    op where the cost model (passes/Analysis/CostModel.h) predicts the
    least expected step time for its layer, max(GPU side, CPU side), from a
    device profile (`device-profile`, docs/placement.md), the profile's
    activation shares (`profile`; without one every expert is picked alike)
    and the expected tokens per step (`batch`).

    A cache for on-demand experts of up to `cache-experts` times the largest
    expert comes off the budget first: the placement below runs for each
    number of slots from 0 to `cache-experts` that fits, and the one with
    the least predicted time wins (with 0 slots no expert is on demand).
    Every expert starts where it is cheaper off the
    GPU (CPU or on demand); then, while the budget allows, the expert whose
    move to the GPU saves the most expected time per byte moves there (a
    move that saves nothing is still made while memory remains: resident is
    never slower in the model), ties going to the more used expert, then the
    lower layer and expert. Finally each expert off the GPU takes the
    cheaper of CPU and on demand given the others. `pin=L:E=WHERE` fixes
    experts (`*` for any; gpu, cpu or on_demand).

    The experts' `#moe.expert<placement = ...>` record the choice; the
    module's `moe.placement` the budget, the bytes on the GPU, the cache and
    the predicted time per layer (µs), which `moe-exec --describe` prints.
    `budget 0` puts every expert on the CPU; a budget holding every expert
    puts them all on the GPU.
  }];
  let options = [
    Option<"deviceProfile", "device-profile", "std::string", /*default=*/"\"\"",
           "device profile JSON (docs/placement.md)">,
    Option<"profile", "profile", "std::string", /*default=*/"\"\"",
           "routing profile from moe-exec --profile (activation shares)">,
    Option<"gpuBudgetBytes", "gpu-budget-bytes", "int64_t", /*default=*/"-1",
           "GPU memory for experts in bytes (-1: the device's memory)">,
    Option<"batch", "batch", "double", /*default=*/"1.0",
           "expected tokens per step">,
    Option<"cacheExperts", "cache-experts", "int64_t", /*default=*/"2",
           "most on-demand cache slots, in largest experts (0: no on-demand)">,
    ListOption<"pins", "pin", "std::string",
           "experts fixed to a placement: L:E=gpu|cpu|on_demand">,
    Option<"report", "report", "bool", /*default=*/"false",
           "emit a remark per layer with the placement and predicted time">,
  ];
  let dependentDialects = ["mlir::moe::MoeDialect"];
}

def PruneExperts : Pass<"moe-prune-experts", "mlir::ModuleOp"> {
  let summary = "remove rarely used experts and set the router's dynamic pruning";
  let description = [{
    Static pruning (needs `profile`, from `moe-exec --profile`): in every
    MoE layer, experts whose share of the calibration picks is below
    `min-share`, or beyond the `keep` most picked, are marked
    `#moe.expert<pruned = true>` and excluded in the layer's `moe.route`:
    their tokens go to their best remaining experts, with the weights
    rescaled to the sum the unpruned choice had. At least k experts always
    remain.

    Dynamic pruning is recorded on every `moe.route` (and can be overridden
    by `moe-exec --skip-threshold/--protect-confidence/--max-experts/
    --batch-mass` or turned off with `--no-pruning`):
    - `skip-threshold` (token level, MC-MoE): a token's non-first expert
      whose share of its routing weight is below the threshold is skipped,
      except for tokens whose first expert's share is below
      `protect-confidence`: their router is unsure, which marks them as
      important, and they keep every expert;
    - `max-experts` / `batch-mass` (batch level, Lynx): at most that many
      distinct experts per layer and batch, or the fewest holding that share
      of the batch's routing mass; each token re-routes to its best kept
      experts.

    With `report`, a remark per layer lists what was removed and the share
    of calibration picks it had.

    Example: `moe-prune-experts{profile=p.json keep=6 skip-threshold=0.15}`.
  }];
  let options = [
    Option<"profile", "profile", "std::string", /*default=*/"\"\"",
           "routing profile from moe-exec --profile (static pruning)">,
    Option<"minShare", "min-share", "double", /*default=*/"0.0",
           "remove experts with a smaller share of their layer's picks">,
    Option<"keep", "keep", "int64_t", /*default=*/"0",
           "keep only this many most-picked experts per layer (0: all)">,
    Option<"skipThreshold", "skip-threshold", "double", /*default=*/"0.0",
           "token level: skip a non-first expert below this weight share">,
    Option<"protectConfidence", "protect-confidence", "double",
           /*default=*/"0.0",
           "token level: tokens whose first expert's share is below this "
           "keep every expert">,
    Option<"maxExperts", "max-experts", "int64_t", /*default=*/"0",
           "batch level: most distinct experts per layer and batch (0: off)">,
    Option<"batchMass", "batch-mass", "double", /*default=*/"0.0",
           "batch level: keep the fewest experts holding this share of the "
           "batch's routing mass (0: off)">,
    Option<"keepFirst", "keep-first", "bool", /*default=*/"false",
           "batch level: every expert that is some token's first choice "
           "stays, whatever the cap">,
    Option<"report", "report", "bool", /*default=*/"false",
           "emit a remark per layer with the removed experts">,
  ];
  let statistics = [
    Statistic<"numPruned", "num-pruned", "experts removed">,
  ];
  let dependentDialects = ["mlir::moe::MoeDialect"];
}

def RaiseExperts : Pass<"moe-raise-experts", "mlir::ModuleOp"> {
  let summary = "rewrite decomposed MoE layers into moe.route/dispatch/experts/combine";
  let description = [{
    Finds every router (`nn.topk` over a softmax of `x · W`, or a softmax
    over the top-k logits) and the value where its layer ends (the nearest
    value every path from the router passes through that has the tokens'
    shape), collects the expert weights that value depends on (3-D banks
    `[E, a, b]`, or E groups of 2-D matrices as a per-expert loop writes
    them), and tries the few ways they can form an expert FFN: which bank is
    the down projection, gate/up order, `[out, in]` or `[in, out]` layout,
    gate and up fused (concatenated or interleaved), the activation, and
    whether the top-k weights are renormalised. A rewrite is kept only if it
    computes the same values as the original subgraph (within 1e-4 of the
    largest magnitude) on random activations, evaluated with the runtime
    kernels; the subgraph it replaces is then removed. Layers it does not
    recognise stay as plain ops, which run correctly (`report` says why).

    It recognises the per-expert loop (OneHot/NonZero/ScatterND or
    ScatterElements), the gather/batched-matmul form and the dense
    all-experts form of `../shared/fixtures/onnx`, from the TorchScript and
    Dynamo exporters. Checking reads the layer's weights once (bounded by
    `verify-budget-mb`); weight files are found relative to `weights-dir`, or
    the directory the ONNX importer recorded (`moe.weights_dir`).

    Example: the 50-op `dec_gather` block of the fixtures becomes
    `moe.route`, `moe.dispatch`, `moe.experts` (with `nn.transpose`s of the
    `[E, in, out]` weights) and `moe.combine`.
  }];
  let options = [
    Option<"weightsDir", "weights-dir", "std::string", /*default=*/"\"\"",
           "directory of relative weight files (default: the module's "
           "moe.weights_dir, else the current directory)">,
    Option<"verifyBudgetMb", "verify-budget-mb", "int64_t", /*default=*/"4096",
           "most weight data (MiB) read to check one layer's rewrite">,
    Option<"report", "report", "bool", /*default=*/"false",
           "emit a remark for each router whose layer is not raised">,
  ];
  let statistics = [
    Statistic<"numRaised", "num-raised", "MoE layers raised">,
  ];
  let dependentDialects = ["mlir::moe::MoeDialect", "mlir::nn::NNDialect"];
}

#endif // MOE_PASSES_TD
