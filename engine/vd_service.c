#include "vd_service.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vd_args.h"
#include "vd_auth.h"
#include "vd_buf.h"
#include "vd_decision_log.h"
#include "vd_deployment.h"
#include "vd_explain.h"
#include "vd_extract_rules.h"
#include "vd_json_hint.h"
#include "vd_json_write.h"
#include "vd_llm.h"
#include "vd_metrics.h"
#include "vd_pipeline.h"
#include "vd_printable.h"
#include "vd_replay.h"
#include "vd_server.h"
#include "vd_store.h"
#include "vd_time.h"
#include "vd_triage_pipeline.h"
#include "vd_uuid.h"

#ifndef VERDICT_VERSION
#define VERDICT_VERSION "0.1.0"
#endif

enum { MASK_KEY_BYTES = 32 };

struct vd_service {
  const vd_config *config;
  FILE *events;
  int data_lock; /* DATA_DIR/verdict.lock, held (flock) while the service lives; -1: none */
  vd_registry *registry;
  vd_decision_log *log;
  vd_metrics *metrics;
  vd_uuid_gen *ids;
  char mask_key[2 * MASK_KEY_BYTES + 1]; /* hex text; its bytes are the HMAC key */
  vd_trace_mask mask;
  vd_server *server;
  char *tls_cert_pem, *tls_key_pem; /* HTTPS: read from the config's tls_cert/tls_key */
  pthread_mutex_t reload_lock;      /* one reload at a time (SIGHUP and POST /v1/admin/reload) */
  atomic_bool ready;
  vd_llm *llm;             /* the LLM job service; NULL when the config has no `llm:` */
  vd_gazetteer *gazetteer; /* places for itinerary escalations (the LLM layer's gazetteer) */
  char gazetteer_version[VD_SHA256_HEX_SIZE]; /* its SHA-256, stored for replay */
  atomic_uint streams;                        /* SSE streams still able to call into llm */
  /* refused decisions are logged once a second at most, with how many since the last line */
  atomic_uint_fast64_t refusal_logged_ns;
  atomic_uint refusals_unlogged;
};

static void event(vd_service *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void event(vd_service *s, const char *fmt, ...) {
  if (!s->events) return;
  char stamp[40];
  vd_format_rfc3339_us(vd_wall_us(), stamp, sizeof stamp);
  va_list ap;
  va_start(ap, fmt);
  fprintf(s->events, "%s verdict: ", stamp);
  vfprintf(s->events, fmt, ap);
  fputc('\n', s->events);
  fflush(s->events);
  va_end(ap);
}

/* Why the decision log refused a decision goes to the server's log, not to the client (it names
 * files and system errors): the first refusal at once, then at most one line a second, saying
 * how many went unlogged in between, so a full disk does not flood it. */
static void log_refusal(vd_service *s, vd_log_status status, const vd_error *why) {
  uint64_t now = vd_monotonic_ns(), last = atomic_load(&s->refusal_logged_ns);
  if (last && now - last < 1000000000u) {
    atomic_fetch_add(&s->refusals_unlogged, 1);
    return;
  }
  if (!atomic_compare_exchange_strong(&s->refusal_logged_ns, &last, now)) {
    atomic_fetch_add(&s->refusals_unlogged, 1);
    return;
  }
  unsigned more = atomic_exchange(&s->refusals_unlogged, 0);
  char since[64] = "";
  if (more) snprintf(since, sizeof since, " (and %u more since the last such line)", more);
  event(s, "decision refused (%s)%s: %s", vd_log_status_name(status), since, why->message);
}

/* ---- Files in the data folder -------------------------------------------------------------- */

/* Creates path and its missing parents; created (size bytes) gets the first folder this made
 * (the top of what a failed start removes again), "" when path was there already. */
static bool make_dirs(const char *path, char *created, size_t size, vd_error *err) {
  char buf[4096];
  created[0] = '\0';
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
    return vd_error_set(err, "path too long: %s", path);
  for (char *p = buf + 1;; p++) {
    if (*p != '/' && *p != '\0') continue;
    char end = *p;
    *p = '\0';
    if (mkdir(buf, 0750) == 0) {
      if (!created[0]) snprintf(created, size, "%s", buf);
    } else if (errno != EEXIST) {
      return vd_error_set(err, "cannot create %s: %s", buf, strerror(errno));
    }
    *p = end;
    if (!end) return true;
  }
}

/* The masking key: read from the file, or created there (random, mode 0600) on first start, so
 * masked values stay comparable across restarts. */
static bool load_mask_key(const char *path, char out[2 * MASK_KEY_BYTES + 1], vd_error *err) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    unsigned char raw[MASK_KEY_BYTES];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
      close(fd);
      unlink(path);
      return vd_error_set(err, "cannot get random bytes for the masking key");
    }
    static const char digits[] = "0123456789abcdef";
    char hex[2 * MASK_KEY_BYTES + 1];
    for (size_t i = 0; i < MASK_KEY_BYTES; i++) {
      hex[2 * i] = digits[raw[i] >> 4];
      hex[2 * i + 1] = digits[raw[i] & 15];
    }
    hex[2 * MASK_KEY_BYTES] = '\n';
    bool ok = write(fd, hex, sizeof hex) == (ssize_t)sizeof hex && fsync(fd) == 0;
    close(fd);
    if (!ok) {
      unlink(path);
      return vd_error_set(err, "cannot write the masking key %s", path);
    }
  } else if (errno != EEXIST) {
    return vd_error_set(err, "cannot create the masking key %s: %s", path, strerror(errno));
  }
  size_t size = 0;
  char *text = vd_read_file(path, 4096, &size, err);
  if (!text) return false;
  while (size && (text[size - 1] == '\n' || text[size - 1] == '\r' || text[size - 1] == ' '))
    text[--size] = '\0';
  if (size < 32) {
    free(text);
    return vd_error_set(err, "the masking key %s is shorter than 32 characters", path);
  }
  snprintf(out, 2 * MASK_KEY_BYTES + 1, "%s", text);
  free(text);
  return true;
}

/* ---- HTTP helpers -------------------------------------------------------------------------- */

static vd_endpoint endpoint_of(const char *path) {
  if (strcmp(path, "/v1/promotions/score") == 0) return VD_ENDPOINT_SCORE;
  if (strcmp(path, "/v1/decisions") == 0) return VD_ENDPOINT_DECISION_LIST;
  if (strncmp(path, "/v1/decisions/", 14) == 0) return VD_ENDPOINT_DECISION_GET;
  if (strcmp(path, "/v1/admin/reload") == 0) return VD_ENDPOINT_ADMIN_RELOAD;
  if (strcmp(path, "/v1/admin/versions") == 0) return VD_ENDPOINT_ADMIN_VERSIONS;
  if (strcmp(path, "/healthz") == 0) return VD_ENDPOINT_HEALTHZ;
  if (strcmp(path, "/readyz") == 0) return VD_ENDPOINT_READYZ;
  if (strcmp(path, "/metrics") == 0) return VD_ENDPOINT_METRICS;
  if (strcmp(path, "/v1/triage") == 0) return VD_ENDPOINT_TRIAGE;
  if (strcmp(path, "/v1/itineraries") == 0) return VD_ENDPOINT_ITINERARIES;
  if (strncmp(path, "/v1/jobs/", 9) == 0) {
    size_t n = strlen(path);
    return n > 16 && strcmp(path + n - 7, "/events") == 0 ? VD_ENDPOINT_JOB_EVENTS
                                                          : VD_ENDPOINT_JOB_GET;
  }
  return VD_ENDPOINT_OTHER;
}

static void observe(void *ctx, const vd_http_request *req, int status, uint64_t ns) {
  vd_service *s = ctx;
  vd_metrics_observe_request(s->metrics, endpoint_of(vd_http_path(req)), status, ns);
}

