//===- RoutingProfile.cpp - Reading moe-exec routing profiles -------------===//

#include "passes/Analysis/RoutingProfile.h"

#include "passes/Analysis/ExpertInventory.h"
#include "passes/Analysis/JsonFile.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/Support/Base64.h"
#include "llvm/Support/JSON.h"

#include <cmath>
#include <cstring>

using namespace mlir;
using namespace mlir::moe;

double LayerRouting::frequency(int64_t e) const {
  int64_t total = 0;
  for (const ExpertRouting &x : experts)
    total += x.count;
  return total ? double(experts[size_t(e)].count) / double(total) : 0.0;
}

double LayerRouting::energyShare(int64_t e) const {
  double total = 0;
  for (const ExpertRouting &x : experts)
    total += x.weightSqSum;
  return total > 0 ? experts[size_t(e)].weightSqSum / total : 0.0;
}

double LayerRouting::weightShare(int64_t e) const {
  double total = 0;
  for (const ExpertRouting &x : experts)
    total += x.weightSum;
  return total > 0 ? experts[size_t(e)].weightSum / total : 0.0;
}

std::optional<ImportanceKind>
mlir::moe::parseImportanceKind(llvm::StringRef name) {
  if (name == "energy")
    return ImportanceKind::Energy;
  if (name == "mixed")
    return ImportanceKind::Mixed;
  if (name == "frequency")
    return ImportanceKind::Frequency;
  if (name == "weight")
    return ImportanceKind::Weight;
  if (name == "uniform")
    return ImportanceKind::Uniform;
  return std::nullopt;
}

std::vector<double> mlir::moe::expertImportance(const LayerRouting *layer,
                                                int64_t numExperts,
                                                ImportanceKind kind,
                                                double frequencyWeight,
                                                double floor) {
  std::vector<double> imp(static_cast<size_t>(numExperts), 1.0);
  if (layer && kind != ImportanceKind::Uniform)
    for (int64_t x = 0; x < numExperts && x < layer->numExperts; ++x) {
      double f = layer->frequency(x), w = layer->weightShare(x);
      switch (kind) {
      case ImportanceKind::Energy:
        imp[size_t(x)] = layer->energyShare(x);
        break;
      case ImportanceKind::Mixed:
        imp[size_t(x)] = frequencyWeight * f + (1 - frequencyWeight) * w;
        break;
      case ImportanceKind::Frequency:
        imp[size_t(x)] = f;
        break;
      case ImportanceKind::Weight:
        imp[size_t(x)] = w;
        break;
      case ImportanceKind::Uniform:
        break;
      }
    }
  double mean = 0;
  for (double v : imp)
    mean += v / double(numExperts);
  for (double &v : imp)
    v = std::max(v, floor * mean);
  return imp;
}

namespace {
/// Collects the first error with its JSON path.
class Reader {
public:
  explicit Reader(std::string file) : file_(std::move(file)) {}
  llvm::Error error(const std::string &where, const std::string &what) const {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   file_ + ": " + where + what);
  }

  llvm::Error getInt(const llvm::json::Object &o, llvm::StringRef key,
                     const std::string &where, int64_t &out, int64_t min) {
    std::optional<int64_t> v = o.getInteger(key);
    if (!v)
      return error(where, "`" + key.str() + "` is missing or not an integer");
    if (*v < min)
      return error(where, "`" + key.str() + "` is " + std::to_string(*v) +
                              ", expected >= " + std::to_string(min));
    out = *v;
    return llvm::Error::success();
  }
  llvm::Error getNumber(const llvm::json::Object &o, llvm::StringRef key,
                        const std::string &where, double &out) {
    std::optional<double> v = o.getNumber(key);
    if (!v || !std::isfinite(*v))
      return error(where, "`" + key.str() + "` is missing or not a number");
    if (*v < 0)
      return error(where, "`" + key.str() + "` is negative");
    out = *v;
    return llvm::Error::success();
  }
  llvm::Error getInts(const llvm::json::Object &o, llvm::StringRef key,
                      const std::string &where, std::vector<int64_t> &out,
                      bool optional, int64_t min = 0) {
    const llvm::json::Array *a = o.getArray(key);
    if (!a) {
      if (optional)
        return llvm::Error::success();
      return error(where, "`" + key.str() + "` is missing or not an array");
    }
    for (const llvm::json::Value &v : *a) {
      std::optional<int64_t> i = v.getAsInteger();
      if (!i || *i < min)
        return error(where, "`" + key.str() + "` must hold integers >= " +
                                std::to_string(min));
      out.push_back(*i);
    }
    return llvm::Error::success();
  }

private:
  std::string file_;
};
} // namespace

