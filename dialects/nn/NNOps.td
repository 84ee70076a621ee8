//===- NNOps.td - Operations of the nn dialect -------------*- tablegen -*-===//

#ifndef MOE_NN_OPS_TD
#define MOE_NN_OPS_TD

include "dialects/nn/NNDialect.td"
include "mlir/IR/BuiltinAttributes.td"
include "mlir/IR/CommonAttrConstraints.td"
include "mlir/IR/CommonTypeConstraints.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def NN_FloatTensor : RankedTensorOf<[AnyFloat]>;
def NN_IndexTensor : RankedTensorOf<[I64, I32]>;
def NN_I64Tensor : RankedTensorOf<[I64]>;
def NN_BoolTensor : RankedTensorOf<[I1]>;
def NN_ByteTensor : RankedTensorOf<[UI8]>;
/// Operands of nn.neg.
def NN_SignedTensor : RankedTensorOf<[AnyFloat, I64, I32]>;
/// Ordered numbers: comparisons, clip, range.
def NN_NumberTensor : RankedTensorOf<[F32, I64, I32]>;
/// The dtypes of the ONNX-semantics ops unless said (docs/onnx-import.md).
def NN_ValueTensor : RankedTensorOf<[F32, I64, I32, I1]>;

/// Type inference that accepts an explicitly given result type of the same
/// element type and rank whose dimensions are compatible with the inferred
/// ones (a `?` on either side matches anything): the ONNX importer knows some
/// dimensions that inference cannot, and inference some that it does not.
def NN_InferResult : InferTypeOpAdaptorBase<[{
    static bool isCompatibleReturnTypes(::mlir::TypeRange l,
                                        ::mlir::TypeRange r) {
      return ::mlir::nn::infer::isCompatibleReturnTypes(l, r);
    }
  }]>;

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

def NN_WeightOp : NN_Op<"weight", [Pure]> {
  let summary = "a reference to weight data stored outside the IR";
  let description = [{
    Produces a constant tensor whose bytes live outside the IR, so that a
    model of any size imports and compiles in bounded memory. The source is
    either a file (`file`, a path relative to the input's directory or
    absolute, and a byte `offset`; the data is raw little-endian, row-major,
    exactly the tensor's size) or the deterministic generator (`seed`,
    `scale`): element i is `scale * (2 * u(seed, i) - 1)` where `u` is the
    splitmix64 hash of `seed * 0x9E3779B97F4A7C15 + i` taking its top 24 bits
    divided by 2^24 (documented in docs/dialects.md so that other tools can
    reproduce it).

    The result must have a static shape. Plan emission copies (or, for a
    quantised expert, packs) the data into the plan file.

    Example:

    ```mlir
    %w1 = nn.weight "layers.0.w1" {file = "weights.bin", offset = 4096 : i64} : tensor<8x128x64xf32>
    %w2 = nn.weight "layers.0.router" {seed = 7 : i64, scale = 0.05 : f64} : tensor<8x64xf32>
    ```
  }];
  let arguments = (ins StrAttr:$name,
                   OptionalAttr<StrAttr>:$file,
                   DefaultValuedAttr<I64Attr, "0">:$offset,
                   OptionalAttr<I64Attr>:$seed,
                   DefaultValuedAttr<F64Attr, "1.0">:$scale);
  let results = (outs AnyStaticShapeTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Matrix products
//===----------------------------------------------------------------------===//

def NN_MatmulOp : NN_Op<"matmul", [Pure, NN_InferResult]> {
  let summary = "batched matrix product with broadcast batch dimensions";
  let description = [{
    `[..., M, K] x [..., K, N] -> [..., M, N]`; both operands have rank at
    least 2 and their batch dimensions broadcast as in numpy.

    Example:

    ```mlir
    %c = nn.matmul %a, %b : tensor<2x?x64xf32>, tensor<64x32xf32>
    // %c : tensor<2x?x32xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$lhs, NN_FloatTensor:$rhs);
  let results = (outs NN_FloatTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs)
    `` custom<MatmulResult>(ref(type($lhs)), ref(type($rhs)), type($result))
  }];
}

def NN_LinearOp : NN_Op<"linear", [Pure, NN_InferResult]> {
  let summary = "fully connected layer: x times the transposed weight plus bias";
  let description = [{
    `y = x · wᵀ + bias` with `x : [..., K]`, `w : [N, K]` and an optional
    `bias : [N]`, giving `[..., N]`. This is the layout of PyTorch's
    `nn.Linear` and of ONNX Runtime's MoE expert weights.

    Example:

    ```mlir
    %y = nn.linear %x, %w, %b : tensor<?x64xf32>, tensor<128x64xf32>, tensor<128xf32>
    // %y : tensor<?x128xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$input, NN_FloatTensor:$weight,
                   Optional<NN_FloatTensor>:$bias);
  let results = (outs NN_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? attr-dict `:` type($input) `,` type($weight) (`,` type($bias)^)?
    `` custom<LinearResult>(ref(type($input)), ref(type($weight)), ref(type($bias)), type($result))
  }];
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

class NN_BinaryOp<string mnemonic, string what,
                  Type tensor = AnyRankedTensor, string elem = "f32">
    : NN_Op<mnemonic, [Pure, NN_InferResult]> {
  let summary = "elementwise " # what # " with numpy broadcasting";
  let description = "Computes " # what # [{ of the two operands elementwise.
    The shapes broadcast as in numpy (dimensions of size 1 stretch, missing
    leading dimensions are added); both operands have the same element type.
    A result type given after `->` may be more (or less) static than the
    broadcast one (it is printed only when it differs).

    Example:

    ```mlir
    %c = nn.}] # mnemonic # " %a, %b : tensor<2x?x64x" # elem # ">, tensor<64x"
    # elem # [{>
    // %c : tensor<2x?x64x}] # elem # [{>
    ```
  }];
  let arguments = (ins tensor:$lhs, tensor:$rhs);
  let results = (outs tensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs)
    `` custom<BroadcastResult>(ref(type($lhs)), ref(type($rhs)), type($result))
  }];
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::inferReturnTypes(
        ::mlir::MLIRContext *, std::optional<::mlir::Location> loc,
        Adaptor adaptor, ::llvm::SmallVectorImpl<::mlir::Type> &types) {
      return ::mlir::nn::infer::inferBroadcastType(
          loc, adaptor.getLhs().getType(), adaptor.getRhs().getType(), types);
    }
  }];
}

