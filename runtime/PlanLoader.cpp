//===- PlanLoader.cpp - Loading and verifying plan files ------------------===//

#include "runtime/PlanLoader.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace moe::rt {

std::string LoadedPlan::inputName(size_t i) const {
  const std::string &name = values_[inputs_[i]].name;
  return name.empty() ? "input_" + std::to_string(i) : name;
}

std::string LoadedPlan::outputName(size_t i) const {
  const std::string &name = values_[outputs_[i]].name;
  return name.empty() ? "output_" + std::to_string(i) : name;
}

namespace {

/// A read-only file mapping, unmapped with its last owner.
struct Mapping {
  void *addr = nullptr;
  size_t size = 0;
  Mapping(void *a, size_t s) : addr(a), size(s) {}
  ~Mapping() {
    if (addr)
      ::munmap(addr, size);
  }
};

std::string str(uint64_t v) { return std::to_string(v); }

template <typename T>
std::vector<T> toVector(const flatbuffers::Vector<T> *v) {
  return v ? std::vector<T>(v->begin(), v->end()) : std::vector<T>();
}

/// A name read from the plan, made safe for a one-line message: control
/// characters and backslashes are escaped.
std::string printable(const std::string &name) {
  std::string out;
  for (unsigned char c : name) {
    if (c >= 0x20 && c != 0x7F && c != '\\') {
      out += char(c);
      continue;
    }
    const char *hex = "0123456789abcdef";
    out += c == '\\' ? std::string("\\\\")
                      : std::string("\\x") + hex[c >> 4] + hex[c & 15];
  }
  return out;
}

bool knownKind(ValueKind k) {
  return k == ValueKind::Input || k == ValueKind::Weight ||
         k == ValueKind::Temp;
}

} // namespace

/// Reads a buffer whose FlatBuffer has passed the verifier into a LoadedPlan,
/// checking the semantic rules; friend of LoadedPlan.
class PlanReader {
public:
  PlanReader(const uint8_t *base, const LoadOptions &options, LoadedPlan &out)
      : base_(base), options_(options), out_(out) {}

  /// Records where the plan comes from, before read().
  void attach(const std::string &path, const plan::PlanHeader &header,
              std::shared_ptr<const void> mapping, bool fileMapped) {
    out_.path_ = path;
    out_.fileMapped_ = fileMapped;
    out_.header_ = header;
    out_.mapping_ = std::move(mapping);
    out_.registry_ = options_.registry ? options_.registry
                                       : &KernelRegistry::builtin();
  }

  Status read(const moe_plan::Plan &plan);

private:
  Status readWeights(const moe_plan::Plan &plan);
  Status verifyWeights() const;
  Status checkPadding() const;
  Status readValues(const moe_plan::Plan &plan, const moe_plan::Program &prog);
  Status readSteps(const moe_plan::Program &prog);
  Status checkStep(size_t index, const StepInfo &step);
  /// Whether value `id` is a packed weight (values are read already).
  bool isPacked(uint32_t id) const {
    const ValueInfo &v = out_.values_[id];
    return v.kind == ValueKind::Weight &&
           out_.weights_[size_t(v.weight)].packed();
  }
  static StatusOr<Attrs>
  readAttrs(const flatbuffers::Vector<flatbuffers::Offset<moe_plan::Attr>> *v);

  const uint8_t *base_;
  const LoadOptions &options_;
  LoadedPlan &out_;
  /// Per value: defined yet, freed by which step (-1: not freed).
  std::vector<bool> defined_;
  std::vector<int64_t> freedBy_;
  std::vector<bool> isOutput_;
};

StatusOr<Attrs> PlanReader::readAttrs(
    const flatbuffers::Vector<flatbuffers::Offset<moe_plan::Attr>> *v) {
  std::vector<AttrValue> attrs;
  if (!v)
    return Attrs();
  for (const moe_plan::Attr *a : *v) {
    AttrValue av;
    av.name = a->name()->str();
    av.kind = a->kind();
    if (int(av.kind) < int(AttrKind::Int) || int(av.kind) > int(AttrKind::String))
      return Status::error("attribute `" + printable(av.name) +
                           "` has unknown kind " +
                           std::to_string(int(av.kind)));
    av.i = a->i();
    av.f = a->f();
    av.ints = toVector(a->ints());
    av.floats = toVector(a->floats());
    av.s = a->s() ? a->s()->str() : "";
    for (const AttrValue &prev : attrs)
      if (prev.name == av.name)
        return Status::error("attribute `" + printable(av.name) +
                             "` appears twice");
    attrs.push_back(std::move(av));
  }
  return Attrs(std::move(attrs));
}

