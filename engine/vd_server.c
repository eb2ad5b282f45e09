#include "vd_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vd_buf.h"
#include "vd_json_write.h"
#include "vd_printable.h"
#include "vd_slice.h"
#include "vd_time.h"
#include "vd_utf8.h"

/* A chunked body up to this many times max_body_bytes is read and dropped to answer 413; a
 * longer one closes the connection. */
enum { DRAIN_FACTOR = 4 };

struct vd_server {
  struct MHD_Daemon *daemon;
  vd_server_options options;
  int listen_fd;
  int port;
  atomic_uint in_flight;
  atomic_bool quiesced;
};

struct vd_http_request {
  vd_server *server;
  struct MHD_Connection *connection;
  const char *method;
  const char *path;
  vd_buf body;
  size_t received; /* body bytes seen (kept in body only up to max_body_bytes) */
  uint64_t started_ns;
};

const char *vd_http_method(const vd_http_request *req) { return req->method; }
const char *vd_http_path(const vd_http_request *req) { return req->path; }
uint64_t vd_http_started_ns(const vd_http_request *req) { return req->started_ns; }

const char *vd_http_header(const vd_http_request *req, const char *name) {
  return MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, name);
}

typedef struct query_find {
  const char *name;
  const char *value;
  bool found;
} query_find;

static enum MHD_Result query_match(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value) {
  (void)kind;
  query_find *find = cls;
  if (strcmp(key, find->name) != 0) return MHD_YES;
  find->found = true;
  find->value = value ? value : ""; /* "?flag" without '=' has no value: present and empty */
  return MHD_NO;
}

const char *vd_http_query(const vd_http_request *req, const char *name) {
  query_find find = {name, NULL, false};
  MHD_get_connection_values(req->connection, MHD_GET_ARGUMENT_KIND, query_match, &find);
  return find.found ? find.value : NULL;
}

typedef struct query_walk {
  bool (*fn)(void *ctx, const char *key, const char *value);
  void *ctx;
  bool stopped;
} query_walk;

static enum MHD_Result query_visit(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value) {
  (void)kind;
  query_walk *walk = cls;
  if (walk->stopped) return MHD_NO;
  if (!walk->fn(walk->ctx, key, value ? value : "")) {
    walk->stopped = true;
    return MHD_NO;
  }
  return MHD_YES;
}

void vd_http_query_each(const vd_http_request *req,
                        bool (*fn)(void *ctx, const char *key, const char *value), void *ctx) {
  query_walk walk = {fn, ctx, false};
  MHD_get_connection_values(req->connection, MHD_GET_ARGUMENT_KIND, query_visit, &walk);
}

const char *vd_http_body(const vd_http_request *req, size_t *size) {
  if (size) *size = req->body.len;
  return req->body.data ? req->body.data : "";
}

void vd_http_respond_body(vd_http_response *resp, int status, const char *content_type, char *body,
                          size_t size) {
  free(resp->body);
  resp->status = status;
  resp->content_type = content_type;
  resp->body = body;
  resp->body_size = body ? size : 0;
}

void vd_http_respond_json(vd_http_response *resp, int status, json_t *json) {
  size_t size = 0; /* compact, reals in their shortest form: the writer of the stored traces */
  char *body = json ? vd_json_dumps_shortest(json, &size) : NULL;
  vd_http_respond_body(resp, status, "application/json", body, size);
  json_decref(json);
  if (json && !resp->body) resp->status = 500; /* out of memory while serialising */
}

