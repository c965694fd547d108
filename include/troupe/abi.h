/* troupe/abi.h — the C boundary between a worker (the host) and a package.
 *
 * A package is a shared library exporting one symbol, TROUPE_ENTRY_SYMBOL, of
 * type troupe_entry_fn. The worker calls it once after dlopen with the host's
 * ABI version and a table of host functions; the package fills a descriptor
 * listing its actor types. The worker refuses a package whose descriptor
 * carries another ABI version.
 *
 * Rules of the boundary: only C types cross it. No exception, STL object or
 * allocator. Strings are pointer + length and are borrowed for the duration of
 * the call only. Whoever allocates frees: actor state is created and destroyed
 * by the package; messages are owned by the host.
 *
 * Threading: a worker runs all actors of a package on one thread; host
 * functions may only be called from inside a callback the host made
 * (create/handle), on that thread, with the context it passed.
 *
 * Package authors do not use this header directly: troupe/actor.hpp wraps it
 * in classes (start there).
 */
#ifndef TROUPE_ABI_H
#define TROUPE_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any incompatible change of the structures or functions below. */
#define TROUPE_ABI_VERSION 1u
#define TROUPE_ENTRY_SYMBOL "troupe_package_entry_v1"

/* A stable logical actor id: high 32 bits the system that allocated it, low 32
 * bits a serial. 0 is "no address". */
typedef uint64_t troupe_address;

/* What a delivered message is. */
typedef enum troupe_message_kind {
  TROUPE_MSG_TELL = 1,        /* one-way message */
  TROUPE_MSG_ASK = 2,         /* request: answer with host->reply */
  TROUPE_MSG_REPLY = 3,       /* answer to this actor's ask; correlation = ask id */
  TROUPE_MSG_ASK_FAILED = 4,  /* the ask failed (timeout, dead letter); payload = reason */
  TROUPE_MSG_TIMER = 5,       /* a timer this actor scheduled; correlation = timer id */
  TROUPE_MSG_EXIT = 6,        /* exit request: the system is stopping this actor */
  TROUPE_MSG_DEAD_LETTER = 7, /* a tell of this actor could not be delivered; payload = reason */
  TROUPE_MSG_POISON = 8,      /* a tell of this actor was being handled when its receiver died:
                                 type and payload are the tell's, reason says how it died;
                                 it is not redelivered */
  TROUPE_MSG_EXITED = 9       /* exit notice of a watched actor: from = the watched address,
                                 type = "stopped" | "restarted" | "failed", reason = why */
} troupe_message_kind;

/* A message as the host hands it to a handler. Borrowed for the call. */
typedef struct troupe_message {
  uint32_t kind; /* troupe_message_kind */
  troupe_address from;
  uint64_t correlation; /* ask id for ASK/REPLY/ASK_FAILED, timer id for TIMER */
  const char* type;
  size_t type_len;
  const uint8_t* payload;
  size_t payload_len;
  /* Why, for POISON and EXITED (else empty). Appended within ABI v1: a
   * package built before it simply never reads it. */
  const char* reason;
  size_t reason_len;
} troupe_message;

/* Opaque per-call context the host passes to create/handle. */
typedef struct troupe_context troupe_context;

typedef enum troupe_log_level {
  TROUPE_LOG_DEBUG = 0,
  TROUPE_LOG_INFO = 1,
  TROUPE_LOG_WARN = 2,
  TROUPE_LOG_ERROR = 3
} troupe_log_level;

/* Host functions, given to the package at entry. Every function returning int
 * returns 0 on success and a negative value on failure; the reason can then be
 * read with last_error (valid until the next host call). */
