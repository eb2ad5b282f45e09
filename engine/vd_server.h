/* vd_server: the HTTP transport (libmicrohttpd) under verdict's API.
 *
 * It owns sockets, the worker thread pool, keep-alive, timeouts and the size limits, and hands each
 * complete request (method, path, headers, query, body) to one handler function, which fills a
 * vd_http_response. Requests that break a limit never reach the handler: a body whose declared
 * length is over the limit gets 413 (JSON) before any of it is read; a chunked body over it is
 * read and dropped, then 413, unless it grows past 4x the limit; a body over 4x the limit or still
 * arriving after the request timeout closes the connection at once (libmicrohttpd cannot answer
 * mid-body, and waiting for the end would let a slow or endless client hold it); headers over the
 * header limit are refused by libmicrohttpd (431). Idle connections are closed after the connection
 * timeout.
 *
 * Graceful stop: vd_server_quiesce stops accepting new connections (the listening socket is
 * closed), responses from then on carry "Connection: close", and vd_server_drain waits until the
 * requests in flight have been answered. vd_server_stop then closes what is left.
 *
 * Ownership: vd_server_start returns a server the caller frees with vd_server_stop. The handler
 * context is borrowed and must outlive the server. Request data is valid only during the handler
 * call. The response body is handed to the server (it frees it).
 */
#ifndef VD_SERVER_H
#define VD_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vd_buf.h"
#include "vd_error.h"

typedef struct vd_http_request vd_http_request;

const char *vd_http_method(const vd_http_request *req);
/* The path without the query string, percent-decoded by libmicrohttpd. */
const char *vd_http_path(const vd_http_request *req);
/* A request header (case-insensitive name), or NULL. */
const char *vd_http_header(const vd_http_request *req, const char *name);
/* A query-string argument (decoded), or NULL. An argument given without '=' yields "". */
const char *vd_http_query(const vd_http_request *req, const char *name);
/* Calls fn for every query argument, in order; stops when fn returns false. */
void vd_http_query_each(const vd_http_request *req,
                        bool (*fn)(void *ctx, const char *key, const char *value), void *ctx);
/* The request body (NUL-terminated for convenience; may contain NULs); *size gets its length. */
const char *vd_http_body(const vd_http_request *req, size_t *size);
/* Monotonic time (vd_monotonic_ns) when the request's first byte was seen. */
uint64_t vd_http_started_ns(const vd_http_request *req);

enum { VD_HTTP_MAX_EXTRA_HEADERS = 4 };

typedef struct vd_http_response {
  int status;               /* 0 is treated as 500 */
  const char *content_type; /* static string; NULL means application/json */
  char *body;               /* heap memory, freed by the server; NULL for an empty body */
  size_t body_size;
  /* Extra headers (static or handler-lifetime strings are copied by the server). */
  struct {
    const char *name;
    const char *value;
  } headers[VD_HTTP_MAX_EXTRA_HEADERS];
  size_t header_count;
  /* A streamed response (Server-Sent Events) instead of body: when `stream` is set, the server
   * starts one producer thread for the response that calls stream(stream_ctx, out, &finished)
   * over and over; each call may block for a short while (well under a second: it is how
   * quickly the stream notices a stop) and appends what it has to out. Whatever was appended is
   * sent at once (the connection is suspended, not polled, while there is nothing to send).
   * The response ends after the call that sets finished, when the client goes away, or when
   * the server quiesces; then stream_free(stream_ctx) runs once (on the producer thread). */
  void (*stream)(void *stream_ctx, vd_buf *out, bool *finished);
  void (*stream_free)(void *stream_ctx);
  void *stream_ctx;
} vd_http_response;

/* Sets the response to status with body[0..size) of content_type (a static string); body is
 * malloc'ed and stolen (NULL: no body). */
void vd_http_respond_body(vd_http_response *resp, int status, const char *content_type, char *body,
                          size_t size);
/* Sets the response to status with body = the compact serialisation of json, reals in their
 * shortest round-trip form (vd_json_dumps_shortest, as stored traces) (reference stolen). */
void vd_http_respond_json(vd_http_response *resp, int status, json_t *json);
/* Sets the response to status and {"error": {"code", "message", "field"}}; field may be NULL
 * (it is then JSON null). extra (may be NULL) is merged into the error object (stolen). */
void vd_http_respond_error(vd_http_response *resp, int status, const char *code, const char *field,
                           json_t *extra, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Adds a header to the response (both strings copied when the response is queued). */
void vd_http_add_header(vd_http_response *resp, const char *name, const char *value);

/* The handler: must fill resp. Called on a worker thread; many calls run concurrently. */
typedef void (*vd_http_handler)(void *ctx, const vd_http_request *req, vd_http_response *resp);
/* Called once per answered request (also for a 413 produced by the server), for metrics. */
typedef void (*vd_http_observer)(void *ctx, const vd_http_request *req, int status,
                                 uint64_t elapsed_ns);

typedef struct vd_server_options {
  const char *host;                /* an IPv4 or IPv6 literal, or "localhost"; NULL = 0.0.0.0 */
  int port;                        /* 0 picks a free port (see vd_server_port) */
  unsigned threads;                /* worker threads; 0 = the number of online cores */
  unsigned max_connections;        /* 0 = 1024 */
  unsigned max_connections_per_ip; /* from one client address; 0 = no cap beyond the above */
  unsigned connection_timeout_s;   /* idle keep-alive connections are closed after this; 0 = none */
  unsigned request_timeout_ms;     /* the whole body must arrive within this; 0 = no limit */
  size_t max_body_bytes;           /* 0 = 64 KiB */
  size_t max_header_bytes;         /* 0 = 16 KiB */
  /* The worker threads' scheduler slice in µs (common/vd_slice.h); 0 = the kernel's default. */
  unsigned time_slice_us;
  /* HTTPS (libmicrohttpd with GnuTLS): PEM text of the certificate chain and of the private key
   * (borrowed; copied by libmicrohttpd at start). Both NULL = plain HTTP. */
  const char *tls_cert_pem;
  const char *tls_key_pem;
  vd_http_handler handler;
  vd_http_observer observer; /* may be NULL */
  void *ctx;                 /* passed to handler and observer */
} vd_server_options;

typedef struct vd_server vd_server;

vd_server *vd_server_start(const vd_server_options *options, vd_error *err);
/* The port actually bound. */
int vd_server_port(const vd_server *server);
/* Requests currently being read or handled. */
unsigned vd_server_in_flight(const vd_server *server);
/* Stops accepting new connections (idempotent). */
void vd_server_quiesce(vd_server *server);
/* Waits up to timeout_ms for the requests in flight to be answered. True when none are left. */
bool vd_server_drain(vd_server *server, unsigned timeout_ms);
/* Closes every connection, joins the workers and frees the server. NULL is ignored. */
void vd_server_stop(vd_server *server);

#endif
