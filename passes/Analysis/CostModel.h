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
// The arithmetic and moe-place-experts' greedy are in CostCore.h (no LLVM);
// this header adds the device profile's JSON reader and ArrayRef APIs.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_PASSES_ANALYSIS_COSTMODEL_H
#define MOE_PASSES_ANALYSIS_COSTMODEL_H

#include "passes/Analysis/CostCore.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <algorithm>
#include <cstdint>
#include <string>

namespace moe::cost {

/// Version of the device profile JSON this reader understands.
inline constexpr int64_t kDeviceProfileVersion = 1;

/// Reads a device profile (format "moe-device-profile", version 1); errors
/// name the file and the field.
llvm::Expected<DeviceProfile> readDeviceProfile(llvm::StringRef path);
llvm::Expected<DeviceProfile> parseDeviceProfile(llvm::StringRef json,
                                                 llvm::StringRef path);

/// Expected seconds per step of a layer: max(GPU side, CPU side).
inline double layerSeconds(const DeviceProfile &d,
                           llvm::ArrayRef<ExpertShape> experts,
                           llvm::ArrayRef<ExpertLoad> loads,
                           llvm::ArrayRef<Where> placement) {
  return layerSeconds(d, experts.data(), loads.data(), placement.data(),
                      std::min({experts.size(), loads.size(),
                                placement.size()}));
}

} // namespace moe::cost

#endif // MOE_PASSES_ANALYSIS_COSTMODEL_H
