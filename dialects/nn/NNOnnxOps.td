//===- NNOnnxOps.td - ONNX-semantics ops of the nn dialect -*- tablegen -*-===//
//
// One op per ONNX operator whose shapes are computed at run time or whose
// axes and sizes are tensors (docs/onnx-import.md). Included by NNOps.td.
// Ops whose result dimensions depend on operand values take explicit result
// types; their verifiers check dtypes, ranks and the dimensions that are
// known statically, and accept `?` anywhere.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_NN_ONNX_OPS_TD
#define MOE_NN_ONNX_OPS_TD

//===----------------------------------------------------------------------===//
// Comparisons and logic
//===----------------------------------------------------------------------===//

class NN_CompareOp<string mnemonic, string what, Type tensor = NN_NumberTensor>
    : NN_Op<mnemonic, [Pure, NN_InferResult]> {
  let summary = "elementwise " # what # " comparison with numpy broadcasting";
  let description = "True (an `i1` 1) where `lhs` " # what # [{ `rhs`, with
    numpy broadcasting (ONNX semantics). Both operands have the same element
    type; the result is `i1` of the broadcast shape.

    Example:

    ```mlir
    %m = nn.}] # mnemonic # [{ %a, %b : tensor<?x8xi64>, tensor<i64>
    // %m : tensor<?x8xi1>
    ```
  }];
  let arguments = (ins tensor:$lhs, tensor:$rhs);
  let results = (outs NN_BoolTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs)
    `` custom<CompareResult>(ref(type($lhs)), ref(type($rhs)), type($result))
  }];
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::inferReturnTypes(
        ::mlir::MLIRContext *, std::optional<::mlir::Location> loc,
        Adaptor adaptor, ::llvm::SmallVectorImpl<::mlir::Type> &types) {
      return ::mlir::nn::infer::inferCompareType(
          loc, adaptor.getLhs().getType(), adaptor.getRhs().getType(), types);
    }
  }];
}

def NN_EqualOp : NN_CompareOp<"equal", "equals", NN_ValueTensor>;
def NN_GreaterOp : NN_CompareOp<"greater", "is greater than">;
def NN_GreaterOrEqualOp
    : NN_CompareOp<"greater_or_equal", "is greater than or equal to">;
def NN_LessOp : NN_CompareOp<"less", "is less than">;
def NN_LessOrEqualOp : NN_CompareOp<"less_or_equal", "is less than or equal to">;

def NN_AndOp : NN_BinaryOp<"and", "the logical and", NN_BoolTensor, "i1">;
def NN_OrOp : NN_BinaryOp<"or", "the logical or", NN_BoolTensor, "i1">;
def NN_XorOp : NN_BinaryOp<"xor", "the logical exclusive or", NN_BoolTensor,
                           "i1">;
def NN_NotOp : NN_UnaryOp<"not", "the logical negation", NN_BoolTensor, "i1">;

def NN_WhereOp : NN_Op<"where", [Pure, NN_InferResult]> {
  let summary = "elementwise select (ONNX Where)";
  let description = [{
    `condition ? x : y` elementwise, the three operands broadcasting together
    as in numpy; `x` and `y` have the same element type.

    Example:

    ```mlir
    %r = nn.where %c, %x, %y : tensor<?x1xi1>, tensor<?x8xf32>, tensor<f32>
    // %r : tensor<?x8xf32>
    ```
  }];
  let arguments = (ins NN_BoolTensor:$condition, NN_ValueTensor:$x,
                   NN_ValueTensor:$y);
  let results = (outs NN_ValueTensor:$result);
  let assemblyFormat = [{
    $condition `,` $x `,` $y attr-dict `:` type($condition) `,` type($x) `,` type($y)
    `` custom<WhereResult>(ref(type($condition)), ref(type($x)), ref(type($y)), type($result))
  }];
}