typedef struct troupe_host_v1 {
  uint32_t abi_version;
  /* The address of the actor the context belongs to. */
  troupe_address (*self)(troupe_context* ctx);
  /* One-way message. Delivery failures come back as TROUPE_MSG_DEAD_LETTER. */
  int (*tell)(troupe_context* ctx, troupe_address to, const char* type, size_t type_len, const uint8_t* payload,
              size_t payload_len);
  /* Request; returns the ask id (> 0) that the REPLY or ASK_FAILED will carry,
   * or 0 on failure. timeout_ms 0 means the host default. */
  uint64_t (*ask)(troupe_context* ctx, troupe_address to, const char* type, size_t type_len, const uint8_t* payload,
                  size_t payload_len, uint32_t timeout_ms);
  /* Answers the ASK being handled. Fails when the current message is no ASK or
   * was already answered. */
  int (*reply)(troupe_context* ctx, const char* type, size_t type_len, const uint8_t* payload, size_t payload_len);
  /* Creates an actor of type_name from package (group name or package id;
   * empty: this package), optionally under a global name, and returns its
   * address at once (0 on failure). Placement happens in the background;
   * messages sent meanwhile are delivered once it runs. */
  troupe_address (*spawn)(troupe_context* ctx, const char* type_name, size_t type_len, const char* package,
                          size_t package_len, const char* name, size_t name_len);
  /* Asks the actor at address to stop (it gets an EXIT message). Stopping
   * oneself takes effect after the current handler returns. */
  int (*stop)(troupe_context* ctx, troupe_address target);
  /* Delivers a TIMER message to self after delay_ms; returns the timer id (> 0)
   * or 0 on failure. */
  uint64_t (*schedule)(troupe_context* ctx, uint32_t delay_ms, const char* type, size_t type_len,
                       const uint8_t* payload, size_t payload_len);
  int (*cancel)(troupe_context* ctx, uint64_t timer_id);
  /* A log line tagged with the actor's address. */
  void (*log)(troupe_context* ctx, int level, const char* text, size_t text_len);
  /* Looks up a global name in this worker's cache and the system directory;
   * returns 0 when unknown. Blocks only on the first look-up of a name. */
  troupe_address (*lookup)(troupe_context* ctx, const char* name, size_t name_len);
  /* Reason of the last failed host call on this thread, NUL-terminated. */
  const char* (*last_error)(void);
  /* Answers an ask later, from any handler of this actor: to and correlation
   * are the asker's address and the ask's correlation, taken from the ASK
   * message when it was handled. For actors that ask others before they can
   * answer. The asker takes the first answer only. */
  int (*reply_to)(troupe_context* ctx, troupe_address to, uint64_t correlation, const char* type, size_t type_len,
                  const uint8_t* payload, size_t payload_len);
  /* Watches target: this actor gets an EXITED message each time target stops,
   * is restarted or fails (at once, when target is unknown or failed already).
   * Watching twice is one watch. Appended within ABI v1. */
  int (*watch)(troupe_context* ctx, troupe_address target);
  /* Ends a watch; no notice arrives for target afterwards. */
  int (*unwatch)(troupe_context* ctx, troupe_address target);
} troupe_host_v1;

/* An error the package reports from create or handle. The package writes a
 * NUL-terminated text of at most TROUPE_ERROR_TEXT bytes into text. */
#define TROUPE_ERROR_TEXT 512
typedef struct troupe_error {
  char text[TROUPE_ERROR_TEXT];
} troupe_error;

/* One actor type of a package. create returns the actor's state, or NULL with
 * err filled. handle returns 0, or non-zero with err filled (the actor is then
 * treated as failed and restarted per its policy). destroy frees the state. */
typedef struct troupe_actor_type_v1 {
  const char* name;
  void* (*create)(troupe_context* ctx, troupe_error* err);
  int (*handle)(void* state, troupe_context* ctx, const troupe_message* msg, troupe_error* err);
  void (*destroy)(void* state);
} troupe_actor_type_v1;

typedef struct troupe_package_v1 {
  uint32_t abi_version; /* must equal the host's TROUPE_ABI_VERSION */
  const troupe_actor_type_v1* types;
  size_t type_count;
} troupe_package_v1;

/* The entry point. Returns 0 and fills out, or non-zero with err filled. */
typedef int (*troupe_entry_fn)(uint32_t host_abi_version, const troupe_host_v1* host, troupe_package_v1* out,
                               troupe_error* err);

#ifdef __cplusplus
}
#endif

#endif /* TROUPE_ABI_H */
