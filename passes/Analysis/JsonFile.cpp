//===- JsonFile.cpp - Versioned JSON documents of the analyses ------------===//

#include "passes/Analysis/JsonFile.h"

#include "llvm/Support/MemoryBuffer.h"

#include <cmath>

namespace moe::analysis {

llvm::Error fileError(llvm::StringRef path, const llvm::Twine &what) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 path.str() + ": " + what.str());
}

llvm::Expected<std::string> readFile(llvm::StringRef path,
                                     llvm::StringRef what) {
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buffer)
    return llvm::createStringError(buffer.getError(),
                                   path.str() + ": cannot read " + what.str() +
                                       ": " + buffer.getError().message());
  return (*buffer)->getBuffer().str();
}

llvm::Expected<llvm::json::Value> parseVersioned(llvm::StringRef json,
                                                 llvm::StringRef path,
                                                 llvm::StringRef format,
                                                 int64_t version,
                                                 llvm::StringRef what) {
  llvm::Expected<llvm::json::Value> v = llvm::json::parse(json);
  if (!v)
    return fileError(path, "not valid JSON: " + llvm::toString(v.takeError()));
  const llvm::json::Object *root = v->getAsObject();
  if (!root || root->getString("format") != std::optional<llvm::StringRef>(format))
    return fileError(path, "not a " + what + " (\"format\": \"" + format +
                               "\" missing)");
  std::optional<int64_t> got = root->getInteger("version");
  if (got != version)
    return fileError(path, what + " version " +
                               (got ? std::to_string(*got) : "?") +
                               " is not supported (this compiler reads "
                               "version " +
                               std::to_string(version) + ")");
  return std::move(*v);
}

llvm::Expected<double> readNumber(const llvm::json::Object *o,
                                  llvm::StringRef key, llvm::StringRef where,
                                  bool positive, llvm::StringRef path) {
  std::optional<double> x = o ? o->getNumber(key) : std::nullopt;
  if (!x || !std::isfinite(*x))
    return fileError(path, "`" + where + "` is missing or not a number");
  if (*x < 0 || (positive && *x == 0))
    return fileError(path, "`" + where + "` must be " +
                               (positive ? "positive" : "non-negative"));
  return *x;
}

} // namespace moe::analysis