namespace {

/// "int4 g128 f16 scales", "plain f32", "bf16": a slice format in words.
std::string formatWords(const kernels::cpu::QuantFormat &f) {
  if (f.bits == kernels::cpu::kAbsentBits)
    return "absent (pruned)";
  if (f.bits == 0)
    return "plain f32";
  if (f.bits == 16)
    return "bf16";
  return "int" + std::to_string(f.bits) + " g" + std::to_string(f.groupSize) +
         (f.f16Scales ? " f16" : " f32") + " scales" +
         (f.zeroPoints ? " with zero points" : "");
}

/// Reads and checks the slices of a packed weight (the Weight.slices rules
/// of plan.fbs); `info.size` must equal the end of the last slice.
Status readSlices(const moe_plan::Weight &w, WeightInfo &info) {
  const auto *slices = w.slices();
  if (!slices || slices->size() == 0)
    return Status::ok();
  if (info.shape.size() < 2)
    return Status::error("has " + str(slices->size()) +
                         " slices but a packed weight needs rank >= 2, not " +
                         formatShape(info.shape));
  if (info.dtype != DType::F32)
    return Status::error("is packed but has dtype " + dtypeName(info.dtype) +
                         " (packed weights are f32)");
  if (int64_t(slices->size()) != info.shape[0])
    return Status::error("has " + str(slices->size()) + " slices, expected " +
                         std::to_string(info.shape[0]) +
                         " (one per index of dimension 0)");
  int64_t rows = info.shape[1], cols = 1;
  for (size_t d = 2; d < info.shape.size(); ++d)
    cols *= info.shape[d]; // no overflow: checkedNumElements passed
  uint64_t end = 0;
  for (size_t j = 0; j < slices->size(); ++j) {
    const moe_plan::WeightSlice *s = slices->Get(flatbuffers::uoffset_t(j));
    std::string where = "slice " + str(j) + ": ";
    WeightSliceInfo si;
    si.format.bits = s->bits();
    si.format.groupSize = s->group_size();
    si.format.f16Scales = s->scale_dtype() == DType::F16;
    si.format.zeroPoints = s->zero_points();
    si.offset = s->offset();
    si.size = s->size();
    int bits = si.format.bits;
    if (bits != 0 && bits != 16 && bits != 8 && bits != 4 && bits != 3 &&
        bits != 2 && bits != kernels::cpu::kAbsentBits)
      return Status::error(where + "bits " + std::to_string(bits) +
                           " is not 0, 16, 8, 4, 3, 2 or 1 (absent)");
    if (bits == kernels::cpu::kAbsentBits &&
        (si.format.groupSize != 0 || si.format.zeroPoints))
      return Status::error(where + "an absent slice has no group size or "
                                   "zero points");
    if (bits != 0 && bits != 16 && bits != kernels::cpu::kAbsentBits) {
      int g = si.format.groupSize;
      if (g != 32 && g != 64 && g != 128)
        return Status::error(where + "group size " + std::to_string(g) +
                             " is not 32, 64 or 128");
      if (s->scale_dtype() != DType::F16 && s->scale_dtype() != DType::F32)
        return Status::error(where + "scale dtype " +
                             dtypeName(s->scale_dtype()) +
                             " is not f16 or f32");
    }
    if (si.offset % plan::kBlobAlignment != 0)
      return Status::error(where + "offset " + str(si.offset) +
                           " is not a multiple of 64");
    if (si.offset < end)
      return Status::error(where + "offset " + str(si.offset) +
                           " overlaps the previous slice, which ends at " +
                           str(end));
    uint64_t want =
        uint64_t(kernels::cpu::quantLayout(si.format, rows, cols).totalBytes);
    if (si.size != want)
      return Status::error(where + "size is " + str(si.size) + " bytes, a " +
                           std::to_string(rows) + "x" + std::to_string(cols) +
                           " matrix in " + formatWords(si.format) + " needs " +
                           str(want));
    if (si.offset > UINT64_MAX - si.size)
      return Status::error(where + "offset " + str(si.offset) +
                           " overflows");
    end = si.offset + si.size;
    info.slices.push_back(si);
  }
  if (info.size != end)
    return Status::error("size is " + str(info.size) +
                         " bytes but its last slice ends at " + str(end));
  return Status::ok();
}

} // namespace

