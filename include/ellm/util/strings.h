#pragma once
// Small string helpers shared across modules (no torch).
#include <string>
#include <string_view>
#include <vector>

namespace ellm {

std::string to_lower_ascii(std::string_view s);
std::string trim(std::string_view s);
std::vector<std::string> split(std::string_view s, char sep);
bool starts_with(std::string_view s, std::string_view prefix);
bool ends_with(std::string_view s, std::string_view suffix);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
// Collapse runs of ASCII whitespace to one space and trim.
std::string collapse_whitespace(std::string_view s);
// Edit distance, used to suggest the closest known name for a typo.
size_t levenshtein(std::string_view a, std::string_view b);
// The candidate closest to `name` (empty when none is reasonably close).
std::string closest_match(std::string_view name, const std::vector<std::string>& candidates);
// Human-readable byte count: "1.5 GiB".
std::string format_bytes(double bytes);

}  // namespace ellm