static bool authorize(vd_service *s, const vd_http_request *req, vd_role role,
                      vd_http_response *resp) {
  vd_auth_result r = vd_auth_check(s->config->keys, s->config->key_count,
                                   vd_http_header(req, "Authorization"), role, NULL);
  switch (r) {
    case VD_AUTH_OK:
      return true;
    case VD_AUTH_MISSING:
      vd_http_respond_error(resp, 401, "unauthorized", NULL, NULL,
                            "this endpoint needs an API key with the '%s' role: send "
                            "'Authorization: Bearer KEY'",
                            vd_role_name(role));
      vd_http_add_header(resp, "WWW-Authenticate", "Bearer");
      return false;
    case VD_AUTH_UNKNOWN:
      vd_http_respond_error(resp, 401, "unauthorized", NULL, NULL, "unknown API key");
      vd_http_add_header(resp, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
      return false;
    case VD_AUTH_FORBIDDEN:
      vd_http_respond_error(resp, 403, "forbidden", NULL, NULL,
                            "this API key lacks the '%s' role this endpoint needs",
                            vd_role_name(role));
      return false;
  }
  return false;
}

/* Whether a Content-Type names JSON: "application/json", optionally with "charset=utf-8" (any
 * case, the value may be quoted), nothing else. */
static bool is_json_media_type(const char *type) {
  if (!type || strncasecmp(type, "application/json", 16) != 0) return false;
  const char *p = type + 16;
  while (*p == ' ' || *p == '\t') p++;
  if (*p == '\0') return true;
  if (*p++ != ';') return false; /* "application/jsonx", "application/json-seq" */
  while (*p == ' ' || *p == '\t') p++;
  if (strncasecmp(p, "charset=", 8) != 0) return false;
  p += 8;
  bool quoted = *p == '"';
  p += quoted;
  if (strncasecmp(p, "utf-8", 5) != 0) return false;
  p += 5;
  if (quoted && *p++ != '"') return false;
  while (*p == ' ' || *p == '\t') p++;
  return *p == '\0';
}

#define EMPTY_BODY_HINT "send the request as a JSON object"

/* True when text[0..size) holds only JSON whitespace (RFC 8259 2), or nothing. */
static bool is_blank_json(const char *text, size_t size) {
  for (size_t i = 0; i < size; i++)
    if (!strchr(" \t\r\n", text[i]) || text[i] == '\0') return false;
  return true;
}

/* Parses a JSON object body; a body not declared as JSON is a 415 saying what to send, a body
 * that does not parse a 400 with the position of the mistake. */
static json_t *parse_body(const vd_http_request *req, vd_http_response *resp) {
  const char *type = vd_http_header(req, "Content-Type");
  if (!is_json_media_type(type)) {
    char shown[200] = "";
    if (type) vd_printable_prefix(type, strlen(type), shown, sizeof shown);
    vd_http_respond_error(resp, 415, "unsupported_media_type", "Content-Type",
                          json_pack("{s:s}", "expected", "application/json"),
                          "the body must be JSON: send the header 'Content-Type: "
                          "application/json' (optionally with '; charset=utf-8'); %s%s%s",
                          type ? "got '" : "the request has none", shown, type ? "'" : "");
    return NULL;
  }
  size_t size = 0;
  const char *body = vd_http_body(req, &size);
  json_error_t jerr;
  json_t *json = json_loadb(body, size, JSON_REJECT_DUPLICATES, &jerr);
  if (!json && is_blank_json(body, size)) {
    /* jansson puts "end of file" in an empty body at column 0; the object is missing at the
     * first position after the whitespace (line 1, column 1 for no body at all). */
    int line = 1, column = 1;
    for (size_t i = 0; i < size; i++) {
      bool newline = body[i] == '\n';
      line += newline;
      column = newline ? 1 : column + 1;
    }
    vd_http_respond_error(resp, 400, "bad_json", NULL,
                          json_pack("{s:i, s:i, s:I, s:s}", "line", line, "column", column,
                                    "position", (json_int_t)size + 1, "hint", EMPTY_BODY_HINT),
                          "invalid JSON at line %d, column %d: the body is %s — %s", line, column,
                          size ? "only whitespace" : "empty", EMPTY_BODY_HINT);
    return NULL;
  }
  if (!json) {
    char hint[160]; /* the probable cause: "a trailing comma before '}'?" */
    bool hinted = vd_json_error_hint(body, size, &jerr, hint, sizeof hint);
    vd_http_respond_error(
        resp, 400, "bad_json", NULL,
        json_pack("{s:i, s:i, s:i, s:s?}", "line", jerr.line, "column", jerr.column, "position",
                  jerr.position, "hint", hinted ? hint : NULL),
        "invalid JSON at line %d, column %d: %s%s%s", jerr.line, jerr.column, jerr.text,
        hinted ? " — " : "", hinted ? hint : "");
    return NULL;
  }
  if (!json_is_object(json)) {
    json_decref(json);
    vd_http_respond_error(resp, 400, "bad_request", NULL, NULL, "the body must be a JSON object");
    return NULL;
  }
  return json;
}

static void respond_violations(vd_http_response *resp, const vd_diags *violations) {
  json_t *list = json_array();
  for (size_t i = 0; i < violations->count; i++) {
    const vd_error *v = &violations->items[i];
    json_array_append_new(list, json_pack("{s:s, s:s}", "field", v->field, "message", v->message));
  }
  const vd_error *first = violations->count ? &violations->items[0] : NULL;
  vd_http_respond_error(resp, 400, "invalid_request",
                        first && first->field[0] ? first->field : NULL,
                        json_pack("{s:o}", "violations", list),
                        "the request breaks the schema in %zu place%s%s%s%s%s", violations->count,
                        violations->count == 1 ? "" : "s", first ? ": " : "",
                        first && first->field[0] ? first->field : "",
                        first && first->field[0] ? ": " : "", first ? first->message : "");
}

static json_t *diags_json(const vd_diags *diags) {
  json_t *list = json_array();
  for (size_t i = 0; i < diags->count; i++) {
    const vd_error *e = &diags->items[i];
    char text[VD_ERROR_MESSAGE_MAX + VD_ERROR_WHERE_MAX + 32];
    vd_error_format(e, text, sizeof text);
    json_t *item = json_pack("{s:s, s:s}", "message", e->message, "text", text);
    if (e->file[0]) json_object_set_new(item, "file", json_string(e->file));
    if (e->line) json_object_set_new(item, "line", json_integer(e->line));
    if (e->column) json_object_set_new(item, "column", json_integer(e->column));
    if (e->field[0]) json_object_set_new(item, "field", json_string(e->field));
    json_array_append_new(list, item);
  }
  return list;
}

/* ---- Endpoints ----------------------------------------------------------------------------- */

/* GET /v1/decisions/{id}/explanation?format=text|html|json: the trace rendered for a compliance
 * reader (explain/vd_explain.h), with rule descriptions from the stored ruleset it names. */
static void respond_explanation(vd_service *s, const vd_http_request *req, const char *id,
                                json_t *trace, vd_http_response *resp) {
  const char *name = vd_http_query(req, "format");
  vd_explain_format format = VD_EXPLAIN_HTML;
  if (name && !vd_explain_format_parse(name, &format)) {
    vd_http_respond_error(resp, 400, "bad_request", "format", NULL,
                          "format must be text, html or json, got '%s'", name);
    return;
  }
  vd_ruleset *rs = NULL;
  const char *version =
      json_string_value(json_object_get(json_object_get(trace, "ruleset"), "version"));
  char path[4096];
  vd_error err = {0};
  if (version && vd_store_path(s->config->data_dir, "rulesets", version, path, sizeof path, &err) &&
      strlen(path) + 14 < sizeof path) {
    strcat(path, "/ruleset.json");
    rs = vd_ruleset_load(path, NULL);
  }
  vd_buf b = {0};
  if (!vd_explain_render(trace, rs, format, &b, &err)) {
    /* valid JSON, but not a trace: the stored row is damaged, answered as the other damaged
     * rows are (GET /v1/decisions/{id}: 503 naming the decision) */
    vd_error_prefix(&err, "decision log: the stored trace of decision %s", id);
    event(s, "explaining decision %s failed: %s", id, err.message); /* a 5xx is always logged */
    vd_http_respond_error(resp, 503, "decision_log_unavailable", NULL, NULL, "%s", err.message);
  } else {
    size_t len = b.len;
    vd_http_respond_body(resp, 200, vd_explain_content_type(format), vd_buf_take(&b), len);
  }
  vd_buf_free(&b);
  vd_ruleset_free(rs);
}

/* The query parameters an endpoint takes (at most 32). */
typedef struct query_check {
  const char *const *allowed;
  size_t count;
  const char *expected; /* the allowed names in words, for the error */
  unsigned seen;        /* bit i: allowed[i] was given */
  vd_http_response *resp;
  bool bad;
} query_check;

static bool check_query_param(void *ctx, const char *key, const char *value) {
  (void)value;
  query_check *q = ctx;
  for (size_t i = 0; i < q->count; i++) {
    if (strcmp(q->allowed[i], key) != 0) continue;
    if (!(q->seen & (1u << i))) {
      q->seen |= 1u << i;
      return true;
    }
    vd_http_respond_error(q->resp, 400, "bad_request", key, NULL,
                          "query parameter '%s' is given more than once (which one counts would "
                          "be a guess)",
                          key);
    q->bad = true;
    return false;
  }
  vd_http_respond_error(q->resp, 400, "bad_request", key, NULL, "unknown query parameter '%s' (%s)",
                        key, q->expected);
  q->bad = true;
  return false;
}

/* Refuses (400, naming it) a query parameter the endpoint does not take or one given twice: a
 * typo or a second bound silently ignored answers a question the client did not ask. */
static bool query_ok(const vd_http_request *req, const char *const *allowed, size_t count,
                     const char *expected, vd_http_response *resp) {
  query_check q = {allowed, count, expected, 0, resp, false};
  vd_http_query_each(req, check_query_param, &q);
  return !q.bad;
}

static void handle_decision_get(vd_service *s, const vd_http_request *req, vd_http_response *resp) {
  const char *rest = vd_http_path(req) + strlen("/v1/decisions/");
  const char *slash = strchr(rest, '/');
  bool explanation = slash && strcmp(slash, "/explanation") == 0;
  if (slash && !explanation) {
    vd_http_respond_error(
        resp, 404, "not_found", NULL, NULL,
        "no such resource (GET /v1/decisions/ID or /v1/decisions/ID/explanation)");
    return;
  }
  /* a "%00" in the path stays as it is (see vd_server.c), so it makes the id invalid */
  size_t len = slash ? (size_t)(slash - rest) : strlen(rest);
  char id[VD_DECISION_ID_SIZE];
  vd_error err = {0};
  if (!vd_decision_id_parse(rest, len, id, &err)) {
    vd_http_respond_error(resp, 400, "bad_request", "id", NULL, "%s", err.message);
    return;
  }
  static const char *const explanation_params[] = {"format"};
  if (!query_ok(req, explanation_params, explanation ? 1 : 0,
                explanation ? "expected format" : "GET /v1/decisions/ID takes none", resp))
    return;
  json_t *trace = NULL;
  char *text = NULL;
  size_t text_len = 0;
  /* the trace as stored, unless an explanation needs it as a tree */
  vd_log_status st = explanation ? vd_decision_log_get(s->log, id, &trace, &err)
                                 : vd_decision_log_get_text(s->log, id, &text, &text_len, &err);
  if (st == VD_LOG_OK && explanation) {
    respond_explanation(s, req, id, trace, resp);
    json_decref(trace);
  } else if (st == VD_LOG_OK) {
    vd_http_respond_body(resp, 200, "application/json", text, text_len);
  } else if (st == VD_LOG_NOT_FOUND)
    vd_http_respond_error(resp, 404, "not_found", "id", NULL, "no decision with id %s", id);
  else {
    event(s, "reading decision %s failed: %s", id, err.message); /* a 5xx is always logged */
    vd_http_respond_error(resp, 503, "decision_log_unavailable", NULL, NULL, "%s", err.message);
  }
}

/* An explicit bound is honoured whatever its value (1970-01-01T00:00:00Z is 0 µs): *has says
 * whether one was given. */
static bool time_param(const vd_http_request *req, const char *name, bool *has, int64_t *out,
                       vd_http_response *resp) {
  const char *v = vd_http_query(req, name);
  *out = 0;
  *has = v != NULL; /* an empty bound is refused, as the CLI refuses --since '' */
  vd_error err = {0};
  if (*has && !vd_replay_parse_time(name, v, out, &err)) {
    vd_http_respond_error(resp, 400, "bad_request", name, NULL, "%s", err.message);
    return false;
  }
  return true;
}

static void handle_decision_list(vd_service *s, const vd_http_request *req,
                                 vd_http_response *resp) {
  static const char *const allowed[] = {"subject", "kind", "since", "until", "limit", "cursor"};
  if (!query_ok(req, allowed, sizeof allowed / sizeof allowed[0],
                "expected subject, kind, since, until, limit, cursor", resp))
    return;
  vd_decision_query q = {0};
  char masked_subject[VD_TRACE_MASKED_SIZE];
  const char *subject = vd_http_query(req, "subject");
  if (subject) {
    /* A masked subject.id is stored as its HMAC: the caller asks by the id they know. */
    q.subject_id =
        vd_trace_subject_lookup(subject, &s->mask, masked_subject, sizeof masked_subject);
    if (!q.subject_id) {
      vd_http_respond_error(resp, 400, "bad_request", "subject", NULL,
                            "this server masks the whole subject in traces (mask_fields: "
                            "subject), so decisions cannot be listed by subject");
      return;
    }
  }
  q.kind = vd_http_query(req, "kind");
  if (q.kind && !vd_deployment_kind_known(q.kind)) {
    vd_http_respond_error(resp, 400, "bad_request", "kind", NULL,
                          "kind must be promotions or triage, got '%s'", q.kind);
    return;
  }
  q.cursor = vd_http_query(req, "cursor");
  if (!time_param(req, "since", &q.has_since, &q.since_us, resp) ||
      !time_param(req, "until", &q.has_until, &q.until_us, resp))
    return;
  const char *limit = vd_http_query(req, "limit");
  if (limit) {
    char *end = NULL;
    errno = 0;
    long long n = strtoll(limit, &end, 10);
    /* digits only: strtoll would also take leading spaces and a sign ("limit=%2010") */
    if (limit[0] < '0' || limit[0] > '9' || errno || *end || n < 1 || n > VD_DECISION_LIST_MAX) {
      vd_http_respond_error(resp, 400, "bad_request", "limit", NULL,
                            "limit must be an integer in [1, %d], got '%s'", VD_DECISION_LIST_MAX,
                            limit);
      return;
    }
    q.limit = (size_t)n;
  }
  /* The stored trace texts go out as they are: parsing each into a tree only to write it again
   * was ~90 % of a listing's cost. */
  vd_buf body = {0};
  char *next = NULL;
  vd_error err = {0};
  vd_buf_puts(&body, "{\"decisions\":");
  if (!vd_decision_log_list_text(s->log, &q, &body, &next, &err)) {
    vd_buf_free(&body);
    if (err.field[0])
      vd_http_respond_error(resp, 400, "bad_request", err.field, NULL, "%s", err.message);
    else {
      event(s, "listing decisions failed: %s", err.message);
      vd_http_respond_error(resp, 503, "decision_log_unavailable", NULL, NULL, "%s", err.message);
    }
    return;
  }
  /* a cursor is hex digits: no escaping needed */
  vd_buf_printf(&body, ",\"next_cursor\":%s%s%s}", next ? "\"" : "", next ? next : "null",
                next ? "\"" : "");
  free(next);
  if (body.oom) {
    vd_buf_free(&body);
    vd_http_respond_error(resp, 503, "overloaded", NULL, NULL, "out of memory");
    return;
  }
  size_t len = body.len;
  vd_http_respond_body(resp, 200, "application/json", vd_buf_take(&body), len);
}

static json_t *versions_json(vd_service *s) {
  json_t *list = json_array();
  size_t n = vd_registry_count(s->registry);
  for (size_t i = 0; i < n; i++) {
    vd_deployment *d = vd_registry_acquire_at(s->registry, i);
    if (!d) continue;
    json_array_append_new(list, vd_deployment_describe(d));
    vd_deployment_release(d);
  }
  return list;
}

static void handle_reload(vd_service *s, vd_http_response *resp) {
  vd_diags diags = {0};
  json_t *report = NULL;
  if (vd_service_reload(s, &diags, &report)) {
    vd_http_respond_json(resp, 200, report);
  } else {
    char first[VD_ERROR_MESSAGE_MAX + VD_ERROR_WHERE_MAX + 32] = "";
    if (diags.count) vd_error_format(&diags.items[0], first, sizeof first);
    vd_http_respond_error(resp, 422, "reload_failed", NULL,
                          json_pack("{s:o}", "errors", diags_json(&diags)),
                          "reload refused with %zu error%s, the previous versions keep serving: %s",
                          diags.count, diags.count == 1 ? "" : "s", first);
  }
  vd_diags_free(&diags);
}

static void handle_readyz(vd_service *s, vd_http_response *resp) {
  if (!atomic_load(&s->ready) || vd_registry_count(s->registry) == 0) {
    vd_http_respond_error(resp, 503, "not_ready", NULL, NULL,
                          "not ready: deployments are loading or the server is stopping");
    return;
  }
  vd_http_respond_json(resp, 200,
                       json_pack("{s:s, s:o}", "status", "ready", "deployments", versions_json(s)));
}

static void handle_metrics(vd_service *s, vd_http_response *resp) {
  vd_decision_log_stats stats;
  vd_decision_log_stats_get(s->log, &stats);
  vd_buf out = {0};
  vd_metrics_render(s->metrics, &stats, &out);
  if (s->llm) vd_llm_metrics_text(s->llm, &out);
  resp->status = out.oom ? 503 : 200;
  resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
  resp->body_size = out.len;
  resp->body = vd_buf_take(&out);
}

/* ---- Triage and the LLM endpoints ---------------------------------------------------------- */

/* Hands the escalation to the LLM layer without waiting for it. A refusal (queue full, no LLM
 * layer, invalid input) never fails the decision: the escalation records the error and the
 * provisional route stands. */
static void submit_escalation(vd_service *s, vd_triage_decision *d, const char *decision_id) {
  vd_llm_task task;
  if (!vd_llm_task_parse(d->escalate, &task)) {
    vd_triage_record_escalation(d, NULL, "unknown LLM task");
    return;
  }
  if (!s->llm) {
    vd_triage_record_escalation(d, NULL, "llm_unavailable: the config has no llm: section");
    return;
  }
  char job_id[VD_LLM_JOB_ID_SIZE] = "";
  vd_error err = {0};
  vd_llm_submit_opts opts = {.feature = "triage", .ref = decision_id};
  vd_llm_submit_status st = vd_llm_submit(s->llm, task, d->escalation_input, &opts, job_id, &err);
  char why[VD_ERROR_MESSAGE_MAX + 32];
  switch (st) {
    case VD_LLM_SUBMITTED:
    case VD_LLM_CACHED:
      vd_triage_record_escalation(d, job_id, NULL);
      return;
    case VD_LLM_QUEUE_FULL:
      vd_triage_record_escalation(d, NULL, "queue_full: the LLM job queue is full");
      return;
    case VD_LLM_REJECTED:
      snprintf(why, sizeof why, "rejected: %s", err.message);
      vd_triage_record_escalation(d, NULL, why);
      return;
  }
}

/* ---- Serving a decision (every kind) -------------------------------------------------------
 * request -> deployment of the kind -> UUIDv7 -> decide -> log (committed) -> answer. A kind
 * supplies only its decide step and where its outcome lives. */

/* What a decided request hands to the log and the answer (borrowed from the kind's state): the
 * trace and the response as text (text, with the response at [response_start, +response_len)),
 * or as trees when text is NULL. */
typedef struct decided {
  const json_t *trace;
  const json_t *response;
  const char *subject_id, *ruleset_version, *model_version;
  const char *text;
  size_t text_len, response_start, response_len;
} decided;

typedef struct decision_kind {
  const char *name; /* the deployment kind, also the decision log's `kind` */
  /* Runs the kind's pipeline on request into its own state; on VD_PIPELINE_OK fills out. */
  vd_pipeline_status (*decide)(vd_service *s, const vd_deployment *d, const json_t *request,
                               const char *id, int64_t now, void *state, decided *out,
                               vd_diags *violations, vd_error *err);
  void (*clear)(void *state);
} decision_kind;

static vd_pipeline_status decide_promotions(vd_service *s, const vd_deployment *d,
                                            const json_t *request, const char *id, int64_t now,
                                            void *state, decided *out, vd_diags *violations,
                                            vd_error *err) {
  vd_decision *decision = state;
  vd_pipeline_input input = {.request = request,
                             .decision_id = id,
                             .now_us = now,
                             .max_results = s->config->limits.max_results,
                             .mask = &s->mask,
                             .metrics = s->metrics,
                             .text_only = true};
  vd_pipeline_status status = vd_pipeline_decide(d, &input, decision, violations, err);
  *out = (decided){.subject_id = decision->subject_id,
                   .ruleset_version = decision->ruleset_version,
                   .model_version = decision->model_version,
                   .text = decision->trace_text,
                   .text_len = decision->trace_len,
                   .response_start = decision->response_start,
                   .response_len = decision->response_len};
  return status;
}

static void clear_promotions(void *state) { vd_decision_clear(state); }

static vd_pipeline_status decide_triage(vd_service *s, const vd_deployment *d,
                                        const json_t *request, const char *id, int64_t now,
                                        void *state, decided *out, vd_diags *violations,
                                        vd_error *err) {
  vd_triage_decision *decision = state;
  vd_triage_input input = {.request = request,
                           .decision_id = id,
                           .now_us = now,
                           .mask = &s->mask,
                           .gazetteer = s->gazetteer,
                           .gazetteer_version = s->gazetteer_version};
  vd_pipeline_status status = vd_triage_decide(d, &input, decision, violations, err);
  if (status != VD_PIPELINE_OK) return status;
  if (decision->escalate) submit_escalation(s, decision, id);
  char label[64];
  snprintf(label, sizeof label, "triage_%s",
           json_string_value(json_object_get(decision->response, "handled_by")));
  vd_metrics_count(s->metrics, VD_FAMILY_DECISIONS, label, 1);
  *out = (decided){.trace = decision->trace,
                   .response = decision->response,
                   .subject_id = decision->subject_id,
                   .ruleset_version = decision->ruleset_version,
                   .model_version = decision->model_version};
  return status;
}

static void clear_triage(void *state) { vd_triage_decision_clear(state); }

static const decision_kind promotions_kind = {"promotions", decide_promotions, clear_promotions};
static const decision_kind triage_kind = {"triage", decide_triage, clear_triage};

/* Stores the decision — committed before the answer — and answers it; a decision that could not
 * be stored is never answered (503): "a decision whose response was sent is never lost". The
 * trace and the response go through one writer (shortest round-trip reals). */
static void log_and_answer(vd_service *s, const char *id, const char *kind, int64_t now,
                           const decided *out, vd_http_response *resp) {
  size_t len = out->text_len, start = out->response_start, end = start + out->response_len;
  /* the response is inside the trace: written once (by the pipeline, or here from the trees) */
  char *written =
      out->text ? NULL : vd_json_dumps_shortest_part(out->trace, out->response, &len, &start, &end);
  const char *text = out->text ? out->text : written;
  if (!text) {
    vd_http_respond_error(resp, 503, "overloaded", NULL, NULL, "out of memory");
    return;
  }
  vd_decision_record record = {.id = id,
                               .kind = kind,
                               .subject_id = out->subject_id,
                               .timestamp_us = now,
                               .ruleset_version = out->ruleset_version,
                               .model_version = out->model_version,
                               .trace_json = text,
                               .trace_len = len};
  vd_error err = {0};
  vd_log_status logged = vd_decision_log_append(s->log, &record, &err);
  char *body = logged == VD_LOG_OK && end > start ? malloc(end - start + 1) : NULL;
  if (body) {
    memcpy(body, text + start, end - start);
    body[end - start] = '\0';
  }
  free(written);
  if (logged == VD_LOG_OK) {
    if (!body && !out->response) {
      vd_http_respond_error(resp, 503, "overloaded", NULL, NULL, "out of memory");
      return;
    }
    if (!body) { /* not inside the trace (or no memory for the copy): write it on its own */
      vd_http_respond_json(resp, 200, json_incref((json_t *)out->response));
      return;
    }
    vd_http_respond_body(resp, 200, "application/json", body, end - start);
    return;
  }
  log_refusal(s, logged, &err);
  vd_http_respond_error(resp, 503, "decision_log_unavailable", NULL, NULL,
                        "the decision could not be stored (%s): try again; the server's log "
                        "says why",
                        vd_log_status_name(logged));
  vd_http_add_header(resp, "Retry-After", "1");
}

/* state: the kind's zeroed decision struct (a vd_decision, a vd_triage_decision). */
static void serve_decision(vd_service *s, const vd_http_request *req, vd_http_response *resp,
                           const decision_kind *kind, void *state) {
  json_t *request = parse_body(req, resp);
  if (!request) return;
  vd_deployment *d = vd_registry_acquire_kind(s->registry, kind->name);
  if (!d) {
    json_decref(request);
    vd_http_respond_error(resp, 503, "not_ready", NULL, NULL, "no %s deployment is loaded",
                          kind->name);
    return;
  }
  char id[VD_UUID_STRING_SIZE];
  vd_error err = {0};
  vd_diags violations = {0};
  decided out = {0};
  if (!vd_uuid_v7(s->ids, id, &err)) {
    vd_http_respond_error(resp, 500, "internal", NULL, NULL, "%s", err.message);
  } else {
    int64_t now = vd_wall_us();
    vd_pipeline_status status =
        kind->decide(s, d, request, id, now, state, &out, &violations, &err);
    if (status == VD_PIPELINE_INVALID)
      respond_violations(resp, &violations);
    else if (status != VD_PIPELINE_OK)
      vd_http_respond_error(resp, 500, "internal", NULL, NULL, "decision failed: %s", err.message);
    else
      log_and_answer(s, id, kind->name, now, &out, resp);
  }
  kind->clear(state);
  vd_diags_free(&violations);
  json_decref(request);
  vd_deployment_release(d);
}

/* on_done hook of the LLM layer (its worker thread): a classify job's answer is stored on the
 * triage decision it came from, as an amendment beside the provisional route. */
static void on_llm_done(void *ctx, const json_t *job) {
  vd_service *s = ctx;
  const char *task = json_string_value(json_object_get(job, "task"));
  const char *ref = json_string_value(json_object_get(job, "ref"));
  if (!task || !ref || !ref[0]) return;
  const json_t *result = json_object_get(job, "result");
  json_t *amendment = json_pack(
      "{s:s, s:s, s:O, s:O, s:O, s:O}", "type", "llm_escalation", "task", task, "job_id",
      json_object_get(job, "job_id"), "state", json_object_get(job, "state"), "handled_by",
      json_object_get(job, "handled_by"), "result", result ? result : json_null());
  if (strcmp(task, "classify") == 0 && json_is_object(result)) {
    json_object_set(amendment, "final_route", json_object_get(result, "route"));
    json_object_set(amendment, "final_intent", json_object_get(result, "intent"));
  }
  vd_error err = {0};
  if (amendment && vd_decision_log_amend(s->log, ref, amendment, &err) != VD_LOG_OK)
    event(s, "cannot store the %s result of job %s on decision %s: %s", task,
          json_string_value(json_object_get(job, "job_id")), ref, err.message);
  json_decref(amendment);
}

static void handle_itinerary(vd_service *s, const vd_http_request *req, vd_http_response *resp) {
  json_t *request = parse_body(req, resp);
  if (!request) return;
  if (!s->llm) {
    json_decref(request);
    vd_http_respond_error(resp, 503, "llm_unavailable", NULL, NULL,
                          "the LLM layer is not configured (the config has no llm: section)");
    return;
  }
  char job_id[VD_LLM_JOB_ID_SIZE] = "";
  vd_error err = {0};
  vd_llm_submit_opts opts = {.feature = "itineraries"};
  vd_llm_submit_status st =
      vd_llm_submit(s->llm, VD_LLM_TASK_ITINERARY, request, &opts, job_id, &err);
  json_decref(request);
  switch (st) {
    case VD_LLM_SUBMITTED: {
      char events[96];
      snprintf(events, sizeof events, "/v1/jobs/%s/events", job_id);
      vd_http_respond_json(
          resp, 202,
          json_pack("{s:s, s:s, s:s}", "job_id", job_id, "state", "queued", "events", events));
      return;
    }
    case VD_LLM_CACHED: {
      json_t *job = vd_llm_job(s->llm, job_id);
      if (job)
        vd_http_respond_json(resp, 200, job);
      else
        vd_http_respond_error(resp, 500, "internal", NULL, NULL, "cached job %s vanished", job_id);
      return;
    }
    case VD_LLM_QUEUE_FULL:
      vd_http_respond_error(resp, 429, "queue_full", NULL, NULL,
                            "the LLM job queue is full: try again shortly");
      vd_http_add_header(resp, "Retry-After", "1");
      return;
    case VD_LLM_REJECTED:
      if (err.field[0])
        vd_http_respond_error(resp, 400, "invalid_request", err.field, NULL, "%s", err.message);
      else
        vd_http_respond_error(resp, 500, "internal", NULL, NULL, "%s", err.message);
      return;
  }
}

/* One SSE stream: relays a job's events until its "done" event. */
typedef struct job_stream {
  vd_service *service;
  char id[VD_LLM_JOB_ID_SIZE];
  uint64_t cursor;
  uint64_t last_write_ns;
} job_stream;

enum { STREAM_WAIT_MS = 250, STREAM_KEEPALIVE_S = 15 };

static void job_stream_next(void *ctx, vd_buf *out, bool *finished) {
  job_stream *js = ctx;
  vd_error err = {0};
  json_t *events =
      vd_llm_events(js->service->llm, js->id, &js->cursor, STREAM_WAIT_MS, finished, &err);
  if (!events) {
    vd_buf_printf(out, "event: error\ndata: {\"message\": \"job %s is gone\"}\n\n", js->id);
    *finished = true;
    return;
  }
  size_t i;
  json_t *e;
  json_array_foreach(events, i, e) vd_llm_event_sse(e, out);
  json_decref(events);
  uint64_t now = vd_monotonic_ns();
  if (out->len) {
    js->last_write_ns = now;
  } else if (now - js->last_write_ns > (uint64_t)STREAM_KEEPALIVE_S * 1000000000u) {
    vd_buf_puts(out, ": keep-alive\n\n"); /* proxies close idle streams */
    js->last_write_ns = now;
  }
}

static void job_stream_free(void *ctx) {
  job_stream *js = ctx;
  atomic_fetch_sub(&js->service->streams, 1);
  free(js);
}

static void handle_job(vd_service *s, const vd_http_request *req, bool events,
                       vd_http_response *resp) {
  const char *path = vd_http_path(req) + strlen("/v1/jobs/");
  size_t len = events ? strlen(path) - strlen("/events") : strlen(path);
  char id[VD_LLM_JOB_ID_SIZE];
  if (len != VD_LLM_JOB_ID_SIZE - 1) {
    vd_http_respond_error(resp, 400, "bad_request", "id", NULL, "'%.*s' is not a job id",
                          (int)(len > 64 ? 64 : len), path);
    return;
  }
  memcpy(id, path, len);
  id[len] = '\0';
  if (!s->llm) {
    vd_http_respond_error(resp, 503, "llm_unavailable", NULL, NULL,
                          "the LLM layer is not configured (the config has no llm: section)");
    return;
  }
  json_t *job = vd_llm_job(s->llm, id);
  if (!job) {
    vd_http_respond_error(resp, 404, "not_found", "id", NULL, "no job with id %s", id);
    return;
  }
  if (!events) {
    vd_http_respond_json(resp, 200, job);
    return;
  }
  json_decref(job);
  job_stream *js = calloc(1, sizeof *js);
  if (!js) {
    vd_http_respond_error(resp, 503, "overloaded", NULL, NULL, "out of memory");
    return;
  }
  js->service = s;
  memcpy(js->id, id, sizeof id);
  js->last_write_ns = vd_monotonic_ns();
  /* A reconnecting client resumes after the last event it saw. */
  const char *last = vd_http_header(req, "Last-Event-ID");
  if (last && *last) js->cursor = strtoull(last, NULL, 10);
  atomic_fetch_add(&s->streams, 1);
  resp->status = 200;
  resp->content_type = "text/event-stream";
  vd_http_add_header(resp, "Cache-Control", "no-cache");
  vd_http_add_header(resp, "X-Accel-Buffering", "no");
  resp->stream = job_stream_next;
  resp->stream_free = job_stream_free;
  resp->stream_ctx = js;
}

typedef struct route {
  const char *method;
  vd_endpoint endpoint;
  unsigned role; /* 0: no key needed */
} route;

static const route routes[] = {
    {"POST", VD_ENDPOINT_SCORE, VD_ROLE_SCORE},
    {"GET", VD_ENDPOINT_DECISION_GET, VD_ROLE_COMPLIANCE},
    {"GET", VD_ENDPOINT_DECISION_LIST, VD_ROLE_COMPLIANCE},
    {"POST", VD_ENDPOINT_ADMIN_RELOAD, VD_ROLE_ADMIN},
    {"GET", VD_ENDPOINT_ADMIN_VERSIONS, VD_ROLE_ADMIN},
    {"GET", VD_ENDPOINT_HEALTHZ, 0},
    {"GET", VD_ENDPOINT_READYZ, 0},
    {"GET", VD_ENDPOINT_METRICS, 0},
    {"POST", VD_ENDPOINT_TRIAGE, VD_ROLE_SCORE},
    {"POST", VD_ENDPOINT_ITINERARIES, VD_ROLE_SCORE},
    {"GET", VD_ENDPOINT_JOB_GET, VD_ROLE_SCORE},
    {"GET", VD_ENDPOINT_JOB_EVENTS, VD_ROLE_SCORE},
};

static void handle(void *ctx, const vd_http_request *req, vd_http_response *resp) {
  vd_service *s = ctx;
  vd_endpoint endpoint = endpoint_of(vd_http_path(req));
  const route *r = NULL;
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
    if (routes[i].endpoint == endpoint) r = &routes[i];
  if (!r) {
    vd_http_respond_error(resp, 404, "not_found", NULL, NULL, "no such endpoint: %s",
                          vd_http_path(req));
    return;
  }
  const char *method = vd_http_method(req);
  bool head = strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0;
  if (strcmp(method, r->method) != 0 && !head) {
    vd_http_respond_error(resp, 405, "method_not_allowed", NULL, NULL,
                          "%s %s is not supported (use %s)", method, vd_http_path(req), r->method);
    vd_http_add_header(resp, "Allow", r->method);
    return;
  }
  if (r->role && !authorize(s, req, r->role, resp)) return;
  switch (endpoint) {
    case VD_ENDPOINT_SCORE:
      serve_decision(s, req, resp, &promotions_kind, &(vd_decision){0});
      break;
    case VD_ENDPOINT_DECISION_GET:
      handle_decision_get(s, req, resp);
      break;
    case VD_ENDPOINT_DECISION_LIST:
      handle_decision_list(s, req, resp);
      break;
    case VD_ENDPOINT_ADMIN_RELOAD:
      handle_reload(s, resp);
      break;
    case VD_ENDPOINT_ADMIN_VERSIONS:
      vd_http_respond_json(
          resp, 200,
          json_pack("{s:s, s:o}", "verdict", VERDICT_VERSION, "deployments", versions_json(s)));
      break;
    case VD_ENDPOINT_HEALTHZ:
      vd_http_respond_json(resp, 200, json_pack("{s:s}", "status", "ok"));
      break;
    case VD_ENDPOINT_READYZ:
      handle_readyz(s, resp);
      break;
    case VD_ENDPOINT_METRICS:
      handle_metrics(s, resp);
      break;
    case VD_ENDPOINT_TRIAGE:
      serve_decision(s, req, resp, &triage_kind, &(vd_triage_decision){0});
      break;
    case VD_ENDPOINT_ITINERARIES:
      handle_itinerary(s, req, resp);
      break;
    case VD_ENDPOINT_JOB_GET:
    case VD_ENDPOINT_JOB_EVENTS:
      handle_job(s, req, endpoint == VD_ENDPOINT_JOB_EVENTS, resp);
      break;
    default:
      vd_http_respond_error(resp, 404, "not_found", NULL, NULL, "no such endpoint");
      break;
  }
}

/* ---- Loading and reloading ----------------------------------------------------------------- */

/* A warm-up's result as a load error (a warm-up request the schema refuses names the field);
 * frees violations. */
static bool warm_up_outcome(const vd_deployment *d, vd_pipeline_status st, vd_diags *violations,
                            const vd_error *err, vd_diags *diags) {
  bool ok = st == VD_PIPELINE_OK;
  if (!ok) {
    vd_error e;
    if (st == VD_PIPELINE_INVALID && violations->count)
      vd_error_set(&e, "%s/deployment.yaml: the warmup request breaks the schema: %s: %s",
                   vd_deployment_dir(d), violations->items[0].field, violations->items[0].message);
    else
      vd_error_set(&e, "%s: warm-up failed: %s", vd_deployment_dir(d), err->message);
    if (diags) vd_diags_add(diags, &e);
  }
  vd_diags_free(violations);
  return ok;
}

/* The triage warm-up: the deployment's warmup request in the schema's shape ({context: {text,
 * channel}, subject}) is sent as the API body {text, channel, subject}. */
static bool warm_up_triage(vd_service *s, const vd_deployment *d, const json_t *warmup,
                           vd_diags *diags) {
  const json_t *context = json_object_get(warmup, "context");
  json_t *body =
      json_pack("{s:O?, s:O?, s:O?}", "text", json_object_get(context, "text"), "channel",
                json_object_get(context, "channel"), "subject", json_object_get(warmup, "subject"));
  vd_triage_input input = {.request = body,
                           .decision_id = "00000000-0000-7000-8000-000000000000",
                           .mask = &s->mask,
                           .gazetteer = s->gazetteer,
                           .gazetteer_version = s->gazetteer_version};
  vd_triage_decision decision = {0};
  vd_diags violations = {0};
  vd_error err = {0};
  vd_pipeline_status st = vd_triage_decide(d, &input, &decision, &violations, &err);
  vd_triage_decision_clear(&decision);
  json_decref(body);
  return warm_up_outcome(d, st, &violations, &err, diags);
}

/* Scores the deployment's warm-up request once (nothing is logged), so the first real request
 * does not pay for cold caches, and a warm-up request the schema refuses is a load error. */
static bool warm_up(vd_service *s, const vd_deployment *d, vd_diags *diags) {
  const json_t *warmup = vd_deployment_warmup(d);
  if (!warmup) return true;
  if (strcmp(vd_deployment_kind(d), "triage") == 0) return warm_up_triage(s, d, warmup, diags);
  vd_pipeline_input input = {
      .request = warmup, .decision_id = "00000000-0000-7000-8000-000000000000", .mask = &s->mask};
  vd_decision decision = {0};
  vd_diags violations = {0};
  vd_error err = {0};
  vd_pipeline_status st = vd_pipeline_decide(d, &input, &decision, &violations, &err);
  vd_decision_clear(&decision);
  return warm_up_outcome(d, st, &violations, &err, diags);
}

/* Loads every configured deployment; on success *out holds one new version per folder. On
 * failure *failed (when not NULL) names what was refused, for the summary line after the errors:
 * a deployment that did not load, or mask_fields that the deployments (loaded fine) refuse. */
static bool load_all(vd_service *s, bool reloading, vd_deployment **out, vd_diags *diags,
                     const char **failed) {
  const vd_config *c = s->config;
  bool ok = true, deployments_ok = true, mask_ok = true;
  for (size_t i = 0; i < c->deployment_count; i++) {
    bool had_model = false;
    if (reloading) {
      vd_deployment *current = vd_registry_acquire_at(s->registry, i);
      had_model = current && (vd_deployment_model(current) || vd_deployment_triage(current));
      vd_deployment_release(current);
    }
    vd_deployment_load_options options = {.data_dir = c->data_dir, .require_model = had_model};
    out[i] = vd_deployment_load(c->deployments[i], &options, diags);
    if (!out[i] || !warm_up(s, out[i], diags))
      deployments_ok = false;
    else if (!vd_trace_mask_check(&s->mask, vd_deployment_ruleset(out[i]),
                                  vd_deployment_model(out[i]), diags))
      mask_ok = false;
  }
  if (deployments_ok && mask_ok) {
    const vd_schema **schemas = calloc(c->deployment_count + 1, sizeof(const vd_schema *));
    for (size_t i = 0; schemas && i < c->deployment_count; i++)
      schemas[i] = vd_deployment_schema(out[i]);
    if (!schemas) deployments_ok = false;
    mask_ok = schemas && vd_trace_mask_known(&s->mask, schemas, c->deployment_count, diags);
    free(schemas);
  }
  ok = deployments_ok && mask_ok;
  for (size_t i = 0; ok && i < c->deployment_count; i++)
    for (size_t j = 0; j < i; j++)
      if (strcmp(vd_deployment_kind(out[i]), vd_deployment_kind(out[j])) == 0 ||
          strcmp(vd_deployment_name(out[i]), vd_deployment_name(out[j])) == 0) {
        vd_error e;
        vd_error_set(&e, "deployments %s and %s have the same name or kind", c->deployments[j],
                     c->deployments[i]);
        if (diags) vd_diags_add(diags, &e);
        ok = false;
      }
  if (failed && !ok)
    *failed = !deployments_ok ? (mask_ok ? "the deployments failed to load"
                                         : "the deployments failed to load and mask_fields "
                                           "was refused")
              : !mask_ok      ? "mask_fields was refused (the deployments loaded)"
                              : "two deployments have the same name or kind";
  if (!ok)
    for (size_t i = 0; i < c->deployment_count; i++) {
      vd_deployment_release(out[i]);
      out[i] = NULL;
    }
  return ok;
}

/* One line per deployment (of versions_json): what serves each kind, with every version. */
static void log_deployments(vd_service *s, const char *verb, const json_t *versions) {
  size_t i;
  const json_t *v;
  json_array_foreach(versions, i, v) {
    const json_t *model = json_object_get(v, "model");
#define VERSION_OF(part) json_string_value(json_object_get(json_object_get(v, part), "version"))
    event(s, "%s deployment %s (kind %s, folder %s): ruleset %s, schema %s, model %s", verb,
          json_string_value(json_object_get(v, "name")),
          json_string_value(json_object_get(v, "kind")),
          json_string_value(json_object_get(v, "dir")), VERSION_OF("ruleset"), VERSION_OF("schema"),
          json_is_object(model) ? VERSION_OF("model") : "none (rules only)");
#undef VERSION_OF
  }
}

bool vd_service_reload(vd_service *s, vd_diags *diags, json_t **report) {
  size_t n = s->config->deployment_count;
  vd_deployment **fresh = calloc(n, sizeof(vd_deployment *));
  if (!fresh) return false;
  pthread_mutex_lock(&s->reload_lock);
  bool ok = load_all(s, true, fresh, diags, NULL);
  json_t *prompts =
      NULL; /* the LLM prompts the registry now has active, swapped in with the rules */
  if (ok && s->llm) {
    vd_error perr = {0};
    ok = vd_llm_reload_prompts(s->llm, &prompts, &perr);
    if (!ok && diags) vd_diags_add(diags, &perr);
    for (size_t i = 0; !ok && i < n; i++) vd_deployment_release(fresh[i]);
  }
  if (ok)
    for (size_t i = 0; i < n; i++) vd_registry_install(s->registry, fresh[i]);
  pthread_mutex_unlock(&s->reload_lock);
  free(fresh);
  if (ok) {
    json_t *versions = versions_json(s);
    log_deployments(s, "reloaded", versions);
    if (report)
      *report = json_pack("{s:o,s:o*}", "reloaded", versions, "prompts", prompts);
    else
      json_decref(versions);
    if (!report) json_decref(prompts);
  } else {
    event(s, "reload refused (%zu error%s); the previous versions keep serving",
          diags ? diags->count : 0, diags && diags->count == 1 ? "" : "s");
    for (size_t i = 0; diags && i < diags->count; i++) {
      char text[VD_ERROR_MESSAGE_MAX + VD_ERROR_WHERE_MAX + 32];
      vd_error_format(&diags->items[i], text, sizeof text);
      event(s, "reload: %s", text);
    }
  }
  return ok;
}

/* The LLM layer, when the config has an `llm:` section: its data in the data folder, prompts,
 * catalogue and gazetteer next to the config file unless the section says otherwise. */
static bool open_llm(vd_service *s, vd_error *err) {
  const vd_config *c = s->config;
  if (!c->llm) return true;
  vd_llm_config lc;
  vd_llm_config_defaults(&lc);
  snprintf(lc.data_dir, sizeof lc.data_dir, "%s", c->data_dir);
  snprintf(lc.prompts_dir, sizeof lc.prompts_dir, "%s/prompts", c->base_dir);
  snprintf(lc.catalogue_path, sizeof lc.catalogue_path, "%s/itineraries/catalogue.json",
           c->base_dir);
  snprintf(lc.gazetteer_path, sizeof lc.gazetteer_path, "%s/triage/gazetteer.tsv", c->base_dir);
  if (!vd_llm_config_from_json(&lc, c->llm, err)) {
    vd_error_prefix(err, "%s", c->path);
    return false;
  }
  lc.on_done = on_llm_done;
  lc.on_done_ctx = s;
  /* A copied config finds these beside itself: the message says which key and from where. */
  if (lc.gazetteer_path[0] && !(s->gazetteer = vd_triage_gazetteer_open(
                                    lc.gazetteer_path, c->data_dir, s->gazetteer_version, err))) {
    vd_error_prefix(err,
                    "%s: llm.gazetteer (default triage/gazetteer.tsv; paths start at the "
                    "config file's folder)",
                    c->path);
    return false;
  }
  s->llm = vd_llm_open(&lc, err);
  if (!s->llm)
    vd_error_prefix(err,
                    "%s: llm (prompts_dir, catalogue default to prompts/ and "
                    "itineraries/catalogue.json; paths start at the config file's folder)",
                    c->path);
  return s->llm != NULL;
}

static void service_free(vd_service *s) {
  vd_llm_close(s->llm); /* no on_done hook runs after this */
  vd_gazetteer_free(s->gazetteer);
  vd_registry_free(s->registry);
  if (s->log) vd_decision_log_close(s->log);
  vd_metrics_free(s->metrics);
  vd_uuid_gen_free(s->ids);
  free(s->tls_cert_pem);
  if (s->tls_key_pem) explicit_bzero(s->tls_key_pem, strlen(s->tls_key_pem)); /* a secret */
  free(s->tls_key_pem);
  pthread_mutex_destroy(&s->reload_lock);
  if (s->data_lock >= 0) close(s->data_lock); /* last: the folder is free once all is flushed */
  free(s);
}

/* One server per data folder: two would run the same LLM jobs twice, race on the version store
 * and mix their decision logs' retention. The kernel drops the lock when the process dies, so a
 * SIGKILLed server never leaves a stale one. */
static int lock_data_dir(const char *dir, vd_error *err) {
  char path[4096];
  snprintf(path, sizeof path, "%s/verdict.lock", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    vd_error_set(err, "cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char holder[32] = "";
    ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
    holder[n > 0 ? n : 0] = '\0';
    holder[strcspn(holder, "\n")] = '\0';
    vd_error_set(err, "the data folder %s is in use by another verdict server%s%s%s", dir,
                 *holder ? " (pid " : "", holder, *holder ? ")" : "");
    close(fd);
    return -1;
  }
  char pid[32];
  int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  /* the pid is only informative (for the message above): the lock is what counts */
  bool wrote = ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)len, 0) == len;
  (void)wrote;
  return fd;
}

