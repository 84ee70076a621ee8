//===- PrecisionSolver.h - One format per expert under a byte budget -*- C++ -*-===//
//
// The integer program of `moe-assign-precision` (MC-MoE's bit allocation):
// every expert (a "group") has candidate formats, each with the bytes it
// takes and the error it causes; exactly one candidate per group is chosen so
// that the importance-weighted error
//
//     minimise   Σ_g Σ_c  importance_g · error_{g,c} · x_{g,c}
//     subject to Σ_c x_{g,c} = 1              for every group g
//                Σ_g Σ_c bytes_{g,c} · x_{g,c} ≤ budget
//                x_{g,c} ∈ {0, 1};  x_{g,pinned_g} = 1 where pinned
//
// is least. Solved with GLPK's branch-and-cut (glp_intopt), a real MIP
// solver from Debian (libglpk-dev). Plain C++: no MLIR, usable by plugins and
// tests that give sizes and errors directly (no weights needed).
//
//===----------------------------------------------------------------------===//
#ifndef MOE_PASSES_ANALYSIS_PRECISIONSOLVER_H
#define MOE_PASSES_ANALYSIS_PRECISIONSOLVER_H

#include "runtime/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moe::precision {

/// One format an expert may be stored in.
struct Candidate {
  int64_t bytes = 0;  ///< bytes of the expert in this format (> 0)
  double error = 0.0; ///< error it causes (>= 0, finite)
};

/// One expert: its candidates, how much its error matters, and an optional
/// candidate it must take.
struct Group {
  std::vector<Candidate> candidates; ///< at least one
  double importance = 1.0;           ///< >= 0, finite
  int pinned = -1;                   ///< index into candidates, or -1
};

struct SolveOptions {
  /// Most total bytes of the chosen candidates.
  int64_t budget = 0;
  /// Stop when the relative gap between the best solution and the bound is
  /// below this (0: prove optimality).
  double relativeGap = 1e-6;
  /// Give up improving after this many seconds and return the best solution
  /// found (Solution::optimal is then false).
  double timeLimitSeconds = 30.0;
  /// Tuning: when more binaries than this survive the reduced-cost fixing, a
  /// smaller core of them is solved first for a better incumbent (<= 0:
  /// never).
  int64_t coreColumns = 4000;
};

struct Solution {
  std::vector<int> choice; ///< chosen candidate index per group
  int64_t bytes = 0;       ///< total bytes of the choice
  double objective = 0.0;  ///< Σ importance · error of the choice
  double bound = 0.0;      ///< solver's lower bound on the optimum
  bool optimal = false;    ///< proven optimal within relativeGap (by GLPK,
                           ///< or by the LP bound when no search is needed)
  double seconds = 0.0;    ///< wall time of the solve
  int64_t variables = 0;   ///< binaries given to the solver (after dropping
                           ///< dominated candidates, and those whose LP
                           ///< reduced cost rules them out; the largest
                           ///< problem handed to GLPK, 0 when none was)
  /// Candidates of unpinned groups left after dropping dominated ones.
  int64_t nonDominated = 0;
};

/// Solves the program. Errors (one line each): an empty problem, a group
/// without candidates, a bad pin, a non-positive size, a negative or
/// non-finite error or importance, and a budget below the smallest possible
/// total (the message gives that minimum), a negative or non-finite
/// relativeGap, a time limit that is not positive; a solver failure names
/// GLPK's return code. Prints nothing.
rt::StatusOr<Solution> solve(const std::vector<Group> &groups,
                             const SolveOptions &options);

} // namespace moe::precision

#endif // MOE_PASSES_ANALYSIS_PRECISIONSOLVER_H
