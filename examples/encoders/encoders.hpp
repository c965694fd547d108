// examples/encoders/encoders.hpp — the pure text encodings behind the encoders
// example package (Morse, Base64, Rot13). No troupe dependency, so the unit
// tests link these without a worker. Pure functions; safe from any thread.
#pragma once

#include <string>
#include <string_view>

namespace encoders {

/// International Morse code. Letters are upper-cased (Morse has no case); the
/// codes of one word are separated by one space, words by " / ". A run of
/// whitespace is one word break; characters without a Morse code are dropped;
/// no separator leads or trails.
[[nodiscard]] std::string to_morse(std::string_view text);

/// Base64 of the bytes of text (RFC 4648 §4, standard alphabet, with padding).
[[nodiscard]] std::string to_base64(std::string_view text);

/// Rot13 of ASCII letters; every other byte is left as it is.
[[nodiscard]] std::string to_rot13(std::string_view text);

}  // namespace encoders
