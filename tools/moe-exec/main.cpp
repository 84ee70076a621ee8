//===- main.cpp - moe-exec: run a compiled MoE plan -----------------------===//
//
// Loads and verifies a plan, then describes it, runs it on inputs read from
// ONNX TensorProto files or generated, writes the outputs, or times it. The
// command line is parsed by hand: the tool links no LLVM.
//
//===----------------------------------------------------------------------===//

#include "kernels/cpu/QuantFast.h"
#include "runtime/Describe.h"
#include "runtime/Distributed.h"
#include "runtime/Exchange.h"
#include "runtime/Executor.h"
#include "runtime/DeviceMemory.h"
#ifdef MOE_HAVE_CUDA
#include "runtime/cuda/CudaExecutor.h"
#include "runtime/cuda/MeasureDevice.h"
#endif
#include "runtime/Profile.h"
#include "runtime/Scoring.h"
#include "runtime/io/TensorProto.h"

#include <tbb/global_control.h>

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <fstream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace moe::rt;

namespace {

const char *const kHelp = R"(moe-exec - run a compiled Mixture-of-Experts plan

usage: moe-exec PLAN [options]
       mpirun -np N moe-exec --measure-network FILE
       moe-exec --measure-device FILE

The plan is loaded (memory-mapped) and fully verified before anything runs:
header, checksums, FlatBuffers verifier, every value, weight and step, and
every kernel's operand types and attributes.

options:
  --describe               print the plan: producer, inputs/outputs, weights,
                           one line per step; exits unless inputs, --outputs
                           or --bench ask for a run as well
  --json                   with --describe: the plan as JSON; with --bench
                           or --perplexity: one JSON object on one line
  --inputs DIR             read the program inputs from DIR/input_0.pb ...;
                           repeatable: --bench then rotates through the sets
                           (so routing changes between runs), the first set
                           gives --outputs
                           DIR/input_{N-1}.pb (ONNX TensorProto)
  --random-inputs SEED     generate the inputs deterministically from SEED:
                           floats uniform in [-1, 1), integers in [0, 2)
  --input-shape I=D0,D1,.. the shape of generated input I (index or name);
                           required for inputs with dynamic (?) dims,
                           repeatable
  --outputs DIR            write the outputs to DIR/output_0.pb ... (ONNX
                           TensorProto with raw_data; DIR is created), each
                           file atomically; without it, a summary of each
                           output is printed
  --bench                  time the plan: warm-up runs, then timed runs;
                           prints "median X ms, min Y ms over N runs"
  --warmup N               warm-up runs for --bench (default 3)
  --repeat N               timed runs for --bench (default 20)
  --profile-ops            with --bench: time every kernel call and print the
                           kernels by total time per run (JSON with --json)
  --profile FILE           record a routing profile (docs/profile-format.md)
                           while running: over every --inputs set once, the
                           --random-inputs run, or the --perplexity windows;
                           per layer and expert: activation count, share,
                           total and mean routing weight, picks per rank,
                           the top-1 weight histogram; FILE is written
                           atomically (under mpirun: every rank's tokens,
                           written by rank 0). moe-assign-precision reads it
  --profile-samples N      with --profile: keep N tokens' hidden states per
                           layer (reservoir sample; 0 = none) so passes can
                           measure expert output errors; default 1024, or
                           fewer so that a layer's samples stay under 4 MiB
  --perplexity FILE        score a byte-level token file (bytes = token ids)
                           with a language-model plan (token ids [B, S] ->
                           logits [B, S, V]): the first --windows windows of
                           --context bytes, each position predicting the
                           next byte; prints the perplexity (under mpirun the
                           ranks share the batches of windows)
  --context N              bytes per window for --perplexity (default 256)
  --windows N              windows for --perplexity (default 64; 0 = all)
  --batch N                windows per run for --perplexity (default 8)
  --offset BYTES           start the --perplexity windows BYTES into the file
                           (default 0); e.g. profile on later windows than
                           those you score
  --reference PLAN         with --perplexity: also run PLAN (e.g. the fp32
                           plan) on the same windows and report its
                           perplexity, the mean KL(reference || plan), top-1
                           agreement and the logits' relative error
  --skip-threshold X       token-level expert pruning (MC-MoE): skip a token's
                           non-first expert whose share of its routing weight
                           is below X; overrides the plan's moe.route steps
  --protect-confidence C   ... except for tokens whose first expert's share
                           is below C (unsure router: keep every expert)
  --max-experts N          batch-aware pruning (Lynx): run at most N distinct
                           experts per layer and batch; tokens re-route to
                           their best kept experts (0: off)
  --batch-mass M           ... or the fewest experts holding a share M of the
                           batch's routing mass (0: off)
  --keep-first             with --max-experts/--batch-mass: every expert that
                           is some token's first choice stays (the cap may
                           then be exceeded); --keep-first=0 turns it off
  --decode-batches         with --perplexity and batch-level pruning: each
                           position of the --batch windows is one batch, as
                           in a decode step of that many sequences (the
                           moe.route steps get batch_stride = --context;
                           --profile then counts pruning per batch)
  --no-pruning             turn the plan's dynamic pruning off (statically
                           pruned experts stay removed)
                           With pruning active, --bench also reports the
                           expert slots skipped and the expert bytes read
                           against the unpruned routing.
  --measure-network FILE   under mpirun: measure the ranks' intra- and
                           inter-node bandwidth and latency (MPI ping-pong
                           from rank 0) and write the topology JSON that
                           moe-partition reads (docs/partitioning.md)
  --threads N              worker threads (default: all cores)
  --exchange-chunks N      in expert-parallel layers, split the exchanges
                           into N chunks pipelined with the expert compute
                           (overrides the plan's moe-partition choice; 1:
                           one exchange each way)

  A plan partitioned by moe-partition over N ranks runs under
  mpirun -np N moe-exec PLAN ...: each rank runs the program on its own
  inputs (its tokens); in expert-parallel layers the rows travel to their
  experts' ranks and back (MPI_Ialltoallv, chunked and overlapped with the
  expert compute when the plan pipelines); in tensor-parallel layers each
  rank holds a slice of every expert, and the ranks gather their tokens and
  sum the slices' outputs back (hybrid layers: both, across and inside
  nodes); so each rank's outputs are those of a single-rank run on its
  inputs (within 1e-5 relative). {rank} in a
  value (--inputs in/{rank}, --outputs out/{rank}, --random-inputs 7{rank},
  --profile) is the rank's number. Rank 0 prints; it alone writes --outputs
  unless the path says {rank}. --threads defaults to the node's cores
  divided among its ranks. An error on one rank ends every rank.
  --device cpu|cuda        where to run (default cpu). cuda runs the steps on
                           GPU 0 with cuBLASLt and the CUDA kernels, shape
                           arithmetic on the host; a plan with an op that has
                           no CUDA kernel is refused, naming the step and op
                           (checked before looking for a GPU). Builds without
                           CUDA have only cpu.
  --device hybrid          like cuda, but moe.experts keeps each expert where
                           moe-place-experts placed it (MoNDE): GPU-resident
                           experts in device memory, CPU experts computed on
                           the host at the same time from host memory (only
                           their rows cross PCIe), on-demand experts through
                           a device cache; --bench adds the PCIe traffic and
                           each expert layer's time next to the predicted one
  --device-cache N         with --device hybrid: device slots for on-demand
                           experts, shared by the layers (default 2, the
                           pass's cache-experts)
  --device-memory SIZE     with --device cuda: the device memory the plan may
                           use (weights, activations, scratch), e.g. 40G
                           (default: the GPU's free memory less 512 MiB);
                           exceeding it is an error naming what needed how
                           much
  --check-outputs DIR      compare the outputs with DIR/output_N.pb (an ONNX
                           test_data_set's reference outputs): prints each
                           output's max |out - ref| and fails (exit 1) when it
                           exceeds --tolerance times max |ref|
  --tolerance X            relative tolerance of --check-outputs (default
                           1e-4; bf16 expert weights need about 2e-2)
  --measure-device FILE    measure this machine's GPU 0 and host and write the
                           device profile JSON that moe-place-experts reads
                           (docs/placement.md): HBM and pinned PCIe bandwidth
                           both ways, the f32/bf16 GEMM rate, host read
                           bandwidth and the CPU expert GEMV rate
  --no-verify-weights      skip the weight checksums when loading (under
                           mpirun each rank checks only the experts, or
                           slices, it holds, and keeps only those in
                           memory)
  --int8-activations       let 8/4-bit expert weights multiply int8-rounded
                           activations with AVX-512 VNNI (faster; rounds each
                           activation by at most half of max|x|/127 per group)
  --bf16-activations       let bf16 expert weights multiply bf16-rounded
                           activations with AVX512-BF16 in prefill (8 rows or
                           more per expert; about twice the f32 GEMM's rate;
                           rounds each activation by at most 2^-9 of itself;
                           without AVX512-BF16 the f32 path runs)
  --help                   show this text

examples:
  moe-exec block.moeplan --describe
  moe-exec block.moeplan --describe --json
  moe-exec block.moeplan --inputs test_data_set_0 --outputs out
  moe-exec block.moeplan --random-inputs 7 --input-shape 0=16,1024 --outputs out
  moe-exec block.moeplan --random-inputs 7 --input-shape 0=1,1024 --bench --json
  moe-exec lm.moeplan --perplexity eval.bin --profile lm.profile.json
  moe-exec lm-int4.moeplan --perplexity eval.bin --reference lm.moeplan
  moe-exec block.moeplan --device cuda --inputs test_data_set_0 --outputs out
  moe-exec --measure-device gpu-host.json

exit status: 0 on success, 1 on an error (one line on stderr, starting with
"moe-exec: error:"), 2 on a bad command line.
)";

struct Options {
  std::string plan;
  std::optional<std::string> inputsDir;
  std::vector<std::string> moreInputs;
  bool profileOps = false;
  std::optional<uint64_t> seed;
  std::vector<std::pair<std::string, Shape>> inputShapes;
  std::optional<std::string> outputsDir;
  bool outputsPerRank = false; ///< the --outputs path says {rank}
  bool describe = false, json = false, bench = false, verifyWeights = true;
  bool int8Activations = false;
  bool bf16Activations = false;
  int warmup = 3, repeat = 20, threads = 0;
  std::string device = "cpu";
  uint64_t deviceMemory = 0;
  int64_t deviceCache = -1; // -1: the default
  std::optional<std::string> checkOutputs;
  double tolerance = 1e-4;
  std::optional<std::string> measureDevice;
  std::optional<std::string> profile;
  int64_t profileSamples = -1; // -1: the default (see --help)
  std::optional<std::string> perplexity;
  std::optional<std::string> measureNetwork;
  std::optional<std::string> reference;
  int64_t context = 256, windows = 64, batch = 8, offset = 0;
  std::optional<double> skipThreshold, protectConfidence, batchMass;
  std::optional<int64_t> maxExperts, keepFirst;
  bool noPruning = false, decodeBatches = false;
  std::optional<int64_t> exchangeChunks;
};


/// Whether any moe.route step of the plan prunes.
bool pruningActive(const LoadedPlan &plan) {
  for (const StepInfo &s : plan.steps()) {
    if (s.kind != StepKind::Call || s.kernelName != "moe.route")
      continue;
    for (const char *name : {"skip_threshold", "max_experts", "batch_mass"})
      if (const AttrValue *a = s.attrs.find(name))
        if (a->i != 0 || a->f != 0)
          return true;
    if (const AttrValue *a = s.attrs.find("excluded"))
      for (int64_t v : a->ints)
        if (v)
          return true;
  }
  return false;
}

int fail(const std::string &message) {
  if (moe::rt::dist::size() > 1)
    std::fprintf(stderr, "moe-exec: error: [rank %d] %s\n",
                 moe::rt::dist::rank(), message.c_str());
  else
    std::fprintf(stderr, "moe-exec: error: %s\n", message.c_str());
  return 1;
}

/// Kernel time per run, by kernel name, largest first. Steps run
/// concurrently, so the sum can exceed the wall time.
#ifdef MOE_HAVE_CUDA
/// --device hybrid --bench: the PCIe traffic and cache behaviour per run,
/// and with --profile-ops each expert layer's measured time next to
/// moe-place-experts' prediction (plan metadata `predicted_layer_us`).
void printHybridReport(const LoadedPlan &plan,
                       const moe::rt::cuda::CudaExecutor &ex, int runs,
                       bool perLayer, bool json) {
  moe::rt::cuda::HybridStats h = ex.hybridStats();
  double n = runs > 0 ? double(runs) : 1.0;
  std::vector<double> predicted;
  if (const AttrValue *a = plan.metadata().find("predicted_layer_us"))
    predicted = a->floats;
  std::vector<double> measured;
  if (perLayer) {
    std::vector<double> ms = ex.stepMillis();
    for (size_t s = 0; s < plan.steps().size(); ++s)
      if (plan.steps()[s].kind == StepKind::Call &&
          plan.steps()[s].kernelName == "moe.experts")
        measured.push_back(1e3 * ms[s]);
  }
  if (json) {
    std::string layers;
    for (size_t i = 0; i < std::max(predicted.size(), measured.size()); ++i)
      layers += std::string(i ? ", " : "") + "{\"layer\": " +
                std::to_string(i) + ", \"measured_us\": " +
                (i < measured.size() ? jsonNumber(measured[i]) : "null") +
                ", \"predicted_us\": " +
                (i < predicted.size() ? jsonNumber(predicted[i]) : "null") +
                "}";
    std::printf("{\"hybrid\": {\"resident_experts\": %llu, "
                "\"cpu_experts\": %llu, \"on_demand_experts\": %llu, "
                "\"h2d_bytes_per_run\": %s, \"d2h_bytes_per_run\": %s, "
                "\"cache_hits\": %llu, \"cache_misses\": %llu, "
                "\"layers\": [%s]}}\n",
                (unsigned long long)h.residentExperts,
                (unsigned long long)h.cpuExperts,
                (unsigned long long)h.onDemandExperts,
                jsonNumber(double(h.h2dBytes) / n).c_str(),
                jsonNumber(double(h.d2hBytes) / n).c_str(),
                (unsigned long long)h.cacheHits,
                (unsigned long long)h.cacheMisses, layers.c_str());
    return;
  }
  std::printf("hybrid: %llu experts GPU-resident, %llu on the CPU, %llu on "
              "demand; per run %.3f MB host to device, %.3f MB device to "
              "host; cache %llu hits, %llu misses\n",
              (unsigned long long)h.residentExperts,
              (unsigned long long)h.cpuExperts,
              (unsigned long long)h.onDemandExperts,
              double(h.h2dBytes) / n / 1e6, double(h.d2hBytes) / n / 1e6,
              (unsigned long long)h.cacheHits,
              (unsigned long long)h.cacheMisses);
  for (size_t i = 0; i < std::max(predicted.size(), measured.size()); ++i)
    std::printf("  layer %zu: %s measured, %s predicted\n", i,
                i < measured.size()
                    ? (jsonNumber(measured[i]) + " us").c_str()
                    : "(--profile-ops)",
                i < predicted.size()
                    ? (jsonNumber(predicted[i]) + " us").c_str()
                    : "not");
}
#endif

void printOpProfile(const LoadedPlan &plan, const std::vector<double> &stepMs,
                    bool json) {
  std::map<std::string, std::pair<double, int>> byKernel;
  double total = 0;
  for (size_t s = 0; s < stepMs.size(); ++s) {
    const StepInfo &step = plan.steps()[s];
    if (step.kind != StepKind::Call)
      continue;
    auto &entry = byKernel[step.kernelName];
    entry.first += stepMs[s];
    entry.second += 1;
    total += stepMs[s];
  }
  std::vector<std::pair<std::string, std::pair<double, int>>> rows(
      byKernel.begin(), byKernel.end());
  std::sort(rows.begin(), rows.end(), [](const auto &a, const auto &b) {
    return a.second.first > b.second.first;
  });
  if (json) {
    std::printf("{\"kernels\": [");
    for (size_t i = 0; i < rows.size(); ++i)
      std::printf("%s{\"kernel\": \"%s\", \"ms_per_run\": %s, \"steps\": %d}",
                  i ? ", " : "", rows[i].first.c_str(),
                  jsonNumber(rows[i].second.first).c_str(),
                  rows[i].second.second);
    std::printf("], \"total_ms_per_run\": %s}\n", jsonNumber(total).c_str());
    return;
  }
  std::printf("kernel time per run (steps may overlap):\n");
  for (const auto &[name, v] : rows)
    std::printf("  %-24s %9.3f ms  %5.1f%%  %4d steps\n", name.c_str(), v.first,
                total > 0 ? 100.0 * v.first / total : 0.0, v.second);
}

bool parseDouble(const std::string &s, double &out) {
  if (s.empty())
    return false;
  char *end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || *end != '\0' || !std::isfinite(v))
    return false;
  out = v;
  return true;
}

bool parseInt(const std::string &s, int64_t &out) {
  if (s.empty())
    return false;
  char *end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0')
    return false;
  out = v;
  return true;
}

StatusOr<Options> parseArgs(int argc, char **argv, bool &help) {
  Options o;
  std::vector<std::string> args(argv + 1, argv + argc);
  auto usage = [](const std::string &m) { return Status::error(m); };
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i], value;
    bool hasValue = false;
    if (arg.rfind("--", 0) == 0) {
      size_t eq = arg.find('=');
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        hasValue = true;
      }
    }
    // Under mpirun a value may say {rank}: each rank reads its own.
    bool perRank = false;
    auto next = [&](std::string &out) -> Status {
      if (hasValue) {
        out = value;
      } else {
        if (i + 1 >= args.size())
          return usage("option " + arg + " needs a value");
        out = args[++i];
      }
      const std::string mark = "{rank}", rank =
          std::to_string(moe::rt::dist::rank());
      for (size_t at = out.find(mark); at != std::string::npos;
           at = out.find(mark, at + rank.size())) {
        out.replace(at, mark.size(), rank);
        perRank = true;
      }
      return Status::ok();
    };
    auto nextInt = [&](int64_t lo, int64_t &out) -> Status {
      std::string v;
      MOE_RETURN_IF_ERROR(next(v));
      if (!parseInt(v, out) || out < lo)
        return usage("option " + arg + " needs an integer >= " +
                     std::to_string(lo) + ", got '" + v + "'");
      return Status::ok();
    };
    auto noValue = [&]() -> Status {
      return hasValue ? usage("option " + arg + " takes no value")
                      : Status::ok();
    };
    int64_t n = 0;
    if (arg == "--help" || arg == "-h") {
      help = true;
      return o;
    } else if (arg == "--describe") {
      MOE_RETURN_IF_ERROR(noValue());
      o.describe = true;
    } else if (arg == "--json") {
      MOE_RETURN_IF_ERROR(noValue());
      o.json = true;
    } else if (arg == "--bench") {
      MOE_RETURN_IF_ERROR(noValue());
      o.bench = true;
    } else if (arg == "--no-verify-weights") {
      MOE_RETURN_IF_ERROR(noValue());
      o.verifyWeights = false;
    } else if (arg == "--int8-activations") {
      MOE_RETURN_IF_ERROR(noValue());
      o.int8Activations = true;
    } else if (arg == "--bf16-activations") {
      MOE_RETURN_IF_ERROR(noValue());
      o.bf16Activations = true;
    } else if (arg == "--inputs") {
      std::string v;
      MOE_RETURN_IF_ERROR(next(v));
      if (o.inputsDir)
        o.moreInputs.push_back(v);
      else
        o.inputsDir = v;
    } else if (arg == "--profile-ops") {
      MOE_RETURN_IF_ERROR(noValue());
      o.profileOps = true;
    } else if (arg == "--outputs") {
      std::string v;
      MOE_RETURN_IF_ERROR(next(v));
      o.outputsDir = v;
      o.outputsPerRank = perRank;
    } else if (arg == "--random-inputs") {
      MOE_RETURN_IF_ERROR(nextInt(0, n));
      o.seed = uint64_t(n);
    } else if (arg == "--warmup") {
      MOE_RETURN_IF_ERROR(nextInt(0, n));
      o.warmup = int(std::min<int64_t>(n, 1 << 30));
    } else if (arg == "--repeat") {
      MOE_RETURN_IF_ERROR(nextInt(1, n));
      o.repeat = int(std::min<int64_t>(n, 1 << 30));
    } else if (arg == "--threads") {
      MOE_RETURN_IF_ERROR(nextInt(1, n));
      o.threads = int(std::min<int64_t>(n, 1 << 16));
    } else if (arg == "--profile") {
      std::string v;
      MOE_RETURN_IF_ERROR(next(v));
      o.profile = v;
    } else if (arg == "--profile-samples") {
      MOE_RETURN_IF_ERROR(nextInt(0, o.profileSamples));
    } else if (arg == "--measure-network") {
      std::string v;
      MOE_RETURN_IF_ERROR(next(v));
      o.measureNetwork = v;
    } else if (arg == "--perplexity") {
      std::string v;
      MOE_RETURN_IF_ERROR(next(v));
      o.perplexity = v;
    } else if (arg == "--reference") {
      std::string v;
      MOE_RETURN_IF_ERROR(next(v));
      o.reference = v;
    } else if (arg == "--context") {
      MOE_RETURN_IF_ERROR(nextInt(2, o.context));
    } else if (arg == "--windows") {
      MOE_RETURN_IF_ERROR(nextInt(0, o.windows));
    } else if (arg == "--skip-threshold" || arg == "--protect-confidence" ||
               arg == "--batch-mass") {
      std::string v;
      MOE_RETURN_IF_ERROR(next(v));
      double x = 0;
      bool below1 = arg == "--skip-threshold";
      if (!parseDouble(v, x) || x < 0 || x > 1 || (below1 && x >= 1))
        return usage("option " + arg + " needs a number in [0, " +
                     (below1 ? "1)" : "1]") + ", got '" + v + "'");
      (arg == "--skip-threshold"       ? o.skipThreshold
       : arg == "--protect-confidence" ? o.protectConfidence
                                       : o.batchMass) = x;
    } else if (arg == "--max-experts") {
      int64_t x = 0;
      MOE_RETURN_IF_ERROR(nextInt(0, x));
      o.maxExperts = x;
    } else if (arg == "--keep-first") {
      if (hasValue && value != "0" && value != "1")
        return usage("--keep-first takes 0 or 1, got '" + value + "'");
      o.keepFirst = hasValue ? int64_t(value == "1") : 1;
    } else if (arg == "--decode-batches") {
      MOE_RETURN_IF_ERROR(noValue());
      o.decodeBatches = true;
    } else if (arg == "--exchange-chunks") {
      MOE_RETURN_IF_ERROR(nextInt(1, n));
      o.exchangeChunks = n;
    } else if (arg == "--no-pruning") {
      MOE_RETURN_IF_ERROR(noValue());
      o.noPruning = true;
    } else if (arg == "--offset") {
      MOE_RETURN_IF_ERROR(nextInt(0, o.offset));
    } else if (arg == "--batch") {
      MOE_RETURN_IF_ERROR(nextInt(1, o.batch));
    } else if (arg == "--device") {
      MOE_RETURN_IF_ERROR(next(o.device));
    } else if (arg == "--device-memory") {
      std::string v;
      MOE_RETURN_IF_ERROR(next(v));
      StatusOr<uint64_t> b = moe::rt::parseBytes(v);
      if (!b.isOk())
        return Status::error("--device-memory: " + b.status().message());
      if (*b == 0)
        return Status::error("--device-memory: must be more than 0");
      o.deviceMemory = *b;
    } else if (arg == "--device-cache") {
      std::string v;
      MOE_RETURN_IF_ERROR(next(v));
      char *end = nullptr;
      long long n = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < 0 || n > 4096)
        return Status::error("--device-cache: '" + v +
                             "' is not an expert count in [0, 4096]");
      o.deviceCache = n;
    } else if (arg == "--check-outputs") {
      std::string v;
      MOE_RETURN_IF_ERROR(next(v));
      o.checkOutputs = v;
    } else if (arg == "--tolerance") {
      std::string v;
      MOE_RETURN_IF_ERROR(next(v));
      char *end = nullptr;
      o.tolerance = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(o.tolerance >= 0))
        return Status::error("--tolerance: '" + v +
                             "' is not a non-negative number");
    } else if (arg == "--measure-device") {
      std::string v;
      MOE_RETURN_IF_ERROR(next(v));
      o.measureDevice = v;
    } else if (arg == "--input-shape") {
      std::string v;
      MOE_RETURN_IF_ERROR(next(v));
      size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0)
        return usage("--input-shape wants I=D0,D1,..., got '" + v + "'");
      Shape shape;
      std::string dims = v.substr(eq + 1);
      size_t pos = 0;
      while (!dims.empty() && pos <= dims.size()) {
        size_t comma = dims.find(',', pos);
        std::string d = dims.substr(pos, comma == std::string::npos
                                             ? std::string::npos
                                             : comma - pos);
        int64_t x;
        if (!parseInt(d, x) || x < 0)
          return usage("--input-shape " + v + ": bad dim '" + d + "'");
        shape.push_back(x);
        if (comma == std::string::npos)
          break;
        pos = comma + 1;
      }
      o.inputShapes.push_back({v.substr(0, eq), shape});
    } else if (arg.size() > 1 && arg[0] == '-') {
      return usage("unknown option " + arg);
    } else if (o.plan.empty()) {
      o.plan = arg;
    } else {
      return usage("more than one plan given ('" + o.plan + "' and '" + arg +
                   "')");
    }
  }
  if (o.measureNetwork || o.measureDevice)
    return o; // needs no plan
  if (o.plan.empty())
    return usage("no plan given");
  if (o.inputsDir && o.seed)
    return usage("--inputs and --random-inputs exclude each other");
  if (!o.inputShapes.empty() && !o.seed)
    return usage("--input-shape applies to --random-inputs only");
  if (o.json && !o.describe && !o.bench && !o.perplexity)
    return usage("--json applies to --describe, --bench and --perplexity");
  if (o.profileOps && !o.bench)
    return usage("--profile-ops applies to --bench");
  if (!o.moreInputs.empty() && !o.bench && !o.profile)
    return usage("several --inputs are for --bench or --profile");
  if (o.profile && o.bench)
    return usage("--profile and --bench exclude each other (profile first, "
                 "then time)");
  if (o.perplexity && (o.inputsDir || o.seed || o.bench || o.outputsDir))
    return usage("--perplexity makes its own inputs: it excludes --inputs, "
                 "--random-inputs, --bench and --outputs");
  if (o.reference && !o.perplexity)
    return usage("--reference applies to --perplexity");
  if (o.decodeBatches && !o.perplexity)
    return usage("--decode-batches applies to --perplexity");
  if (o.noPruning && (o.skipThreshold || o.protectConfidence || o.maxExperts ||
                      o.batchMass || o.keepFirst))
    return usage("--no-pruning excludes the other pruning options");
  return o;
}

