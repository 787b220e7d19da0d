// SPDX-License-Identifier: Apache-2.0
#include "util/status.h"

namespace anomalens {

const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidModel: return "invalid_model";
    case StatusCode::kUnsupported: return "unsupported";
    case StatusCode::kDecodeFailed: return "decode_failed";
    case StatusCode::kInvalidArgument: return "invalid_argument";
    case StatusCode::kOutOfMemory: return "out_of_memory";
    case StatusCode::kIoError: return "io_error";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  return std::string(status_code_name(code_)) + ": " + message_;
}

}  // namespace anomalens