def NN_AddOp : NN_BinaryOp<"add", "the sum">;
def NN_SubOp : NN_BinaryOp<"sub", "the difference">;
def NN_MulOp : NN_BinaryOp<"mul", "the product">;
def NN_DivOp : NN_BinaryOp<"div", "the quotient">;
def NN_MaxOp : NN_BinaryOp<"max", "the maximum">;
def NN_MinOp : NN_BinaryOp<"min", "the minimum">;
def NN_PowOp : NN_BinaryOp<"pow", "the power (lhs raised to rhs)">;

class NN_UnaryOp<string mnemonic, string what, Type tensor = NN_FloatTensor,
                 string elem = "f32">
    : NN_Op<mnemonic, [Pure, NN_InferResult]> {
  let summary = "elementwise " # what;
  let description = "Applies " # what # [{ to every element; the result has
    the operand's type (a result type given after `->` may be more or less
    static).

    Example:

    ```mlir
    %y = nn.}] # mnemonic # " %x : tensor<?x128x" # elem # [{>
    ```
  }];
  let arguments = (ins tensor:$input);
  let results = (outs tensor:$result);
  let assemblyFormat = [{
    $input attr-dict `:` type($input)
    `` custom<SameResult>(ref(type($input)), type($result))
  }];
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::inferReturnTypes(
        ::mlir::MLIRContext *, std::optional<::mlir::Location>,
        Adaptor adaptor, ::llvm::SmallVectorImpl<::mlir::Type> &types) {
      types.push_back(adaptor.getInput().getType());
      return ::mlir::success();
    }
  }];
}

def NN_SiluOp : NN_UnaryOp<"silu", "x · sigmoid(x) (SiLU, swish)">;
def NN_SigmoidOp : NN_UnaryOp<"sigmoid", "the logistic sigmoid 1 / (1 + e^-x)">;
def NN_ReluOp : NN_UnaryOp<"relu", "max(x, 0)">;
def NN_TanhOp : NN_UnaryOp<"tanh", "the hyperbolic tangent">;
def NN_ExpOp : NN_UnaryOp<"exp", "e^x">;
def NN_LogOp : NN_UnaryOp<"log", "the natural logarithm">;
def NN_NegOp : NN_UnaryOp<"neg", "-x", NN_SignedTensor>;
def NN_AbsOp : NN_UnaryOp<"abs", "|x|">;
def NN_SqrtOp : NN_UnaryOp<"sqrt", "the square root">;
def NN_RsqrtOp : NN_UnaryOp<"rsqrt", "the reciprocal square root">;
def NN_ReciprocalOp : NN_UnaryOp<"reciprocal", "1 / x">;
def NN_CosOp : NN_UnaryOp<"cos", "the cosine (ONNX Cos)">;
def NN_SinOp : NN_UnaryOp<"sin", "the sine (ONNX Sin)">;

