#pragma once
// The message of the ellm::Error a call throws ("" when it throws none), and an expectation
// that a text contains a part: how tests check that bad input is named in the error.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "ellm/util/error.h"

namespace ellm::test_support {

inline std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace ellm::test_support

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)
