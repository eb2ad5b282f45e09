/* vd_llm_provider: the two providers' wire formats, without any I/O.
 *
 *   Anthropic Messages:   POST {base}/v1/messages, headers x-api-key and
 *                         anthropic-version: 2023-06-01, body {model, max_tokens, system,
 *                         messages, stream: true}.
 *   OpenAI-compatible:    POST {base}/chat/completions (base conventionally ends in /v1), header
 *                         Authorization: Bearer KEY, body {model, max_tokens, messages (system
 *                         first), stream: true, stream_options: {include_usage: true}}.
 *
 * vd_llm_stream decodes the streamed events of either provider (fed by vd_sse) into the answer
 * text, token usage and how the stream ended; vd_llm_classify_http turns a non-200 answer into a
 * failure that says whether it may be retried.
 *
 * Ownership: vd_llm_request_body returns a new reference. A vd_llm_stream owns its text buffer:
 * zero-initialise it (with .wire set), free it with vd_llm_stream_free. No global state. */
#ifndef VD_LLM_PROVIDER_H
#define VD_LLM_PROVIDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "vd_buf.h"
#include "vd_sse.h"

typedef enum vd_llm_wire { VD_LLM_WIRE_ANTHROPIC = 0, VD_LLM_WIRE_OPENAI = 1 } vd_llm_wire;

const char *vd_llm_wire_name(vd_llm_wire wire); /* "anthropic" / "openai" */
/* Parses "anthropic" or "openai"; false for anything else. */
bool vd_llm_wire_parse(const char *name, vd_llm_wire *wire);

/* The endpoint URL for a base URL (a trailing '/' is ignored) into buf. False if it does not fit.
 */
bool vd_llm_endpoint_url(vd_llm_wire wire, const char *base_url, char *buf, size_t size);

/* The request body. messages: [{"role": "user"|"assistant", "content": "..."}]; system may be
 * NULL; temperature < 0 leaves it to the provider. */
json_t *vd_llm_request_body(vd_llm_wire wire, const char *model, const char *system,
                            const json_t *messages, int max_tokens, double temperature);

/* Called for each piece of answer text as it arrives (text_delta, input_json_delta, or an OpenAI
 * delta.content). */
typedef void (*vd_llm_token_fn)(void *ctx, const char *text, size_t len);

typedef struct vd_llm_stream {
  vd_llm_wire wire;
  vd_llm_token_fn on_token; /* may be NULL */
  void *token_ctx;
  vd_buf text;           /* the whole answer so far */
  int64_t input_tokens;  /* from message_start / message_delta / the OpenAI usage chunk */
  int64_t output_tokens; /* cumulative: the latest report wins */
  bool usage_seen;
  bool complete; /* message_stop / [DONE] arrived: the only successful end */
  bool failed;   /* an error event or undecodable data: see error_* */
  bool error_retryable;
  char error_type[64]; /* "overloaded_error", "protocol_error", ... */
  char error_message[256];
  char stop_reason[32]; /* "end_turn", "max_tokens", "stop", "length", ... */
  uint64_t events;      /* provider events decoded (pings included) */
} vd_llm_stream;

/* Feeds one SSE event. Unknown event types are ignored. Returns false once the stream failed (an
 * error event or a data payload that is not the provider's JSON). */
bool vd_llm_stream_event(vd_llm_stream *stream, const vd_sse_event *event);
void vd_llm_stream_free(vd_llm_stream *stream);

/* A failed HTTP exchange, classified. */
typedef struct vd_llm_failure {
  bool retryable;
  bool spending_limit;    /* money ran out: never retried, and it opens no breaker */
  int64_t retry_after_ms; /* from the retry-after header; -1 when absent */
  int http_status;        /* 0 for a transport error */
  char kind[64];          /* "rate_limit_error", "overloaded_error", "http_500", "connection" ... */
  char message[256];
} vd_llm_failure;

/* Classifies a non-200 response: status, its body (may be NULL or not JSON) and the retry-after
 * header value (NULL when absent; seconds, possibly fractional, or an HTTP date relative to
 * now_wall_s). Retried: 408, 409, 429 (unless a spending limit), 500-504, 529. Not retried: other
 * 4xx (400, 401, 403, 404, 413 ...) and spending-limit errors (Anthropic
 * enforced_spend_limit_reached or billing_error, OpenAI insufficient_quota). */
vd_llm_failure vd_llm_classify_http(int status, const char *body, const char *retry_after,
                                    int64_t now_wall_s);

/* Parses a retry-after value into milliseconds (-1 when unparseable). */
int64_t vd_llm_parse_retry_after(const char *value, int64_t now_wall_s);

#endif
