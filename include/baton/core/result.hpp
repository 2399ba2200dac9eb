#pragma once
// Result<T, E>: a value or an error, returned by every call that crosses a port.

#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

#include "baton/core/error.hpp"

namespace baton {

// Thrown only when code reads the value of a Result that holds an error (a programming mistake).
class BadResultAccess : public std::logic_error {
 public:
  explicit BadResultAccess(const std::string& what) : std::logic_error(what) {}
};

namespace detail {
template <class E>
std::string describe_error(const E& error) {
  if constexpr (requires { error.message(); }) {
    return error.message();
  } else {
    return "result holds an error";
  }
}
}  // namespace detail

template <class T, class E = Error>
class [[nodiscard]] Result {
 public:
  using value_type = T;
  using error_type = E;

  // As std::expected: a default-constructed Result holds a value-initialised T.
  Result()
    requires std::is_default_constructible_v<T>
      : state_(std::in_place_index<0>) {}
  Result(const T& value) : state_(std::in_place_index<0>, value) {}
  Result(T&& value) : state_(std::in_place_index<0>, std::move(value)) {}
  Result(const E& error) : state_(std::in_place_index<1>, error) {}
  Result(E&& error) : state_(std::in_place_index<1>, std::move(error)) {}
  template <class U>
    requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, T> &&
             !std::is_constructible_v<E, U &&> && !std::is_same_v<std::decay_t<U>, Result>)
  Result(U&& value) : state_(std::in_place_index<0>, std::forward<U>(value)) {}
  // Lets `return errc::not_found;` and `return {errc::x, "why"}`-style errors convert when E is Error.
  Result(errc code)
    requires std::is_constructible_v<E, errc>
      : state_(std::in_place_index<1>, E(code)) {}

  bool has_value() const noexcept { return state_.index() == 0; }
  bool has_error() const noexcept { return state_.index() == 1; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { check(); return std::get<0>(state_); }
  const T& value() const& { check(); return std::get<0>(state_); }
  T&& value() && { check(); return std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const E& error() const& {
    if (!has_error()) throw BadResultAccess("error() called on a Result that holds a value");
    return std::get<1>(state_);
  }
  E&& error() && {
    if (!has_error()) throw BadResultAccess("error() called on a Result that holds a value");
    return std::get<1>(std::move(state_));
  }

  template <class U = T>
  T value_or(U&& fallback) const& {
    return has_value() ? std::get<0>(state_) : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  void check() const {
    if (!has_value()) throw BadResultAccess("value() called on a failed Result: " + detail::describe_error(std::get<1>(state_)));
  }
  std::variant<T, E> state_;
};

template <class E>
class [[nodiscard]] Result<void, E> {
 public:
  using value_type = void;
  using error_type = E;

  Result() = default;
  Result(const E& error) : error_(error) {}
  Result(E&& error) : error_(std::move(error)) {}
  Result(errc code)
    requires std::is_constructible_v<E, errc>
      : error_(E(code)) {}

  bool has_value() const noexcept { return !error_.has_value(); }
  bool has_error() const noexcept { return error_.has_value(); }
  explicit operator bool() const noexcept { return has_value(); }

  void value() const {
    if (error_) throw BadResultAccess("value() called on a failed Result: " + detail::describe_error(*error_));
  }
  const E& error() const& {
    if (!error_) throw BadResultAccess("error() called on a Result that holds a value");
    return *error_;
  }
  E&& error() && {
    if (!error_) throw BadResultAccess("error() called on a Result that holds a value");
    return std::move(*error_);
  }

 private:
  std::optional<E> error_;
};

// The success value of a Result<void>.
inline Result<void> ok() { return {}; }

}  // namespace baton