def NN_GeluOp : NN_Op<"gelu", [Pure, NN_InferResult]> {
  let summary = "elementwise GELU";
  let description = [{
    `x · Φ(x)` with the exact (erf) form when `approximate` is `"none"` (the
    default) and the tanh approximation when it is `"tanh"`.

    Example:

    ```mlir
    %y = nn.gelu %x {approximate = "tanh"} : tensor<?x128xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$input,
                   DefaultValuedStrAttr<StrAttr, "none">:$approximate);
  let results = (outs NN_FloatTensor:$result);
  let assemblyFormat = [{
    $input attr-dict `:` type($input)
    `` custom<SameResult>(ref(type($input)), type($result))
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Softmax, reductions, norms
//===----------------------------------------------------------------------===//

def NN_SoftmaxOp : NN_Op<"softmax", [Pure, NN_InferResult]> {
  let summary = "softmax along one axis";
  let description = [{
    `exp(x - max) / sum(exp(x - max))` along `axis` (negative counts from the
    end).

    Example:

    ```mlir
    %p = nn.softmax %logits {axis = -1 : i64} : tensor<?x8xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$input, I64Attr:$axis);
  let results = (outs NN_FloatTensor:$result);
  let assemblyFormat = [{
    $input attr-dict `:` type($input)
    `` custom<SameResult>(ref(type($input)), type($result))
  }];
  let hasVerifier = 1;
}

class NN_ReduceOp<string mnemonic, string what, Type tensor = NN_FloatTensor>
    : NN_Op<mnemonic, [Pure, NN_InferResult]> {
  let summary = "reduction by " # what;
  let description = "Reduces `input` by " # what # [{ over `axes` (all axes
    when empty; negative axes count from the end). With `keepdims` the reduced
    dimensions stay with size 1. `reduce_sum` and `reduce_max` also take i64
    and i32 tensors.

    Example:

    ```mlir
    %s = nn.}] # mnemonic # [{ %x {axes = array<i64: -1>, keepdims = true} : tensor<?x64xf32> -> tensor<?x1xf32>
    ```
  }];
  let arguments = (ins tensor:$input,
                   DefaultValuedAttr<DenseI64ArrayAttr, "{}">:$axes,
                   DefaultValuedAttr<BoolAttr, "false">:$keepdims);
  let results = (outs tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::inferReturnTypes(
        ::mlir::MLIRContext *, std::optional<::mlir::Location> loc,
        Adaptor adaptor, ::llvm::SmallVectorImpl<::mlir::Type> &types) {
      return ::mlir::nn::infer::inferReduceType(
          loc, adaptor.getInput().getType(), adaptor.getAxes(),
          adaptor.getKeepdims(), types);
    }
  }];
}

def NN_ReduceSumOp : NN_ReduceOp<"reduce_sum", "sum", NN_SignedTensor>;
def NN_ReduceMeanOp : NN_ReduceOp<"reduce_mean", "mean">;
def NN_ReduceMaxOp : NN_ReduceOp<"reduce_max", "maximum", NN_SignedTensor>;