Status PlanReader::readWeights(const moe_plan::Plan &plan) {
  const plan::PlanHeader &h = out_.header_;
  if (!plan.weights())
    return Status::ok();
  for (size_t i = 0; i < plan.weights()->size(); ++i) {
    const moe_plan::Weight *w = plan.weights()->Get(flatbuffers::uoffset_t(i));
    WeightInfo info;
    info.name = w->name()->str();
    info.dtype = w->dtype();
    info.shape = toVector(w->shape());
    info.offset = w->offset();
    info.size = w->size();
    info.checksum = w->checksum();
    std::string who = "weight " + str(i) + " `" + printable(info.name) + "`";
    std::string where = who + ": ";
    if (!isKnownDType(info.dtype))
      return Status::error(where + "unknown " + dtypeName(info.dtype));
    StatusOr<int64_t> n = checkedNumElements(info.shape, dtypeSize(info.dtype));
    if (!n.isOk())
      return Status::error(where + n.status().message());
    MOE_RETURN_IF_ERROR(readSlices(*w, info).withContext(who));
    info.sliceChecksums = toVector(w->slice_checksums());
    if (!info.sliceChecksums.empty() &&
        (info.shape.empty() ||
         int64_t(info.sliceChecksums.size()) != info.shape[0]))
      return Status::error(where + str(int64_t(info.sliceChecksums.size())) +
                           " slice checksums for " +
                           (info.shape.empty() ? std::string("a scalar")
                                               : str(info.shape[0]) +
                                                     " indices of dimension 0"));
    uint64_t bytes = uint64_t(*n) * dtypeSize(info.dtype);
    if (!info.packed() && info.size != bytes)
      return Status::error(where + "size is " + str(info.size) + " bytes, " +
                           formatType(info.dtype, info.shape) + " needs " +
                           str(bytes));
    if (info.offset % plan::kBlobAlignment != 0)
      return Status::error(where + "offset " + str(info.offset) +
                           " is not a multiple of 64");
    if (info.offset > h.blobsSize || info.size > h.blobsSize - info.offset)
      return Status::error(where + "bytes [" + str(info.offset) + ", +" +
                           str(info.size) + ") lie outside the " +
                           str(h.blobsSize) + "-byte blob section");
    out_.weightBytes_ += info.size;
    out_.weights_.push_back(std::move(info));
  }
  const uint8_t *blobs = base_ + h.blobsOffset;
  for (const WeightInfo &w : out_.weights_) {
    if (!w.packed()) {
      out_.weightTensors_.push_back(
          Tensor::view(w.dtype, w.shape, blobs + w.offset, out_.mapping_));
      continue;
    }
    auto packed = std::make_shared<PackedWeight>();
    packed->rows = w.shape[1];
    packed->cols = 1;
    for (size_t d = 2; d < w.shape.size(); ++d)
      packed->cols *= w.shape[d];
    for (const WeightSliceInfo &s : w.slices) {
      packed->formats.push_back(s.format);
      packed->offsets.push_back(s.offset);
      packed->sizes.push_back(s.size);
    }
    out_.weightTensors_.push_back(Tensor::packedView(
        w.dtype, w.shape, blobs + w.offset, out_.mapping_, std::move(packed)));
  }
  return Status::ok();
}