void vd_http_respond_error(vd_http_response *resp, int status, const char *code, const char *field,
                           json_t *extra, const char *fmt, ...) {
  char raw[1024], message[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(raw, sizeof raw, fmt, ap);
  va_end(ap);
  /* A message may quote what the client sent, or be cut inside a character: JSON needs UTF-8 (an
   * invalid byte made json_pack fail and the error went out with an empty body). */
  vd_utf8_escape_invalid(raw, message, sizeof message);
  char field_text[256];
  if (field) vd_utf8_escape_invalid(field, field_text, sizeof field_text);
  json_t *error = json_pack("{s:s, s:s, s:o}", "code", code, "message", message, "field",
                            field ? json_string(field_text) : json_null());
  if (error && extra) json_object_update(error, extra);
  json_decref(extra);
  vd_http_respond_json(resp, status, json_pack("{s:o}", "error", error));
}

void vd_http_add_header(vd_http_response *resp, const char *name, const char *value) {
  if (resp->header_count >= VD_HTTP_MAX_EXTRA_HEADERS) return;
  resp->headers[resp->header_count].name = name;
  resp->headers[resp->header_count].value = value;
  resp->header_count++;
}

/* ---- Streamed responses ------------------------------------------------------------------
 * A producer thread fills `pending`; libmicrohttpd's reader callback drains it. While nothing is
 * pending the reader suspends the connection (no polling) and the producer resumes it after
 * each call of the stream function (with new bytes, or just so a closed client is noticed). Two
 * owners (producer, response): the last to let go frees. */
typedef struct http_stream {
  pthread_mutex_t lock;
  vd_buf pending;
  size_t sent; /* bytes of pending already handed to libmicrohttpd */
  bool finished, suspended, gone;
  int owners;
  vd_server *server;
  struct MHD_Connection *connection;
  void (*next)(void *, vd_buf *, bool *);
  void (*free_ctx)(void *);
  void *ctx;
} http_stream;

static void stream_unref(http_stream *st) {
  pthread_mutex_lock(&st->lock);
  bool last = --st->owners == 0;
  pthread_mutex_unlock(&st->lock);
  if (!last) return;
  vd_buf_free(&st->pending);
  pthread_mutex_destroy(&st->lock);
  free(st);
}

static void *stream_produce(void *arg) {
  http_stream *st = arg;
  bool finished = false;
  vd_buf chunk = {0};
  while (!finished) {
    vd_buf_reset(&chunk);
    st->next(st->ctx, &chunk, &finished);
    pthread_mutex_lock(&st->lock);
    if (atomic_load(&st->server->quiesced) || chunk.oom) finished = true;
    if (st->gone) finished = true;
    vd_buf_append(&st->pending, chunk.data ? chunk.data : "", chunk.len);
    st->finished = finished;
    if (st->suspended && !st->gone) {
      st->suspended = false;
      MHD_resume_connection(st->connection);
    }
    pthread_mutex_unlock(&st->lock);
  }
  vd_buf_free(&chunk);
  st->free_ctx(st->ctx);
  stream_unref(st);
  return NULL;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  http_stream *st = cls;
  pthread_mutex_lock(&st->lock);
  ssize_t n = 0;
  size_t left = st->pending.len - st->sent;
  if (left) {
    n = (ssize_t)(left < max ? left : max);
    memcpy(buf, st->pending.data + st->sent, (size_t)n);
    st->sent += (size_t)n;
    if (st->sent == st->pending.len) {
      vd_buf_reset(&st->pending);
      st->sent = 0;
    }
  } else if (st->finished) {
    n = MHD_CONTENT_READER_END_OF_STREAM;
  } else {
    st->suspended = true;
    MHD_suspend_connection(st->connection);
  }
  pthread_mutex_unlock(&st->lock);
  return n;
}

static void stream_done(void *cls) {
  http_stream *st = cls;
  pthread_mutex_lock(&st->lock);
  st->gone = true;
  pthread_mutex_unlock(&st->lock);
  stream_unref(st);
}

static struct MHD_Response *stream_response(vd_http_request *req, vd_http_response *resp) {
  http_stream *st = calloc(1, sizeof *st);
  if (!st) return NULL;
  pthread_mutex_init(&st->lock, NULL);
  st->owners = 2;
  st->server = req->server;
  st->connection = req->connection;
  st->next = resp->stream;
  st->free_ctx = resp->stream_free;
  st->ctx = resp->stream_ctx;
  struct MHD_Response *r =
      MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, st, stream_done);
  pthread_t thread;
  if (!r || pthread_create(&thread, NULL, stream_produce, st) != 0) {
    if (r)
      MHD_destroy_response(r); /* runs stream_done: one owner left */
    else
      st->owners = 1;
    st->free_ctx(st->ctx);
    stream_unref(st);
    return NULL;
  }
  pthread_detach(thread);
  resp->stream = NULL;
  return r;
}

static enum MHD_Result queue(vd_http_request *req, vd_http_response *resp) {
  vd_server *server = req->server;
  int status = resp->status ? resp->status : 500;
  struct MHD_Response *r =
      resp->stream ? stream_response(req, resp)
      : resp->body
          ? MHD_create_response_from_buffer(resp->body_size, resp->body, MHD_RESPMEM_MUST_FREE)
          : MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
  if (!r) {
    free(resp->body);
    return MHD_NO;
  }
  resp->body = NULL; /* owned by libmicrohttpd now */
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                          resp->content_type ? resp->content_type : "application/json");
  for (size_t i = 0; i < resp->header_count; i++)
    MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
  if (atomic_load(&server->quiesced)) MHD_add_response_header(r, "Connection", "close");
  enum MHD_Result result = MHD_queue_response(req->connection, (unsigned)status, r);
  MHD_destroy_response(r);
  if (server->options.observer)
    server->options.observer(server->options.ctx, req, status, vd_monotonic_ns() - req->started_ns);
  return result;
}

