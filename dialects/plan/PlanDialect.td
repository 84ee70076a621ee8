//===- PlanDialect.td - The executable plan dialect --------*- tablegen -*-===//

#ifndef MOE_PLAN_DIALECT_TD
#define MOE_PLAN_DIALECT_TD

include "mlir/IR/OpBase.td"

def Plan_Dialect : Dialect {
  let name = "plan";
  let cppNamespace = "::mlir::plan";
  let summary = "The executable level: buffers, kernel calls, copies, frees";
  let description = [{
    A function in `plan` form takes and returns `memref` buffers and its body
    is a sequence of steps that `--emit-plan` serialises one-to-one into the
    FlatBuffers plan (runtime/schema/plan.fbs):
    - `plan.weight` / `plan.constant`: read-only buffers stored in the plan
      file;
    - `plan.call`: a runtime kernel (named as in docs/plan-format.md) on a
      device; the runtime allocates its results with the shapes it computes;
    - `plan.copy`: a buffer copied to a device;
    - `plan.free`: the end of buffers' lifetimes, placed by
      `moe-lower-to-plan` after their last use.
    The order of the steps is a valid sequential schedule; the executor runs
    independent steps concurrently.
  }];
  let useDefaultAttributePrinterParser = 1;
}

class Plan_Op<string mnemonic, list<Trait> traits = []>
    : Op<Plan_Dialect, mnemonic, traits>;

#endif // MOE_PLAN_DIALECT_TD
