//===- CostModel.cpp - Where an expert should run, and what it costs ------===//

#include "passes/Analysis/CostModel.h"

#include "passes/Analysis/JsonFile.h"

#include <algorithm>
#include <cmath>

namespace moe::cost {

const char *whereName(Where w) {
  switch (w) {
  case Where::Gpu:
    return "gpu";
  case Where::Cpu:
    return "cpu";
  case Where::OnDemand:
    return "on_demand";
  }
  return "?";
}

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

ExpertLoad ExpertLoad::fromShare(double share, double batch, int64_t topK) {
  ExpertLoad l;
  double picks = batch * double(topK);
  share = std::clamp(share, 0.0, 1.0);
  l.tokensPerStep = picks * share;
  l.useProbability = 1.0 - std::pow(1.0 - share, picks);
  return l;
}

namespace {
/// Seconds of the expert on the GPU for n tokens, weights resident.
double gpuSeconds(const DeviceProfile &d, const ExpertShape &e, double n) {
  return d.gpuLaunchSeconds +
         std::max(double(e.bytes) / d.hbmBytesPerSecond,
                  n * e.flopsPerToken / d.gpuFlopsPerSecond);
}
} // namespace

double expertSeconds(const DeviceProfile &d, const ExpertShape &e,
                     const ExpertLoad &load, Where where) {
  double u = load.useProbability;
  if (!(u > 0))
    return 0.0;
  // Tokens in a step that uses the expert.
  double n = load.tokensPerStep / u;
  double t = 0;
  switch (where) {
  case Where::Gpu:
    t = gpuSeconds(d, e, n);
    break;
  case Where::Cpu:
    t = std::max(double(e.bytes) / d.hostReadBytesPerSecond,
                 n * e.flopsPerToken / d.cpuFlopsPerSecond) +
        2 * d.pcieLatencySeconds +
        n * double(e.hidden) * 4.0 *
            (1.0 / d.h2dBytesPerSecond + 1.0 / d.d2hBytesPerSecond);
    break;
  case Where::OnDemand:
    t = double(e.bytes) / d.h2dBytesPerSecond + d.pcieLatencySeconds +
        gpuSeconds(d, e, n);
    break;
  }
  return u * t;
}

double layerSeconds(const DeviceProfile &d, llvm::ArrayRef<ExpertShape> experts,
                    llvm::ArrayRef<ExpertLoad> loads,
                    llvm::ArrayRef<Where> placement) {
  double gpu = 0, cpu = 0;
  for (size_t i = 0; i < experts.size(); ++i) {
    double t = expertSeconds(d, experts[i], loads[i], placement[i]);
    (placement[i] == Where::Cpu ? cpu : gpu) += t;
  }
  return std::max(gpu, cpu);
}

} // namespace moe::cost