/* What the first look at a request's headers counts: their size, the framing headers whose
 * repetition or combination lets a proxy and verdict disagree on where a request ends, the
 * Content-Type headers (with two, a proxy and verdict may disagree on what the body is) and the
 * first header name that is not a token. */
typedef struct header_tally {
  size_t bytes;
  int content_lengths;
  int content_types;
  bool transfer_encoding;
  const char *bad_name;
} header_tally;

/* RFC 9110 §5.1: a field name is a token (RFC 9110 §5.6.2). libmicrohttpd 0.9.75 keeps the
 * whitespace of "Transfer-Encoding : chunked" in the name (and reads the header as no framing
 * at all), where a proxy may read it as chunked: RFC 9112 §5.1 requires a 400. */
static bool is_token(const char *name) {
  if (!*name) return false;
  for (const unsigned char *c = (const unsigned char *)name; *c; c++)
    if (!((*c >= '0' && *c <= '9') || ((*c | 0x20) >= 'a' && (*c | 0x20) <= 'z') ||
          strchr("!#$%&'*+-.^_`|~", *c)))
      return false;
  return true;
}

static enum MHD_Result tally_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value) {
  (void)kind;
  header_tally *t = cls;
  t->bytes += strlen(key) + (value ? strlen(value) : 0) + 4; /* "key: value\r\n" */
  t->content_lengths += strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0;
  t->content_types += strcasecmp(key, MHD_HTTP_HEADER_CONTENT_TYPE) == 0;
  t->transfer_encoding =
      t->transfer_encoding || strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0;
  if (!t->bad_name && !is_token(key)) t->bad_name = key;
  return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *connection, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls) {
  (void)version;
  vd_server *server = cls;
  vd_http_request *req = *con_cls;
  const vd_server_options *o = &server->options;
  if (!req) {
    req = calloc(1, sizeof *req);
    if (!req) return MHD_NO;
    req->server = server;
    req->connection = connection;
    req->method = method;
    req->path = url;
    req->started_ns = vd_monotonic_ns();
    *con_cls = req;
    atomic_fetch_add(&server->in_flight, 1);
    /* libmicrohttpd refuses headers that overflow its connection pool (max_header_bytes plus
     * room for its bookkeeping) with its own HTML page; between the two, the limit is ours */
    header_tally tally = {.bytes = strlen(method) + strlen(url) + 12};
    MHD_get_connection_values(connection, MHD_HEADER_KIND, tally_header, &tally);
    if (tally.bytes > o->max_header_bytes) {
      vd_http_response resp = {0};
      vd_http_respond_error(&resp, 431, "request_header_fields_too_large", NULL, NULL,
                            "the request line and headers take %zu bytes, over the limit of %zu",
                            tally.bytes, o->max_header_bytes);
      return queue(req, &resp);
    }
    if (tally.bad_name) {
      /* the connection is closed: where this request ends is not known (smuggling) */
      char shown[256];
      vd_printable_prefix(tally.bad_name, strlen(tally.bad_name), shown, sizeof shown);
      vd_http_response resp = {0};
      vd_http_respond_error(&resp, 400, "bad_request", NULL, NULL,
                            "header name \"%s\" is not a token (no whitespace before the colon, "
                            "RFC 9112 section 5.1)",
                            shown);
      vd_http_add_header(&resp, "Connection", "close");
      return queue(req, &resp);
    }
    if (tally.content_lengths > 1 || (tally.content_lengths && tally.transfer_encoding)) {
      /* RFC 9112 §6.3: ambiguous framing is refused and the connection closed (smuggling) */
      vd_http_response resp = {0};
      vd_http_respond_error(&resp, 400, "bad_request", NULL, NULL, "%s",
                            tally.transfer_encoding ? "both Content-Length and Transfer-Encoding"
                                                    : "more than one Content-Length header");
      vd_http_add_header(&resp, "Connection", "close");
      return queue(req, &resp);
    }
    if (tally.content_types > 1) {
      /* the first one won: "application/json" then "text/plain" was read as JSON */
      vd_http_response resp = {0};
      vd_http_respond_error(&resp, 400, "bad_request", NULL, NULL,
                            "more than one Content-Type header (send one: application/json)");
      return queue(req, &resp);
    }
    const char *length =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length) {
      char *end = NULL;
      errno = 0;
      unsigned long long declared = strtoull(length, &end, 10);
      if (errno == 0 && end != length && declared > o->max_body_bytes) {
        /* Refused before reading a byte of it (and before any 100 Continue). */
        vd_http_response resp = {0};
        vd_http_respond_error(&resp, 413, "payload_too_large", NULL, NULL,
                              "request body of %llu bytes is over the limit of %zu bytes", declared,
                              o->max_body_bytes);
        return queue(req, &resp);
      }
    }
    return MHD_YES;
  }
  if (*upload_data_size) {
    /* The request timeout and the size limit bound every body: a body still arriving after
     * request_timeout_ms, or more than DRAIN_FACTOR times over max_body_bytes (chunked, so not
     * refused up front), closes the connection at once — libmicrohttpd 0.9.75 cannot answer
     * mid-body, and waiting for the end would let a slow or endless body hold the connection.
     * A body only somewhat over the limit is read and dropped, then answered 413. */
    const char *why = NULL;
    req->received += *upload_data_size;
    if (o->request_timeout_ms &&
        vd_monotonic_ns() - req->started_ns > (uint64_t)o->request_timeout_ms * 1000000u)
      why = "the request body is still arriving after request_timeout_ms";
    else if (req->received > DRAIN_FACTOR * o->max_body_bytes)
      why = "the request body is far over max_body_bytes";
    if (why) {
      fprintf(stderr, "verdict: http: closing a connection: %s\n", why);
      return MHD_NO;
    }
    if (req->received > o->max_body_bytes)
      vd_buf_free(&req->body);
    else
      vd_buf_append(&req->body, upload_data, *upload_data_size);
    *upload_data_size = 0;
    return MHD_YES;
  }
  vd_http_response resp = {0};
  if (req->received > o->max_body_bytes)
    vd_http_respond_error(&resp, 413, "payload_too_large", NULL, NULL,
                          "request body is over the limit of %zu bytes", o->max_body_bytes);
  else if (req->body.oom)
    vd_http_respond_error(&resp, 503, "overloaded", NULL, NULL, "out of memory reading the body");
  else
    o->handler(o->ctx, req, &resp);
  return queue(req, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode code) {
  (void)connection;
  (void)code;
  vd_server *server = cls;
  vd_http_request *req = *con_cls;
  if (!req) return;
  vd_buf_free(&req->body);
  free(req);
  *con_cls = NULL;
  atomic_fetch_sub(&server->in_flight, 1);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
  size_t n = strlen(line);
  while (n && line[n - 1] == '\n') line[--n] = '\0';
  fprintf(stderr, "verdict: http: %s\n", line);
}