llvm::Expected<RoutingProfile>
mlir::moe::parseRoutingProfile(llvm::StringRef json, llvm::StringRef path) {
  Reader r(path.str());
  llvm::Expected<llvm::json::Value> parsed = ::moe::analysis::parseVersioned(
      json, path, "moe-profile", kRoutingProfileVersion, "routing profile");
  if (!parsed)
    return parsed.takeError();
  const llvm::json::Object *root = parsed->getAsObject();
  RoutingProfile p;
  p.path = path.str();
  p.version = kRoutingProfileVersion;
  if (auto id = root->getString("model_id"))
    p.modelId = id->str();
  if (auto plan = root->getString("plan"))
    p.plan = plan->str();
  if (llvm::Error e = r.getInt(*root, "runs", "", p.runs, 0))
    return std::move(e);
  const llvm::json::Array *layers = root->getArray("layers");
  if (!layers || layers->empty())
    return r.error("", "`layers` is missing or empty");
  for (size_t l = 0; l < layers->size(); ++l) {
    std::string where = "layer " + std::to_string(l) + ": ";
    const llvm::json::Object *lo = (*layers)[l].getAsObject();
    if (!lo)
      return r.error(where, "not an object");
    LayerRouting layer;
    if (llvm::Error e = r.getInt(*lo, "num_experts", where, layer.numExperts, 1))
      return std::move(e);
    if (llvm::Error e = r.getInt(*lo, "top_k", where, layer.topK, 1))
      return std::move(e);
    if (llvm::Error e = r.getInt(*lo, "hidden", where, layer.hidden, -1))
      return std::move(e);
    if (llvm::Error e = r.getInt(*lo, "tokens", where, layer.tokens, 0))
      return std::move(e);
    if (const llvm::json::Array *a = lo->getArray("slot_weight_mean"))
      for (const llvm::json::Value &v : *a)
        layer.slotWeightMean.push_back(v.getAsNumber().value_or(0.0));
    if (llvm::Error e = r.getInts(*lo, "top1_weight_histogram", where,
                                  layer.top1Histogram, /*optional=*/true))
      return std::move(e);
    layer.routingEntropyMean =
        lo->getNumber("routing_entropy_mean").value_or(0.0);
    const llvm::json::Array *experts = lo->getArray("experts");
    if (!experts || int64_t(experts->size()) != layer.numExperts)
      return r.error(where, "`experts` must list all " +
                                std::to_string(layer.numExperts) + " experts");
    for (size_t x = 0; x < experts->size(); ++x) {
      std::string ew = where + "expert " + std::to_string(x) + ": ";
      const llvm::json::Object *eo = (*experts)[x].getAsObject();
      if (!eo)
        return r.error(ew, "not an object");
      ExpertRouting er;
      if (llvm::Error e = r.getInt(*eo, "count", ew, er.count, 0))
        return std::move(e);
      if (llvm::Error e = r.getNumber(*eo, "weight_sum", ew, er.weightSum))
        return std::move(e);
      er.weightMean = er.count ? er.weightSum / double(er.count) : 0.0;
      if (eo->get("weight_sq_sum")) {
        if (llvm::Error e =
                r.getNumber(*eo, "weight_sq_sum", ew, er.weightSqSum))
          return std::move(e);
      } else {
        er.weightSqSum = er.weightMean * er.weightMean * double(er.count);
      }
      if (llvm::Error e =
              r.getInts(*eo, "slot_counts", ew, er.slotCounts, true))
        return std::move(e);
      layer.experts.push_back(std::move(er));
    }
    if (const llvm::json::Object *so = lo->getObject("samples")) {
      int64_t hidden = 0;
      if (llvm::Error e = r.getInt(*so, "rows", where + "samples: ",
                                   layer.sampleRows, 0))
        return std::move(e);
      if (llvm::Error e = r.getInt(*so, "hidden", where + "samples: ", hidden,
                                   1))
        return std::move(e);
      if (layer.hidden >= 0 && hidden != layer.hidden)
        return r.error(where, "samples have hidden size " +
                                  std::to_string(hidden) + ", the layer " +
                                  std::to_string(layer.hidden));
      layer.hidden = hidden;
      if (llvm::Error e =
              r.getInts(*so, "ids", where + "samples: ", layer.sampleIds,
                        /*optional=*/false, /*min=*/-1))
        return std::move(e);
      if (int64_t(layer.sampleIds.size()) != layer.sampleRows * layer.topK)
        return r.error(where, "samples: `ids` must hold rows * top_k ids");
      for (int64_t id : layer.sampleIds)
        if (id >= layer.numExperts)
          return r.error(where, "samples: expert id " + std::to_string(id) +
                                    " is out of range");
      std::optional<llvm::StringRef> data = so->getString("data_f32le_base64");
      if (!data)
        return r.error(where, "samples: `data_f32le_base64` is missing");
      std::vector<char> bytes;
      if (llvm::Error e = llvm::decodeBase64(*data, bytes))
        return r.error(where, "samples: bad base64: " +
                                  llvm::toString(std::move(e)));
      if (int64_t(bytes.size()) !=
          layer.sampleRows * hidden * int64_t(sizeof(float)))
        return r.error(where, "samples: data holds " +
                                  std::to_string(bytes.size()) +
                                  " bytes, expected rows * hidden * 4");
      layer.samples.resize(bytes.size() / sizeof(float));
      std::memcpy(layer.samples.data(), bytes.data(), bytes.size());
      for (float f : layer.samples)
        if (!std::isfinite(f))
          return r.error(where, "samples: data holds a non-finite value");
    }
    p.layers.push_back(std::move(layer));
  }
  return p;
}

