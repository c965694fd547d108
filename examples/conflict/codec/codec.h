// examples/conflict/codec/codec.h — libcodec, a stand-in for any third-party
// shared library that ships incompatible releases under one soname.
//
// Two builds exist (CMake targets conflict_codec_1_2 and conflict_codec_1_5).
// Both are libcodec.so.1 with the same two symbols; they differ only in what
// those symbols do, which is exactly what a dynamic loader cannot tell apart.
//
//   codec 1.2: codec_version() = "1.2"; encodes by reversing the text (code
//              point by code point, so valid UTF-8 stays valid)
//   codec 1.5: codec_version() = "1.5"; encodes by upper-casing ASCII letters
//              behind the tag "[1.5] "
//
// Plain C ABI, no state: every function is safe from any thread.
#pragma once

#include <stddef.h>

#define CODEC_API __attribute__((visibility("default")))

#ifdef __cplusplus
extern "C" {
#endif

/// The release this library was built as: "1.2" or "1.5". Static storage.
CODEC_API const char* codec_version(void);

/// Encodes the NUL-terminated text in. Writes at most out_size bytes to out,
/// always NUL-terminated when out_size > 0 (truncated if needed), and returns
/// the length of the full encoding without the NUL, like snprintf: call with
/// out_size 0 (out may then be NULL) to learn the size to allocate.
CODEC_API size_t codec_encode(const char* in, char* out, size_t out_size);

#ifdef __cplusplus
}
#endif