def NN_ClipOp : NN_Op<"clip", [Pure, NN_InferResult]> {
  let summary = "clamp to a range (ONNX Clip)";
  let description = [{
    `y = min(max(x, min), max)` elementwise; `min` and `max` are rank-0
    tensors of `x`'s element type (the importer materialises absent bounds as
    the lowest and highest values).

    Example:

    ```mlir
    %y = nn.clip %x, %lo, %hi : tensor<?x8xf32>, tensor<f32>, tensor<f32>
    ```
  }];
  let arguments = (ins NN_NumberTensor:$input, NN_NumberTensor:$min,
                   NN_NumberTensor:$max);
  let results = (outs NN_NumberTensor:$result);
  let assemblyFormat = [{
    $input `,` $min `,` $max attr-dict `:` type($input) `,` type($min) `,` type($max)
    `` custom<SameResult>(ref(type($input)), type($result))
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Shapes as tensors
//===----------------------------------------------------------------------===//

def NN_ShapeOp : NN_Op<"shape", [Pure]> {
  let summary = "the shape of a tensor as an i64 vector (ONNX Shape-15)";
  let description = [{
    The dimensions `start` up to (not including) `end` of the operand's
    shape; negative values count from the end and both are clamped to
    `[0, rank]`. Without `end`, up to the rank.

    Example:

    ```mlir
    %s = nn.shape %x {start = 1 : i64} : tensor<2x?x16xf32> -> tensor<2xi64>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input,
                   DefaultValuedAttr<I64Attr, "0">:$start,
                   OptionalAttr<I64Attr>:$end);
  let results = (outs NN_I64Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def NN_ConstantOfShapeOp : NN_Op<"constant_of_shape", [Pure]> {
  let summary = "a tensor of a run-time shape filled with one value";
  let description = [{
    A tensor whose shape is the i64 vector `shape` (its length is the
    result's rank), every element `value` converted to the result's element
    type (ONNX ConstantOfShape). The lowering adds the kernel parameter
    `dtype` (the plan DType of the result).

    Example:

    ```mlir
    %z = nn.constant_of_shape %s {value = 1.0 : f64} : tensor<2xi64> -> tensor<?x?xi64>
    ```
  }];
  let arguments = (ins NN_I64Tensor:$shape,
                   DefaultValuedAttr<F64Attr, "0.0">:$value);
  let results = (outs NN_ValueTensor:$result);
  let assemblyFormat = "$shape attr-dict `:` type($shape) `->` type($result)";
  let hasVerifier = 1;
}

def NN_RangeOp : NN_Op<"range", [Pure, AllTypesMatch<["start", "limit", "delta"]>,
                                 AllElementTypesMatch<["start", "result"]>]> {
  let summary = "an arithmetic sequence (ONNX Range)";
  let description = [{
    `start, start + delta, ...` while below `limit` (above it for a negative
    `delta`); the operands are rank-0 tensors of one element type, the
    result a vector of `max(ceil((limit - start) / delta), 0)` elements. A
    zero `delta` is a run-time error.

    Example:

    ```mlir
    %r = nn.range %start, %limit, %delta : tensor<i64> -> tensor<?xi64>
    ```
  }];
  let arguments = (ins NN_NumberTensor:$start, NN_NumberTensor:$limit,
                   NN_NumberTensor:$delta);
  let results = (outs NN_NumberTensor:$result);
  let assemblyFormat = [{
    $start `,` $limit `,` $delta attr-dict `:` type($start) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Data movement with run-time shapes
//===----------------------------------------------------------------------===//

def NN_ExpandOp : NN_Op<"expand", [Pure]> {
  let summary = "broadcast to a run-time shape (ONNX Expand)";
  let description = [{
    Broadcasts `input` and the shape given by the i64 vector `shape` together
    (bidirectionally, as in numpy): the result has rank
    `max(rank(input), size(shape))`.

    Example:

    ```mlir
    %y = nn.expand %x, %s : tensor<?x1xf32>, tensor<2xi64> -> tensor<?x8xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, NN_I64Tensor:$shape);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $input `,` $shape attr-dict `:` type($input) `,` type($shape) `->` type($result)
  }];
  let hasVerifier = 1;
}

def NN_TileOp : NN_Op<"tile", [Pure]> {
  let summary = "repeat a tensor along each dimension (ONNX Tile)";
  let description = [{
    Dimension `i` of the result is `repeats[i]` copies of dimension `i` of
    `input`; `repeats` is an i64 vector with one entry per dimension.

    Example:

    ```mlir
    %y = nn.tile %x, %r : tensor<2x3xf32>, tensor<2xi64> -> tensor<?x?xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, NN_I64Tensor:$repeats);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $input `,` $repeats attr-dict `:` type($input) `,` type($repeats) `->` type($result)
  }];
  let hasVerifier = 1;
}

def NN_DynamicReshapeOp : NN_Op<"dynamic_reshape", [Pure]> {
  let summary = "reshape to a shape given as a tensor (ONNX Reshape)";
  let description = [{
    Reinterprets the row-major elements with the shape held by the i64
    vector `shape` (its length is the result's rank). As in ONNX, a 0 copies
    the input's dimension at that index unless `allowzero` is 1, and one -1
    is inferred from the element count. The result shares the input's
    storage at run time.

    Example:

    ```mlir
    %y = nn.dynamic_reshape %x, %s : tensor<2x?x16xf32>, tensor<2xi64> -> tensor<?x16xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, NN_I64Tensor:$shape,
                   DefaultValuedAttr<I64Attr, "0">:$allowzero);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $input `,` $shape attr-dict `:` type($input) `,` type($shape) `->` type($result)
  }];
  let hasVerifier = 1;
}