std::optional<std::vector<bool>>
expertSlicesRead(const StepInfo &step, size_t input, int64_t slices, int rank) {
  if (step.kind != StepKind::Call || step.kernelName != "moe.experts" ||
      input < 2 || input > 4 || slices < 1)
    return std::nullopt;
  StatusOr<int64_t> e = step.attrs.getInt("num_experts"),
                    tp = step.attrs.getInt("tp_ranks", 1),
                    peers = step.attrs.getInt("exchange_peers_of", 0),
                    w3 = step.attrs.getInt("has_w3", 0);
  if (!e.isOk() || !tp.isOk() || !peers.isOk() || !w3.isOk() ||
      (input == 4 && *w3 == 0) || *e < 1 || *tp < 1 || rank < 0)
    return std::nullopt;
  int64_t cut;
  if (__builtin_mul_overflow(*e, *tp, &cut) || cut != slices)
    return std::nullopt;
  const bool exchange = step.attrs.has("exchange_ranks");
  if (!exchange && *tp == 1)
    return std::nullopt; // every rank reads every expert
  // The experts the rank (its node, in a hybrid step) holds.
  std::vector<bool> held(static_cast<size_t>(*e), !exchange);
  if (exchange) {
    const int64_t holder = *peers > 0 ? rank / *peers : rank;
    StatusOr<std::vector<int64_t>> replicas = step.attrs.getInts("replicas"),
                                   offsets =
                                       step.attrs.getInts("replica_offsets");
    if (!replicas.isOk() || !offsets.isOk() ||
        int64_t(offsets->size()) != *e + 1)
      return std::nullopt;
    for (int64_t x = 0; x < *e; ++x)
      for (int64_t j = (*offsets)[size_t(x)]; j < (*offsets)[size_t(x) + 1];
           ++j) {
        if (j < 0 || size_t(j) >= replicas->size())
          return std::nullopt;
        if ((*replicas)[size_t(j)] == holder)
          held[size_t(x)] = true;
      }
  }
  // ... and of each, the rank's slice (the whole expert without tp_ranks).
  const int64_t slice = *tp == 1 ? 0 : *peers > 0 ? rank % *tp : rank;
  if (slice >= *tp)
    return std::nullopt;
  std::vector<bool> read(static_cast<size_t>(slices), false);
  for (int64_t x = 0; x < *e; ++x)
    read[size_t(slice * *e + x)] = held[size_t(x)];
  return read;
}

/// The weights' checksums (after the steps are read: a rank of an
/// expert-parallel plan checks only the experts it holds, where the plan
/// has per-expert checksums).
Status PlanReader::verifyWeights() const {
  const uint8_t *blobs = base_ + out_.header_.blobsOffset;
  const size_t n = out_.weights_.size();
  // Per weight: the indices of dimension 0 to check, or empty for all of
  // the weight (its whole checksum).
  std::vector<std::vector<bool>> partial(n);
  if (options_.rank >= 0) {
    std::vector<int> uses(n, 0), expertUses(n, 0);
    for (const StepInfo &step : out_.steps_)
      for (size_t in = 0; in < step.inputs.size(); ++in) {
        int32_t w = out_.values_[step.inputs[in]].weight;
        if (w < 0)
          continue;
        ++uses[size_t(w)];
        const WeightInfo &info = out_.weights_[size_t(w)];
        if (info.shape.empty() || info.sliceChecksums.empty())
          continue;
        std::optional<std::vector<bool>> read =
            expertSlicesRead(step, in, info.shape[0], options_.rank);
        if (!read)
          continue;
        std::vector<bool> &held = partial[size_t(w)];
        held.resize(read->size(), false);
        for (size_t x = 0; x < read->size(); ++x)
          held[x] = held[x] || (*read)[x];
        ++expertUses[size_t(w)];
      }
    for (size_t w = 0; w < n; ++w)
      if (uses[w] == 0 || uses[w] != expertUses[w])
        partial[w].clear(); // read whole somewhere: check it whole
  }
  std::vector<std::string> errors(n);
  tbb::parallel_for(size_t(0), n, [&](size_t i) {
    const WeightInfo &w = out_.weights_[i];
    std::string who = "weight " + str(int64_t(i)) + " `" +
                      printable(w.name) + "`";
    if (partial[i].empty()) {
      if (plan::hashBytes(blobs + w.offset, size_t(w.size)) != w.checksum)
        errors[i] = who + ": checksum mismatch (the weight bytes are "
                          "corrupted)";
      return;
    }
    for (size_t x = 0; x < partial[i].size(); ++x) {
      if (!partial[i][x])
        continue;
      uint64_t at = w.packed() ? w.slices[x].offset
                               : w.size / partial[i].size() * x;
      uint64_t bytes = w.packed() ? w.slices[x].size
                                  : w.size / partial[i].size();
      if (plan::hashBytes(blobs + w.offset + at, size_t(bytes)) !=
          w.sliceChecksums[x]) {
        errors[i] = who + ": the checksum of index " + str(int64_t(x)) +
                    " (an expert this rank holds) does not match (the "
                    "weight bytes are corrupted)";
        return;
      }
    }
  });
  for (const std::string &e : errors)
    if (!e.empty())
      return Status::error(e);
  return checkPadding();
}

