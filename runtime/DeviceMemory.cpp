//===- DeviceMemory.cpp - A device's memory budget ------------------------===//

#include "runtime/DeviceMemory.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>

namespace moe::rt {

Status MemoryBudget::reserve(uint64_t bytes, const std::string &what) {
  uint64_t used = inUse_.load();
  do {
    if (bytes > budget_ || used > budget_ - bytes)
      return Status::error("device memory budget of " + formatBytes(budget_) +
                           " exceeded: " + what + " needs " +
                           formatBytes(bytes) + ", " + formatBytes(used) +
                           " are in use");
  } while (!inUse_.compare_exchange_weak(used, used + bytes));
  uint64_t now = used + bytes, peak = peak_.load();
  while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
  }
  return Status::ok();
}

void MemoryBudget::release(uint64_t bytes) { inUse_.fetch_sub(bytes); }

std::string formatBytes(uint64_t bytes) {
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof(buf), "%llu B", (unsigned long long)bytes);
  else
    std::snprintf(buf, sizeof(buf), v < 10 ? "%.2f %s" : "%.1f %s", v,
                  units[u]);
  return buf;
}

StatusOr<uint64_t> parseBytes(const std::string &text) {
  auto bad = [&] {
    return Status::error("'" + text +
                         "' is not a size (e.g. 16G, 512M, 1073741824)");
  };
  size_t i = 0;
  while (i < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
    ++i;
  if (i == 0)
    return bad();
  char *end = nullptr;
  std::string number = text.substr(0, i);
  double v = std::strtod(number.c_str(), &end);
  if (!end || *end != '\0' || !(v >= 0))
    return bad();
  std::string unit = text.substr(i);
  for (char &c : unit)
    c = char(std::toupper(static_cast<unsigned char>(c)));
  double scale = 1;
  if (unit.empty() || unit == "B")
    scale = 1;
  else if (unit == "K" || unit == "KB" || unit == "KIB")
    scale = 1024.0;
  else if (unit == "M" || unit == "MB" || unit == "MIB")
    scale = 1024.0 * 1024;
  else if (unit == "G" || unit == "GB" || unit == "GIB")
    scale = 1024.0 * 1024 * 1024;
  else if (unit == "T" || unit == "TB" || unit == "TIB")
    scale = 1024.0 * 1024 * 1024 * 1024;
  else
    return bad();
  double bytes = v * scale;
  if (bytes >= 1.8e19)
    return bad();
  return uint64_t(bytes);
}

} // namespace moe::rt
