#include <gtest/gtest.h>

#include "baton/core/result.hpp"

namespace baton {
namespace {

TEST(Error, OneFunctionDecidesRetryable) {
  for (auto code : {errc::unavailable, errc::timeout, errc::in_progress, errc::resource_exhausted, errc::retryable_failure}) {
    EXPECT_TRUE(is_retryable(Error{code})) << make_error_code(code).message();
  }
  for (auto code : {errc::invalid_argument, errc::not_found, errc::conflict, errc::wrong_type, errc::decode_failed,
                    errc::too_large, errc::permission_denied, errc::auth_failed, errc::cancelled, errc::closed,
                    errc::permanent_failure}) {
    EXPECT_FALSE(is_retryable(Error{code})) << make_error_code(code).message();
  }
}

TEST(Error, SocketErrorsAreJudgedToo) {
  EXPECT_TRUE(is_retryable(std::make_error_code(std::errc::connection_refused)));
  EXPECT_TRUE(is_retryable(std::make_error_code(std::errc::connection_reset)));
  EXPECT_FALSE(is_retryable(std::make_error_code(std::errc::bad_file_descriptor)));
  EXPECT_FALSE(is_retryable(std::error_code{}));
}

TEST(Error, MessageCarriesCodeAndDetail) {
  const Error error{errc::permission_denied, "XADD phase.plan.in: NOPERM this user has no permissions"};
  EXPECT_EQ(error.message(), "permission denied: XADD phase.plan.in: NOPERM this user has no permissions");
  EXPECT_EQ(Error{errc::timeout}.message(), "timed out");
  EXPECT_STREQ(baton_category().name(), "baton");
}

TEST(Result, HoldsValueOrError) {
  Result<int> good = 5;
  ASSERT_TRUE(good);
  EXPECT_EQ(*good, 5);
  Result<int> bad = Error{errc::not_found, "key x"};
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), errc::not_found);
  EXPECT_EQ(bad.value_or(7), 7);
  Result<int> from_code = errc::timeout;
  EXPECT_EQ(from_code.error(), errc::timeout);
}

TEST(Result, ReadingTheWrongSideThrowsWithTheError) {
  Result<std::string> bad = Error{errc::closed, "bus shut down"};
  try {
    (void)bad.value();
    FAIL() << "no throw";
  } catch (const BadResultAccess& failure) {
    EXPECT_NE(std::string(failure.what()).find("bus shut down"), std::string::npos);
  }
  Result<std::string> good = std::string("x");
  EXPECT_THROW((void)good.error(), BadResultAccess);
}

TEST(Result, VoidResult) {
  Result<void> fine = ok();
  EXPECT_TRUE(fine);
  Result<void> failed = Error{errc::conflict};
  EXPECT_FALSE(failed);
  EXPECT_EQ(failed.error(), errc::conflict);
  EXPECT_THROW(failed.value(), BadResultAccess);
}

}  // namespace
}  // namespace baton
