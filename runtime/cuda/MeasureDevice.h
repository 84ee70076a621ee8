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

class CudaDevice;

/// Bytes per second that a streaming read kernel takes from the device's
/// memory (a buffer of min(2 GiB, a quarter of the free memory), the median
/// of 10 passes): the HBM read bandwidth of byte floors.
StatusOr<double> measureHbmReadBandwidth(CudaDevice &device);

/// The measured profile as JSON text; `progress` prints each measurement's
/// name to stderr as it starts (on a terminal).
StatusOr<std::string> measureDevice(bool progress);

} // namespace moe::rt::cuda

#endif // MOE_RUNTIME_CUDA_MEASUREDEVICE_H