llvm::Expected<RoutingProfile>
mlir::moe::readRoutingProfile(llvm::StringRef path) {
  llvm::Expected<std::string> text = ::moe::analysis::readFile(path, "profile");
  if (!text)
    return text.takeError();
  return parseRoutingProfile(*text, path);
}

llvm::Expected<std::optional<RoutingProfile>>
mlir::moe::loadProfileFor(llvm::StringRef path, Operation *root) {
  if (path.empty())
    return std::optional<RoutingProfile>();
  llvm::Expected<RoutingProfile> p = readRoutingProfile(path);
  if (!p)
    return p.takeError();
  if (llvm::Error e = checkProfileMatches(*p, root))
    return std::move(e);
  return std::optional<RoutingProfile>(std::move(*p));
}

llvm::Expected<ExpertPassInputs>
mlir::moe::loadExpertPassInputs(llvm::StringRef path, Operation *root) {
  llvm::Expected<std::optional<RoutingProfile>> routing =
      loadProfileFor(path, root);
  if (!routing)
    return routing.takeError();
  ExpertPassInputs in{ExpertInventory(root), std::move(*routing)};
  if (in.inventory.layers().empty())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "the module has no moe.experts op");
  return std::move(in);
}

llvm::Error mlir::moe::checkProfileMatches(const RoutingProfile &profile,
                                           Operation *root) {
  auto fail = [&](const std::string &what) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   profile.path + ": " + what);
  };
  std::string id;
  if (auto attr = root->getAttrOfType<StringAttr>("moe.model_id"))
    id = attr.getValue().str();
  else
    id = modelFingerprint(root);
  if (profile.modelId.empty())
    return fail("the profile has no model_id; record it again with this "
                "moe-exec");
  if (profile.modelId != id)
    return fail("recorded for model " + profile.modelId +
                (profile.plan.empty() ? "" : " (plan " + profile.plan + ")") +
                ", but this module is model " + id +
                ": a profile of a different model");
  ExpertInventory inventory(root);
  if (inventory.layers().size() != profile.layers.size())
    return fail("has " + std::to_string(profile.layers.size()) +
                " MoE layers, the module " +
                std::to_string(inventory.layers().size()));
  for (const ExpertLayer &layer : inventory.layers())
    if (profile.layers[layer.index].numExperts != layer.numExperts)
      return fail("layer " + std::to_string(layer.index) + " has " +
                  std::to_string(profile.layers[layer.index].numExperts) +
                  " experts, the module's " +
                  std::to_string(layer.numExperts));
  return llvm::Error::success();
}