def NN_SqueezeOp : NN_Op<"squeeze", [Pure]> {
  let summary = "remove dimensions of size 1 (ONNX Squeeze)";
  let description = [{
    Removes the dimensions listed in `axes` (negative counts from the end),
    each of which must be 1 (a run-time error otherwise); with no `axes`,
    every dimension of size 1.

    Example:

    ```mlir
    %y = nn.squeeze %x {axes = array<i64: 1>} : tensor<?x1x16xf32> -> tensor<?x16xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input,
                   DefaultValuedAttr<DenseI64ArrayAttr, "{}">:$axes);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def NN_UnsqueezeOp : NN_Op<"unsqueeze", [Pure]> {
  let summary = "insert dimensions of size 1 (ONNX Unsqueeze)";
  let description = [{
    Inserts a dimension of size 1 at each index of `axes`, which count in the
    result's rank (negative from its end).

    Example:

    ```mlir
    %y = nn.unsqueeze %x {axes = array<i64: 0, -1>} : tensor<?x16xf32> -> tensor<1x?x16x1xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, DenseI64ArrayAttr:$axes);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def NN_FlattenOp : NN_Op<"flatten", [Pure]> {
  let summary = "flatten to a matrix (ONNX Flatten)";
  let description = [{
    Reshapes to `[d0 · … · d(axis-1), d(axis) · … · d(rank-1)]`; `axis` is in
    `[-rank, rank]` (negative counts from the end).

    Example:

    ```mlir
    %y = nn.flatten %x {axis = 1 : i64} : tensor<?x4x16xf32> -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input,
                   DefaultValuedAttr<I64Attr, "1">:$axis);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def NN_DynamicSliceOp : NN_Op<"dynamic_slice", [Pure]> {
  let summary = "strided slice with bounds given as tensors (ONNX Slice)";
  let description = [{
    `nn.slice` with `starts`, `ends`, `axes` and `steps` as i64 or i32
    vectors of one length: ONNX Slice semantics (negative indices, clamping,
    negative steps, `INT64_MAX` ends). The result has the input's rank.

    Example:

    ```mlir
    %y = nn.dynamic_slice %x, %starts, %ends, %axes, %steps : tensor<?x64xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64> -> tensor<?x?xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, NN_IndexTensor:$starts,
                   NN_IndexTensor:$ends, NN_IndexTensor:$axes,
                   NN_IndexTensor:$steps);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $input `,` $starts `,` $ends `,` $axes `,` $steps attr-dict `:` type($input) `,` type($starts) `,` type($ends) `,` type($axes) `,` type($steps) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Gathers and scatters
//===----------------------------------------------------------------------===//

def NN_GatherNDOp : NN_Op<"gather_nd", [Pure]> {
  let summary = "gather slices by index tuples (ONNX GatherND)";
  let description = [{
    With `b = batch_dims` and `k` the last dimension of `indices`, each index
    tuple selects a slice of `data`; the result has shape
    `data[:b] + indices[b:-1] + data[b+k:]`.

    Example:

    ```mlir
    %y = nn.gather_nd %data, %idx : tensor<4x5x6xf32>, tensor<?x2xi64> -> tensor<?x6xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$data, NN_I64Tensor:$indices,
                   DefaultValuedAttr<I64Attr, "0">:$batch_dims);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $data `,` $indices attr-dict `:` type($data) `,` type($indices) `->` type($result)
  }];
  let hasVerifier = 1;
}

def NN_ScatterElementsOp : NN_Op<"scatter_elements", [Pure, NN_InferResult]> {
  let summary = "scatter updates along an axis (ONNX ScatterElements)";
  let description = [{
    A copy of `data` in which, for every position of `indices` (i64 or i32,
    the shape of `updates`, the rank of `data`), the element at that position
    with the index along `axis` replaced by the index value becomes the
    update (`reduction` `none`), or is combined with it (`add`, `mul`, `max`,
    `min`). Negative indices count from the end.

    Example:

    ```mlir
    %y = nn.scatter_elements %data, %idx, %upd {axis = 1 : i64, reduction = "add"} : tensor<4x8xf32>, tensor<4x2xi64>, tensor<4x2xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$data, NN_IndexTensor:$indices,
                   AnyRankedTensor:$updates,
                   DefaultValuedAttr<I64Attr, "0">:$axis,
                   DefaultValuedStrAttr<StrAttr, "none">:$reduction);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $data `,` $indices `,` $updates attr-dict `:` type($data) `,` type($indices) `,` type($updates)
    `` custom<SameResult>(ref(type($data)), type($result))
  }];
  let hasVerifier = 1;
}

def NN_ScatterNDOp : NN_Op<"scatter_nd", [Pure, NN_InferResult]> {
  let summary = "scatter slices by index tuples (ONNX ScatterND)";
  let description = [{
    A copy of `data` in which the slice selected by each index tuple (the
    last dimension `k` of `indices`) is replaced by (`reduction` `none`) or
    combined with (`add`, `mul`, `max`, `min`) the matching slice of
    `updates`, whose shape is `indices[:-1] + data[k:]`.

    Example:

    ```mlir
    %y = nn.scatter_nd %data, %idx, %upd : tensor<8x16xf32>, tensor<?x1xi64>, tensor<?x16xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$data, NN_I64Tensor:$indices,
                   AnyRankedTensor:$updates,
                   DefaultValuedStrAttr<StrAttr, "none">:$reduction);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $data `,` $indices `,` $updates attr-dict `:` type($data) `,` type($indices) `,` type($updates)
    `` custom<SameResult>(ref(type($data)), type($result))
  }];
  let hasVerifier = 1;
}

def NN_NonZeroOp : NN_Op<"nonzero", [Pure]> {
  let summary = "the indices of the non-zero elements (ONNX NonZero)";
  let description = [{
    An i64 `[rank, n]` matrix whose column `j` is the index of the `j`-th
    non-zero element of `input` in row-major order; `n` is known only at run
    time.

    Example:

    ```mlir
    %i = nn.nonzero %m : tensor<?x8xi1> -> tensor<2x?xi64>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input);
  let results = (outs NN_I64Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def NN_OneHotOp : NN_Op<"one_hot", [Pure]> {
  let summary = "one-hot encoding (ONNX OneHot)";
  let description = [{
    Inserts a dimension of size `depth` at `axis` (counted in the result's
    rank, negative from its end); an element is `values[1]` where its index
    along that dimension equals the index value and `values[0]` elsewhere.
    Negative indices wrap once; indices out of range give all-off rows.
    `depth` has rank 0 or shape `[1]`; the result has `values`' element type.

    Example:

    ```mlir
    %y = nn.one_hot %ids, %depth, %values : tensor<?xi64>, tensor<i64>, tensor<2xf32> -> tensor<?x?xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[I64, I32, F32]>:$indices,
                   RankedTensorOf<[I64, I32, F32]>:$depth,
                   NN_ValueTensor:$values,
                   DefaultValuedAttr<I64Attr, "-1">:$axis);
  let results = (outs NN_ValueTensor:$result);
  let assemblyFormat = [{
    $indices `,` $depth `,` $values attr-dict `:` type($indices) `,` type($depth) `,` type($values) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Top-k, split
//===----------------------------------------------------------------------===//

def NN_TopKOp : NN_Op<"topk", [Pure]> {
  let summary = "the k largest or smallest elements along an axis (ONNX TopK)";
  let description = [{
    Along `axis`, the `k` largest (`largest` 1) or smallest (0) elements and
    their i64 indices; `k` is an i64 tensor of shape `[1]`. With `sorted` 1
    they are in order (largest first, or smallest first); ties go to the
    lower index first.

    Example:

    ```mlir
    %v, %i = nn.topk %x, %k {axis = -1 : i64} : tensor<?x64xf32>, tensor<1xi64> -> tensor<?x?xf32>, tensor<?x?xi64>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32, I64]>:$input, NN_I64Tensor:$k,
                   DefaultValuedAttr<I64Attr, "-1">:$axis,
                   DefaultValuedAttr<I64Attr, "1">:$largest,
                   DefaultValuedAttr<I64Attr, "1">:$sorted);
  let results = (outs RankedTensorOf<[F32, I64]>:$values,
                      NN_I64Tensor:$indices);
  let assemblyFormat = [{
    $input `,` $k attr-dict `:` type($input) `,` type($k) `->` type($values) `,` type($indices)
  }];
  let hasVerifier = 1;
}

def NN_SplitOp : NN_Op<"split", [Pure]> {
  let summary = "split into parts along an axis (ONNX Split)";
  let description = [{
    Splits `input` along `axis` into one part per result: of the sizes held
    by the optional i64 vector `split`, or else into equal parts of
    `ceil(d / N)` with the last one smaller (ONNX Split-18).

    Example:

    ```mlir
    %a, %b = nn.split %x, %sizes {axis = 1 : i64} : tensor<?x64xf32>, tensor<2xi64> -> tensor<?x?xf32>, tensor<?x?xf32>
    %c:2 = nn.split %x {axis = 1 : i64} : tensor<?x64xf32> -> tensor<?x32xf32>, tensor<?x32xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, Optional<NN_I64Tensor>:$split,
                   DefaultValuedAttr<I64Attr, "0">:$axis);
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let assemblyFormat = [{
    $input (`,` $split^)? attr-dict `:` type($input) (`,` type($split)^)? `->` type($results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Quantised weights
//===----------------------------------------------------------------------===//

def NN_DequantizeOp : NN_Op<"dequantize", [Pure]> {
  let summary = "unpack block-quantised weights to f32 (ONNX Runtime QMoE)";
  let description = [{
    `input` holds `bits`-bit codes (2, 4 or 8) packed low bits first into
    `ui8`, `[..., rows, cols · bits / 8]`; `scales` (f32 or f16) is
    `[..., rows]` (one block per row) or `[..., rows, cols / block]`;
    `zero_points` (`ui8`, packed like `input` along the last axis) may be the
    empty `[0]` tensor, in which case the zero point is `2^(bits-1)`. The
    result is `(q - zero_point) · scale` as f32 `[..., rows, cols]`.

    Example:

    ```mlir
    %w = nn.dequantize %q, %s, %zp {bits = 4 : i64} : tensor<8x128x32xui8>, tensor<8x128x2xf16>, tensor<0xui8> -> tensor<8x128x64xf32>
    ```
  }];
  let arguments = (ins NN_ByteTensor:$input, RankedTensorOf<[F32, F16]>:$scales,
                   NN_ByteTensor:$zero_points, I64Attr:$bits);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $input `,` $scales `,` $zero_points attr-dict `:` type($input) `,` type($scales) `,` type($zero_points) `->` type($result)
  }];
  let hasVerifier = 1;
}

#endif // MOE_NN_ONNX_OPS_TD
