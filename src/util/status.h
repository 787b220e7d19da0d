// SPDX-License-Identifier: Apache-2.0
// Status and Result<T>: how every fallible call in the core reports failure.
//
//   Result<Model> r = load_model_file("models/default.alm");
//   if (!r.ok()) { fprintf(stderr, "%s\n", r.status().to_string().c_str()); return 1; }
//   Model model = std::move(r).value();
//
// The core never throws, exits or aborts: a failure comes back as a code and a message that
// names the file, layer or value and the rule it broke.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace anomalens {

enum class StatusCode {
  kOk = 0,
  kInvalidModel,     // model file malformed or inconsistent
  kUnsupported,      // valid but uses something this build cannot run
  kDecodeFailed,     // image bytes could not be decoded
  kInvalidArgument,  // caller passed a bad value (size, flag, path)
  kOutOfMemory,      // an allocation or a configured limit was exceeded
  kIoError,          // a file could not be read or written
};

// Stable string for a code, e.g. "invalid_model"; used in JSON and JS errors.
const char* status_code_name(StatusCode code);

class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid_model: layer "conv3" (line 7): kernel size 0, must be >= 1".
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}                     // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace anomalens

// Propagates a failed Status from an expression returning Status.
#define ANOMALENS_RETURN_IF_ERROR(expr)        \
  do {                                         \
    ::anomalens::Status status_ = (expr);      \
    if (!status_.ok()) return status_;         \
  } while (0)
