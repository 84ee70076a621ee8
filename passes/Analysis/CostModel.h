//===- CostModel.h - Where an expert should run, and what it costs -*- C++ -*-===//
//
// The placement cost model (MoNDE), a stable analysis header for our passes
// and for plugins. From a device profile (docs/placement.md: GPU memory and
// HBM bandwidth, GPU and CPU FLOP rates, PCIe bandwidth and latency, host
// read bandwidth) and an expert's bytes (at its precision), FLOPs per token
// and expected load per step, it predicts the expected time of the expert
// per step when it is
//   - GPU-resident:  launch + max(bytes / HBM, tokens · flops / GPU rate);
//   - CPU-computed:  max(bytes / host read, tokens · flops / CPU rate)
//                    + the activations over PCIe both ways;
//   - GPU on demand: its bytes over PCIe, then as GPU-resident;
// each weighted by the probability that a step uses the expert at all. A
// layer takes max(GPU side, CPU side): the GPU stream runs the resident and
// on-demand experts, the CPU the others, at the same time.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_PASSES_ANALYSIS_COSTMODEL_H
#define MOE_PASSES_ANALYSIS_COSTMODEL_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>

namespace moe::cost {

/// Version of the device profile JSON this reader understands.
inline constexpr int64_t kDeviceProfileVersion = 1;

struct DeviceProfile {
  std::string name;
  double gpuMemoryBytes = 0;
  double hbmBytesPerSecond = 0;
  double gpuFlopsPerSecond = 0;
  double gpuLaunchSeconds = 0;
  double h2dBytesPerSecond = 0;
  double d2hBytesPerSecond = 0;
  double pcieLatencySeconds = 0;
  double hostReadBytesPerSecond = 0;
  double cpuFlopsPerSecond = 0;
};

/// Reads a device profile (format "moe-device-profile", version 1); errors
/// name the file and the field.
llvm::Expected<DeviceProfile> readDeviceProfile(llvm::StringRef path);
llvm::Expected<DeviceProfile> parseDeviceProfile(llvm::StringRef json,
                                                 llvm::StringRef path);

enum class Where { Gpu, Cpu, OnDemand };
const char *whereName(Where w);

/// One expert: its weight bytes at its precision, the FLOPs one token costs
/// (2 · weights), and its width (the activations crossing PCIe per token are
/// 2 · hidden floats).
struct ExpertShape {
  int64_t bytes = 0;
  double flopsPerToken = 0;
  int64_t hidden = 0;
};

/// What a step asks of an expert: with `batch` tokens each picking k experts
/// and this expert taking a share p of the picks, tokens = batch · k · p and
/// the step uses it with probability 1 - (1 - p)^(batch · k).
struct ExpertLoad {
  double tokensPerStep = 0;
  double useProbability = 0;
  static ExpertLoad fromShare(double share, double batch, int64_t topK);
};

/// Expected seconds per step of one expert placed at `where`.
double expertSeconds(const DeviceProfile &d, const ExpertShape &e,
                     const ExpertLoad &load, Where where);

/// Expected seconds per step of a layer: max(GPU side, CPU side).
double layerSeconds(const DeviceProfile &d, llvm::ArrayRef<ExpertShape> experts,
                    llvm::ArrayRef<ExpertLoad> loads,
                    llvm::ArrayRef<Where> placement);

} // namespace moe::cost

#endif // MOE_PASSES_ANALYSIS_COSTMODEL_H