/* What an operator needs to know the server is the one they meant: where it listens and stores,
 * what each deployment serves, how it commits. Key names and hashes are never logged. */
static void log_start(vd_service *s, const vd_decision_log_config *log, unsigned threads) {
  const vd_config *c = s->config;
  bool v6 = strchr(c->listen_host, ':') != NULL;
  event(s, "version %s, listening on %s://%s%s%s:%d", VERDICT_VERSION,
        c->tls_cert ? "https" : "http", v6 ? "[" : "", c->listen_host, v6 ? "]" : "",
        vd_server_port(s->server));
  event(s, "data folder %s, decision log %s", c->data_dir, log->path);
  vd_decision_log_stats st;
  vd_decision_log_stats_get(s->log, &st);
  if (st.replayed)
    event(s, "decision log: %llu decisions found in its journal, indexed now if they were not",
          (unsigned long long)st.replayed);
  if (st.journal_unreadable)
    event(s,
          "WARNING: decision log: %llu journal records did not read as decisions (a newer "
          "verdict's?): set aside, as they were, in %s.journal-unreadable",
          (unsigned long long)st.journal_unreadable, log->path);
  if (st.journal_damaged_bytes)
    event(s,
          "WARNING: decision log: %llu damaged bytes in its journal were skipped (the records "
          "after them were read); the damage stays in %s.journal-0/-1 until the file is reused",
          (unsigned long long)st.journal_damaged_bytes, log->path);
  json_t *versions = versions_json(s);
  log_deployments(s, "serving", versions);
  json_decref(versions);
  char retention[48] = "kept forever";
  if (log->retention_days)
    snprintf(retention, sizeof retention, "deleted after %u days", log->retention_days);
  event(
      s,
      "%u HTTP threads, up to %u connections; durability %s (%s), overload %s, decisions %s; "
      "%zu API keys; LLM layer %s",
      threads, c->limits.max_connections ? c->limits.max_connections : 1024,
      log->durability == VD_DURABILITY_FSYNC ? "fsync" : "normal",
      log->durability == VD_DURABILITY_FSYNC ? "survives power loss" : "survives a killed process",
      log->overload == VD_LOG_OVERLOAD_WAIT ? "wait" : "reject", retention, c->key_count,
      s->llm ? "on" : "off");
}

