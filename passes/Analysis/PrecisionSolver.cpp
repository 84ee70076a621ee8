//===- PrecisionSolver.cpp - One format per expert under a byte budget ----===//
//
// The multiple-choice knapsack of PrecisionSolver.h, solved in six steps:
//
//  1. Validation. Everything GLPK would choke on (or abort on) is rejected
//     here with a one-line Status; GLPK only ever sees valid data.
//  2. Dominance presolve. Within a group a candidate that another one beats
//     on both bytes and error (one strictly; exact duplicates keep the lowest
//     index) can never be optimal and is dropped. Candidates that are only
//     above the lower convex hull are kept: the integer optimum may use them.
//  3. LP relaxation and greedy incumbent. The LP relaxation of a
//     multiple-choice knapsack is solved exactly by the classic greedy: start
//     every group at its cheapest candidate and take the lower-hull upgrades
//     in order of error reduction per extra byte; the first upgrade that does
//     not fit is taken fractionally. Its efficiency is the optimal byte price
//     lambda, which gives the LP bound. The integer greedy stops before that
//     upgrade, then spends the leftover bytes on single upgrades (any
//     candidate, hull or not; largest error reduction first).
//  4. Local search: pair moves (downgrade one group, upgrade another with the
//     freed bytes plus the leftover), best pair per round, found in
//     O(n log n) with suffix minima over the downgrades sorted by bytes.
//  5. Reduced-cost fixing. With price lambda every candidate has a Lagrangian
//     reduced cost rc >= 0, and every feasible choice has
//     objective >= LP bound + sum of its reduced costs. A candidate with
//     rc > incumbent - LP bound can therefore not be part of any choice better
//     than the incumbent and is dropped (exact, up to a 1e-9 relative margin
//     kept on the safe side). If more than options.coreColumns survive, a
//     "core" with a quarter, a sixteenth, ... of that limit is solved first
//     (step 6) for a better incumbent, which then fixes far more.
//  6. GLPK branch-and-cut on what is left: glp_simplex warm-started from the
//     greedy's LP basis, then glp_intopt (presolver off so that the callback
//     sees our columns; Gomory cuts on) with the incumbent offered through
//     glp_ios_heur_sol. The answer is re-checked in exact integer bytes;
//     should GLPK's tolerances ever let a choice exceed the budget, the
//     incumbent is kept instead.
//
// Costs are divided by the largest importance * error (and for GLPK, per
// problem, shifted by each group's cheapest kept cost and divided by the
// largest remaining one) so that GLPK's absolute tolerances act on numbers of
// order one; the byte row is shifted by each group's smallest kept option and
// divided by the common divisor of the sizes. The reported objective is
// recomputed in the caller's units from the chosen candidates.
//
//===----------------------------------------------------------------------===//

#include "passes/Analysis/PrecisionSolver.h"

#include <glpk.h>

#include <algorithm>
#include <cfloat>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