/// "mkdir -p".
Status makeDirs(const std::string &path) {
  std::string prefix;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    prefix = path.substr(0, pos);
    if (prefix.empty())
      continue;
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST)
      return Status::error(prefix + ": cannot create directory: " +
                           std::strerror(errno));
  }
  struct stat sb;
  if (::stat(path.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode))
    return Status::error(path + ": not a directory");
  return Status::ok();
}

/// Writes `content` to PATH.partial, then renames it to PATH: a reader
/// never sees a half-written file.
Status writeFileAtomically(const std::string &path, const std::string &content) {
  std::string partial = path + ".partial";
  {
    std::ofstream f(partial, std::ios::binary | std::ios::trunc);
    if (!f)
      return Status::error(path + ": cannot write: " + std::strerror(errno));
    f.write(content.data(), std::streamsize(content.size()));
    f.close();
    if (!f) {
      std::remove(partial.c_str());
      return Status::error(path + ": write failed");
    }
  }
  if (std::rename(partial.c_str(), path.c_str()) != 0) {
    std::remove(partial.c_str());
    return Status::error(path + ": cannot rename into place: " +
                         std::strerror(errno));
  }
  return Status::ok();
}

StatusOr<std::vector<uint8_t>> readBytes(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    return Status::error(path + ": cannot open: " + std::strerror(errno));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)),
                             std::istreambuf_iterator<char>());
  if (f.bad())
    return Status::error(path + ": read failed");
  return bytes;
}

