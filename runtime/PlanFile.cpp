//===- PlanFile.cpp - The plan file container -----------------------------===//

#include "runtime/PlanFile.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace moe::plan {

uint64_t hashBytes(const void *data, size_t size) {
  const auto *p = static_cast<const uint8_t *>(data);
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = 0xCBF29CE484222325ull ^ (size * kMul);
  // Four independent lanes keep the multiply latency off the critical path.
  uint64_t lanes[4] = {h, h ^ 0x1, h ^ 0x2, h ^ 0x3};
  size_t i = 0;
  for (; i + 32 <= size; i += 32) {
    for (int l = 0; l < 4; ++l) {
      uint64_t w;
      std::memcpy(&w, p + i + 8 * l, 8);
      lanes[l] = (lanes[l] ^ w) * kMul;
      lanes[l] ^= lanes[l] >> 29;
    }
  }
  for (; i + 8 <= size; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    lanes[0] = (lanes[0] ^ w) * kMul;
    lanes[0] ^= lanes[0] >> 29;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, p + i, size - i);
  lanes[1] = (lanes[1] ^ tail) * kMul;
  for (int l = 0; l < 4; ++l) {
    h ^= lanes[l] + kMul + (h << 6) + (h >> 2);
    h *= kMul;
    h ^= h >> 31;
  }
  return h;
}

static bool rangeInside(uint64_t offset, uint64_t size, uint64_t total) {
  return offset <= total && size <= total - offset;
}

rt::Status checkHeader(const uint8_t *data, size_t fileSize,
                       PlanHeader &header) {
  if (fileSize < kHeaderSize)
    return rt::Status::error("file is " + std::to_string(fileSize) +
                             " bytes, smaller than the 64-byte plan header "
                             "(truncated or not a plan)");
  std::memcpy(&header, data, kHeaderSize);
  if (std::memcmp(header.magic, kMagic, sizeof(kMagic)) != 0)
    return rt::Status::error("bad magic: not a moe plan file");
  if (header.version != kPlanFormatVersion)
    return rt::Status::error(
        "plan format version " + std::to_string(header.version) +
        " is not supported (this runtime reads version " +
        std::to_string(kPlanFormatVersion) + "; recompile the model)");
  if (header.fileSize != fileSize)
    return rt::Status::error("header says the file is " +
                             std::to_string(header.fileSize) +
                             " bytes but it is " + std::to_string(fileSize) +
                             " (truncated or extended)");
  if (header.fbOffset < kHeaderSize ||
      !rangeInside(header.fbOffset, header.fbSize, fileSize) ||
      header.fbSize == 0)
    return rt::Status::error("header: flatbuffer range [" +
                             std::to_string(header.fbOffset) + ", +" +
                             std::to_string(header.fbSize) +
                             ") is outside the file");
  if (header.fbOffset % 8 != 0)
    return rt::Status::error("header: flatbuffer offset is not 8-aligned");
  if (header.blobsOffset % kBlobAlignment != 0 ||
      !rangeInside(header.blobsOffset, header.blobsSize, fileSize))
    return rt::Status::error("header: blob section [" +
                             std::to_string(header.blobsOffset) + ", +" +
                             std::to_string(header.blobsSize) +
                             ") is misaligned or outside the file");
  if (header.blobsSize != 0 &&
      header.blobsOffset < header.fbOffset + header.fbSize)
    return rt::Status::error("header: blob section overlaps the flatbuffer");
  return rt::Status::ok();
}

uint64_t layoutBlobs(std::vector<BlobSource> &blobs) {
  uint64_t offset = 0;
  for (BlobSource &blob : blobs) {
    blob.offset = offset;
    offset = alignBlob(offset + blob.size);
  }
  return offset;
}

rt::Status PlanFileWriter::write(const std::string &path,
                                 const uint8_t *flatbuffer,
                                 size_t flatbufferSize,
                                 const std::vector<BlobSource> &blobs,
                                 uint64_t blobsSize, const BlobFiller &fill) {
  PlanHeader header{};
  std::memcpy(header.magic, kMagic, sizeof(kMagic));
  header.version = kPlanFormatVersion;
  header.fbOffset = kHeaderSize;
  header.fbSize = flatbufferSize;
  header.blobsOffset = alignBlob(kHeaderSize + flatbufferSize);
  header.blobsSize = blobsSize;
  header.fileSize = header.blobsOffset + blobsSize;
  header.fbChecksum = hashBytes(flatbuffer, flatbufferSize);

  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    return rt::Status::error("cannot create '" + tmp +
                             "': " + std::strerror(errno));
  auto failWith = [&](const std::string &msg) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return rt::Status::error(msg);
  };
  // Reserve the space first so that a full disk fails here, cleanly.
  if (int err = ::posix_fallocate(fd, 0, static_cast<off_t>(header.fileSize)))
    return failWith("cannot allocate " + std::to_string(header.fileSize) +
                    " bytes for '" + tmp + "': " + std::strerror(err));
  auto writeAt = [&](const void *src, size_t size, uint64_t offset) {
    const auto *p = static_cast<const uint8_t *>(src);
    while (size > 0) {
      ssize_t n = ::pwrite(fd, p, size, static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return false;
      p += n;
      size -= static_cast<size_t>(n);
      offset += static_cast<uint64_t>(n);
    }
    return true;
  };
  if (!writeAt(&header, kHeaderSize, 0) ||
      !writeAt(flatbuffer, flatbufferSize, header.fbOffset))
    return failWith("cannot write '" + tmp + "': " + std::strerror(errno));
  std::vector<uint8_t> scratch;
  for (size_t i = 0; i < blobs.size(); ++i) {
    if (!rangeInside(blobs[i].offset, blobs[i].size, blobsSize))
      return failWith("blob " + std::to_string(i) +
                      " lies outside the blob section");
    scratch.assign(blobs[i].size, 0);
    rt::Status st = fill(i, scratch.data());
    if (!st.isOk())
      return failWith(st.message());
    if (!writeAt(scratch.data(), scratch.size(),
                 header.blobsOffset + blobs[i].offset))
      return failWith("cannot write '" + tmp + "': " + std::strerror(errno));
  }
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return rt::Status::error("cannot write '" + tmp +
                             "': " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return rt::Status::error("cannot rename '" + tmp + "' to '" + path +
                             "': " + std::strerror(err));
  }
  return rt::Status::ok();
}

} // namespace moe::plan