vd_service *vd_service_start(const vd_config *c, FILE *events, vd_diags *diags, vd_error *err) {
  vd_service *s = calloc(1, sizeof *s);
  if (!s) {
    vd_error_set(err, "out of memory");
    return NULL;
  }
  s->config = c;
  s->events = events;
  s->data_lock = -1;
  pthread_mutex_init(&s->reload_lock, NULL);
  s->registry = vd_registry_new();
  s->metrics = vd_metrics_new();
  s->ids = vd_uuid_gen_new(err);
  /* a start that fails leaves no data folder behind when it made it (a typo in a rule file
   * must not leave an empty decision log, a masking key and a lock file to find later) */
  char created[4096] = "";
  if (!s->registry || !s->metrics || !s->ids ||
      !make_dirs(c->data_dir, created, sizeof created, err))
    goto fail;
  if ((s->data_lock = lock_data_dir(c->data_dir, err)) < 0) goto fail;
  char path[4096];
  const char *key_path = c->mask_key_file;
  if (!key_path) {
    snprintf(path, sizeof path, "%s/mask.key", c->data_dir);
    key_path = path;
  }
  if (!load_mask_key(key_path, s->mask_key, err)) goto fail;
  s->mask = (vd_trace_mask){.key = (const unsigned char *)s->mask_key,
                            .key_size = strlen(s->mask_key),
                            .fields = (const char *const *)c->mask_fields,
                            .field_count = c->mask_field_count};
  vd_decision_log_config log_config = c->decision_log;
  char log_path[4096];
  if (!log_config.path) {
    snprintf(log_path, sizeof log_path, "%s/decisions.db", c->data_dir);
    log_config.path = log_path;
  }
  s->log = vd_decision_log_open(&log_config, err);
  if (!s->log) goto fail;
  if (!open_llm(s, err)) goto fail;

  vd_deployment **loaded = calloc(c->deployment_count, sizeof(vd_deployment *));
  if (!loaded) goto fail;
  const char *failed = NULL;
  if (!load_all(s, false, loaded, diags, &failed)) {
    free(loaded);
    vd_error_set(err, "%s", failed);
    goto fail;
  }
  for (size_t i = 0; i < c->deployment_count; i++) {
    const char *model_error = vd_deployment_model_error(loaded[i]);
    if (model_error)
      event(s, "deployment %s serves rules only: %s", vd_deployment_name(loaded[i]), model_error);
    vd_registry_install(s->registry, loaded[i]);
  }
  free(loaded);

  /* A handler blocks until its decision is journaled (and with durability fsync until the disk
   * has it), so more threads than cores keep the cores busy meanwhile. */
  unsigned threads = c->limits.threads;
  if (!threads) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    threads = 4 * (cores > 0 ? (unsigned)cores : 1);
  }
  if (c->tls_cert) {
    size_t size = 0;
    s->tls_cert_pem = vd_read_file(c->tls_cert, 1 << 20, &size, err);
    if (!s->tls_cert_pem) goto fail;
    s->tls_key_pem = vd_read_file(c->tls_key, 1 << 20, &size, err);
    if (!s->tls_key_pem) goto fail;
  }
  vd_server_options options = {.host = c->listen_host,
                               .port = c->listen_port,
                               .threads = threads,
                               .max_connections = c->limits.max_connections,
                               .max_connections_per_ip = c->limits.max_connections_per_ip,
                               .connection_timeout_s = c->limits.connection_timeout_s,
                               .request_timeout_ms = c->limits.request_timeout_ms,
                               .max_body_bytes = c->limits.max_body_bytes,
                               .max_header_bytes = c->limits.max_header_bytes,
                               .time_slice_us = c->limits.time_slice_us,
                               .tls_cert_pem = s->tls_cert_pem,
                               .tls_key_pem = s->tls_key_pem,
                               .handler = handle,
                               .observer = observe,
                               .ctx = s};
  s->server = vd_server_start(&options, err);
  if (!s->server) goto fail;
  log_start(s, &log_config, threads);
  atomic_store(&s->ready, true);
  return s;