StatusOr<std::vector<Tensor>> readInputs(const LoadedPlan &plan,
                                         const std::string &dir) {
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < plan.inputs().size(); ++i) {
    std::string path = dir + "/input_" + std::to_string(i) + ".pb";
    StatusOr<NamedTensor> t = readTensorProtoFile(path);
    if (!t.isOk())
      return t.status();
    inputs.push_back(std::move(t->tensor));
  }
  return inputs;
}

/// Fills a tensor from a 64-bit generator: floats uniform in [-1, 1),
/// integers in {0, 1}. Written out by hand so that the values do not depend
/// on the standard library's distributions.
void fillRandom(Tensor &t, std::mt19937_64 &rng) {
  int64_t n = t.numElements();
  for (int64_t i = 0; i < n; ++i) {
    uint64_t r = rng();
    double f = double(r >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0;
    int64_t bit = int64_t(r >> 63);
    switch (t.dtype()) {
    case DType::F32:
      t.mutableData<float>()[i] = float(f);
      break;
    case DType::F16:
      t.mutableData<uint16_t>()[i] = floatToHalf(float(f));
      break;
    case DType::BF16:
      t.mutableData<uint16_t>()[i] = floatToBf16(float(f));
      break;
    case DType::F64:
      t.mutableData<double>()[i] = f;
      break;
    case DType::I64:
      t.mutableData<int64_t>()[i] = bit;
      break;
    case DType::I32:
      t.mutableData<int32_t>()[i] = int32_t(bit);
      break;
    case DType::I8:
    case DType::U8:
    case DType::I1:
      t.mutableData<uint8_t>()[i] = uint8_t(bit);
      break;
    }
  }
}

StatusOr<std::vector<Tensor>> randomInputs(const LoadedPlan &plan,
                                           const Options &o) {
  std::map<size_t, Shape> given;
  for (const auto &[key, shape] : o.inputShapes) {
    int64_t index = -1;
    if (!parseInt(key, index)) {
      for (size_t i = 0; i < plan.inputs().size(); ++i)
        if (plan.inputName(i) == key)
          index = int64_t(i);
    }
    if (index < 0 || size_t(index) >= plan.inputs().size())
      return Status::error("--input-shape " + key + ": the plan has no such "
                           "input (it has " +
                           std::to_string(plan.inputs().size()) + ")");
    given[size_t(index)] = shape;
  }
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < plan.inputs().size(); ++i) {
    const ValueInfo &v = plan.values()[plan.inputs()[i]];
    std::string where = "input " + std::to_string(i) + " `" +
                        plan.inputName(i) + "`";
    Shape shape = v.shape;
    if (given.count(i)) {
      if (!shapesCompatible(v.shape, given[i]))
        return Status::error(where + ": --input-shape " +
                             formatShape(given[i]) + " does not match declared " +
                             formatShape(v.shape));
      shape = given[i];
    } else if (std::count(shape.begin(), shape.end(), -1)) {
      std::string example;
      for (size_t d = 0; d < shape.size(); ++d)
        example += (d ? "," : "") +
                   (shape[d] < 0 ? std::string("N") : std::to_string(shape[d]));
      return Status::error(where + " has dynamic shape " + formatShape(shape) +
                           ": give its shape with --input-shape " +
                           std::to_string(i) + "=" + example);
    }
    StatusOr<Tensor> t = Tensor::allocate(v.dtype, shape);
    if (!t.isOk())
      return t.status().withContext(where);
    std::mt19937_64 rng(o.seed.value_or(0) * 0x9E3779B97F4A7C15ull + i);
    fillRandom(*t, rng);
    inputs.push_back(std::move(*t));
  }
  return inputs;
}

