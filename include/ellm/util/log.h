#pragma once
// Logging: spdlog's default logger, to stderr, one human-readable line per event.
// stdout is reserved for a command's output (JSON, tables).
#include <spdlog/spdlog.h>

#include <string>

namespace ellm {

// level: trace|debug|info|warn|error|off. Throws ellm::Error on an unknown level.
void init_logging(const std::string& level = "info");

}  // namespace ellm
