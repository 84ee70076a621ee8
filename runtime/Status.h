//===- Status.h - Error values of the runtime -------------------*- C++ -*-===//
//
// The runtime reports every failure as a Status value carrying one line of
// text; nothing in runtime/ or kernels/ aborts on user input.
//
//===----------------------------------------------------------------------===//
#ifndef MOE_RUNTIME_STATUS_H
#define MOE_RUNTIME_STATUS_H

#include <string>
#include <utility>

namespace moe::rt {

/// Success, or a one-line error message.
class [[nodiscard]] Status {
public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status error(std::string message) {
    Status s;
    s.failed_ = true;
    s.message_ = std::move(message);
    return s;
  }
  bool isOk() const { return !failed_; }
  explicit operator bool() const { return !failed_; }
  const std::string &message() const { return message_; }
  /// Prepends context ("step 3 `nn.matmul`: ") to an error; no-op on success.
  Status withContext(const std::string &context) const {
    if (!failed_)
      return *this;
    return error(context + ": " + message_);
  }

private:
  bool failed_ = false;
  std::string message_;
};

/// A value or an error.
template <typename T> class [[nodiscard]] StatusOr {
public:
  StatusOr(T value) : value_(std::move(value)) {}
  StatusOr(Status status) : status_(std::move(status)) {}
  bool isOk() const { return status_.isOk(); }
  const Status &status() const { return status_; }
  T &value() { return value_; }
  const T &value() const { return value_; }
  T &operator*() { return value_; }
  T *operator->() { return &value_; }

private:
  Status status_;
  T value_{};
};

#define MOE_RETURN_IF_ERROR(expr)                                              \
  do {                                                                         \
    ::moe::rt::Status _moe_status = (expr);                                    \
    if (!_moe_status.isOk())                                                   \
      return _moe_status;                                                      \
  } while (false)

} // namespace moe::rt

#endif // MOE_RUNTIME_STATUS_H