def NN_RmsNormOp : NN_Op<"rms_norm", [Pure, NN_InferResult]> {
  let summary = "root-mean-square normalisation over the last axis";
  let description = [{
    `y = x / sqrt(mean(x², last axis) + eps) · weight`, with `weight` of the
    size of the last axis (LLaMA/Mixtral RMSNorm).

    Example:

    ```mlir
    %y = nn.rms_norm %x, %w {eps = 1.0e-05 : f64} : tensor<?x64xf32>, tensor<64xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$input, NN_FloatTensor:$weight,
                   DefaultValuedAttr<F64Attr, "1.0e-6">:$eps);
  let results = (outs NN_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight attr-dict `:` type($input) `,` type($weight)
    `` custom<SameResult>(ref(type($input)), type($result))
  }];
  let hasVerifier = 1;
}

def NN_LayerNormOp : NN_Op<"layer_norm", [Pure, NN_InferResult]> {
  let summary = "layer normalisation over the last axis";
  let description = [{
    `y = (x - mean) / sqrt(var + eps) · weight + bias` over the last axis;
    `bias` is optional.

    Example:

    ```mlir
    %y = nn.layer_norm %x, %w, %b {eps = 1.0e-05 : f64} : tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>
    ```
  }];
  let arguments = (ins NN_FloatTensor:$input, NN_FloatTensor:$weight,
                   Optional<NN_FloatTensor>:$bias,
                   DefaultValuedAttr<F64Attr, "1.0e-5">:$eps);
  let results = (outs NN_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? attr-dict `:` type($input) `,` type($weight) (`,` type($bias)^)?
    `` custom<SameResult>(ref(type($input)), type($result))
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

def NN_ReshapeOp : NN_Op<"reshape", [Pure, NN_InferResult]> {
  let summary = "reshape to a shape given as an attribute";
  let description = [{
    Reinterprets the row-major elements with the shape `shape`, in which one
    entry may be -1 (inferred from the element count at run time, or at
    compile time when the input shape is static).

    Example:

    ```mlir
    %y = nn.reshape %x {shape = array<i64: -1, 64>} : tensor<2x?x64xf32> -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, DenseI64ArrayAttr:$shape);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

def NN_TransposeOp : NN_Op<"transpose", [Pure, NN_InferResult]> {
  let summary = "permute the dimensions";
  let description = [{
    Result dimension i is input dimension `perm[i]`.

    Example:

    ```mlir
    %y = nn.transpose %x {perm = array<i64: 1, 0>} : tensor<4x?xf32> -> tensor<?x4xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, DenseI64ArrayAttr:$perm);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

def NN_GatherOp : NN_Op<"gather", [Pure, NN_InferResult]> {
  let summary = "gather slices along an axis (ONNX Gather, embedding lookup)";
  let description = [{
    The result has shape `data[:axis] + indices.shape + data[axis+1:]`;
    negative indices count from the end, indices out of range are a run-time
    error.

    Example:

    ```mlir
    %e = nn.gather %table, %ids {axis = 0 : i64} : tensor<256x64xf32>, tensor<?x?xi64> -> tensor<?x?x64xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$data, NN_IndexTensor:$indices,
                   DefaultValuedAttr<I64Attr, "0">:$axis);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $data `,` $indices attr-dict `:` type($data) `,` type($indices) `->` type($result)
  }];
}

def NN_ConcatOp : NN_Op<"concat", [Pure, NN_InferResult]> {
  let summary = "concatenate tensors along an axis";
  let description = [{
    All operands have the same element type and rank and agree on every
    dimension but `axis`.

    Example:

    ```mlir
    %y = nn.concat %a, %b {axis = 1 : i64} : tensor<?x32xf32>, tensor<?x32xf32> -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins Variadic<AnyRankedTensor>:$inputs, I64Attr:$axis);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$inputs attr-dict `:` type($inputs) `->` type($result)";
}

def NN_SliceOp : NN_Op<"slice", [Pure, NN_InferResult]> {
  let summary = "strided slice with ONNX Slice semantics";
  let description = [{
    For each listed axis, takes `starts[i]` up to (not including) `ends[i]`
    with step `steps[i]`; negative starts/ends count from the end and are
    clamped to the dimension, as in ONNX `Slice`. `axes` and `steps` default
    to all leading axes and 1.

    Example:

    ```mlir
    %y = nn.slice %x {starts = array<i64: 0>, ends = array<i64: 32>, axes = array<i64: 1>} : tensor<?x64xf32> -> tensor<?x32xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, DenseI64ArrayAttr:$starts,
                   DenseI64ArrayAttr:$ends,
                   OptionalAttr<DenseI64ArrayAttr>:$axes,
                   OptionalAttr<DenseI64ArrayAttr>:$steps);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

def NN_CastOp : NN_Op<"cast", [Pure, SameOperandsAndResultShape]> {
  let summary = "convert the element type";
  let description = [{
    Converts every element to the result's element type: float to integer
    truncates toward zero, anything to `i1` is `x != 0`.

    Example:

    ```mlir
    %y = nn.cast %x : tensor<?x64xf32> to tensor<?x64xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `to` type($result)";
}

include "dialects/nn/NNOnnxOps.td"

#endif // MOE_NN_OPS_TD
