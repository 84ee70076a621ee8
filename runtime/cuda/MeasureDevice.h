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

/// The measurements of a device profile (docs/placement.md).
struct DeviceMeasurements {
  std::string name;
  double memoryBytes = 0, hbmReadBytesPerSecond = 0, f32FlopsPerSecond = 0,
         bf16FlopsPerSecond = 0, launchSeconds = 0, h2dBytesPerSecond = 0,
         d2hBytesPerSecond = 0, pcieLatencySeconds = 0,
         hostReadBytesPerSecond = 0, hostFlopsPerSecond = 0;
};

/// Measures GPU 0 and the host; `progress` prints each measurement's name
/// to stderr as it starts (on a terminal).
StatusOr<DeviceMeasurements> measureDeviceProfile(bool progress);

/// The profile JSON (format moe-device-profile, version 1) of `m`.
std::string deviceProfileJson(const DeviceMeasurements &m);

/// measureDeviceProfile() as JSON text.
StatusOr<std::string> measureDevice(bool progress);

} // namespace moe::rt::cuda

#endif // MOE_RUNTIME_CUDA_MEASUREDEVICE_H