/// Bytes outside the header, the FlatBuffer and the weights are padding,
/// which the writer leaves zero: checking it means that no byte of a plan can
/// change unnoticed.
Status PlanReader::checkPadding() const {
  const plan::PlanHeader &h = out_.header_;
  std::vector<std::pair<uint64_t, uint64_t>> used; // [begin, end) in the file
  used.push_back({0, plan::kHeaderSize});
  used.push_back({h.fbOffset, h.fbOffset + h.fbSize});
  for (const WeightInfo &w : out_.weights_)
    used.push_back({h.blobsOffset + w.offset, h.blobsOffset + w.offset + w.size});
  std::sort(used.begin(), used.end());
  uint64_t pos = 0;
  auto checkZero = [&](uint64_t begin, uint64_t end) -> Status {
    for (uint64_t i = begin; i < end; ++i)
      if (base_[i] != 0)
        return Status::error("padding byte at file offset " + str(i) +
                             " is not zero (the file is corrupted)");
    return Status::ok();
  };
  for (const auto &[begin, end] : used) {
    if (begin > pos)
      MOE_RETURN_IF_ERROR(checkZero(pos, begin));
    pos = std::max(pos, end);
  }
  return checkZero(pos, h.fileSize);
}

Status PlanReader::readValues(const moe_plan::Plan &plan,
                              const moe_plan::Program &prog) {
  out_.inputs_ = toVector(prog.inputs());
  out_.outputs_ = toVector(prog.outputs());
  size_t numValues = plan.values() ? plan.values()->size() : 0;
  for (size_t i = 0; i < numValues; ++i) {
    const moe_plan::Value *v = plan.values()->Get(flatbuffers::uoffset_t(i));
    ValueInfo info;
    info.dtype = v->dtype();
    info.shape = toVector(v->shape());
    info.kind = v->kind();
    info.weight = v->weight();
    info.input = v->input();
    info.name = v->name() ? v->name()->str() : "";
    std::string where = "value " + str(i) + ": ";
    if (!isKnownDType(info.dtype))
      return Status::error(where + "unknown " + dtypeName(info.dtype));
    for (int64_t d : info.shape)
      if (d < -1)
        return Status::error(where + "shape has dim " + std::to_string(d));
    if (!knownKind(info.kind))
      return Status::error(where + "unknown kind " +
                           std::to_string(int(info.kind)));
    if (info.kind == ValueKind::Weight) {
      if (info.weight < 0 || size_t(info.weight) >= out_.weights_.size())
        return Status::error(where + "refers to weight " +
                             std::to_string(info.weight) + " but the plan has " +
                             str(out_.weights_.size()));
      const WeightInfo &w = out_.weights_[size_t(info.weight)];
      if (w.dtype != info.dtype || w.shape != info.shape)
        return Status::error(where + "has type " +
                             formatType(info.dtype, info.shape) + " but weight " +
                             std::to_string(info.weight) + " is " +
                             formatType(w.dtype, w.shape));
    }
    if (info.kind == ValueKind::Input &&
        (info.input < 0 || size_t(info.input) >= out_.inputs_.size() ||
         out_.inputs_[size_t(info.input)] != i))
      return Status::error(where + "is input " + std::to_string(info.input) +
                           " but is not listed there in the program inputs");
    out_.values_.push_back(std::move(info));
  }
  for (size_t i = 0; i < out_.inputs_.size(); ++i) {
    uint32_t id = out_.inputs_[i];
    if (id >= numValues || out_.values_[id].kind != ValueKind::Input ||
        out_.values_[id].input != int32_t(i))
      return Status::error("program input " + str(i) + " is value " + str(id) +
                           ", which is not an input value with index " +
                           str(i));
  }
  for (size_t i = 0; i < out_.outputs_.size(); ++i)
    if (out_.outputs_[i] >= numValues)
      return Status::error("program output " + str(i) + " is value " +
                           str(out_.outputs_[i]) + ", out of range (" +
                           str(numValues) + " values)");
  return Status::ok();
}

