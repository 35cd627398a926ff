#pragma once
// UTF-8 validation and repair.
#include <cstddef>
#include <string>
#include <string_view>

namespace ellm {

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or values above
// U+10FFFF). On failure *bad_offset is the byte offset of the first bad sequence.
bool is_valid_utf8(std::string_view s, size_t* bad_offset = nullptr);

// Replaces each maximal invalid subsequence with U+FFFD (as WHATWG/Python's
// errors="replace" do).
std::string replace_invalid_utf8(std::string_view s);

// Length in bytes of the UTF-8 sequence starting with lead byte c (1 for invalid leads).
size_t utf8_sequence_length(unsigned char c);

// Appends the UTF-8 encoding of a code point.
void append_utf8(std::string& out, char32_t cp);

}  // namespace ellm