namespace moe::precision {
namespace {

using Clock = std::chrono::steady_clock;

std::string fmtDouble(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%g", value);
  return buffer;
}

/// A non-dominated candidate of a free (unpinned) group.
struct Option {
  int64_t bytes = 0; ///< absolute bytes
  double cost = 0.0; ///< importance * error / scale
  int original = 0;  ///< index into the group's candidates
};

/// An unpinned group after the dominance presolve: options sorted by bytes
/// ascending, cost strictly descending.
struct FreeGroup {
  int group = 0;
  std::vector<Option> options;
};

/// Lower-hull upgrade step of one free group.
struct Increment {
  double efficiency = 0.0; ///< cost reduction per extra byte
  int freeGroup = 0;
  int step = 0; ///< from hull[step] to hull[step + 1]
};

/// Keeps GLPK quiet for the lifetime of the object and frees the problem.
class GlpkProblem {
public:
  GlpkProblem() : previousTermOut_(glp_term_out(GLP_OFF)) {
    problem_ = glp_create_prob();
  }
  ~GlpkProblem() {
    glp_delete_prob(problem_);
    glp_term_out(previousTermOut_);
  }
  GlpkProblem(const GlpkProblem &) = delete;
  GlpkProblem &operator=(const GlpkProblem &) = delete;
  glp_prob *get() const { return problem_; }

private:
  int previousTermOut_;
  glp_prob *problem_ = nullptr;
};

/// What the branch-and-cut callback needs and learns.
struct CallbackState {
  const std::vector<double> *incumbent = nullptr; ///< 1-based column values
  bool offered = false;
  double bound = -std::numeric_limits<double>::infinity(); ///< scaled units
};

void branchAndCutCallback(glp_tree *tree, void *info) {
  auto *state = static_cast<CallbackState *>(info);
  if (glp_ios_reason(tree) == GLP_IHEUR && !state->offered) {
    state->offered = true;
    // Rejected (non-zero) only when GLPK already has something better.
    (void)glp_ios_heur_sol(tree, state->incumbent->data());
  }
  // Global lower bound: the best active node, capped by the incumbent.
  int best = glp_ios_best_node(tree);
  if (best == 0)
    return;
  double bound = glp_ios_node_bound(tree, best);
  glp_prob *mip = glp_ios_get_prob(tree);
  if (glp_mip_status(mip) == GLP_FEAS)
    bound = std::min(bound, glp_mip_obj_val(mip));
  if (std::isfinite(bound) && std::fabs(bound) < 1e300)
    state->bound = std::max(state->bound, bound);
}

int toMilliseconds(double seconds) {
  double ms = std::ceil(seconds * 1000.0);
  if (!(ms < static_cast<double>(INT_MAX)))
    return INT_MAX;
  return std::max(1, static_cast<int>(ms));
}

/// The greedy's LP optimum, reused as the simplex's starting basis.
struct LpBasis {
  const std::vector<int> *choice = nullptr; ///< LP option per free group
  int splitGroup = -1;  ///< the group the LP takes fractionally
  int splitOption = -1; ///< its second (larger) option
};

/// One GLPK run on a subset of the options.
struct MipResult {
  std::vector<int> picked; ///< option per free group (exactly feasible)
  bool proven = false;     ///< optimal within the gap on this subset
  double bound = -std::numeric_limits<double>::infinity(); ///< on this subset
  int64_t columns = 0;
};

/// Runs glp_simplex + glp_intopt on the options in `kept` (a group with one
/// kept option is fixed to it). `current` is a feasible choice inside `kept`
/// offered as the first incumbent; `freeBudget` is the budget left after the
/// pinned groups; costs are in solve()'s scaled units, as is the bound.
rt::StatusOr<MipResult> branchAndCut(const std::vector<FreeGroup> &free,
                                     const std::vector<std::vector<int>> &kept,
                                     const std::vector<int> &current,
                                     double currentCost, double pinnedCost,
                                     int64_t freeBudget, const LpBasis &basis,
                                     double relativeGap, double seconds) {
  const Clock::time_point start = Clock::now();
  auto remaining = [&] {
    return seconds -
           std::chrono::duration<double>(Clock::now() - start).count();
  };
  const size_t numFree = free.size();
  MipResult result;
  result.picked = current;

  // Constant part: fixed groups, and each open group's smallest kept cost
  // (its last option: most bytes); columns carry the cost above it. The byte
  // row counts bytes above each open group's smallest kept option, divided
  // by their common divisor.
  std::vector<size_t> open;
  double constant = pinnedCost;
  int64_t rowBudget = freeBudget;
  for (size_t f = 0; f < numFree; ++f) {
    const std::vector<Option> &opts = free[f].options;
    rowBudget -= opts[kept[f].front()].bytes;
    constant += opts[kept[f].back()].cost;
    if (kept[f].size() > 1)
      open.push_back(f);
  }
  int64_t divisor = 0;
  // GLPK prunes a node when its bound is within tol_obj * (1 + |incumbent|)
  // of the incumbent, and its simplex tolerances are absolute: divide the
  // objective so that the largest column cost is one.
  double objScale = 0.0;
  for (size_t f : open) {
    const std::vector<Option> &opts = free[f].options;
    for (int i : kept[f])
      divisor = std::gcd(divisor, opts[i].bytes - opts[kept[f].front()].bytes);
    objScale = std::max(objScale,
                        opts[kept[f].front()].cost - opts[kept[f].back()].cost);
  }
  if (divisor <= 0)
    divisor = 1;
  if (!(objScale > 0.0))
    objScale = 1.0;

  GlpkProblem holder;
  glp_prob *lp = holder.get();
  glp_set_obj_dir(lp, GLP_MIN);
  glp_set_obj_coef(lp, 0, constant / objScale);
  const int numRows = static_cast<int>(open.size()) + 1;
  glp_add_rows(lp, numRows);
  for (int r = 1; r < numRows; ++r)
    glp_set_row_bnds(lp, r, GLP_FX, 1.0, 1.0);
  glp_set_row_bnds(lp, numRows, GLP_UP, 0.0,
                   static_cast<double>(rowBudget / divisor));

  std::vector<int> rowIndex{0}, colIndex{0};
  std::vector<double> values{0.0};
  std::vector<std::pair<size_t, int>> columns{{0, 0}}; // (free group, option)
  std::vector<double> incumbent{0.0};
  for (size_t r = 0; r < open.size(); ++r) {
    size_t f = open[r];
    const std::vector<Option> &opts = free[f].options;
    int64_t base = opts[kept[f].front()].bytes;
    for (int i : kept[f]) {
      int col = static_cast<int>(columns.size());
      columns.push_back({f, i});
      incumbent.push_back(i == current[f] ? 1.0 : 0.0);
      rowIndex.push_back(static_cast<int>(r) + 1);
      colIndex.push_back(col);
      values.push_back(1.0);
      if (opts[i].bytes != base) {
        rowIndex.push_back(numRows);
        colIndex.push_back(col);
        values.push_back(static_cast<double>((opts[i].bytes - base) / divisor));
      }
    }
  }
  const int numCols = static_cast<int>(columns.size()) - 1;
  result.columns = numCols;
  glp_add_cols(lp, numCols);
  for (int j = 1; j <= numCols; ++j) {
    auto [f, i] = columns[j];
    const std::vector<Option> &opts = free[f].options;
    glp_set_col_kind(lp, j, GLP_BV);
    glp_set_obj_coef(lp, j,
                     (opts[i].cost - opts[kept[f].back()].cost) / objScale);
  }
  glp_load_matrix(lp, static_cast<int>(values.size()) - 1, rowIndex.data(),
                  colIndex.data(), values.data());
  glp_scale_prob(lp, GLP_SF_AUTO);

  // Start the simplex from the greedy's LP optimum: per group row its LP
  // option basic, plus the split group's second option for the tight byte
  // row. From GLPK's default basis the root LP of the DeepSeek-V3 instance
  // takes seconds; from this one it takes milliseconds.
  {
    std::vector<int> colStat(static_cast<size_t>(numCols) + 1, GLP_NL);
    int basic = 0;
    for (int j = 1; j <= numCols; ++j) {
      auto [f, i] = columns[j];
      if (i == (*basis.choice)[f] ||
          (static_cast<int>(f) == basis.splitGroup && i == basis.splitOption)) {
        colStat[j] = GLP_BS;
        ++basic;
      }
    }
    if (basic == numRows) {
      for (int r = 1; r < numRows; ++r)
        glp_set_row_stat(lp, r, GLP_NS);
      glp_set_row_stat(lp, numRows, GLP_NU);
      for (int j = 1; j <= numCols; ++j)
        glp_set_col_stat(lp, j, colStat[j]);
    } else {
      glp_adv_basis(lp, 0);
    }
  }

  if (remaining() <= 0.0)
    return result;
  glp_smcp simplex;
  glp_init_smcp(&simplex);
  simplex.msg_lev = GLP_MSG_OFF;
  simplex.presolve = GLP_OFF;
  simplex.tm_lim = toMilliseconds(remaining());
  int code = glp_simplex(lp, &simplex);
  if (code == GLP_ETMLIM)
    return result;
  if (code != 0 || glp_get_status(lp) != GLP_OPT)
    return rt::Status::error(
        "GLPK glp_simplex failed on the LP relaxation (return code " +
        std::to_string(code) + ", status " +
        std::to_string(glp_get_status(lp)) + ")");

  if (remaining() <= 0.0)
    return result;
  CallbackState state;
  state.incumbent = &incumbent;
  glp_iocp mip;
  glp_init_iocp(&mip);
  mip.msg_lev = GLP_MSG_OFF;
  mip.presolve = GLP_OFF; // keep our columns: the callback indexes them
  mip.mip_gap = relativeGap;
  // Prune only nodes that cannot improve by a tenth of the gap asked for
  // (GLPK's default 1e-7 would stop short of a zero gap).
  mip.tol_obj = std::clamp(0.1 * relativeGap, 1e-11, 1e-7);
  mip.tm_lim = toMilliseconds(remaining());
  mip.cb_func = branchAndCutCallback;
  mip.cb_info = &state;
  // Measured on DeepSeek-V3-shaped instances (bench/results/
  // precision-solver.txt): Gomory cuts close the knapsack's integrality gap
  // (20 s -> 4 s, 20 s -> 0.06 s on the hardest budgets); MIR, cover and
  // clique cuts and the feasibility pump / proximity search only cost time
  // given the greedy incumbent.
  mip.gmi_cuts = GLP_ON;
  mip.mir_cuts = GLP_OFF;
  mip.cov_cuts = GLP_OFF;
  mip.clq_cuts = GLP_OFF;
  mip.fp_heur = GLP_OFF;
  mip.ps_heur = GLP_OFF;
  mip.sr_heur = GLP_ON;
  code = glp_intopt(lp, &mip);
  const int status = glp_mip_status(lp);
  const bool stopped =
      code == GLP_ETMLIM || code == GLP_EMIPGAP || code == GLP_ESTOP;
  if (code != 0 && !stopped)
    return rt::Status::error("GLPK glp_intopt failed (return code " +
                             std::to_string(code) + ")");

  result.bound = state.bound * objScale;
  if (code == 0 && status == GLP_OPT) {
    result.proven = true;
    result.bound = glp_mip_obj_val(lp) * objScale;
  } else if (code == GLP_EMIPGAP && status == GLP_FEAS) {
    result.proven = true;
  }
  if (status != GLP_OPT && status != GLP_FEAS)
    return result;

  // Read the choice back and check it in exact integer bytes.
  std::vector<int> picked = current;
  std::vector<int> count(numFree, 0);
  for (int j = 1; j <= numCols; ++j)
    if (glp_mip_col_val(lp, j) > 0.5) {
      picked[columns[j].first] = columns[j].second;
      ++count[columns[j].first];
    }
  int64_t bytes = 0;
  double cost = pinnedCost;
  bool valid = true;
  for (size_t f = 0; f < numFree; ++f) {
    if (kept[f].size() > 1 && count[f] != 1)
      valid = false;
    if (kept[f].size() == 1)
      picked[f] = kept[f].front();
    bytes += free[f].options[picked[f]].bytes;
    cost += free[f].options[picked[f]].cost;
  }
  if (valid && bytes <= freeBudget && cost <= currentCost)
    result.picked = std::move(picked);
  else if (!valid || bytes > freeBudget)
    result.proven = false; // GLPK's tolerances let something slip
  return result;
}

} // namespace

rt::StatusOr<Solution> solve(const std::vector<Group> &groups,
                             const SolveOptions &options) {
  const Clock::time_point start = Clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };

  // ---- 1. Validation ------------------------------------------------------
  if (groups.empty())
    return rt::Status::error("no groups to assign (empty problem)");
  if (!std::isfinite(options.relativeGap) || options.relativeGap < 0.0)
    return rt::Status::error("relative gap must be finite and >= 0, got " +
                             fmtDouble(options.relativeGap));
  if (!(options.timeLimitSeconds > 0.0))
    return rt::Status::error("time limit must be > 0 seconds, got " +
                             fmtDouble(options.timeLimitSeconds));
  int64_t minimalBytes = 0;
  double largestCost = 0.0;
  for (size_t g = 0; g < groups.size(); ++g) {
    const Group &group = groups[g];
    const std::string name = "group " + std::to_string(g);
    if (group.candidates.empty())
      return rt::Status::error(name + " has no candidates");
    if (group.candidates.size() > static_cast<size_t>(INT_MAX / 2))
      return rt::Status::error(name + " has too many candidates");
    if (!std::isfinite(group.importance) || group.importance < 0.0)
      return rt::Status::error(name +
                               " has a negative or non-finite importance " +
                               fmtDouble(group.importance));
    if (group.pinned < -1 ||
        group.pinned >= static_cast<int>(group.candidates.size()))
      return rt::Status::error(
          name + " pins candidate " + std::to_string(group.pinned) +
          " but has only " + std::to_string(group.candidates.size()) +
          " candidates (valid: -1 or 0.." +
          std::to_string(group.candidates.size() - 1) + ")");
    int64_t smallest = INT64_MAX;
    for (size_t c = 0; c < group.candidates.size(); ++c) {
      const Candidate &cand = group.candidates[c];
      const std::string where = name + " candidate " + std::to_string(c);
      if (cand.bytes <= 0)
        return rt::Status::error(where + " has a non-positive size of " +
                                 std::to_string(cand.bytes) + " bytes");
      if (!std::isfinite(cand.error) || cand.error < 0.0)
        return rt::Status::error(where +
                                 " has a negative or non-finite error " +
                                 fmtDouble(cand.error));
      double cost = group.importance * cand.error;
      if (!std::isfinite(cost))
        return rt::Status::error(where + ": importance * error overflows (" +
                                 fmtDouble(group.importance) + " * " +
                                 fmtDouble(cand.error) + ")");
      largestCost = std::max(largestCost, cost);
      smallest = std::min(smallest, cand.bytes);
    }
    int64_t contribution =
        group.pinned >= 0 ? group.candidates[group.pinned].bytes : smallest;
    if (__builtin_add_overflow(minimalBytes, contribution, &minimalBytes))
      return rt::Status::error("the total size of the groups overflows 64-bit "
                               "byte counts");
  }
  for (const Group &group : groups)
    for (const Candidate &cand : group.candidates)
      if (cand.bytes > INT64_MAX / static_cast<int64_t>(groups.size()))
        return rt::Status::error("candidate sizes up to " +
                                 std::to_string(cand.bytes) + " bytes in " +
                                 std::to_string(groups.size()) +
                                 " groups overflow 64-bit byte counts");
  if (options.budget < minimalBytes)
    return rt::Status::error(
        "budget " + std::to_string(options.budget) +
        " bytes is below the smallest possible total " +
        std::to_string(minimalBytes) +
        " bytes (every expert in its smallest format and pinned ones as "
        "pinned)");

