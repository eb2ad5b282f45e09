/* vd_sse: an incremental parser for the Server-Sent Events format (the WHATWG "event stream"
 * interpretation rules): lines end in CRLF, LF or CR; ':' starts a comment; "field: value" with one
 * optional space after the colon; multi-line data joined by '\n'; a blank line dispatches; a
 * leading UTF-8 BOM is ignored; unknown fields are ignored; an event still open at end of stream is
 * discarded. Bytes may arrive split anywhere (even between CR and LF).
 *
 * Ownership: the parser owns its buffers. The event handed to the callback (its strings) is only
 * valid during the callback. Free the parser with vd_sse_parser_free. Not thread-safe: one parser
 * per stream. */
#ifndef VD_SSE_H
#define VD_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vd_error.h"

typedef struct vd_sse_event {
  const char *type; /* the "event:" field, or "message" when none was given */
  const char *data; /* data lines joined by '\n' (no trailing newline); NUL-terminated */
  size_t data_len;
  const char *id; /* the last event id seen on the stream ("" when none) */
} vd_sse_event;

/* Called once per dispatched event. Return false to stop parsing (vd_sse_feed then fails with the
 * callback's reason left to the caller). */
typedef bool (*vd_sse_callback)(void *ctx, const vd_sse_event *event);

typedef struct vd_sse_parser vd_sse_parser;

/* max_line bounds one line and one event's data (0 = 1 MiB): a stream that exceeds it fails instead
 * of growing without limit. Returns NULL only when out of memory. */
vd_sse_parser *vd_sse_parser_new(vd_sse_callback callback, void *ctx, size_t max_line);
/* Feeds the next bytes. Fails when a line or event exceeds max_line, or the callback stopped. */
bool vd_sse_feed(vd_sse_parser *parser, const char *bytes, size_t size, vd_error *err);
/* The reconnection time from the last valid "retry:" field, or -1 when none was seen. */
int64_t vd_sse_retry_ms(const vd_sse_parser *parser);
/* Number of events dispatched so far. */
uint64_t vd_sse_event_count(const vd_sse_parser *parser);
void vd_sse_parser_free(vd_sse_parser *parser);

#endif
