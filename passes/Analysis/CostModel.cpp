//===- CostModel.cpp - Where an expert should run, and what it costs ------===//

#include "passes/Analysis/CostModel.h"

#include "passes/Analysis/JsonFile.h"

#include <algorithm>
#include <cmath>

namespace moe::cost {

llvm::Expected<DeviceProfile> parseDeviceProfile(llvm::StringRef json,
                                                 llvm::StringRef path) {
  llvm::Expected<llvm::json::Value> v = analysis::parseVersioned(
      json, path, "moe-device-profile", kDeviceProfileVersion,
      "device profile");
  if (!v)
    return v.takeError();
  const llvm::json::Object *root = v->getAsObject();
  DeviceProfile d;
  if (auto n = root->getString("name"))
    d.name = n->str();
  struct Field {
    const char *section, *key;
    double *out;
    bool positive;
  } fields[] = {
      {"gpu", "memory_bytes", &d.gpuMemoryBytes, true},
      {"gpu", "hbm_read_bytes_per_s", &d.hbmBytesPerSecond, true},
      {"gpu", "flops_per_s", &d.gpuFlopsPerSecond, true},
      {"gpu", "launch_s", &d.gpuLaunchSeconds, false},
      {"pcie", "h2d_bytes_per_s", &d.h2dBytesPerSecond, true},
      {"pcie", "d2h_bytes_per_s", &d.d2hBytesPerSecond, true},
      {"pcie", "latency_s", &d.pcieLatencySeconds, false},
      {"cpu", "read_bytes_per_s", &d.hostReadBytesPerSecond, true},
      {"cpu", "flops_per_s", &d.cpuFlopsPerSecond, true},
  };
  for (const Field &f : fields) {
    llvm::Expected<double> x = analysis::readNumber(
        root->getObject(f.section), f.key,
        std::string(f.section) + "." + f.key, f.positive, path);
    if (!x)
      return x.takeError();
    *f.out = *x;
  }
  return d;
}

llvm::Expected<DeviceProfile> readDeviceProfile(llvm::StringRef path) {
  llvm::Expected<std::string> text =
      analysis::readFile(path, "device profile");
  if (!text)
    return text.takeError();
  return parseDeviceProfile(*text, path);
}

} // namespace moe::cost