static int bind_listener(const char *host, int port, int *bound_port, vd_error *err) {
  struct addrinfo hints = {0}, *found = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  int rc = getaddrinfo(host, service, &hints, &found);
  if (rc != 0) {
    vd_error_set(err, "cannot resolve listen address '%s': %s", host ? host : "*",
                 gai_strerror(rc));
    return -1;
  }
  int fd = -1;
  int saved = 0;
  for (struct addrinfo *ai = found; ai; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      saved = errno;
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0) break;
    saved = errno;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(found);
  if (fd < 0) {
    vd_error_set(err, "cannot listen on %s:%d: %s", host ? host : "*", port, strerror(saved));
    return -1;
  }
  struct sockaddr_storage addr;
  socklen_t len = sizeof addr;
  getsockname(fd, (struct sockaddr *)&addr, &len);
  *bound_port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                                 : ((struct sockaddr_in *)&addr)->sin_port);
  return fd;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Percent-decodes the path and every query key and value in place, as libmicrohttpd's own
 * MHD_http_unescape does, except "%00": a decoded NUL would end the C string the handlers see,
 * so "/v1/decisions/ID%00junk" was read as ID and "?subject=a%00b" as "a". Left as the three
 * characters, it is checked as what the client sent (no valid id, time or limit holds '%'). */
static size_t unescape_keeping_nul(void *cls, struct MHD_Connection *connection, char *s) {
  (void)cls;
  (void)connection;
  char *w = s;
  for (const char *r = s; *r;) {
    int hi = r[0] == '%' ? hex_digit(r[1]) : -1;
    int lo = hi >= 0 ? hex_digit(r[2]) : -1;
    if (lo >= 0 && (hi | lo) != 0) {
      *w++ = (char)(hi << 4 | lo);
      r += 3;
    } else {
      *w++ = *r++;
    }
  }
  *w = '\0';
  return (size_t)(w - s);
}

