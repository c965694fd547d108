// examples/conflict/codec/codec.cpp — both releases of libcodec from one
// source; CODEC_MINOR (2 or 5) picks the release at compile time.
#include "codec.h"

#include <cstring>
#include <string>

#if !defined(CODEC_MINOR)
#error "define CODEC_MINOR (2 or 5)"
#endif

namespace {

#if CODEC_MINOR == 2
constexpr const char* version_text = "1.2";

// Reverses whole UTF-8 sequences: a continuation byte (10xxxxxx) stays behind
// the byte that starts its sequence.
std::string encode(const char* in) {
  std::string s(in);
  std::string r;
  r.reserve(s.size());
  std::size_t end = s.size();
  while (end > 0) {
    std::size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    r.append(s, start, end - start);
    end = start;
  }
  return r;
}
#elif CODEC_MINOR == 5
constexpr const char* version_text = "1.5";

std::string encode(const char* in) {
  std::string r = "[1.5] ";
  for (const char* p = in; *p != '\0'; ++p) r += (*p >= 'a' && *p <= 'z') ? static_cast<char>(*p - 'a' + 'A') : *p;
  return r;
}
#else
#error "CODEC_MINOR must be 2 or 5"
#endif

}  // namespace

extern "C" const char* codec_version(void) { return version_text; }

// Nothing may unwind through the C ABI: out of memory encodes as "".
extern "C" size_t codec_encode(const char* in, char* out, size_t out_size) {
  std::string r;
  try {
    r = encode(in != nullptr ? in : "");
  } catch (...) {
    r.clear();
  }
  if (out_size > 0) {
    std::size_t n = r.size() < out_size ? r.size() : out_size - 1;
    std::memcpy(out, r.data(), n);
    out[n] = '\0';
  }
  return r.size();
}
