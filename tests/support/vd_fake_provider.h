/* A fake LLM provider for the tests: a real HTTP server on 127.0.0.1 (libmicrohttpd, an ephemeral
 * port) that speaks both wire formats — Anthropic Messages at /v1/messages and OpenAI-compatible
 * chat at /v1/chat/completions — and streams its answer as Server-Sent Events, a few characters per
 * event, with configurable delays and usage reports.
 *
 * Behaviour is scripted: each request consumes the next pushed step (a fault, an answer override,
 * a first-token delay); with no step left it answers normally with the default answer.
 *
 * Usage reported: input_tokens = request body bytes / 4 (at least 1), output_tokens = number of
 * text events. Ownership: the fake owns everything it returns (strings valid until the next
 * request or stop); fake_provider_last_request returns a new reference. */
#ifndef SUPPORT_FAKE_PROVIDER_H
#define SUPPORT_FAKE_PROVIDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum fake_fault {
  FAKE_OK = 0,
  FAKE_HTTP_429,         /* rate_limit_error with a retry-after header */
  FAKE_HTTP_529,         /* overloaded_error */
  FAKE_HTTP_500,         /* api_error */
  FAKE_HTTP_400,         /* invalid_request_error */
  FAKE_HTTP_401,         /* authentication_error */
  FAKE_SPEND_LIMIT,      /* 429 enforced_spend_limit_reached / OpenAI insufficient_quota */
  FAKE_CUT_MID_STREAM,   /* the connection drops after half the answer */
  FAKE_NO_STOP,          /* a clean end of stream without message_stop / [DONE] */
  FAKE_ERROR_EVENT,      /* an overloaded_error event after half the answer */
  FAKE_MALFORMED_EVENT,  /* an event whose data is not JSON */
  FAKE_SLOW_FIRST_TOKEN, /* the first text arrives after delay_ms */
  FAKE_REFUSE,           /* provider down: the listening socket is closed (connection refused);
                            only as a mode (fake_provider_set_mode), never as a pushed step */
  FAKE_SLOW_DRIP,        /* every text event arrives delay_ms after the previous one */
  FAKE_NOT_JSON,         /* a complete, well-formed stream whose answer text is not JSON */
  FAKE_WRONG_SHAPE,      /* a complete stream whose answer is valid JSON of the wrong structure */
  FAKE_FAULT_COUNT
} fake_fault;

typedef struct fake_provider fake_provider;

fake_provider *fake_provider_start(void);
void fake_provider_stop(fake_provider *fp);

/* Base URLs for the config: "http://127.0.0.1:PORT" (Anthropic) and ".../v1" (OpenAI). */
const char *fake_provider_anthropic_url(const fake_provider *fp);
const char *fake_provider_openai_url(const fake_provider *fp);

/* The answer streamed when a step gives none. */
void fake_provider_set_answer(fake_provider *fp, const char *text);
/* Scripted answers that depend on the request (e.g. on the prompt version it carries): for a
 * request no pushed step answers, fn(ctx, parsed request body) returns the answer text (malloc'd,
 * the fake frees it) or NULL for the default answer. Called with the fake's lock held. */
typedef char *(*fake_responder)(void *ctx, const json_t *body);
void fake_provider_set_responder(fake_provider *fp, fake_responder fn, void *ctx);
/* Delay before every text event (ms), and characters per text event. */
void fake_provider_set_pacing(fake_provider *fp, int token_delay_ms, int chars_per_event);
/* Use CRLF line ends in the event stream (both are valid SSE). */
void fake_provider_set_crlf(fake_provider *fp, bool crlf);

/* Queues the behaviour of one future request. answer may be NULL (the default answer); delay_ms is
 * the first-token delay for FAKE_SLOW_FIRST_TOKEN; retry_after the header value for
 * FAKE_HTTP_429 (NULL: "1"). */
void fake_provider_push(fake_provider *fp, fake_fault fault, const char *answer, int delay_ms,
                        const char *retry_after);
/* Makes every request fail with fault until cleared with FAKE_OK. */
void fake_provider_set_down(fake_provider *fp, fake_fault fault);
/* The same with the fault's parameters (delay_ms and retry_after as in fake_provider_push).
 * FAKE_REFUSE closes the listening socket (calls in progress finish); leaving it listens again on
 * the same port. Pushed steps wait while a mode other than FAKE_OK is set. */
void fake_provider_set_mode(fake_provider *fp, fake_fault fault, int delay_ms,
                            const char *retry_after);

int fake_provider_request_count(fake_provider *fp);
/* Requests answered with fault (FAKE_OK: normal answers) since the start; for FAKE_REFUSE, how
 * many times the fake stopped listening (a refused connect never reaches it). */
int fake_provider_fault_count(fake_provider *fp, fake_fault fault);
/* The last request: {path, body (parsed), x_api_key, authorization, anthropic_version}. */
json_t *fake_provider_last_request(fake_provider *fp);

enum { FAKE_MAX_SENT = 1024 };
/* vd_monotonic_ns() when each text event was handed to the socket, in order, since the last call
 * (at most max into out; returns how many): for measuring how fast tokens reach subscribers. */
size_t fake_provider_text_sent_ns(fake_provider *fp, uint64_t *out, size_t max);

#endif
