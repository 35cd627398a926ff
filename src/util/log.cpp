#include "ellm/util/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include "ellm/util/error.h"

#include <cstdlib>

namespace ellm {

void init_logging(const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  // from_str maps unknown names to "off"; only accept it when asked for.
  if (lvl == spdlog::level::off && level != "off")
    fail("unknown --log-level '{}' (use trace, debug, info, warn, error or off)", level);
  static bool installed = false;
  if (!installed) {
    auto logger = spdlog::stderr_color_mt("ellm");
    spdlog::set_default_logger(logger);
    // Ranks of a multi-process job tag their lines.
    const char* rank = std::getenv("RANK");
    const char* world = std::getenv("WORLD_SIZE");
    bool multi = rank && world && std::string(world) != "1";
    spdlog::set_pattern(multi ? fmt::format("%Y-%m-%d %H:%M:%S.%e [rank {}] %^%-5l%$ %v", rank)
                              : std::string("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v"));
    installed = true;
  }
  spdlog::set_level(lvl);
}

}  // namespace ellm