Status PlanReader::checkStep(size_t index, const StepInfo &step) {
  size_t numValues = out_.values_.size();
  auto checkIds = [&](const std::vector<uint32_t> &ids,
                      const char *what) -> Status {
    for (size_t i = 0; i < ids.size(); ++i)
      if (ids[i] >= numValues)
        return Status::error(std::string(what) + " " + str(i) + " is value " +
                             str(ids[i]) + ", out of range (" +
                             str(numValues) + " values)");
    return Status::ok();
  };
  MOE_RETURN_IF_ERROR(checkIds(step.inputs, "input"));
  MOE_RETURN_IF_ERROR(checkIds(step.outputs, "output"));
  for (size_t i = 0; i < step.inputs.size(); ++i) {
    uint32_t id = step.inputs[i];
    if (!defined_[id])
      return Status::error("input " + str(i) + " (value " + str(id) +
                           ") is used before it is defined");
    if (freedBy_[id] >= 0)
      return Status::error("input " + str(i) + " (value " + str(id) +
                           ") is used after step " + str(uint64_t(freedBy_[id])) +
                           " freed it");
  }
  if (step.kind == StepKind::Free) {
    if (!step.outputs.empty())
      return Status::error("a free step has outputs");
    for (uint32_t id : step.inputs) {
      if (out_.values_[id].kind != ValueKind::Temp)
        return Status::error("frees value " + str(id) +
                             ", which is not a temporary");
      if (isOutput_[id])
        return Status::error("frees value " + str(id) +
                             ", which is a program output");
      if (freedBy_[id] >= 0)
        return Status::error("frees value " + str(id) + " twice");
      freedBy_[id] = int64_t(index);
    }
    return Status::ok();
  }
  for (size_t i = 0; i < step.outputs.size(); ++i) {
    uint32_t id = step.outputs[i];
    if (out_.values_[id].kind != ValueKind::Temp)
      return Status::error("output " + str(i) + " (value " + str(id) +
                           ") is not a temporary");
    if (defined_[id])
      return Status::error("output " + str(i) + " (value " + str(id) +
                           ") is defined twice");
    defined_[id] = true;
  }
  auto typeOf = [&](uint32_t id) {
    return TensorType{out_.values_[id].dtype, out_.values_[id].shape,
                      isPacked(id)};
  };
  if (step.kind == StepKind::Copy) {
    if (step.inputs.size() != 1 || step.outputs.size() != 1)
      return Status::error("a copy has " + str(step.inputs.size()) +
                           " inputs and " + str(step.outputs.size()) +
                           " outputs, expected 1 and 1");
    if (isPacked(step.inputs[0]))
      return Status::error("input 0 (value " + str(step.inputs[0]) +
                           ") is a packed (quantised) weight; a copy takes "
                           "plain tensors");
    TensorType in = typeOf(step.inputs[0]), o = typeOf(step.outputs[0]);
    if (in.dtype != o.dtype || !shapesCompatible(in.shape, o.shape))
      return Status::error("copies " + formatType(in.dtype, in.shape) +
                           " into " + formatType(o.dtype, o.shape));
    return Status::ok();
  }
  KernelSignature sig;
  for (uint32_t id : step.inputs)
    sig.inputs.push_back(typeOf(id));
  for (uint32_t id : step.outputs)
    sig.outputs.push_back(typeOf(id));
  sig.attrs = &step.attrs;
  return KernelRegistry::verify(*step.kernel, sig);
}

