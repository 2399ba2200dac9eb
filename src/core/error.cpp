#include "baton/core/error.hpp"

#include <cerrno>

namespace baton {
namespace {

class BatonCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "baton"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::invalid_argument: return "invalid argument";
      case errc::not_found: return "not found";
      case errc::conflict: return "version conflict";
      case errc::wrong_type: return "wrong type";
      case errc::decode_failed: return "decode failed";
      case errc::too_large: return "too large";
      case errc::permission_denied: return "permission denied";
      case errc::auth_failed: return "authentication failed";
      case errc::cancelled: return "cancelled";
      case errc::closed: return "closed";
      case errc::permanent_failure: return "permanent failure";
      case errc::unavailable: return "unavailable";
      case errc::timeout: return "timed out";
      case errc::in_progress: return "in progress elsewhere";
      case errc::resource_exhausted: return "resource exhausted";
      case errc::retryable_failure: return "retryable failure";
    }
    return "unknown baton error " + std::to_string(value);
  }
};

}  // namespace

const std::error_category& baton_category() noexcept {
  static const BatonCategory category;
  return category;
}

std::string Error::message() const {
  std::string text = code ? code.message() : std::string("no error");
  if (!detail.empty()) {
    text += ": ";
    text += detail;
  }
  return text;
}

bool is_retryable(std::error_code code) noexcept {
  if (code.category() == baton_category()) {
    switch (static_cast<errc>(code.value())) {
      case errc::unavailable:
      case errc::timeout:
      case errc::in_progress:
      case errc::resource_exhausted:
      case errc::retryable_failure:
        return true;
      default:
        return false;
    }
  }
  if (code.category() == std::generic_category() || code.category() == std::system_category()) {
    // Transport trouble passes; anything else (bad descriptor, bad address...) is a bug or a config
    // error that another attempt will not fix.
    switch (code.value()) {
      case ECONNREFUSED: case ECONNRESET: case ECONNABORTED: case ETIMEDOUT: case EPIPE:
      case EHOSTUNREACH: case ENETUNREACH: case ENETDOWN: case EAGAIN: case EINTR: case ENOBUFS:
        return true;
      default:
        return false;
    }
  }
  return false;
}

bool is_retryable(const Error& error) noexcept { return is_retryable(error.code); }

}  // namespace baton