std::string formatValue(const Tensor &t, int64_t i) {
  char buf[64];
  switch (t.dtype()) {
  case DType::F32:
    std::snprintf(buf, sizeof(buf), "%.6g", double(t.data<float>()[i]));
    break;
  case DType::F16:
    std::snprintf(buf, sizeof(buf), "%.4g",
                  double(halfToFloat(t.data<uint16_t>()[i])));
    break;
  case DType::BF16:
    std::snprintf(buf, sizeof(buf), "%.3g",
                  double(bf16ToFloat(t.data<uint16_t>()[i])));
    break;
  case DType::F64:
    std::snprintf(buf, sizeof(buf), "%.9g", t.data<double>()[i]);
    break;
  case DType::I64:
    std::snprintf(buf, sizeof(buf), "%lld", (long long)t.data<int64_t>()[i]);
    break;
  case DType::I32:
    std::snprintf(buf, sizeof(buf), "%d", t.data<int32_t>()[i]);
    break;
  case DType::I8:
    std::snprintf(buf, sizeof(buf), "%d", int(t.data<int8_t>()[i]));
    break;
  case DType::U8:
  case DType::I1:
    std::snprintf(buf, sizeof(buf), "%d", int(t.data<uint8_t>()[i]));
    break;
  }
  return buf;
}