Status PlanReader::readSteps(const moe_plan::Program &prog) {
  size_t numValues = out_.values_.size();
  defined_.assign(numValues, false);
  freedBy_.assign(numValues, -1);
  isOutput_.assign(numValues, false);
  for (uint32_t id : out_.outputs_)
    isOutput_[id] = true;
  for (size_t i = 0; i < numValues; ++i)
    defined_[i] = out_.values_[i].kind != ValueKind::Temp;
  const KernelRegistry &registry = *out_.registry_;
  size_t numSteps = prog.steps() ? prog.steps()->size() : 0;
  for (size_t i = 0; i < numSteps; ++i) {
    const moe_plan::Step *s = prog.steps()->Get(flatbuffers::uoffset_t(i));
    StepInfo step;
    step.kind = s->kind();
    step.device = s->device();
    step.kernelName = s->kernel() ? s->kernel()->str() : "";
    step.inputs = toVector(s->inputs());
    step.outputs = toVector(s->outputs());
    std::string where = "step " + str(i);
    switch (step.kind) {
    case StepKind::Call:
      where += " `" + printable(step.kernelName) + "`";
      break;
    case StepKind::Copy:
      where += " (copy)";
      break;
    case StepKind::Free:
      where += " (free)";
      break;
    default:
      return Status::error(where + ": unknown step kind " +
                           std::to_string(int(step.kind)));
    }
    if (step.device != Device::CPU && step.device != Device::CUDA)
      return Status::error(where + ": unknown device " +
                           std::to_string(int(step.device)));
    StatusOr<Attrs> attrs = readAttrs(s->attrs());
    if (!attrs.isOk())
      return attrs.status().withContext(where);
    step.attrs = std::move(*attrs);
    if (step.kind == StepKind::Call) {
      step.kernel = registry.find(step.kernelName);
      if (!step.kernel)
        return Status::error(where + ": unknown kernel");
    }
    MOE_RETURN_IF_ERROR(checkStep(i, step).withContext(where));
    out_.steps_.push_back(std::move(step));
  }
  for (size_t i = 0; i < out_.outputs_.size(); ++i) {
    if (!defined_[out_.outputs_[i]])
      return Status::error("program output " + str(i) + " (value " +
                           str(out_.outputs_[i]) + ") is never defined");
    if (isPacked(out_.outputs_[i]))
      return Status::error("program output " + str(i) + " (value " +
                           str(out_.outputs_[i]) +
                           ") is a packed (quantised) weight");
  }
  return Status::ok();
}

Status PlanReader::read(const moe_plan::Plan &plan) {
  out_.version_ = plan.version();
  if (out_.version_ != plan::kPlanFormatVersion)
    return Status::error("Plan.version is " + str(out_.version_) +
                         " but this runtime reads version " +
                         str(plan::kPlanFormatVersion) +
                         " (recompile the model)");
  out_.producer_ = plan.producer() ? plan.producer()->str() : "";
  const moe_plan::Program &prog = *plan.main();
  out_.programName_ = prog.name() ? prog.name()->str() : "";
  StatusOr<Attrs> meta = readAttrs(plan.metadata());
  if (!meta.isOk())
    return meta.status().withContext("metadata");
  out_.metadata_ = std::move(*meta);
  MOE_RETURN_IF_ERROR(readWeights(plan));
  MOE_RETURN_IF_ERROR(readValues(plan, prog));
  MOE_RETURN_IF_ERROR(readSteps(prog));
  return options_.verifyWeights ? verifyWeights() : Status::ok();
}

namespace {

StatusOr<std::unique_ptr<LoadedPlan>>
loadMapped(std::shared_ptr<const void> mapping, const uint8_t *base,
           size_t size, const std::string &path, const LoadOptions &options,
           bool fileMapped) {
  auto fail = [&](const Status &st) {
    return StatusOr<std::unique_ptr<LoadedPlan>>(st.withContext(path));
  };
  auto plan = std::make_unique<LoadedPlan>();
  plan::PlanHeader header{};
  Status st = plan::checkHeader(base, size, header);
  if (!st.isOk())
    return fail(st);
  // The writer ends the file with the blob section; anything else would be
  // bytes no check covers.
  if (header.blobsOffset + header.blobsSize != header.fileSize)
    return fail(Status::error(
        "header: the blob section ends at " +
        std::to_string(header.blobsOffset + header.blobsSize) +
        ", not at the end of the file (" + std::to_string(header.fileSize) +
        ")"));
  if (header.flags != 0)
    return fail(Status::error("header: unknown flags " +
                              std::to_string(header.flags) +
                              " (this runtime defines none)"));
  const uint8_t *fb = base + header.fbOffset;
  size_t fbSize = size_t(header.fbSize);
  if (plan::hashBytes(fb, fbSize) != header.fbChecksum)
    return fail(Status::error(
        "flatbuffer checksum mismatch (the file is corrupted)"));
  if (fbSize < 8 || !moe_plan::PlanBufferHasIdentifier(fb))
    return fail(Status::error("flatbuffer identifier is not `MOEP`"));
  flatbuffers::Verifier verifier(fb, fbSize);
  if (!moe_plan::VerifyPlanBuffer(verifier))
    return fail(Status::error(
        "flatbuffer fails the FlatBuffers verifier (corrupted plan)"));
  // Only now may the FlatBuffer be read.
  PlanReader reader(base, options, *plan);
  reader.attach(path, header, std::move(mapping), fileMapped);
  st = reader.read(*moe_plan::GetPlan(fb));
  if (!st.isOk())
    return fail(st);
  return StatusOr<std::unique_ptr<LoadedPlan>>(std::move(plan));
}

} // namespace

