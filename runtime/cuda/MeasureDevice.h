//===- MeasureDevice.h - `moe-exec --measure-device` ------------*- C++ -*-===//
//
// Measures GPU 0 and its host and returns the device profile JSON
// (docs/placement.md, format moe-device-profile version 1) that
// moe-place-experts reads.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_CUDA_MEASUREDEVICE_H
#define MOE_RUNTIME_CUDA_MEASUREDEVICE_H

#include "runtime/Status.h"

#include <string>

namespace moe::rt::cuda {

/// The measured profile as JSON text; `progress` prints each measurement's
/// name to stderr as it starts (on a terminal).
StatusOr<std::string> measureDevice(bool progress);

} // namespace moe::rt::cuda

#endif // MOE_RUNTIME_CUDA_MEASUREDEVICE_H