void printSummary(const LoadedPlan &plan, const std::vector<Tensor> &outputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor &t = outputs[i];
    std::string line = "output " + std::to_string(i) + " `" +
                       plan.outputName(i) + "`: " +
                       formatType(t.dtype(), t.shape()) + " [";
    int64_t shown = std::min<int64_t>(t.numElements(), 8);
    for (int64_t j = 0; j < shown; ++j)
      line += (j ? ", " : "") + formatValue(t, j);
    if (t.numElements() > shown)
      line += ", ...";
    std::printf("%s]\n", (line).c_str());
  }
}

int runTool(int argc, char **argv) {
  bool help = false;
  StatusOr<Options> parsed = parseArgs(argc, argv, help);
  if (help) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (!parsed.isOk()) {
    std::fprintf(stderr,
                 "moe-exec: error: %s (see moe-exec --help)\n",
                 parsed.status().message().c_str());
    return 2;
  }
  // The ranks of one node share its cores.
  if (parsed->threads == 0 && moe::rt::dist::localSize() > 1)
    parsed->threads = std::max(1, int(std::thread::hardware_concurrency()) /
                                      moe::rt::dist::localSize());
  const Options &o = *parsed;
  if (o.measureNetwork) {
    StatusOr<moe::rt::dist::NetworkProfile> net =
        moe::rt::dist::measureNetwork();
    if (!net.isOk())
      return fail(net.status().message());
    if (moe::rt::dist::rank() == 0) {
      Status st =
          writeFileAtomically(*o.measureNetwork, moe::rt::dist::topologyJson(*net));
      if (!st.isOk())
        return fail(st.message());
      std::printf("%s", moe::rt::dist::topologyJson(*net).c_str());
    }
    return 0;
  }
  if (o.measureDevice) {
#ifdef MOE_HAVE_CUDA
    StatusOr<std::string> json = moe::rt::cuda::measureDevice(
        ::isatty(STDERR_FILENO) != 0);
    if (!json.isOk())
      return fail(json.status().message());
    Status st = writeFileAtomically(*o.measureDevice, *json);
    if (!st.isOk())
      return fail(st.message());
    std::printf("%s", json->c_str());
    return 0;
#else
    return fail("--measure-device needs a build with CUDA (nvcc was not "
                "found when this moe-exec was configured)");
#endif
  }
  if (o.device != "cpu" && o.device != "cuda" && o.device != "hybrid") {
    std::fprintf(stderr,
                 "moe-exec: error: unknown device `%s`, expected cpu, cuda or "
                 "hybrid (see moe-exec --help)\n",
                 o.device.c_str());
    return 2;
  }

#ifndef MOE_HAVE_CUDA
  if (o.device != "cpu")
    return fail("device `" + o.device + "` is not available in this build "
                "(nvcc was not found when this moe-exec was configured)");
#endif
  const bool gpu = o.device == "cuda" || o.device == "hybrid";
  if (gpu && moe::rt::dist::size() > 1)
    return fail("--device " + o.device + " under mpirun needs NCCL ranks, "
                "which are not built yet; run the ranks on the cpu device");
  if (!gpu && o.deviceMemory)
    return fail("--device-memory applies to --device cuda and hybrid only");
  if (o.device != "hybrid" && o.deviceCache >= 0)
    return fail("--device-cache applies to --device hybrid only");

  LoadOptions loadOptions;
  loadOptions.verifyWeights = o.verifyWeights;
  // A rank checks the experts it holds, not the others'.
  if (moe::rt::dist::size() > 1)
    loadOptions.rank = moe::rt::dist::rank();
  moe::kernels::cpu::setQuantInt8Activations(o.int8Activations);
  moe::kernels::cpu::setQuantBf16Activations(o.bf16Activations);
  StatusOr<std::unique_ptr<LoadedPlan>> loaded = loadPlan(o.plan, loadOptions);
  if (!loaded.isOk())
    return fail(loaded.status().message());
  if (o.noPruning || o.skipThreshold || o.protectConfidence || o.maxExperts ||
      o.batchMass || o.decodeBatches || o.keepFirst) {
    StatusOr<size_t> n = (*loaded)->overrideAttrs("moe.route", [&](Attrs &a) {
      if (o.noPruning) {
        a.setFloat("skip_threshold", 0).setFloat("protect_confidence", 0);
        a.setInt("max_experts", 0).setFloat("batch_mass", 0);
      }
      if (o.skipThreshold)
        a.setFloat("skip_threshold", *o.skipThreshold);
      if (o.protectConfidence)
        a.setFloat("protect_confidence", *o.protectConfidence);
      if (o.maxExperts)
        a.setInt("max_experts", *o.maxExperts);
      if (o.batchMass)
        a.setFloat("batch_mass", *o.batchMass);
      if (o.decodeBatches)
        a.setInt("batch_stride", o.context);
      if (o.keepFirst)
        a.setInt("keep_first", *o.keepFirst);
    });
    if (!n.isOk())
      return fail("pruning options: " + n.status().message());
    if (*n == 0)
      return fail("pruning options: the plan has no moe.route step");
  }
  if (o.exchangeChunks) {
    bool any = false;
    StatusOr<size_t> n =
        (*loaded)->overrideAttrs("moe.experts", [&](Attrs &a) {
          if (!a.has("exchange_ranks"))
            return;
          a.setInt("exchange_chunks", *o.exchangeChunks);
          any = true;
        });
    if (!n.isOk())
      return fail("--exchange-chunks: " + n.status().message());
    if (!any)
      return fail("--exchange-chunks: the plan has no expert-parallel "
                  "moe.experts step (partition it with moe-partition)");
  }
  const LoadedPlan &plan = **loaded;
  // Each rank of an expert-parallel plan keeps only its experts' weights.
  moe::rt::dist::HeldExperts held;
  if (moe::rt::dist::size() > 1) {
    StatusOr<moe::rt::dist::HeldExperts> h =
        moe::rt::dist::releaseOtherExperts(plan, moe::rt::dist::rank());
    if (!h.isOk())
      return fail(h.status().message());
    held = *h;
  }

  if (o.describe) {
    std::fputs((o.json ? describeJson(plan) : describeText(plan)).c_str(),
               stdout);
#ifdef MOE_HAVE_CUDA
    // Where the steps would run on the GPU devices (plan-only: no GPU
    // needed), or which are missing.
    if (gpu && !o.json) {
      std::vector<bool> foldable = moe::rt::foldableSteps(plan);
      size_t counts[3] = {0, 0, 0}, folded = 0;
      std::map<std::string, size_t> hostKernels;
      for (size_t i = 0; i < plan.steps().size(); ++i) {
        const StepInfo &step = plan.steps()[i];
        if (step.kind != StepKind::Call)
          continue;
        if (foldable[i]) {
          ++folded;
          continue;
        }
        StatusOr<moe::rt::cuda::CudaPlacement> p =
            moe::rt::cuda::cudaPlacement(plan, i, foldable);
        if (!p.isOk())
          continue; // reported below
        ++counts[int(*p)];
        if (*p == moe::rt::cuda::CudaPlacement::Host)
          ++hostKernels[step.kernelName];
      }
      std::string host;
      for (const auto &[name, n] : hostKernels)
        host += (host.empty() ? "" : ", ") + name + " x" + std::to_string(n);
      auto steps = [](size_t n) {
        return std::to_string(n) + (n == 1 ? " step" : " steps");
      };
      std::printf("on %s: %s on the device, %s reshaping device tensors, "
                  "%s on the host%s%s%s, %s computed at load\n",
                  o.device.c_str(), steps(counts[0]).c_str(),
                  steps(counts[1]).c_str(), steps(counts[2]).c_str(),
                  host.empty() ? "" : " (", host.c_str(),
                  host.empty() ? "" : ")", steps(folded).c_str());
      Status st = moe::rt::cuda::checkCudaSupport(plan);
      if (!st.isOk())
        std::printf("on %s: cannot run: %s\n", o.device.c_str(),
                    st.message().c_str());
    }
#endif
    if (!o.inputsDir && !o.seed && !o.outputsDir && !o.bench &&
        !o.perplexity && !o.profile)
      return 0;
  }

  std::unique_ptr<RoutingProfiler> profiler;
  ExecutorOptions execOptions;
  execOptions.numThreads = o.threads;
  execOptions.profile = o.profileOps;
  // Every rank must issue its collectives in the same order: the steps
  // that communicate (dist::communicates) run in plan order.
  if (moe::rt::dist::size() > 1)
    execOptions.ordered = [](const StepInfo &s) {
      return moe::rt::dist::communicates(s.kernelName);
    };
  if (o.profile) {
    ProfileOptions po;
    po.samples = o.profileSamples;
    if (po.samples < 0) {
      int64_t hidden = 1;
      for (const StepInfo &s : plan.steps())
        if (s.kind == StepKind::Call && s.kernelName == "moe.dispatch" &&
            !plan.values()[s.inputs[0]].shape.empty())
          hidden = std::max(hidden, plan.values()[s.inputs[0]].shape.back());
      po.samples = std::max<int64_t>(
          1, std::min<int64_t>(1024, (int64_t(4) << 20) / (4 * hidden)));
    }
    StatusOr<std::unique_ptr<RoutingProfiler>> p =
        RoutingProfiler::create(plan, po);
    if (!p.isOk())
      return fail(p.status().message());
    profiler = std::move(*p);
    RoutingProfiler *raw = profiler.get();
    execOptions.observer = [raw](size_t step, const std::vector<Tensor> &in,
                                 const std::vector<Tensor> &out) {
      raw->observe(step, in, out);
    };
  }
  auto writeProfile = [&]() -> Status {
    MOE_RETURN_IF_ERROR(profiler->status());
    // Under mpirun each rank saw its own tokens: the profile sums them
    // (the samples are rank 0's).
    if (moe::rt::dist::size() > 1)
      MOE_RETURN_IF_ERROR(profiler->forEachCounter(
          [](int64_t *v, size_t n) {
            return moe::rt::dist::allreduceSum(v, int64_t(n));
          },
          [](double *v, size_t n) {
            return moe::rt::dist::allreduceSum(v, int64_t(n));
          }));
    if (moe::rt::dist::rank() != 0)
      return Status::ok(); // rank 0 writes it
    return writeFileAtomically(*o.profile, profiler->toJson());
  };

  // TBB caps its workers at the core count unless told otherwise; an
  // explicit --threads N is obeyed even beyond it.
  std::unique_ptr<tbb::global_control> threadLimit;
  if (o.threads > 0)
    threadLimit = std::make_unique<tbb::global_control>(
        tbb::global_control::max_allowed_parallelism, size_t(o.threads));

  // The plan's runner on the chosen device.
  auto makeRunner = [&](const LoadedPlan &p, const ExecutorOptions &eo)
      -> StatusOr<std::unique_ptr<Runner>> {
    if (o.device == "cuda" || o.device == "hybrid") {
#ifdef MOE_HAVE_CUDA
      moe::rt::cuda::CudaExecutorOptions co;
      // The routing profiler and the pruning counters watch the router and
      // the dispatch (their operands come down to the host for it).
      co.observer = eo.observer;
      co.observes = [](const StepInfo &s) {
        return s.kernelName == "moe.route" || s.kernelName == "moe.dispatch";
      };
      co.memoryBudget = o.deviceMemory;
      co.hybrid = o.device == "hybrid";
      if (o.deviceCache >= 0)
        co.cacheExperts = int(o.deviceCache);
      co.hostThreads = eo.numThreads;
      co.profile = eo.profile;
      StatusOr<std::unique_ptr<moe::rt::cuda::CudaExecutor>> c =
          moe::rt::cuda::CudaExecutor::create(p, co);
      if (!c.isOk())
        return c.status();
      return std::unique_ptr<Runner>(std::move(*c));
#endif
    }
    StatusOr<std::unique_ptr<Executor>> e = Executor::create(p, eo);
    if (!e.isOk())
      return e.status();
    return std::unique_ptr<Runner>(std::move(*e));
  };

  if (o.perplexity) {
    StatusOr<std::vector<uint8_t>> tokens = readBytes(*o.perplexity);
    if (!tokens.isOk())
      return fail(tokens.status().message());
    StatusOr<std::unique_ptr<Runner>> ex = makeRunner(plan, execOptions);
    if (!ex.isOk())
      return fail(ex.status().message());
    std::unique_ptr<LoadedPlan> refPlan;
    std::unique_ptr<Runner> refEx;
    if (o.reference) {
      StatusOr<std::unique_ptr<LoadedPlan>> r =
          loadPlan(*o.reference, loadOptions);
      if (!r.isOk())
        return fail(r.status().message());
      refPlan = std::move(*r);
      ExecutorOptions refOptions;
      refOptions.numThreads = o.threads;
      refOptions.ordered = execOptions.ordered;
      StatusOr<std::unique_ptr<Runner>> re = makeRunner(*refPlan, refOptions);
      if (!re.isOk())
        return fail(re.status().message());
      refEx = std::move(*re);
    }
    ScoreOptions so;
    so.context = o.context;
    so.windows = o.windows;
    so.batch = o.batch;
    so.offset = o.offset;
    // Under mpirun the ranks share the windows (each rank runs its own
    // tokens, whatever the plan's layout).
    so.splitOverRanks = moe::rt::dist::size() > 1;
    bool tty = ::isatty(STDERR_FILENO) && moe::rt::dist::rank() == 0;
    auto start = std::chrono::steady_clock::now();
    StatusOr<ScoreResult> r = scorePerplexity(
        **ex, refEx.get(), *tokens, so,
        [&] {
          if (profiler)
            profiler->endRun();
        },
        [&](int64_t done, int64_t total) {
          if (tty)
            std::fprintf(stderr, "\rmoe-exec: scored %lld/%lld windows",
                         (long long)done, (long long)total);
        });
    if (tty)
      std::fprintf(stderr, "\r\033[K");
    if (!r.isOk())
      return fail(r.status().message());
    double seconds = std::chrono::duration<double>(
                         std::chrono::steady_clock::now() - start)
                         .count();
    if (o.json) {
      std::string line = "{\"perplexity\": " + jsonNumber(r->perplexity) +
                         ", \"mean_nll\": " + jsonNumber(r->meanNll) +
                         ", \"windows\": " + std::to_string(r->windows) +
                         ", \"context\": " + std::to_string(o.context) +
                         ", \"predictions\": " +
                         std::to_string(r->predictions) +
                         ", \"plan_bytes\": " +
                         std::to_string(plan.fileSize());
      if (r->hasReference)
        line += ", \"reference_perplexity\": " +
                jsonNumber(r->referencePerplexity) +
                ", \"kl_mean\": " + jsonNumber(r->klMean) +
                ", \"top1_agreement\": " + jsonNumber(r->top1Agreement) +
                ", \"logits_rel_error\": " + jsonNumber(r->logitsRelError) +
                ", \"reference_plan_bytes\": " +
                std::to_string(refPlan->fileSize());
      std::printf("%s, \"seconds\": %s}\n", line.c_str(),
                  jsonNumber(seconds).c_str());
    } else {
      std::printf("perplexity %.4f over %lld predictions (%lld windows of "
                  "%lld bytes; %.1f s)\n",
                  r->perplexity, (long long)r->predictions,
                  (long long)r->windows, (long long)o.context, seconds);
      if (r->hasReference)
        std::printf("reference perplexity %.4f; KL(reference||plan) %.6f "
                    "nats, top-1 agreement %.4f, logits relative error "
                    "%.3e\n",
                    r->referencePerplexity, r->klMean, r->top1Agreement,
                    r->logitsRelError);
    }
    if (profiler) {
      Status st = writeProfile();
      if (!st.isOk())
        return fail(st.message());
    }
    return 0;
  }

  std::vector<Tensor> inputs;
  if (o.inputsDir) {
    StatusOr<std::vector<Tensor>> r = readInputs(plan, *o.inputsDir);
    if (!r.isOk())
      return fail(r.status().message());
    inputs = std::move(*r);
  } else if (o.seed) {
    StatusOr<std::vector<Tensor>> r = randomInputs(plan, o);
    if (!r.isOk())
      return fail(r.status().message());
    inputs = std::move(*r);
  } else if (!plan.inputs().empty()) {
    return fail("the plan takes " + std::to_string(plan.inputs().size()) +
                " inputs: give --inputs DIR or --random-inputs SEED");
  }

  // Further input sets, for --bench to rotate through.
  std::vector<std::vector<Tensor>> inputSets{inputs};
  for (const std::string &dir : o.moreInputs) {
    StatusOr<std::vector<Tensor>> r = readInputs(plan, dir);
    if (!r.isOk())
      return fail(r.status().message());
    inputSets.push_back(std::move(*r));
  }
  // With --bench and pruning in the plan: count what pruning changed.
  std::unique_ptr<RoutingProfiler> pruneStats;
  if (o.bench && !profiler && pruningActive(plan)) {
    ProfileOptions po;
    po.samples = 0;
    StatusOr<std::unique_ptr<RoutingProfiler>> p =
        RoutingProfiler::create(plan, po);
    if (p.isOk()) {
      pruneStats = std::move(*p);
      RoutingProfiler *raw = pruneStats.get();
      execOptions.observer = [raw](size_t step, const std::vector<Tensor> &in,
                                   const std::vector<Tensor> &out) {
        raw->observe(step, in, out);
      };
    }
  }
  StatusOr<std::unique_ptr<Runner>> ex = makeRunner(plan, execOptions);
  if (!ex.isOk())
    return fail(ex.status().message());
  Status st = Status::ok();
  for (const std::vector<Tensor> &set : inputSets) {
    st = (*ex)->checkInputs(set);
    if (!st.isOk())
      return fail(st.message());
  }

  StatusOr<std::vector<Tensor>> outputs = (*ex)->run(inputs);
  if (!outputs.isOk())
    return fail(outputs.status().message());
  if (profiler) {
    profiler->endRun();
    for (size_t i = 1; i < inputSets.size(); ++i) {
      StatusOr<std::vector<Tensor>> r = (*ex)->run(inputSets[i]);
      if (!r.isOk())
        return fail(r.status().message());
      profiler->endRun();
    }
    st = writeProfile();
    if (!st.isOk())
      return fail(st.message());
  }

  if (o.bench) {
    for (int i = 0; i < o.warmup; ++i) {
      StatusOr<std::vector<Tensor>> r =
          (*ex)->run(inputSets[size_t(i) % inputSets.size()]);
      if (!r.isOk())
        return fail(r.status().message());
    }
    (*ex)->resetProfile();
    if (pruneStats)
      pruneStats->reset();
    moe::rt::dist::resetExchangeTotals();
    std::vector<double> ms;
    for (int i = 0; i < o.repeat; ++i) {
      const std::vector<Tensor> &in = inputSets[size_t(i) % inputSets.size()];
      auto start = std::chrono::steady_clock::now();
      StatusOr<std::vector<Tensor>> r = (*ex)->run(in);
      auto end = std::chrono::steady_clock::now();
      if (!r.isOk())
        return fail(r.status().message());
      ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
    }
    std::vector<double> sorted = ms;
    std::sort(sorted.begin(), sorted.end());
    size_t n = sorted.size();
    double median = n % 2 ? sorted[n / 2]
                          : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    double mean = 0;
    for (double v : ms)
      mean += v / double(n);
    std::string pruningJson;
    std::string pruningText;
    if (pruneStats) {
      RoutingProfiler::PruningStats s = pruneStats->pruningStats();
      double runs = double(o.repeat);
      pruningJson = ", \"pruning\": {\"skipped_slot_share\": " +
                    jsonNumber(s.slots ? double(s.skippedSlots) / s.slots : 0) +
                    ", \"distinct_experts_per_layer\": " +
                    jsonNumber(s.calls ? double(s.distinct) / s.calls : 0) +
                    ", \"unpruned_distinct_experts_per_layer\": " +
                    jsonNumber(s.calls ? double(s.unprunedDistinct) / s.calls
                                       : 0) +
                    ", \"expert_bytes_read_per_run\": " +
                    jsonNumber(s.bytesRead / runs) +
                    ", \"unpruned_expert_bytes_read_per_run\": " +
                    jsonNumber(s.unprunedBytesRead / runs) + "}";
      char buf[320];
      std::snprintf(
          buf, sizeof(buf),
          "pruning: %.1f%% of expert slots skipped; %.2f distinct experts per "
          "layer call (unpruned %.2f); expert bytes read per run %.0f "
          "(unpruned %.0f, %+.1f%%)\n",
          s.slots ? 100.0 * double(s.skippedSlots) / double(s.slots) : 0.0,
          s.calls ? double(s.distinct) / double(s.calls) : 0.0,
          s.calls ? double(s.unprunedDistinct) / double(s.calls) : 0.0,
          s.bytesRead / runs, s.unprunedBytesRead / runs,
          s.unprunedBytesRead > 0
              ? 100.0 * (s.bytesRead - s.unprunedBytesRead) /
                    s.unprunedBytesRead
              : 0.0);
      pruningText = buf;
    }
    // Expert-parallel exchanges (this rank's view, per run).
    moe::rt::dist::ExchangeStats xs = moe::rt::dist::exchangeTotals();
    std::string exchangeJson, exchangeText;
    if (xs.calls > 0) {
      double runs = double(o.repeat);
      exchangeJson = ", \"exchange\": {\"ranks\": " +
                     std::to_string(moe::rt::dist::size()) +
                     ", \"rows_sent_per_run\": " +
                     jsonNumber(double(xs.rowsSent) / runs) +
                     ", \"rows_received_per_run\": " +
                     jsonNumber(double(xs.rowsReceived) / runs) +
                     ", \"wait_ms_per_run\": " +
                     jsonNumber(1e3 * xs.waitSeconds / runs) +
                     ", \"expert_bytes_held\": " +
                     std::to_string(held.heldBytes) +
                     ", \"expert_bytes\": " + std::to_string(held.totalBytes) +
                     "}";
      char buf[320];
      std::snprintf(buf, sizeof(buf),
                    "exchange (rank 0 of %d): %.0f rows sent and %.0f "
                    "received per run, %.3f ms waiting on them; holds %llu "
                    "of %llu bytes of expert weights\n",
                    moe::rt::dist::size(), double(xs.rowsSent) / runs,
                    double(xs.rowsReceived) / runs,
                    1e3 * xs.waitSeconds / runs,
                    (unsigned long long)held.heldBytes,
                    (unsigned long long)held.totalBytes);
      exchangeText = buf;
    }
    if (o.json)
      std::printf("{\"median_ms\": %s, \"min_ms\": %s, \"mean_ms\": %s, "
                  "\"repeat\": %d, \"warmup\": %d, \"threads\": %d%s%s}\n",
                  jsonNumber(median).c_str(), jsonNumber(sorted[0]).c_str(),
                  jsonNumber(mean).c_str(), o.repeat, o.warmup,
                  (*ex)->numThreads(), pruningJson.c_str(),
                  exchangeJson.c_str());
    else
      std::printf("median %.3f ms, min %.3f ms over %d runs (%d threads)\n%s%s",
                  median, sorted[0], o.repeat, (*ex)->numThreads(),
                  pruningText.c_str(), exchangeText.c_str());
    if (o.profileOps)
      printOpProfile(plan, (*ex)->stepMillis(), o.json);
#ifdef MOE_HAVE_CUDA
    if (o.device == "hybrid")
      printHybridReport(
          plan, static_cast<const moe::rt::cuda::CudaExecutor &>(**ex),
          1 + o.warmup + o.repeat, o.profileOps,
          o.json);
#endif
  }

  if (o.checkOutputs) {
    // Float outputs within tolerance · max |ref|; others exactly.
    bool allOk = true;
    for (size_t i = 0; i < outputs->size(); ++i) {
      std::string path =
          *o.checkOutputs + "/output_" + std::to_string(i) + ".pb";
      StatusOr<moe::rt::NamedTensor> ref = readTensorProtoFile(path);
      if (!ref.isOk())
        return fail(ref.status().message());
      const Tensor &got = (*outputs)[i], &want = ref->tensor;
      std::string name = "output " + std::to_string(i) + " `" +
                         plan.outputName(i) + "`";
      if (got.dtype() != want.dtype() || got.shape() != want.shape())
        return fail(name + ": " + formatType(got.dtype(), got.shape()) +
                    ", reference " + formatType(want.dtype(), want.shape()) +
                    " (" + path + ")");
      double err = 0, scale = 0;
      if (got.dtype() == DType::F32) {
        const float *g = got.data<float>(), *w = want.data<float>();
        for (int64_t j = 0; j < got.numElements(); ++j) {
          double d = std::fabs(double(g[j]) - double(w[j]));
          err = std::isnan(d) ? INFINITY : std::max(err, d);
          scale = std::max(scale, std::fabs(double(w[j])));
        }
      } else if (got.byteSize() &&
                 std::memcmp(got.data(), want.data(), got.byteSize()) != 0) {
        err = INFINITY;
      }
      double tol = o.tolerance * scale;
      bool ok = err <= tol;
      allOk = allOk && ok;
      if (moe::rt::dist::rank() == 0)
        std::printf("%s: %s max |out - ref| = %.3g (tolerance %.3g)\n",
                    ok ? "ok" : "FAIL", name.c_str(), err, tol);
    }
    if (!allOk)
      return fail("outputs differ from the reference in " +
                  *o.checkOutputs + " beyond --tolerance " +
                  jsonNumber(o.tolerance));
  }

  if (o.outputsDir && (moe::rt::dist::rank() == 0 || o.outputsPerRank)) {
    st = makeDirs(*o.outputsDir);
    if (!st.isOk())
      return fail(st.message());
    for (size_t i = 0; i < outputs->size(); ++i) {
      std::string path =
          *o.outputsDir + "/output_" + std::to_string(i) + ".pb";
      st = writeTensorProtoFile(path, (*outputs)[i], plan.outputName(i));
      if (!st.isOk())
        return fail(st.message());
    }
  } else if (!o.bench && !o.checkOutputs) {
    printSummary(plan, *outputs);
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  // Under mpirun every rank runs the plan; rank 0 speaks and writes files.
  moe::rt::dist::Session session(&argc, &argv);
  if (!session.status().isOk()) {
    std::fprintf(stderr, "moe-exec: error: %s\n",
                 session.status().message().c_str());
    return 1;
  }
  if (moe::rt::dist::rank() != 0 && !std::freopen("/dev/null", "w", stdout))
    return 1;
  int rc = 1;
  try {
    rc = runTool(argc, argv);
  } catch (const std::exception &e) {
    // Nothing throws on purpose; this catches std::bad_alloc.
    std::fprintf(stderr, "moe-exec: error: %s\n", e.what());
  }
  // A rank that fails alone (its inputs, its experts' bytes) would leave
  // the others waiting in a collective: end them all.
  if (rc != 0 && moe::rt::dist::size() > 1)
    moe::rt::dist::abortAll(rc);
  return rc;
}
