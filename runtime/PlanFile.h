//===- PlanFile.h - The plan file container ---------------------*- C++ -*-===//
//
// A plan file is a 64-byte header, the FlatBuffer of runtime/schema/plan.fbs
// and 64-byte aligned weight blobs (docs/plan-format.md). This header is
// shared by the compiler (which writes plans) and the runtime (which reads
// them); it has no MLIR or LLVM dependency.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_PLANFILE_H
#define MOE_RUNTIME_PLANFILE_H

#include "runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace moe::plan {

/// Version of the header layout and of the schema's meaning. Both the header
/// and Plan.version carry it; a runtime accepts only its own version.
constexpr uint32_t kPlanFormatVersion = 2;
constexpr uint64_t kBlobAlignment = 64;
constexpr size_t kHeaderSize = 64;
constexpr char kMagic[8] = {'M', 'O', 'E', 'P', 'L', 'A', 'N', '\0'};

/// The on-disk header (little-endian, 64 bytes).
struct PlanHeader {
  char magic[8];
  uint32_t version;
  uint32_t flags;
  uint64_t fbOffset;
  uint64_t fbSize;
  uint64_t blobsOffset;
  uint64_t blobsSize;
  uint64_t fileSize;
  uint64_t fbChecksum;
};
static_assert(sizeof(PlanHeader) == kHeaderSize, "header must be 64 bytes");

/// 64-bit hash of a byte range (multiply-xor over 8-byte words); used for the
/// FlatBuffer and weight checksums. Stable across platforms.
uint64_t hashBytes(const void *data, size_t size);

/// Rounds `value` up to a multiple of kBlobAlignment.
inline uint64_t alignBlob(uint64_t value) {
  return (value + kBlobAlignment - 1) / kBlobAlignment * kBlobAlignment;
}

/// Checks the header of a file of `fileSize` bytes starting at `data`: magic,
/// version, ranges inside the file, alignment. Does not check checksums.
rt::Status checkHeader(const uint8_t *data, size_t fileSize,
                       PlanHeader &header);

/// One weight blob to write: the bytes are produced by `fill` into `dst`
/// (exactly `size` bytes) so that large weights need not be held twice.
struct BlobSource {
  uint64_t size = 0;
  /// Offset from the start of the blob section, as computed by layoutBlobs().
  uint64_t offset = 0;
};

/// Assigns 64-byte aligned offsets to blobs of the given sizes; returns the
/// total size of the blob section.
uint64_t layoutBlobs(std::vector<BlobSource> &blobs);

/// Writes a complete plan file atomically: to `path`.tmp first, renamed over
/// `path` only when everything was written. `writeBlob(i, dst)` must fill
/// blob i (blobs[i].size bytes at dst). On failure no file is left behind.
class PlanFileWriter {
public:
  using BlobFiller = std::function<rt::Status(size_t index, uint8_t *dst)>;
  static rt::Status write(const std::string &path, const uint8_t *flatbuffer,
                          size_t flatbufferSize,
                          const std::vector<BlobSource> &blobs,
                          uint64_t blobsSize, const BlobFiller &fill);
};

} // namespace moe::plan

#endif // MOE_RUNTIME_PLANFILE_H
