//===- ExpertKernels.cpp - moe.experts on the cuda and hybrid devices -----===//

#include "runtime/cuda/ExpertKernels.h"

#include "runtime/cpu/KernelUtil.h"
#include "runtime/cpu/MoeAttrs.h"
#include "runtime/cuda/CudaDevice.h"
#include "runtime/cuda/KernelHelpers.h"

#include "kernels/cpu/Moe.h"
#include "kernels/cpu/Quant.h"
#include "kernels/cuda/CudaCheck.h"
#include "kernels/cuda/Dense.h"
#include "kernels/cuda/Moe.h"
#include "kernels/cuda/Quant.h"

#include <algorithm>
#include <cmath>
#include <functional>

namespace moe::rt::cuda {

ExpertResidency::~ExpertResidency() {
  if (rowsDown)
    cudaEventDestroy(static_cast<cudaEvent_t>(rowsDown));
}

namespace {

namespace kcu = moe::cuda;
using cpu::str;
using Types = std::vector<TensorType>;
using detail::allF32;
using detail::in;
using detail::out;

/// Expert x2's [rows, cols] matrix of weight input `t` as the kernels read
/// it: a dense f32 bank's slice, or a packed bank's f32, bf16, quantised or
/// absent slice.
struct ExpertMatrix {
  const void *data = nullptr;
  bool bf16 = false, absent = false, quant = false;
  kcu::QuantMatrix q;
};

ExpertMatrix expertMatrix(const Tensor &t, int64_t x2, int64_t mrows,
                          int64_t mcols) {
  ExpertMatrix m;
  const PackedWeight *p = t.packed();
  if (!p) {
    m.data = t.data<float>() + x2 * mrows * mcols;
    return m;
  }
  const kernels::cpu::QuantFormat &f = p->formats[size_t(x2)];
  m.data = static_cast<const uint8_t *>(t.data()) + p->offsets[size_t(x2)];
  m.bf16 = f.bits == 16;
  m.absent = f.bits == kernels::cpu::kAbsentBits;
  m.quant = f.bits == 8 || f.bits == 4 || f.bits == 3 || f.bits == 2;
  if (m.quant) {
    kernels::cpu::QuantLayout ql = kernels::cpu::quantLayout(f, mrows, mcols);
    m.q.bits = f.bits;
    m.q.groupSize = f.groupSize;
    m.q.f16Scales = f.f16Scales;
    m.q.zeroPoints = f.zeroPoints;
    m.q.rowBytes = ql.rowBytes;
    m.q.groupsPerRow = ql.groupsPerRow;
    m.q.scalesOffset = ql.scalesOffset;
    m.q.zerosOffset = ql.zerosOffset;
  }
  return m;
}

kcu::ActivationParams activationParams(const cpu::ExpertsLayout &l) {
  kcu::ActivationParams act;
  act.kind = int(l.act.kind);
  act.alpha = l.act.alpha;
  act.beta = l.act.beta;
  act.hasLimit = std::isfinite(l.act.limit);
  act.limit = act.hasLimit ? l.act.limit : 0.0f;
  act.fusion = l.act.fusion;
  return act;
}

/// moe.experts for a decode step (kcu::decodeOnDevice): the grouped GEMV
/// kernels, from the offsets on the device.
Status expertsDecode(CudaKernelContext &c, const cpu::ExpertsLayout &l,
                     const std::vector<int64_t> &pruned, int64_t e,
                     int64_t gWidth, int64_t ffn) {
  const Tensor &x = c.inputs[0];
  const int64_t rows = x.dim(0), h = x.dim(1);
  uint64_t prunedBits = 0;
  for (size_t i = 0; i < pruned.size() && i < 64; ++i)
    if (pruned[i])
      prunedBits |= uint64_t(1) << i;
  size_t next = 4;
  const size_t w3i = l.w3 ? next++ : 0;
  const float *b1 = l.b1 ? in<float>(c, next++) : nullptr;
  const float *b2 = l.b2 ? in<float>(c, next++) : nullptr;
  const float *b3 = l.b3 ? in<float>(c, next++) : nullptr;
  auto bank = [&](size_t i, int64_t mrows, int64_t mcols,
                  kcu::ExpertBank &b) -> Status {
    const PackedWeight *p = c.inputs[i].packed();
    if (p && int64_t(p->formats.size()) != e)
      return Status::error("input " + str(int64_t(i)) + " is packed in " +
                           str(int64_t(p->formats.size())) +
                           " slices, expected " + str(e));
    for (int64_t x2 = 0; x2 < e; ++x2) {
      ExpertMatrix m = expertMatrix(c.inputs[i], x2, mrows, mcols);
      bool isPruned = (prunedBits >> x2) & 1u;
      if (m.absent && !isPruned)
        return Status::error("input " + str(int64_t(i)) + ": expert " +
                             str(x2) + " has no weights (absent slice) but "
                             "is not pruned");
      b.data[x2] = m.data;
      b.kind[x2] = m.absent ? kcu::ExpertBank::Absent
                   : m.quant ? kcu::ExpertBank::Quantised
                   : m.bf16  ? kcu::ExpertBank::BF16
                             : kcu::ExpertBank::F32;
      b.q[x2] = m.q;
    }
    return Status::ok();
  };
  kcu::ExpertBank w1, w2, w3;
  MOE_RETURN_IF_ERROR(bank(2, gWidth, h, w1));
  MOE_RETURN_IF_ERROR(bank(3, h, ffn, w2));
  if (l.w3)
    MOE_RETURN_IF_ERROR(bank(w3i, ffn, h, w3));
  StatusOr<Tensor> scratch = c.device.scratch(
      uint64_t(std::max<int64_t>(rows * ffn, 1)) * sizeof(float),
      "moe.experts scratch");
  if (!scratch.isOk())
    return scratch.status();
  return kcu::expertsDecode(x.data<float>(), rows, h, in<int64_t>(c, 1), e,
                            ffn, w1, w2, l.w3 ? &w3 : nullptr, b1, b2, b3,
                            prunedBits, activationParams(l),
                            scratch->mutableData<float>(), out<float>(c, 0),
                            c.device.stream());
}

/// The expert GEMMs on the device for experts whose row ranges the host
/// knows (`off`), skipping those `skip` marks (computed elsewhere: the
/// hybrid device's CPU experts); `matrix(i, x2, rows, cols)` gives expert
/// x2's matrix of weight input i (2: w1, 3: w2, w3i: w3).
Status expertsOnDevice(
    CudaKernelContext &c, const cpu::ExpertsLayout &l,
    const std::vector<int64_t> &pruned, int64_t e, const int64_t *off,
    const std::function<StatusOr<ExpertMatrix>(size_t, int64_t, int64_t,
                                               int64_t)> &matrix,
    const std::function<bool(int64_t)> &skip) {
  const Tensor &x = c.inputs[0];
  const int64_t rows = x.dim(0), h = x.dim(1);
  const int64_t ffn = c.inputs[3].dim(2);
  const int64_t gWidth = l.act.fused() ? 2 * ffn : ffn;
  int64_t most = 0;
  for (int64_t x2 = 0; x2 < e; ++x2)
    most = std::max(most, off[x2 + 1] - off[x2]);
  size_t next = 4;
  const size_t w3i = l.w3 ? next++ : 0;
  const float *b1 = l.b1 ? in<float>(c, next++) : nullptr;
  const float *b2 = l.b2 ? in<float>(c, next++) : nullptr;
  const float *b3 = l.b3 ? in<float>(c, next++) : nullptr;
  // Do any GEMMs take bf16 activations (bf16 experts, or quantised ones
  // dequantised to bf16 for more rows than the GEMV takes)?
  bool anyBf16 = false, anyDequant = false;
  for (int64_t x2 = 0; x2 < e; ++x2) {
    if (skip(x2))
      continue;
    const bool many = off[x2 + 1] - off[x2] > kcu::kQuantGemvRows;
    for (size_t i : {size_t(2), size_t(3), w3i}) {
      if (!i)
        continue;
      const Tensor &t = c.inputs[i];
      const PackedWeight *p = t.packed();
      int bits = p ? p->formats[size_t(x2)].bits : 0;
      bool quant = bits == 8 || bits == 4 || bits == 3 || bits == 2;
      anyBf16 = anyBf16 || bits == 16 || (quant && many);
      anyDequant = anyDequant || (quant && many);
    }
  }
  const kcu::ActivationParams act = activationParams(l);
  kcu::Stream s = c.device.stream();
  float *y = out<float>(c, 0);
  // Scratch for the largest expert: g (2F wide when fused), l, h; for bf16
  // GEMMs, x and h in bf16; for dequantised experts, one weight matrix in
  // bf16.
  uint64_t scratchFloats = uint64_t(most) * uint64_t(gWidth + 2 * ffn);
  if (anyBf16)
    scratchFloats += (uint64_t(rows) * uint64_t(h) + 1) / 2 +
                     (uint64_t(most) * uint64_t(ffn) + 1) / 2 + 64;
  if (anyDequant)
    scratchFloats += (uint64_t(gWidth) * uint64_t(h) + 1) / 2 + 16;
  StatusOr<Tensor> scratch = c.device.scratch(
      std::max<uint64_t>(scratchFloats, 1) * sizeof(float),
      "moe.experts scratch");
  if (!scratch.isOk())
    return scratch.status();
  float *g = scratch->mutableData<float>();
  float *lin = g + most * gWidth;
  float *hid = lin + most * ffn;
  // bf16 copies, 64-byte aligned.
  auto align = [](void *p) {
    return reinterpret_cast<uint16_t *>(
        (reinterpret_cast<uintptr_t>(p) + 63) / 64 * 64);
  };
  uint16_t *xb = align(hid + most * ffn);
  uint16_t *hb = align(xb + (anyBf16 ? rows * h : 0));
  uint16_t *wb = align(hb + (anyBf16 ? most * ffn : 0));
  if (anyBf16)
    MOE_RETURN_IF_ERROR(kcu::cast(x.data(), int(DType::F32), xb,
                                  int(DType::BF16), rows * h, s));
  kcu::Blas &blas = c.device.blas();
  const auto f32 = kcu::GemmType::F32, bf16 = kcu::GemmType::BF16;
  // One linear layer of an expert: out[n, N] = in[n, K] · W[N, K]ᵀ.
  auto linear = [&](const float *inF, const uint16_t *inB, int64_t n,
                    int64_t k2, const ExpertMatrix &w, int64_t nOut,
                    const float *bias, float *outp) -> Status {
    if (w.quant && n <= kcu::kQuantGemvRows)
      return kcu::linearQuant(inF, n, k2,
                              static_cast<const uint8_t *>(w.data), w.q, nOut,
                              bias, outp, s);
    if (w.quant) {
      MOE_RETURN_IF_ERROR(kcu::dequantizeBf16(
          static_cast<const uint8_t *>(w.data), w.q, nOut, k2, wb, s));
      return blas.linear(inB, bf16, n, k2, wb, bf16, nOut, bias, outp, s);
    }
    return w.bf16 ? blas.linear(inB, bf16, n, k2, w.data, bf16, nOut, bias,
                                outp, s)
                  : blas.linear(inF, f32, n, k2, w.data, f32, nOut, bias,
                                outp, s);
  };
  for (int64_t x2 = 0; x2 < e; ++x2) {
    const int64_t n = off[x2 + 1] - off[x2];
    if (n == 0 || skip(x2))
      continue;
    float *ye = y + off[x2] * h;
    if (size_t(x2) < pruned.size() && pruned[size_t(x2)]) {
      MOE_RETURN_IF_ERROR(kcu::check(
          cudaMemsetAsync(ye, 0, size_t(n * h) * sizeof(float), s),
          "cudaMemsetAsync(pruned expert rows)"));
      continue;
    }
    ExpertMatrix m1, m2, m3;
    MOE_ASSIGN_OR_RETURN(m1, matrix(2, x2, gWidth, h));
    MOE_ASSIGN_OR_RETURN(m2, matrix(3, x2, h, ffn));
    if (l.w3) {
      MOE_ASSIGN_OR_RETURN(m3, matrix(w3i, x2, ffn, h));
    }
    if (m1.absent || m2.absent || m3.absent)
      return Status::error("expert " + str(x2) + " has no weights (absent "
                           "slice) but is not pruned");
    const float *xe = x.data<float>() + off[x2] * h;
    const uint16_t *xbe = xb + off[x2] * h;
    MOE_RETURN_IF_ERROR(linear(xe, xbe, n, h, m1, gWidth,
                               b1 ? b1 + x2 * gWidth : nullptr, g));
    if (l.w3)
      MOE_RETURN_IF_ERROR(
          linear(xe, xbe, n, h, m3, ffn, b3 ? b3 + x2 * ffn : nullptr, lin));
    MOE_RETURN_IF_ERROR(kcu::expertActivation(g, l.w3 ? lin : nullptr, n,
                                              ffn, act, hid, s));
    if (m2.bf16 || (m2.quant && n > kcu::kQuantGemvRows))
      MOE_RETURN_IF_ERROR(kcu::cast(hid, int(DType::F32), hb,
                                    int(DType::BF16), n * ffn, s));
    MOE_RETURN_IF_ERROR(
        linear(hid, hb, n, ffn, m2, h, b2 ? b2 + x2 * h : nullptr, ye));
  }
  if (off[e] < rows)
    MOE_RETURN_IF_ERROR(kcu::check(
        cudaMemsetAsync(y + off[e] * h, 0,
                        size_t((rows - off[e]) * h) * sizeof(float), s),
        "cudaMemsetAsync(skipped rows)"));
  return Status::ok();
}

/// The offsets' values on the host (dispatch's host copy, or a download),
/// checked against the rows.
StatusOr<Tensor> hostOffsets(CudaKernelContext &c, int64_t e, int64_t rows) {
  Tensor t = c.hostInputs.size() > 1 ? c.hostInputs[1] : Tensor();
  if (!t.defined()) {
    StatusOr<Tensor> d = c.device.download(c.inputs[1]);
    if (!d.isOk())
      return d.status();
    t = *d;
  }
  const int64_t *off = t.data<int64_t>();
  if (t.numElements() != e + 1 || off[0] != 0 || off[e] > rows)
    return Status::error("offsets do not describe " + str(rows) + " rows");
  for (int64_t x2 = 0; x2 < e; ++x2)
    if (off[x2 + 1] < off[x2])
      return Status::error("offsets decrease at expert " + str(x2));
  return t;
}


/// Host bytes of expert x2's slice of weight `t` (a dense f32 bank of
/// [E, rows, cols], or a packed bank).
std::pair<const uint8_t *, uint64_t> hostSlice(const Tensor &t, int64_t x2) {
  const uint8_t *base = static_cast<const uint8_t *>(t.data());
  if (const PackedWeight *p = t.packed())
    return {base + p->offsets[size_t(x2)], p->sizes[size_t(x2)]};
  uint64_t bytes = uint64_t(t.numElements() / t.dim(0)) * sizeof(float);
  return {base + uint64_t(x2) * bytes, bytes};
}

/// Expert x2's matrix of input i when its bytes are at `data` (device).
ExpertMatrix matrixAt(const Tensor &host, int64_t x2, int64_t mrows,
                      int64_t mcols, const void *data) {
  ExpertMatrix m = expertMatrix(host, x2, mrows, mcols);
  m.data = data;
  return m;
}

/// moe.experts on the hybrid device (MoNDE): CPU experts' rows go down to
/// the host and are computed there while the GPU computes the resident and
/// on-demand experts; their results come back up. One wait: the offsets.
Status hybridExperts(CudaKernelContext &c, const cpu::ExpertsLayout &l,
                     const std::vector<int64_t> &pruned, int64_t e) {
  ExpertResidency &r = *c.residency;
  const Tensor &x = c.inputs[0];
  const int64_t rows = x.dim(0), h = x.dim(1);
  const int64_t ffn = c.inputs[3].dim(2);
  Tensor offsetsT;
  MOE_ASSIGN_OR_RETURN(offsetsT, hostOffsets(c, e, rows));
  const int64_t *off = offsetsT.data<int64_t>();
  auto onCpu = [&](int64_t x2) { return r.placement[size_t(x2)] == 2; };
  cudaStream_t s = c.device.stream();
  // 1. The CPU experts' rows, down into a compact pinned buffer.
  std::vector<int64_t> compact(size_t(e + 1), 0);
  for (int64_t x2 = 0; x2 < e; ++x2)
    compact[size_t(x2 + 1)] =
        compact[size_t(x2)] + (onCpu(x2) ? off[x2 + 1] - off[x2] : 0);
  const int64_t cpuRows = compact[size_t(e)];
  float *xin = nullptr, *yout = nullptr;
  if (cpuRows > 0) {
    void *pinned;
    MOE_ASSIGN_OR_RETURN(pinned, c.device.pinned(uint64_t(2 * cpuRows * h) *
                                                 sizeof(float)));
    xin = static_cast<float *>(pinned);
    yout = xin + cpuRows * h;
    for (int64_t x2 = 0; x2 < e; ++x2) {
      const int64_t n = compact[size_t(x2 + 1)] - compact[size_t(x2)];
      if (n > 0)
        MOE_RETURN_IF_ERROR(kcu::check(
            cudaMemcpyAsync(xin + compact[size_t(x2)] * h,
                            x.data<float>() + off[x2] * h,
                            size_t(n * h) * sizeof(float),
                            cudaMemcpyDeviceToHost, s),
            "cudaMemcpyAsync(CPU experts' rows down)"));
    }
    MOE_RETURN_IF_ERROR(kcu::check(
        cudaEventRecord(static_cast<cudaEvent_t>(r.rowsDown), s),
        "cudaEventRecord(rows down)"));
    r.d2hBytes += uint64_t(cpuRows * h) * sizeof(float);
  }
  // 2. Every GPU expert on the stream. An on-demand expert is brought into
  // the cache (the least recently used slot goes) just before its GEMMs:
  // in stream order, so a slot is refilled only after the GEMMs that read
  // it, even when one step uses more on-demand experts than there are slots.
  auto cached = [&](int64_t x2) -> StatusOr<int> {
    if (!r.cache || r.cache->slots.empty())
      return Status::error("expert " + str(x2) + " is on demand but the "
                           "device cache has no slot (--device-cache)");
    ExpertCache &cache = *r.cache;
    int best = 0;
    for (size_t sIdx = 0; sIdx < cache.slots.size(); ++sIdx) {
      const ExpertCache::Slot &slot = cache.slots[sIdx];
      if (slot.step == r.step && slot.expert == x2) {
        best = int(sIdx);
        break;
      }
      if (slot.used < cache.slots[size_t(best)].used)
        best = int(sIdx);
    }
    ExpertCache::Slot &slot = cache.slots[size_t(best)];
    if (slot.step == r.step && slot.expert == x2) {
      ++cache.hits;
    } else {
      ++cache.misses;
      slot.step = slot.expert = -1; // until its bytes are all enqueued
      for (size_t i = 2; i < r.device.size(); ++i) {
        auto [src, bytes] = hostSlice(r.host[i], x2);
        MOE_RETURN_IF_ERROR(c.device.copyToDevice(slot.ptr[i], src, bytes));
        r.h2dBytes += bytes;
      }
      slot.step = r.step;
      slot.expert = x2;
    }
    slot.used = ++cache.clock;
    return best;
  };
  int64_t current = -1; // the expert whose matrices are being asked for
  int currentSlot = -1;
  MOE_RETURN_IF_ERROR(expertsOnDevice(
      c, l, pruned, e, off,
      [&](size_t i, int64_t x2, int64_t mr,
          int64_t mc) -> StatusOr<ExpertMatrix> {
        const void *data = r.device[i][size_t(x2)];
        if (r.placement[size_t(x2)] == 3) {
          if (current != x2) {
            MOE_ASSIGN_OR_RETURN(currentSlot, cached(x2));
            current = x2;
          }
          data = r.cache->slots[size_t(currentSlot)].ptr[i];
        }
        if (!data)
          return Status::error("expert " + str(x2) + " of input " +
                               str(int64_t(i)) + " is not on the device");
        return matrixAt(r.host[i], x2, mr, mc, data);
      },
      onCpu));
  if (cpuRows == 0)
    return Status::ok();
  // 3. Meanwhile, the CPU experts on the host.
  MOE_RETURN_IF_ERROR(kcu::check(
      cudaEventSynchronize(static_cast<cudaEvent_t>(r.rowsDown)),
      "cudaEventSynchronize(rows down)"));
  kernels::cpu::ExpertWeights w;
  auto bank = [&](size_t i, const float *&dense,
                  kernels::cpu::PackedBank &packed) {
    const Tensor &t = r.host[i];
    if (const PackedWeight *p = t.packed()) {
      packed.base = static_cast<const uint8_t *>(t.data());
      packed.offsets = p->offsets.data();
      packed.formats = p->formats.data();
    } else {
      dense = t.data<float>();
    }
  };
  bank(2, w.w1, w.w1p);
  bank(3, w.w2, w.w2p);
  size_t next = 4;
  if (l.w3)
    bank(next++, w.w3, w.w3p);
  if (l.b1)
    w.b1 = r.host[next++].data<float>();
  if (l.b2)
    w.b2 = r.host[next++].data<float>();
  if (l.b3)
    w.b3 = r.host[next++].data<float>();
  std::vector<uint8_t> mask(pruned.begin(), pruned.end());
  MOE_RETURN_IF_ERROR(kernels::cpu::experts(
      xin, cpuRows, h, compact.data(), e, ffn, w, l.act,
      mask.empty() ? nullptr : mask.data(), yout));
  // 4. Their results, up into y.
  float *y = out<float>(c, 0);
  for (int64_t x2 = 0; x2 < e; ++x2) {
    const int64_t n = compact[size_t(x2 + 1)] - compact[size_t(x2)];
    if (n > 0)
      MOE_RETURN_IF_ERROR(kcu::check(
          cudaMemcpyAsync(y + off[x2] * h, yout + compact[size_t(x2)] * h,
                          size_t(n * h) * sizeof(float),
                          cudaMemcpyHostToDevice, s),
          "cudaMemcpyAsync(CPU experts' rows up)"));
  }
  r.h2dBytes += uint64_t(cpuRows * h) * sizeof(float);
  // The pinned buffer is reused by the next step: wait for the copies.
  return kcu::check(cudaStreamSynchronize(s),
                    "cudaStreamSynchronize(CPU experts' rows up)");
}

} // namespace

StatusOr<std::unique_ptr<ExpertCache>>
makeExpertCache(CudaDevice &device, const std::vector<uint64_t> &bytes,
                int slots) {
  auto cache = std::make_unique<ExpertCache>();
  uint64_t total = 0;
  for (uint64_t b : bytes)
    total += (b + 255) / 256 * 256;
  for (int sIdx = 0; sIdx < slots; ++sIdx) {
    StatusOr<Tensor> d =
        device.scratch(total, "device cache slot " + str(int64_t(sIdx)));
    if (!d.isOk())
      return d.status();
    ExpertCache::Slot slot;
    uint8_t *at = static_cast<uint8_t *>(d->mutableData());
    for (uint64_t b : bytes) {
      slot.ptr.push_back(b ? at : nullptr);
      at += (b + 255) / 256 * 256;
    }
    cache->slots.push_back(std::move(slot));
    cache->held.push_back(std::move(*d));
  }
  return cache;
}

StatusOr<std::unique_ptr<ExpertResidency>>
makeResidency(CudaDevice &device, const StepInfo &step, int64_t index,
              const std::vector<Tensor> &host) {
  int64_t e;
  MOE_ASSIGN_OR_RETURN(e, cpu::expertCount(step.attrs));
  cpu::ExpertsLayout l;
  MOE_ASSIGN_OR_RETURN(l, cpu::expertsLayout(step.attrs, e));
  auto r = std::make_unique<ExpertResidency>();
  r->step = index;
  MOE_ASSIGN_OR_RETURN(r->placement, step.attrs.getInts(
                                         "placement", std::vector<int64_t>{}));
  r->placement.resize(size_t(e), 0);
  r->host = host;
  std::vector<int64_t> pruned;
  MOE_ASSIGN_OR_RETURN(pruned, step.attrs.getInts("pruned",
                                                  std::vector<int64_t>{}));
  const size_t last = l.w3 ? 4 : 3;
  r->device.assign(last + 1, std::vector<const void *>(size_t(e), nullptr));
  r->onDemandBytes.assign(last + 1, 0);
  for (size_t i = 2; i <= last; ++i) {
    const Tensor &t = host[i];
    if (!t.defined() || t.isOnDevice())
      return Status::error("the hybrid device needs w1, w2 and w3 of "
                           "moe.experts on the host (plan weights)");
    for (int64_t x2 = 0; x2 < e; ++x2) {
      int64_t where = r->placement[size_t(x2)];
      bool isPruned = size_t(x2) < pruned.size() && pruned[size_t(x2)];
      auto [src, bytes] = hostSlice(t, x2);
      if (where == 3 && !isPruned && bytes > 0) {
        r->onDemandBytes[i] = std::max(r->onDemandBytes[i], bytes);
        // Page-locked, so that each miss copies the expert with one DMA at
        // the PCIe rate the placement assumed. Where the system will not
        // lock the memory, the copies go through the staging (slower, but
        // correct).
        (void)device.pinHost(src, bytes);
      }
      if ((where != 0 && where != 1) || isPruned || bytes == 0)
        continue;
      StatusOr<Tensor> d = device.scratch(
          bytes, "expert " + str(x2) + " (GPU-resident) of input " +
                     str(int64_t(i)));
      if (!d.isOk())
        return d.status();
      MOE_RETURN_IF_ERROR(device.copyToDevice(d->mutableData(), src, bytes));
      r->device[i][size_t(x2)] = d->data();
      r->held.push_back(std::move(*d));
    }
  }
  cudaEvent_t ev;
  MOE_RETURN_IF_ERROR(kcu::check(
      cudaEventCreateWithFlags(&ev, cudaEventDisableTiming),
      "cudaEventCreateWithFlags(rows down)"));
  r->rowsDown = ev;
  return r;
}

CudaKernel expertsKernel() {
  CudaKernel k;
  k.name = "moe.experts";
  k.supports = [](const StepInfo &step, const Types &in) -> Status {
    for (const char *a : {"exchange_ranks", "tp_ranks"}) {
      const AttrValue *v = step.attrs.find(a);
      if (v && v->i > (std::string(a) == "tp_ranks" ? 1 : 0))
        return Status::error(std::string("a partitioned step (`") + a +
                             "`): NCCL ranks are not built yet");
    }
    MOE_RETURN_IF_ERROR(allF32(in, 0, 0));
    MOE_RETURN_IF_ERROR(allF32(in, 2));
    return Status::ok();
  };
  k.run = [](CudaKernelContext &c) -> Status {
    int64_t e;
    MOE_ASSIGN_OR_RETURN(e, cpu::expertCount(c.step.attrs));
    cpu::ExpertsLayout l;
    MOE_ASSIGN_OR_RETURN(l, cpu::expertsLayout(c.step.attrs, e));
    std::vector<int64_t> pruned;
    MOE_ASSIGN_OR_RETURN(pruned, c.step.attrs.getInts(
                                     "pruned", std::vector<int64_t>{}));
    const Tensor &x = c.inputs[0];
    const int64_t rows = x.dim(0);
    const int64_t ffn = c.inputs[3].dim(2);
    for (size_t i : {size_t(2), size_t(3), size_t(l.w3 ? 4 : 0)}) {
      const PackedWeight *p = i ? c.inputs[i].packed() : nullptr;
      if (p && int64_t(p->formats.size()) != e)
        return Status::error("input " + str(int64_t(i)) + " is packed in " +
                             str(int64_t(p->formats.size())) +
                             " slices, expected " + str(e));
    }
    if (c.residency)
      return hybridExperts(c, l, pruned, e);
    // Decode unless the offsets are on the host already (moe.dispatch
    // brought them for the GEMMs: CudaKernelContext::decodeMaxTokens).
    const bool hostHasOffsets =
        c.hostInputs.size() > 1 && c.hostInputs[1].defined();
    if (!hostHasOffsets && kcu::decodeOnDevice(rows, e))
      return expertsDecode(c, l, pruned, e, l.act.fused() ? 2 * ffn : ffn,
                           ffn);
    Tensor offsets;
    MOE_ASSIGN_OR_RETURN(offsets, hostOffsets(c, e, rows));
    return expertsOnDevice(
        c, l, pruned, e, offsets.data<int64_t>(),
        [&](size_t i, int64_t x2, int64_t mr,
            int64_t mc) -> StatusOr<ExpertMatrix> {
          return expertMatrix(c.inputs[i], x2, mr, mc);
        },
        [](int64_t) { return false; });
  };
  return k;
}

} // namespace moe::rt::cuda