StatusOr<std::unique_ptr<LoadedPlan>> loadPlan(const std::string &path,
                                               const LoadOptions &options) {
  using Result = StatusOr<std::unique_ptr<LoadedPlan>>;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Result(Status::error(path + ": cannot open: " + std::strerror(errno)));
  struct stat sb;
  if (::fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    ::close(fd);
    return Result(Status::error(path + ": not a regular file"));
  }
  size_t size = size_t(sb.st_size);
  std::shared_ptr<Mapping> mapping;
  const uint8_t *base = nullptr;
  if (size > 0) {
    void *addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      return Result(
          Status::error(path + ": cannot map: " + std::strerror(err)));
    }
    mapping = std::make_shared<Mapping>(addr, size);
    base = static_cast<const uint8_t *>(addr);
  }
  ::close(fd);
  return loadMapped(mapping, base, size, path, options, /*fileMapped=*/true);
}

StatusOr<std::unique_ptr<LoadedPlan>>
loadPlanFromMemory(const uint8_t *data, size_t size, const std::string &name,
                   const LoadOptions &options) {
  // A 64-byte aligned private copy: the FlatBuffers verifier checks
  // alignment, and weight views need the blob alignment.
  size_t rounded = (size + 63) / 64 * 64;
  void *copy = std::aligned_alloc(64, rounded ? rounded : 64);
  if (!copy)
    return StatusOr<std::unique_ptr<LoadedPlan>>(
        Status::error(name + ": out of memory"));
  if (size)
    std::memcpy(copy, data, size);
  std::shared_ptr<void> owner(copy, [](void *p) { std::free(p); });
  return loadMapped(owner, static_cast<const uint8_t *>(copy), size, name,
                    options, /*fileMapped=*/false);
}

} // namespace moe::rt

namespace moe::rt {

Status LoadedPlan::releasePages(size_t i, uint64_t offset,
                                uint64_t bytes) const {
  if (!fileMapped_ || i >= weightTensors_.size() || bytes == 0)
    return Status::ok();
  const WeightInfo &w = weights_[i];
  if (offset > w.size || bytes > w.size - offset)
    return Status::error("releasePages: bytes [" + std::to_string(offset) +
                         ", " + std::to_string(offset + bytes) +
                         ") are outside weight `" + w.name + "`");
  static const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const auto *base =
      static_cast<const uint8_t *>(weightTensors_[i].data()) + offset;
  uintptr_t from = (uintptr_t(base) + page - 1) / page * page;
  uintptr_t to = uintptr_t(base + bytes) / page * page;
  if (to > from && ::madvise(reinterpret_cast<void *>(from), to - from,
                             MADV_DONTNEED) != 0)
    return Status::error("madvise of weight `" + w.name + "` failed: " +
                         std::strerror(errno));
  return Status::ok();
}

StatusOr<size_t>
LoadedPlan::overrideAttrs(std::string_view kernel,
                          const std::function<void(Attrs &)> &edit) {
  std::vector<std::pair<size_t, Attrs>> edited;
  for (size_t s = 0; s < steps_.size(); ++s) {
    const StepInfo &step = steps_[s];
    if (step.kind != StepKind::Call || step.kernelName != kernel)
      continue;
    Attrs attrs = step.attrs;
    edit(attrs);
    KernelSignature sig;
    auto typeOf = [&](uint32_t id) {
      const ValueInfo &v = values_[id];
      bool packed = v.kind == ValueKind::Weight && v.weight >= 0 &&
                    weights_[size_t(v.weight)].packed();
      return TensorType{v.dtype, v.shape, packed};
    };
    for (uint32_t id : step.inputs)
      sig.inputs.push_back(typeOf(id));
    for (uint32_t id : step.outputs)
      sig.outputs.push_back(typeOf(id));
    sig.attrs = &attrs;
    Status st = KernelRegistry::verify(*step.kernel, sig);
    if (!st.isOk())
      return st.withContext("step " + std::to_string(s) + " `" +
                            step.kernelName + "`");
    edited.emplace_back(s, std::move(attrs));
  }
  for (auto &[s, attrs] : edited)
    steps_[s].attrs = std::move(attrs);
  return edited.size();
}

} // namespace moe::rt
