#pragma once
// Errors: one exception type, whose message names what was wrong and where
// (file, line, field, tensor). The CLI prints it and exits non-zero.
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace ellm {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace ellm

// ELLM_CHECK(cond, "tensor {} has shape {}", name, shape): throws ellm::Error when cond is false.
#define ELLM_CHECK(cond, ...)          \
  do {                                 \
    if (!(cond)) ::ellm::fail(__VA_ARGS__); \
  } while (0)