fail:
  service_free(s);
  if (created[0]) vd_remove_tree(created);
  return NULL;
}

int vd_service_port(const vd_service *s) { return vd_server_port(s->server); }

bool vd_service_stop(vd_service *s) {
  if (!s) return true;
  atomic_store(&s->ready, false);
  vd_server_quiesce(s->server);
  bool drained = vd_server_drain(s->server, s->config->limits.shutdown_timeout_ms);
  if (!drained)
    event(s, "%u requests still in flight after %u ms; closing them",
          vd_server_in_flight(s->server), s->config->limits.shutdown_timeout_ms);
  vd_server_stop(s->server);
  /* a stream's producer may still be inside vd_llm_events for one more wait */
  for (int i = 0; i < 200 && atomic_load(&s->streams) > 0; i++) usleep(10000);
  service_free(s); /* closes the decision log: every queued decision is committed first */
  return drained;
}

/* ---- verdict serve ------------------------------------------------------------------------- */

static const vd_verb_help serve_help = {
    "serve",
    "usage: verdict serve --config FILE [--listen HOST:PORT] [--data-dir DIR]\n\n"
    "Serves the scoring API of the deployments the config file names (see "
    "examples/verdict.yaml).\n"
    "SIGHUP reloads rules and models; SIGTERM or SIGINT stops gracefully (in-flight "
    "requests finish, the decision log is flushed) and exits 0.",
    NULL};