vd_server *vd_server_start(const vd_server_options *options, vd_error *err) {
  if (!options->handler) {
    vd_error_set(err, "no request handler");
    return NULL;
  }
  vd_server *server = calloc(1, sizeof *server);
  if (!server) {
    vd_error_set(err, "out of memory");
    return NULL;
  }
  server->options = *options;
  vd_server_options *o = &server->options;
  if (!o->threads) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = cores > 0 ? (unsigned)cores : 1;
  }
  if (!o->max_connections) o->max_connections = 1024;
  if (!o->max_body_bytes) o->max_body_bytes = 64 * 1024;
  if (!o->max_header_bytes) o->max_header_bytes = 16 * 1024;
  server->listen_fd = bind_listener(o->host ? o->host : "0.0.0.0", o->port, &server->port, err);
  if (server->listen_fd < 0) {
    free(server);
    return NULL;
  }
  /* The per-connection memory pool holds the request line and headers plus libmicrohttpd's own
   * bookkeeping and read buffer; headers beyond the limit are refused with 431. */
  size_t pool = o->max_header_bytes + 8 * 1024;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                   MHD_USE_ERROR_LOG | MHD_USE_TURBO;
  if (o->threads == 1) flags &= ~(unsigned)MHD_USE_TURBO;
  struct MHD_OptionItem tls[3] = {{MHD_OPTION_END, 0, NULL}};
  if (o->tls_cert_pem || o->tls_key_pem) {
    if (!o->tls_cert_pem || !o->tls_key_pem || !MHD_is_feature_supported(MHD_FEATURE_TLS)) {
      vd_error_set(err, !o->tls_cert_pem || !o->tls_key_pem
                            ? "HTTPS needs both a certificate and a private key"
                            : "this libmicrohttpd was built without TLS support");
      close(server->listen_fd);
      free(server);
      return NULL;
    }
    flags |= MHD_USE_TLS;
    tls[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)o->tls_cert_pem};
    tls[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)o->tls_key_pem};
  }
  /* the pool's threads inherit the slice of the thread that starts them; this one gets its own
   * back */
  uint64_t own_slice = 0;
  bool sliced = o->time_slice_us && vd_slice_get(&own_slice) &&
                vd_slice_set((uint64_t)o->time_slice_us * 1000);
  server->daemon = MHD_start_daemon(
      flags, 0, NULL, NULL, on_access, server, MHD_OPTION_ARRAY, tls, MHD_OPTION_EXTERNAL_LOGGER,
      on_mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, server->listen_fd, MHD_OPTION_THREAD_POOL_SIZE,
      o->threads, MHD_OPTION_CONNECTION_LIMIT, o->max_connections,
      MHD_OPTION_PER_IP_CONNECTION_LIMIT, o->max_connections_per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
      o->connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, server, MHD_OPTION_UNESCAPE_CALLBACK,
      unescape_keeping_nul, NULL, MHD_OPTION_END);
  if (sliced) vd_slice_set(own_slice);
  if (!server->daemon) {
    vd_error_set(err, "cannot start the HTTP%s server on port %d%s", o->tls_cert_pem ? "S" : "",
                 server->port,
                 o->tls_cert_pem ? " (is tls_cert a PEM certificate and tls_key its key?)" : "");
    close(server->listen_fd);
    free(server);
    return NULL;
  }
  server->listen_fd = -1; /* libmicrohttpd owns and closes it from here */
  return server;
}

int vd_server_port(const vd_server *server) { return server->port; }

unsigned vd_server_in_flight(const vd_server *server) {
  return atomic_load(&((vd_server *)server)->in_flight);
}

void vd_server_quiesce(vd_server *server) {
  if (!server || atomic_exchange(&server->quiesced, true)) return;
  MHD_socket fd = MHD_quiesce_daemon(server->daemon);
  if (fd != MHD_INVALID_SOCKET) close(fd); /* handed back to us: no more accepts */
}

bool vd_server_drain(vd_server *server, unsigned timeout_ms) {
  uint64_t deadline = vd_monotonic_ns() + (uint64_t)timeout_ms * 1000000u;
  while (atomic_load(&server->in_flight) > 0) {
    if (vd_monotonic_ns() >= deadline) return false;
    struct timespec pause = {0, 2 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  return true;
}

void vd_server_stop(vd_server *server) {
  if (!server) return;
  MHD_stop_daemon(server->daemon);
  free(server);
}
