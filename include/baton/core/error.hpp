#pragma once
// Errors as values: one error-code enum for Baton's runtime, a category, and the `Error` value that
// carries a code plus a human diagnostic. `is_retryable` is the single place that decides whether a
// failure is worth another attempt.

#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace baton {

enum class errc {
  // Permanent: trying again with the same input gives the same answer.
  invalid_argument = 1,   // bad input from the caller (names what and where in the detail)
  not_found,              // the thing asked for does not exist
  conflict,               // compare-and-swap lost: the version did not match
  wrong_type,             // the stored value is not of the kind the operation needs
  decode_failed,          // bytes that do not decode as what they must be (an envelope, a payload)
  too_large,              // over a configured size limit
  permission_denied,      // the credentials are valid but not allowed to do this
  auth_failed,            // wrong user or password
  cancelled,              // the caller asked to stop
  closed,                 // the component was shut down
  permanent_failure,      // a handler said: do not try again
  // Retryable: the same call may succeed later.
  unavailable,            // the server or connection is not there right now
  timeout,                // no answer in time, or a deadline passed
  in_progress,            // somebody else is doing it right now
  resource_exhausted,     // rate limited, out of memory on the server, queue full
  retryable_failure,      // a handler said: try again later
};

}  // namespace baton

template <>
struct std::is_error_code_enum<baton::errc> : std::true_type {};

namespace baton {

const std::error_category& baton_category() noexcept;

inline std::error_code make_error_code(errc code) noexcept {
  return {static_cast<int>(code), baton_category()};
}

// A failure: what kind (`code`) and a diagnostic for humans (`detail`), for example the command that
// failed and the server's own words.
struct Error {
  std::error_code code;
  std::string detail;

  Error() = default;
  Error(std::error_code error_code, std::string text = {})
      : code(error_code), detail(std::move(text)) {}
  Error(errc error_code, std::string text = {})
      : code(make_error_code(error_code)), detail(std::move(text)) {}

  // "<code message>: <detail>", or just the code message when there is no detail.
  std::string message() const;

  friend bool operator==(const Error& error, errc value) noexcept {
    return error.code == make_error_code(value);
  }
};

// True when the same operation may succeed if tried again later. Codes of other categories (for
// example system errors from a socket) are judged here too, so every caller agrees.
bool is_retryable(const Error& error) noexcept;
bool is_retryable(std::error_code code) noexcept;

// Short-hands for handlers: say whether the failure is worth another attempt.
inline Error retryable_failure(std::string detail) { return {errc::retryable_failure, std::move(detail)}; }
inline Error permanent_failure(std::string detail) { return {errc::permanent_failure, std::move(detail)}; }

}  // namespace baton