int vd_verb_serve(int argc, char **argv, FILE *out, FILE *err) {
  vd_option options[] = {
      {"config", true, NULL, "FILE: the server configuration (YAML)"},
      {"listen", true, NULL, "HOST:PORT: overrides `listen` (port 0 picks a free port)"},
      {"data-dir", true, NULL,
       "DIR: overrides `data_dir` (decision log, version store, masking key)"},
  };
  const size_t option_count = sizeof options / sizeof options[0];
  size_t positional_count = 0;
  int parsed = vd_args_verb(&serve_help, argc, argv, 1, options, option_count, NULL, 0,
                            &positional_count, out, err);
  if (parsed != VD_ARGS_GO_ON) return parsed;
  vd_error e = {0};
  const char *config_path = vd_args_get(options, option_count, "config");
  if (!config_path) return vd_args_usage_error("serve", err, "--config FILE is required");
  vd_config_overrides overrides = {.listen = vd_args_get(options, option_count, "listen"),
                                   .data_dir = vd_args_get(options, option_count, "data-dir")};
  vd_config *config = vd_config_load_overridden(config_path, &overrides, &e);
  if (!config) {
    char text[1024];
    vd_error_format(&e, text, sizeof text);
    fprintf(err, "verdict serve: %s\n", text);
    vd_config_free(config);
    return 2;
  }
  /* Signals are taken synchronously by this thread (sigwait); every thread started from here on
   * inherits the blocked mask, so no worker is interrupted. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);

  vd_diags diags = {0};
  vd_service *service = vd_service_start(config, err, &diags, &e);
  if (!service) {
    for (size_t i = 0; i < diags.count; i++) {
      char text[1024];
      vd_error_format(&diags.items[i], text, sizeof text);
      fprintf(err, "verdict serve: %s\n", text);
    }
    fprintf(err, "verdict serve: %s\n", e.message);
    vd_diags_free(&diags);
    vd_config_free(config);
    return 1;
  }
  vd_diags_free(&diags);
  const char *host = config->listen_host;
  bool v6 = strchr(host, ':') != NULL;
  fprintf(out, "verdict: listening on %s://%s%s%s:%d\n", config->tls_cert ? "https" : "http",
          v6 ? "[" : "", host, v6 ? "]" : "", vd_service_port(service));
  fflush(out);
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      vd_diags reload_diags = {0}; /* vd_service_reload logs each error */
      vd_service_reload(service, &reload_diags, NULL);
      vd_diags_free(&reload_diags);
      continue;
    }
    break;
  }
  fprintf(err, "verdict: stopping: finishing requests in flight, flushing the decision log\n");
  bool drained = vd_service_stop(service);
  fprintf(err, "verdict: stopped%s\n", drained ? "" : " (some requests were cut off)");
  vd_config_free(config);
  return 0;
}
