//===- PlanOps.td - Operations of the plan dialect ---------*- tablegen -*-===//

#ifndef MOE_PLAN_OPS_TD
#define MOE_PLAN_OPS_TD

include "dialects/plan/PlanDialect.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/BuiltinAttributes.td"
include "mlir/IR/CommonAttrConstraints.td"
include "mlir/IR/CommonTypeConstraints.td"
include "mlir/IR/EnumAttr.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Plan_DeviceCpu : I32EnumAttrCase<"cpu", 0>;
def Plan_DeviceCuda : I32EnumAttrCase<"cuda", 1>;
def Plan_Device : I32EnumAttr<"Device", "device",
    [Plan_DeviceCpu, Plan_DeviceCuda]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::plan";
}
def Plan_DeviceAttr : EnumAttr<Plan_Dialect, Plan_Device, "device"> {
  let assemblyFormat = "`<` $value `>`";
}

def Plan_Buffer : MemRefRankOf<[AnyType], [0, 1, 2, 3, 4, 5, 6, 7, 8]>;

def Plan_WeightOp : Plan_Op<"weight", [Pure]> {
  let summary = "a read-only buffer whose bytes are stored in the plan file";
  let description = [{
    The plan-level form of `nn.weight`: the same source attributes (a file
    and offset, or the deterministic generator). `--emit-plan` copies the
    bytes into a 64-byte aligned blob of the plan file.

    With `bits` (one entry per index of dimension 0, e.g. per expert) the
    f32 weight is quantised when the plan is written: slice i is stored
    as bf16 when `bits[i]` is 16 (group size 0), else group-wise with
    `bits[i]` bits (0: plain f32) in groups of
    `group_sizes[i]` along the last dimension, with `quant_scale` ("f16" or
    "f32") scales and, where `zero_points[i]` is true, 8-bit zero points
    (kernels/cpu/Quant.h has the layout).

    With `shards = [d, o, n]` the stored bytes are a weight of the same
    element count but another layout, cut for `n` tensor-parallel ranks:
    the source `[E, ..., D, ...]` (D at dimension d >= 1, viewed as
    `[o, n, D / (o·n)]`) becomes `[n·E, ..., D / n, ...]`, whose index
    r·E + e holds rank r's part of index e: the elements whose middle
    index (of the n) is r. `o` is 2 for a weight whose dimension d holds
    two halves cut alike (a fused SwiGLU's gate and linear rows), else 1.
    `bits` then has n·E entries. d = 0 stores n copies of the source
    `[E, ...]` as `[n·E, ...]` (a per-row scale, the same for every part of
    its row).

    Example:

    ```mlir
    %w = plan.weight "layers.0.w1" {file = "weights.bin", offset = 0 : i64} : memref<8x128x64xf32>
    %q = plan.weight "layers.0.w2" {seed = 3 : i64, bits = array<i64: 4, 0>, group_sizes = array<i64: 32, 0>} : memref<2x64x128xf32>
    ```
  }];
  let arguments = (ins StrAttr:$name, OptionalAttr<StrAttr>:$file,
                   DefaultValuedAttr<I64Attr, "0">:$offset,
                   OptionalAttr<I64Attr>:$seed,
                   DefaultValuedAttr<F64Attr, "1.0">:$scale,
                   OptionalAttr<DenseI64ArrayAttr>:$bits,
                   OptionalAttr<DenseI64ArrayAttr>:$group_sizes,
                   DefaultValuedStrAttr<StrAttr, "f16">:$quant_scale,
                   OptionalAttr<DenseBoolArrayAttr>:$zero_points,
                   OptionalAttr<DenseI64ArrayAttr>:$shards);
  let results = (outs AnyStaticShapeMemRef:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Plan_ConstantOp : Plan_Op<"constant", [Pure]> {
  let summary = "a small read-only buffer given inline";
  let description = [{
    A constant whose elements are in the IR (from `arith.constant`); stored
    in the plan file like a weight.

    Example:

    ```mlir
    %c = plan.constant dense<[1, 64]> : tensor<2xi64> : memref<2xi64>
    ```
  }];
  let arguments = (ins ElementsAttr:$value);
  let results = (outs AnyStaticShapeMemRef:$result);
  let assemblyFormat = "$value attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Plan_CallOp : Plan_Op<"call"> {
  let summary = "run a runtime kernel on a device";
  let description = [{
    Calls the kernel `kernel` of the runtime (docs/plan-format.md lists them
    with their operands and parameters) on `device`. `params` holds the
    kernel's parameters as integers, floats, strings or arrays of integers or
    floats. Results are new buffers allocated by the runtime; a dimension
    that is dynamic in the result type is computed by the kernel at run time.

    Example:

    ```mlir
    %y = plan.call "nn.rms_norm"(%x, %w) {params = {eps = 1.0e-05 : f64}, device = #plan.device<cpu>}
        : (memref<?x64xf32>, memref<64xf32>) -> memref<?x64xf32>
    ```
  }];
  let arguments = (ins StrAttr:$kernel, Variadic<Plan_Buffer>:$args,
                   DefaultValuedAttr<DictionaryAttr, "{}">:$params,
                   DefaultValuedAttr<Plan_DeviceAttr,
                                     "::mlir::plan::Device::cpu">:$device);
  let results = (outs Variadic<Plan_Buffer>:$results);
  let assemblyFormat = [{
    $kernel `(` $args `)` attr-dict `:` functional-type($args, $results)
  }];
  let hasVerifier = 1;
}

def Plan_CopyOp : Plan_Op<"copy"> {
  let summary = "copy a buffer into a new buffer on a device";
  let description = [{
    Example:

    ```mlir
    %d = plan.copy %h {device = #plan.device<cuda>} : memref<?x64xf32> -> memref<?x64xf32>
    ```
  }];
  let arguments = (ins Plan_Buffer:$source,
                   DefaultValuedAttr<Plan_DeviceAttr,
                                     "::mlir::plan::Device::cpu">:$device);
  let results = (outs Plan_Buffer:$result);
  let assemblyFormat = "$source attr-dict `:` type($source) `->` type($result)";
  let hasVerifier = 1;
}

def Plan_FreeOp : Plan_Op<"free"> {
  let summary = "end the lifetime of buffers";
  let description = [{
    The buffers are not used after this step; the runtime may reuse their
    memory. Only buffers produced by `plan.call` or `plan.copy` can be freed.

    Example:

    ```mlir
    plan.free %a, %b : memref<?x64xf32>, memref<?xi64>
    ```
  }];
  let arguments = (ins Variadic<Plan_Buffer>:$buffers);
  let assemblyFormat = "$buffers attr-dict `:` type($buffers)";
  let hasVerifier = 1;
}

#endif // MOE_PLAN_OPS_TD
