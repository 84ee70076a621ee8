//===- DeviceMemory.h - A device's memory budget ----------------*- C++ -*-===//
//
// The bytes a device may hold (its budget), those it holds and the most it
// has held. Allocations reserve first, so that exceeding the budget is an
// error naming what asked and how much, never a CUDA out-of-memory later.
// No device API here: the CUDA device uses it, and tests run it anywhere.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_DEVICEMEMORY_H
#define MOE_RUNTIME_DEVICEMEMORY_H

#include "runtime/Status.h"

#include <atomic>
#include <cstdint>
#include <string>

namespace moe::rt {

class MemoryBudget {
public:
  explicit MemoryBudget(uint64_t budgetBytes) : budget_(budgetBytes) {}

  /// Takes `bytes` of the budget for `what` ("weight `w1`"), or fails with
  /// "device memory budget of B bytes exceeded: <what> needs N bytes, U are
  /// in use".
  Status reserve(uint64_t bytes, const std::string &what);
  /// Gives back bytes taken by reserve().
  void release(uint64_t bytes);

  uint64_t budget() const { return budget_; }
  uint64_t inUse() const { return inUse_.load(); }
  uint64_t peak() const { return peak_.load(); }

private:
  const uint64_t budget_;
  std::atomic<uint64_t> inUse_{0};
  std::atomic<uint64_t> peak_{0};
};

/// "1.50 GiB", "12.0 MiB", "640 B": sizes in messages.
std::string formatBytes(uint64_t bytes);

/// Parses a size: a number with an optional K, M, G or T suffix (powers of
/// 1024; "MiB" and "GB" spellings accepted) or "0".
StatusOr<uint64_t> parseBytes(const std::string &text);

} // namespace moe::rt

#endif // MOE_RUNTIME_DEVICEMEMORY_H
