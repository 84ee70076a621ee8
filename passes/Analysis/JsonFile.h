//===- JsonFile.h - Versioned JSON documents of the analyses ----*- C++ -*-===//
//
// The profiles, device profiles and topologies our analyses read are JSON
// documents with a "format" name and a "version"; these helpers read and
// check them with one-line errors that start with the file's path.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_PASSES_ANALYSIS_JSONFILE_H
#define MOE_PASSES_ANALYSIS_JSONFILE_H

#include "llvm/ADT/StringRef.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <cstdint>
#include <string>

namespace moe::analysis {

/// "PATH: WHAT" as an error.
llvm::Error fileError(llvm::StringRef path, const llvm::Twine &what);

/// The text of `path`; "PATH: cannot read WHAT: REASON" on failure.
llvm::Expected<std::string> readFile(llvm::StringRef path,
                                     llvm::StringRef what);

/// Parses `json` and checks that it is an object with "format": `format`
/// and "version": `version` (`what` names the kind of document in errors).
llvm::Expected<llvm::json::Value> parseVersioned(llvm::StringRef json,
                                                 llvm::StringRef path,
                                                 llvm::StringRef format,
                                                 int64_t version,
                                                 llvm::StringRef what);

/// The finite number `o[key]`, >= 0 (> 0 with `positive`); `where` names
/// the field in errors ("`gpu.launch_s` must be non-negative").
llvm::Expected<double> readNumber(const llvm::json::Object *o,
                                  llvm::StringRef key, llvm::StringRef where,
                                  bool positive, llvm::StringRef path);

} // namespace moe::analysis

#endif // MOE_PASSES_ANALYSIS_JSONFILE_H
