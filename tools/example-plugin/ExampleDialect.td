//===- ExampleDialect.td - An example dialect plugin -------*- tablegen -*-===//

#ifndef MOE_EXAMPLE_DIALECT_TD
#define MOE_EXAMPLE_DIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/CommonAttrConstraints.td"
include "mlir/IR/CommonTypeConstraints.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def MoeExample_Dialect : Dialect {
  let name = "moe_example";
  let cppNamespace = "::moe_example";
  let summary = "An example dialect loaded into moe-opt as a plugin";
  let description = [{
    Shows how a user adds a dialect to moe-opt without rebuilding it:
    `moe-opt --load-dialect-plugin=libMoeExampleDialectPlugin.so`.
  }];
}

def MoeExample_TagOp : Op<MoeExample_Dialect, "tag",
                          [Pure, SameOperandsAndResultType]> {
  let summary = "the identity, carrying a label for a user's own passes";
  let description = [{
    Returns its operand unchanged; `label` is free text a user's pass can
    match on (e.g. "hot" experts' inputs).

    Example:

    ```mlir
    %y = moe_example.tag %x {label = "hot"} : tensor<?x64xf32>
    ```
  }];
  let arguments = (ins AnyType:$input, StrAttr:$label);
  let results = (outs AnyType:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

#endif // MOE_EXAMPLE_DIALECT_TD
