#include "encoders.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstddef>

namespace encoders {
namespace {

// International Morse code (ITU-R M.1677-1) plus the common non-ITU signs
// ! ; _ $ & found in most tables. Letters appear in upper case only.
struct morse_entry {
  char c;
  const char* code;
};
constexpr morse_entry morse_entries[] = {
    {'A', ".-"},     {'B', "-..."},   {'C', "-.-."},   {'D', "-.."},     {'E', "."},       {'F', "..-."},
    {'G', "--."},    {'H', "...."},   {'I', ".."},     {'J', ".---"},    {'K', "-.-"},     {'L', ".-.."},
    {'M', "--"},     {'N', "-."},     {'O', "---"},    {'P', ".--."},    {'Q', "--.-"},    {'R', ".-."},
    {'S', "..."},    {'T', "-"},      {'U', "..-"},    {'V', "...-"},    {'W', ".--"},     {'X', "-..-"},
    {'Y', "-.--"},   {'Z', "--.."},   {'0', "-----"},  {'1', ".----"},   {'2', "..---"},   {'3', "...--"},
    {'4', "....-"},  {'5', "....."},  {'6', "-...."},  {'7', "--..."},   {'8', "---.."},   {'9', "----."},
    {'.', ".-.-.-"}, {',', "--..--"}, {'?', "..--.."}, {'\'', ".----."}, {'!', "-.-.--"},  {'/', "-..-."},
    {'(', "-.--."},  {')', "-.--.-"}, {'&', ".-..."},  {':', "---..."},  {';', "-.-.-."},  {'=', "-...-"},
    {'+', ".-.-."},  {'-', "-....-"}, {'_', "..--.-"}, {'"', ".-..-."},  {'$', "...-..-"}, {'@', ".--.-."},
};

// Indexed by ASCII code; nullptr: no Morse code.
constexpr auto morse_table = [] {
  std::array<const char*, 128> t{};
  for (const auto& e : morse_entries) t[static_cast<unsigned char>(e.c)] = e.code;
  return t;
}();

const char* morse_code(char c) {
  auto u = static_cast<unsigned char>(c);
  return u < morse_table.size() ? morse_table[u] : nullptr;
}

// ASCII only: the C library's toupper/isspace depend on the locale.
constexpr char ascii_upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }
constexpr bool ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

}  // namespace

std::string to_morse(std::string_view text) {
  std::string out;
  bool word_break = false;
  for (char c : text) {
    if (ascii_space(c)) {
      word_break = true;
      continue;
    }
    const char* code = morse_code(ascii_upper(c));
    if (code == nullptr) continue;
    // Separators are written before a code, never after, so none trails and a
    // word made only of dropped characters leaves no empty " / / ".
    if (!out.empty()) out += word_break ? " / " : " ";
    word_break = false;
    out += code;
  }
  return out;
}

std::string to_base64(std::string_view text) {
  // EVP_EncodeBlock takes an int length: encode in chunks that are a multiple
  // of 3 bytes so that only the last one is padded.
  constexpr std::size_t chunk = 3 * 1024 * 1024;
  std::string out;
  out.reserve((text.size() + 2) / 3 * 4);
  std::string buf;
  for (std::size_t pos = 0; pos < text.size(); pos += chunk) {
    std::size_t n = std::min(chunk, text.size() - pos);
    buf.resize((n + 2) / 3 * 4 + 1);  // + the NUL EVP_EncodeBlock writes
    int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(buf.data()),
                              reinterpret_cast<const unsigned char*>(text.data() + pos), static_cast<int>(n));
    out.append(buf.data(), static_cast<std::size_t>(len));
  }
  return out;
}

std::string to_rot13(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z')
      c = static_cast<char>('a' + (c - 'a' + 13) % 26);
    else if (c >= 'A' && c <= 'Z')
      c = static_cast<char>('A' + (c - 'A' + 13) % 26);
  }
  return out;
}

}  // namespace encoders