  const double scale = largestCost > 0.0 ? largestCost : 1.0;
  Solution solution;
  solution.choice.assign(groups.size(), -1);

  // ---- 2. Dominance presolve ----------------------------------------------
  std::vector<FreeGroup> free;
  int64_t pinnedBytes = 0;
  double pinnedCost = 0.0; // scaled
  for (size_t g = 0; g < groups.size(); ++g) {
    const Group &group = groups[g];
    if (group.pinned >= 0) {
      solution.choice[g] = group.pinned;
      pinnedBytes += group.candidates[group.pinned].bytes;
      pinnedCost +=
          group.importance * group.candidates[group.pinned].error / scale;
      continue;
    }
    std::vector<int> order(group.candidates.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int a, int b) {
      const Candidate &x = group.candidates[a], &y = group.candidates[b];
      if (x.bytes != y.bytes)
        return x.bytes < y.bytes;
      if (x.error != y.error)
        return x.error < y.error;
      return a < b;
    });
    FreeGroup fg;
    fg.group = static_cast<int>(g);
    double bestError = std::numeric_limits<double>::infinity();
    for (int c : order) {
      const Candidate &cand = group.candidates[c];
      if (!(cand.error < bestError))
        continue; // a smaller-or-equal candidate is at least as good
      bestError = cand.error;
      fg.options.push_back(
          {cand.bytes, group.importance * cand.error / scale, c});
    }
    solution.nonDominated += static_cast<int64_t>(fg.options.size());
    free.push_back(std::move(fg));
  }

  // ---- 3. LP relaxation (exact greedy) and integer greedy -----------------
  const size_t numFree = free.size();
  std::vector<std::vector<int>> hulls(numFree);
  std::vector<Increment> increments;
  int64_t freeMinBytes = 0;
  for (size_t f = 0; f < numFree; ++f) {
    const std::vector<Option> &opts = free[f].options;
    freeMinBytes += opts.front().bytes;
    std::vector<int> &hull = hulls[f];
    for (int i = 0; i < static_cast<int>(opts.size()); ++i) {
      if (!hull.empty() && !(opts[i].cost < opts[hull.back()].cost))
        continue; // no improvement (zero importance)
      while (hull.size() >= 2) {
        const Option &p1 = opts[hull[hull.size() - 2]];
        const Option &p2 = opts[hull.back()];
        const Option &p3 = opts[i];
        long double lhs = static_cast<long double>(p2.cost - p1.cost) *
                          static_cast<long double>(p3.bytes - p1.bytes);
        long double rhs = static_cast<long double>(p3.cost - p1.cost) *
                          static_cast<long double>(p2.bytes - p1.bytes);
        if (lhs < rhs)
          break; // p2 strictly below the chord p1-p3
        hull.pop_back();
      }
      hull.push_back(i);
    }
    double previous = std::numeric_limits<double>::infinity();
    for (size_t k = 0; k + 1 < hull.size(); ++k) {
      const Option &a = opts[hull[k]], &b = opts[hull[k + 1]];
      double efficiency =
          (a.cost - b.cost) / static_cast<double>(b.bytes - a.bytes);
      efficiency = std::min(efficiency, previous); // monotone despite rounding
      previous = efficiency;
      increments.push_back(
          {efficiency, static_cast<int>(f), static_cast<int>(k)});
    }
  }
  std::sort(increments.begin(), increments.end(),
            [](const Increment &a, const Increment &b) {
              if (a.efficiency != b.efficiency)
                return a.efficiency > b.efficiency;
              if (a.freeGroup != b.freeGroup)
                return a.freeGroup < b.freeGroup;
              return a.step < b.step;
            });

  // Bytes above "every free group at its cheapest option".
  const int64_t spare0 = options.budget - pinnedBytes - freeMinBytes;
  std::vector<int> current(numFree, 0); // option index per free group
  int64_t spare = spare0;
  double greedyCost = pinnedCost;
  for (size_t f = 0; f < numFree; ++f)
    greedyCost += free[f].options.front().cost;
  double lambda = 0.0;
  double lpBound = 0.0;
  bool lpFractional = false;
  int fractionalGroup = -1, fractionalTo = -1; // the LP's split group
  size_t next = 0;
  for (; next < increments.size(); ++next) {
    const Increment &inc = increments[next];
    const std::vector<Option> &opts = free[inc.freeGroup].options;
    const Option &from = opts[hulls[inc.freeGroup][inc.step]];
    const Option &to = opts[hulls[inc.freeGroup][inc.step + 1]];
    int64_t extra = to.bytes - from.bytes;
    double gain = from.cost - to.cost;
    if (extra > spare) {
      lambda = inc.efficiency;
      lpBound = greedyCost - gain * (static_cast<double>(spare) /
                                     static_cast<double>(extra));
      lpFractional = true;
      fractionalGroup = inc.freeGroup;
      fractionalTo = hulls[inc.freeGroup][inc.step + 1];
      break;
    }
    spare -= extra;
    greedyCost -= gain;
    current[inc.freeGroup] = hulls[inc.freeGroup][inc.step + 1];
  }
  const std::vector<int> lpChoice = current; // LP optimum, but split group
  // The integer greedy goes on past the split: later (less efficient) hull
  // steps that still fit, each group's in order, in one pass.
  for (; lpFractional && next < increments.size(); ++next) {
    const Increment &inc = increments[next];
    const std::vector<int> &hull = hulls[inc.freeGroup];
    if (current[inc.freeGroup] != hull[inc.step])
      continue; // an earlier step of this group did not fit
    const std::vector<Option> &opts = free[inc.freeGroup].options;
    int64_t extra = opts[hull[inc.step + 1]].bytes - opts[hull[inc.step]].bytes;
    if (extra > spare)
      continue;
    spare -= extra;
    greedyCost -= opts[hull[inc.step]].cost - opts[hull[inc.step + 1]].cost;
    current[inc.freeGroup] = hull[inc.step + 1];
  }

  auto finish = [&](const std::vector<int> &picked, bool optimal,
                    double boundScaled) -> Solution {
    for (size_t f = 0; f < numFree; ++f)
      solution.choice[free[f].group] = free[f].options[picked[f]].original;
    solution.bytes = 0;
    solution.objective = 0.0;
    for (size_t g = 0; g < groups.size(); ++g) {
      const Candidate &cand = groups[g].candidates[solution.choice[g]];
      solution.bytes += cand.bytes;
      solution.objective += groups[g].importance * cand.error;
    }
    solution.optimal = optimal;
    // Errors and importances are >= 0: so is every objective.
    solution.bound = std::clamp(boundScaled * scale, 0.0, solution.objective);
    if (optimal && options.relativeGap == 0.0)
      solution.bound = solution.objective;
    solution.seconds = elapsed();
    return solution;
  };

  if (!lpFractional) // every group at its best option fits: optimal
    return finish(current, true, greedyCost);

  // Then single upgrades to any option (hull or not) that fit, largest cost
  // reduction first.
  auto fill = [&] {
    for (size_t iteration = 0; iteration < 4 * numFree + 16; ++iteration) {
      double bestGain = 0.0;
      size_t bestGroup = 0;
      int bestOption = -1;
      for (size_t f = 0; f < numFree; ++f) {
        const std::vector<Option> &opts = free[f].options;
        const Option &cur = opts[current[f]];
        for (int i = current[f] + 1; i < static_cast<int>(opts.size()); ++i) {
          if (opts[i].bytes - cur.bytes > spare)
            break; // sorted by bytes
          double gain = cur.cost - opts[i].cost;
          if (gain > bestGain) {
            bestGain = gain;
            bestGroup = f;
            bestOption = i;
          }
        }
      }
      if (bestOption < 0)
        return;
      const std::vector<Option> &opts = free[bestGroup].options;
      spare -= opts[bestOption].bytes - opts[current[bestGroup]].bytes;
      greedyCost -= bestGain;
      current[bestGroup] = bestOption;
    }
  };
  fill();

  // ---- 4. Lagrangian bound, reduced costs, pair moves ---------------------
  // sum_g min_c (cost + lambda * bytes) - lambda * budget, bytes counted
  // above each group's cheapest option; equal to the LP bound.
  std::vector<double> best(numFree);
  double lagrangian = pinnedCost - lambda * static_cast<double>(spare0);
  for (size_t f = 0; f < numFree; ++f) {
    const std::vector<Option> &opts = free[f].options;
    double value = std::numeric_limits<double>::infinity();
    for (const Option &o : opts)
      value = std::min(value, o.cost + lambda * static_cast<double>(
                                                    o.bytes - opts[0].bytes));
    best[f] = value;
    lagrangian += value;
  }
  auto reducedCost = [&](size_t f, int i) {
    const std::vector<Option> &opts = free[f].options;
    return opts[i].cost +
           lambda * static_cast<double>(opts[i].bytes - opts[0].bytes) -
           best[f];
  };
  const double lowerBound = std::max(lpBound, lagrangian);
  // Round-off allowance: fixing keeps anything within this of the limit.
  const double margin = 1e-9 * (std::fabs(greedyCost) + std::fabs(lagrangian) +
                                lambda * static_cast<double>(spare0)) +
                        1e-12;
  auto gapClosed = [&] {
    return (greedyCost - lowerBound) / (std::fabs(greedyCost) + DBL_EPSILON) <=
           options.relativeGap;
  };
  if (gapClosed())
    return finish(current, true, lowerBound);

  // Pair moves: downgrade one group to free bytes, upgrade another with
  // them. Only options that can be in a better solution (reduced cost within
  // the gap) are tried; each round takes the best pair, then refills.
  struct Move {
    int64_t bytes = 0; ///< bytes freed (down) or needed (up)
    double cost = 0.0; ///< cost added (down) or removed (up)
    size_t group = 0;
    int option = 0;
  };
  std::vector<Move> down, up;
  std::vector<size_t> best1, best2;
  for (int round = 0; round < 64; ++round) {
    const double slack = greedyCost - lagrangian;
    down.clear();
    up.clear();
    for (size_t f = 0; f < numFree; ++f) {
      const std::vector<Option> &opts = free[f].options;
      const Option &cur = opts[current[f]];
      for (int i = 0; i < static_cast<int>(opts.size()); ++i) {
        if (i == current[f] || reducedCost(f, i) > slack + margin)
          continue;
        if (i < current[f])
          down.push_back(
              {cur.bytes - opts[i].bytes, opts[i].cost - cur.cost, f, i});
        else if (opts[i].bytes - cur.bytes > spare)
          up.push_back(
              {opts[i].bytes - cur.bytes, cur.cost - opts[i].cost, f, i});
      }
    }
    if (down.empty() || up.empty())
      break;
    std::sort(down.begin(), down.end(),
              [](const Move &a, const Move &b) { return a.bytes < b.bytes; });
    // best1[k]: cheapest down move in down[k..]; best2[k]: the cheapest one
    // of another group than best1[k]'s.
    const size_t n = down.size();
    best1.assign(n + 1, n);
    best2.assign(n + 1, n);
    for (size_t k = n; k-- > 0;) {
      size_t b1 = best1[k + 1], b2 = best2[k + 1];
      if (b1 == n || down[k].cost < down[b1].cost) {
        // The old best is the new second unless it shares k's group, in
        // which case the old second (another group than it) stays.
        if (b1 != n && down[b1].group != down[k].group)
          b2 = b1;
        b1 = k;
      } else if (down[k].group != down[b1].group &&
                 (b2 == n || down[k].cost < down[b2].cost)) {
        b2 = k;
      }
      best1[k] = b1;
      best2[k] = b2;
    }
    double bestNet = 1e-12 * std::fabs(greedyCost);
    size_t bestUp = up.size(), bestDown = n;
    for (size_t u = 0; u < up.size(); ++u) {
      const int64_t need = up[u].bytes - spare;
      const size_t k =
          static_cast<size_t>(std::lower_bound(down.begin(), down.end(), need,
                                               [](const Move &m, int64_t v) {
                                                 return m.bytes < v;
                                               }) -
                              down.begin());
      if (k == n)
        continue;
      size_t d = best1[k];
      if (down[d].group == up[u].group)
        d = best2[k];
      if (d == n)
        continue;
      const double net = up[u].cost - down[d].cost;
      if (net > bestNet) {
        bestNet = net;
        bestUp = u;
        bestDown = d;
      }
    }
    if (bestUp == up.size())
      break;
    const Move &d = down[bestDown], &u = up[bestUp];
    spare += d.bytes - u.bytes;
    greedyCost += d.cost - u.cost;
    current[d.group] = d.option;
    current[u.group] = u.option;
    fill();
    if (gapClosed())
      return finish(current, true, lowerBound);
  }

  // ---- 5./6. Reduced-cost fixing, core pass, GLPK ------------------------
  // Options whose reduced cost is within `limit`, and the current one; the
  // count of binaries that leaves (groups with a single option are fixed).
  auto select = [&](double limit, std::vector<std::vector<int>> &kept) {
    int64_t columns = 0;
    kept.assign(numFree, {});
    for (size_t f = 0; f < numFree; ++f) {
      for (int i = 0; i < static_cast<int>(free[f].options.size()); ++i)
        if (i == current[f] || reducedCost(f, i) <= limit)
          kept[f].push_back(i);
      if (kept[f].size() > 1)
        columns += static_cast<int64_t>(kept[f].size());
    }
    return columns;
  };
  const int64_t freeBudget = options.budget - pinnedBytes;
  const LpBasis basis{&lpChoice, fractionalGroup, fractionalTo};
  auto adopt = [&](const MipResult &r) {
    double cost = pinnedCost;
    int64_t bytes = 0;
    for (size_t f = 0; f < numFree; ++f) {
      cost += free[f].options[r.picked[f]].cost;
      bytes += free[f].options[r.picked[f]].bytes;
    }
    if (cost < greedyCost && bytes <= freeBudget) {
      current = r.picked;
      greedyCost = cost;
      spare = freeBudget - bytes;
    }
  };
  std::vector<std::vector<int>> kept;
  int64_t columns = select(greedyCost - lagrangian + margin, kept);

  // Core pass: when many binaries survive, first solve the core (options
  // within a quarter, a sixteenth, ... of the gap; at most coreColumns) for
  // a better incumbent, which then fixes many more options.
  const int64_t maxCore = options.coreColumns;
  if (maxCore > 0 && columns > maxCore) {
    std::vector<std::vector<int>> core;
    double limit = greedyCost - lagrangian;
    int64_t coreColumns = columns;
    for (int i = 0; i < 32 && coreColumns > maxCore; ++i) {
      limit /= 4.0;
      coreColumns = select(limit + margin, core);
    }
    double left = options.timeLimitSeconds - elapsed();
    if (coreColumns > 0 && coreColumns <= maxCore && left > 0.0) {
      auto r =
          branchAndCut(free, core, current, greedyCost, pinnedCost, freeBudget,
                       basis, options.relativeGap, 0.25 * left);
      if (!r.isOk())
        return r.status();
      solution.variables = r->columns;
      adopt(*r);
      if (gapClosed())
        return finish(current, true, lowerBound);
      columns = select(greedyCost - lagrangian + margin, kept);
    }
  }
  if (columns == 0) // nothing else can beat the incumbent
    return finish(current, true, greedyCost);

  double left = options.timeLimitSeconds - elapsed();
  if (left <= 0.0)
    return finish(current, false, lowerBound);
  const double incumbentCost = greedyCost;
  auto r = branchAndCut(free, kept, current, greedyCost, pinnedCost, freeBudget,
                        basis, options.relativeGap, left);
  if (!r.isOk())
    return r.status();
  solution.variables = std::max(solution.variables, r->columns);
  adopt(*r);
  // Solutions outside the kept options cost more than the incumbent.
  const double bound = std::max(lowerBound, std::min(r->bound, incumbentCost));
  return finish(current, r->proven, bound);
}

} // namespace moe::precision
