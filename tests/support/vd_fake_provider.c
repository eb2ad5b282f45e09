#include "vd_fake_provider.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vd_buf.h"
#include "vd_time.h"

enum { MAX_STEPS = 64, MAX_RETIRED = 64 };

/* What a model says when it does not follow the instructions, for FAKE_NOT_JSON and
 * FAKE_WRONG_SHAPE. */
static const char prose_answer[] = "I'm sorry, I can't help with that request right now.";
static const char wrong_shape_answer[] = "{\"answer\": [1, 2, 3], \"note\": {\"ok\": true}}";

typedef struct step {
  fake_fault fault;
  char *answer;
  int delay_ms;
  char retry_after[32];
} step;

struct fake_provider {
  struct MHD_Daemon *daemon;               /* NULL while refusing connections */
  struct MHD_Daemon *retired[MAX_RETIRED]; /* stopped listening; finish their calls until stop */
  int retired_count;
  uint16_t port;
  atomic_bool stopping; /* cuts every scripted delay short */
  char anthropic_url[64];
  char openai_url[64];
  pthread_mutex_t mu;
  char *answer;
  int token_delay_ms;
  int chars_per_event;
  bool crlf;
  fake_fault down;
  int down_delay_ms;
  char down_retry_after[32];
  int fault_counts[FAKE_FAULT_COUNT];
  fake_responder responder; /* answers depending on the request (NULL: the default answer) */
  void *responder_ctx;
  step steps[MAX_STEPS];
  int step_head, step_count;
  int requests;
  json_t *last_request;
  uint64_t text_sent_ns[FAKE_MAX_SENT];
  size_t text_sent_count;
};

/* One streamed response: segments written in order, each after its delay. */
typedef struct segment {
  char *bytes;
  size_t len;
  int delay_ms;
  bool text; /* answer text: its send time is recorded */
} segment;

typedef struct stream {
  segment *segs;
  size_t count, capacity;
  size_t index, offset;
  bool cut; /* end with an error (the connection drops) instead of a clean end */
  fake_provider *owner;
} stream;

typedef struct upload {
  vd_buf body;
} upload;

/* Sleeps ms in short steps, returning early once the fake is stopping (so a stop never waits for
 * a scripted delay). */
static void sleep_ms(fake_provider *fp, int ms) {
  while (ms > 0 && !atomic_load(&fp->stopping)) {
    int step = ms < 5 ? ms : 5;
    struct timespec ts = {0, (long)step * 1000000L};
    nanosleep(&ts, NULL);
    ms -= step;
  }
}

static void add_segment(stream *s, bool crlf, int delay_ms, const char *event, const char *data) {
  if (s->count == s->capacity) {
    s->capacity = s->capacity ? s->capacity * 2 : 32;
    s->segs = realloc(s->segs, s->capacity * sizeof *s->segs);
  }
  const char *nl = crlf ? "\r\n" : "\n";
  vd_buf b = {0};
  if (event) vd_buf_printf(&b, "event: %s%s", event, nl);
  vd_buf_printf(&b, "data: %s%s%s", data, nl, nl);
  s->segs[s->count++] = (segment){.bytes = vd_buf_take(&b), .len = 0, .delay_ms = delay_ms};
  s->segs[s->count - 1].len = strlen(s->segs[s->count - 1].bytes);
}

static void add_json(stream *s, bool crlf, int delay_ms, const char *event, json_t *data) {
  char *text = json_dumps(data, JSON_COMPACT);
  add_segment(s, crlf, delay_ms, event, text);
  free(text);
  json_decref(data);
}

static void stream_free(void *cls) {
  stream *s = cls;
  for (size_t i = 0; i < s->count; i++) free(s->segs[i].bytes);
  free(s->segs);
  free(s);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  stream *s = cls;
  if (s->index == s->count)
    return s->cut ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
  segment *seg = &s->segs[s->index];
  if (s->offset == 0) sleep_ms(s->owner, seg->delay_ms);
  if (s->offset == 0 && seg->text) {
    fake_provider *fp = s->owner;
    pthread_mutex_lock(&fp->mu);
    if (fp->text_sent_count < FAKE_MAX_SENT)
      fp->text_sent_ns[fp->text_sent_count++] = vd_monotonic_ns();
    pthread_mutex_unlock(&fp->mu);
  }
  size_t n = seg->len - s->offset;
  if (n > max) n = max;
  memcpy(buf, seg->bytes + s->offset, n);
  s->offset += n;
  if (s->offset == seg->len) s->index++, s->offset = 0;
  return (ssize_t)n;
}

/* Builds the event stream of an answer in the wire format, with the step's fault. */
static stream *build_stream(bool openai, const char *answer, size_t input_tokens, const step *st,
                            int token_delay_ms, int chars_per_event, bool crlf) {
  stream *s = calloc(1, sizeof *s);
  size_t len = strlen(answer);
  size_t pieces = (len + (size_t)chars_per_event - 1) / (size_t)chars_per_event;
  size_t stop_at =
      st->fault == FAKE_CUT_MID_STREAM || st->fault == FAKE_ERROR_EVENT ? pieces / 2 : pieces;
  if (!openai) {
    add_json(s, crlf, 0, "message_start",
             json_pack("{s:s,s:{s:s,s:s,s:s,s:[],s:{s:I,s:i}}}", "type", "message_start", "message",
                       "id", "msg_fake", "type", "message", "role", "assistant", "content", "usage",
                       "input_tokens", (json_int_t)input_tokens, "output_tokens", 1));
    add_json(s, crlf, 0, "content_block_start",
             json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_start", "index", 0,
                       "content_block", "type", "text", "text", ""));
    add_segment(s, crlf, 0, "ping", "{\"type\": \"ping\"}");
  }
  if (st->fault == FAKE_MALFORMED_EVENT)
    add_segment(s, crlf, 0, openai ? NULL : "content_block_delta",
                "{\"type\": \"content_block_delta\", \"delta\": {\"text\": ");
  for (size_t i = 0; i < stop_at; i++) {
    size_t at = i * (size_t)chars_per_event;
    size_t n = len - at < (size_t)chars_per_event ? len - at : (size_t)chars_per_event;
    bool slow = st->fault == FAKE_SLOW_DRIP || (i == 0 && st->fault == FAKE_SLOW_FIRST_TOKEN);
    int delay = token_delay_ms + (slow ? st->delay_ms : 0);
    if (openai)
      add_json(s, crlf, delay, NULL,
               json_pack("{s:s,s:s,s:[{s:i,s:{s:s%},s:n}],s:n}", "id", "chatcmpl-fake", "object",
                         "chat.completion.chunk", "choices", "index", 0, "delta", "content",
                         answer + at, n, "finish_reason", "usage"));
    else
      add_json(s, crlf, delay, "content_block_delta",
               json_pack("{s:s,s:i,s:{s:s,s:s%}}", "type", "content_block_delta", "index", 0,
                         "delta", "type", "text_delta", "text", answer + at, n));
  }
  for (size_t i = 0; i < s->count; i++)
    if (strstr(s->segs[i].bytes, openai ? "\"content\"" : "text_delta")) s->segs[i].text = true;
  if (st->fault == FAKE_CUT_MID_STREAM) {
    s->cut = true;
    return s;
  }
  if (st->fault == FAKE_ERROR_EVENT) {
    if (openai)
      add_segment(s, crlf, 0, NULL,
                  "{\"error\": {\"message\": \"Overloaded\", \"type\": \"overloaded_error\"}}");
    else
      add_segment(s, crlf, 0, "error",
                  "{\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": "
                  "\"Overloaded\"}}");
    return s;
  }
  if (openai) {
    add_json(s, crlf, 0, NULL,
             json_pack("{s:s,s:[{s:i,s:{},s:s}],s:n}", "id", "chatcmpl-fake", "choices", "index", 0,
                       "delta", "finish_reason", "stop", "usage"));
    add_json(s, crlf, 0, NULL,
             json_pack("{s:s,s:[],s:{s:I,s:I,s:I}}", "id", "chatcmpl-fake", "choices", "usage",
                       "prompt_tokens", (json_int_t)input_tokens, "completion_tokens",
                       (json_int_t)pieces, "total_tokens",
                       (json_int_t)input_tokens + (json_int_t)pieces));
    if (st->fault != FAKE_NO_STOP) add_segment(s, crlf, 0, NULL, "[DONE]");
  } else {
    add_json(s, crlf, 0, "content_block_stop",
             json_pack("{s:s,s:i}", "type", "content_block_stop", "index", 0));
    add_json(s, crlf, 0, "message_delta",
             json_pack("{s:s,s:{s:s,s:n},s:{s:I}}", "type", "message_delta", "delta", "stop_reason",
                       "end_turn", "stop_sequence", "usage", "output_tokens", (json_int_t)pieces));
    if (st->fault != FAKE_NO_STOP)
      add_segment(s, crlf, 0, "message_stop", "{\"type\": \"message_stop\"}");
  }
  return s;
}

static enum MHD_Result send_error(struct MHD_Connection *c, bool openai, const step *st) {
  int status = 500;
  const char *type = "api_error", *message = "Internal server error", *code = NULL;
  bool spend = false;
  switch (st->fault) {
    case FAKE_HTTP_429:
      status = 429, type = "rate_limit_error", message = "Rate limited";
      break;
    case FAKE_HTTP_529:
      status = 529, type = "overloaded_error", message = "Overloaded";
      break;
    case FAKE_HTTP_400:
      status = 400, type = "invalid_request_error", message = "max_tokens: bad";
      break;
    case FAKE_HTTP_401:
      status = 401, type = "authentication_error", message = "invalid x-api-key";
      break;
    case FAKE_SPEND_LIMIT:
      status = 429, type = "rate_limit_error", message = "Spend limit reached", spend = true;
      code = "insufficient_quota";
      break;
    default:
      break;
  }
  json_t *body;
  if (openai)
    body = json_pack("{s:{s:s,s:s,s:s?}}", "error", "message", message, "type", type, "code", code);
  else if (spend)
    body = json_pack("{s:s,s:{s:s,s:s,s:{s:s}}}", "type", "error", "error", "type", type, "message",
                     message, "details", "error_code", "enforced_spend_limit_reached");
  else
    body =
        json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", type, "message", message);
  char *text = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header(r, "Content-Type", "application/json");
  if (st->fault == FAKE_HTTP_429)
    MHD_add_response_header(r, "retry-after", st->retry_after[0] ? st->retry_after : "1");
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
  MHD_destroy_response(r);
  return ret;
}

static const char *header(struct MHD_Connection *c, const char *name) {
  const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
  return v ? v : "";
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *data_size, void **con_cls) {
  (void)version;
  fake_provider *fp = cls;
  upload *up = *con_cls;
  if (!up) {
    *con_cls = calloc(1, sizeof(upload));
    return MHD_YES;
  }
  if (*data_size) {
    vd_buf_append(&up->body, data, *data_size);
    *data_size = 0;
    return MHD_YES;
  }
  bool openai = strcmp(url, "/v1/chat/completions") == 0;
  if (strcmp(method, "POST") != 0 || (!openai && strcmp(url, "/v1/messages") != 0)) {
    struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, 404, r);
    MHD_destroy_response(r);
    return ret;
  }
  pthread_mutex_lock(&fp->mu);
  fp->requests++;
  json_decref(fp->last_request);
  json_t *body = json_loads(up->body.data ? up->body.data : "", 0, NULL);
  fp->last_request =
      json_pack("{s:s,s:o,s:s,s:s,s:s}", "path", url, "body", body ? body : json_null(),
                "x_api_key", header(c, "x-api-key"), "authorization", header(c, "Authorization"),
                "anthropic_version", header(c, "anthropic-version"));
  step st = {.fault = fp->down, .delay_ms = fp->down_delay_ms};
  snprintf(st.retry_after, sizeof st.retry_after, "%s", fp->down_retry_after);
  char *answer_copy = NULL;
  if (fp->down == FAKE_OK && fp->step_count > 0) {
    st = fp->steps[fp->step_head];
    fp->step_head = (fp->step_head + 1) % MAX_STEPS;
    fp->step_count--;
    answer_copy = st.answer; /* ownership moves here */
  }
  if (!answer_copy && fp->responder && body) answer_copy = fp->responder(fp->responder_ctx, body);
  if (st.fault == FAKE_REFUSE) { /* a kept-alive connection to a daemon that stopped listening */
    pthread_mutex_unlock(&fp->mu);
    free(answer_copy);
    return MHD_NO; /* closes the connection without an answer */
  }
  const char *answer = answer_copy ? answer_copy : fp->answer;
  if (st.fault == FAKE_NOT_JSON) answer = prose_answer;
  if (st.fault == FAKE_WRONG_SHAPE) answer = wrong_shape_answer;
  if (st.fault >= 0 && st.fault < FAKE_FAULT_COUNT) fp->fault_counts[st.fault]++;
  size_t input_tokens = up->body.len / 4 ? up->body.len / 4 : 1;
  stream *s = NULL;
  bool is_error = st.fault >= FAKE_HTTP_429 && st.fault <= FAKE_SPEND_LIMIT;
  if (!is_error)
    s = build_stream(openai, answer, input_tokens, &st, fp->token_delay_ms, fp->chars_per_event,
                     fp->crlf);
  if (s) s->owner = fp;
  pthread_mutex_unlock(&fp->mu);
  free(answer_copy);
  if (is_error) return send_error(c, openai, &st);
  struct MHD_Response *r =
      MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
  MHD_add_response_header(r, "Content-Type", "text/event-stream");
  MHD_add_response_header(r, "Cache-Control", "no-cache");
  enum MHD_Result ret = MHD_queue_response(c, 200, r);
  MHD_destroy_response(r);
  return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
  (void)cls, (void)c, (void)toe;
  upload *up = *con_cls;
  if (up) {
    vd_buf_free(&up->body);
    free(up);
  }
  *con_cls = NULL;
}

/* A daemon listening on 127.0.0.1:port (0: an ephemeral port). The address may be reused so the
 * fake can stop listening (FAKE_REFUSE) and listen on the same port again. */
static struct MHD_Daemon *listen_on(fake_provider *fp, uint16_t port) {
  struct sockaddr_in loopback = {.sin_family = AF_INET, .sin_port = htons(port)};
  loopback.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                              MHD_USE_ITC | MHD_USE_ERROR_LOG,
                          0, NULL, NULL, handle, fp, MHD_OPTION_NOTIFY_COMPLETED, completed, fp,
                          MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&loopback,
                          MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
}

fake_provider *fake_provider_start(void) {
  fake_provider *fp = calloc(1, sizeof *fp);
  pthread_mutex_init(&fp->mu, NULL);
  fp->answer = strdup("{}");
  fp->chars_per_event = 8;
  fp->daemon = listen_on(fp, 0);
  if (!fp->daemon) {
    free(fp->answer);
    free(fp);
    return NULL;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(fp->daemon, MHD_DAEMON_INFO_BIND_PORT);
  fp->port = info->port;
  snprintf(fp->anthropic_url, sizeof fp->anthropic_url, "http://127.0.0.1:%u", info->port);
  snprintf(fp->openai_url, sizeof fp->openai_url, "http://127.0.0.1:%u/v1", info->port);
  return fp;
}

void fake_provider_stop(fake_provider *fp) {
  if (!fp) return;
  atomic_store(&fp->stopping, true);
  if (fp->daemon) MHD_stop_daemon(fp->daemon);
  for (int i = 0; i < fp->retired_count; i++) MHD_stop_daemon(fp->retired[i]);
  for (int i = 0; i < fp->step_count; i++) free(fp->steps[(fp->step_head + i) % MAX_STEPS].answer);
  json_decref(fp->last_request);
  free(fp->answer);
  pthread_mutex_destroy(&fp->mu);
  free(fp);
}

const char *fake_provider_anthropic_url(const fake_provider *fp) { return fp->anthropic_url; }
const char *fake_provider_openai_url(const fake_provider *fp) { return fp->openai_url; }

void fake_provider_set_responder(fake_provider *fp, fake_responder fn, void *ctx) {
  pthread_mutex_lock(&fp->mu);
  fp->responder = fn;
  fp->responder_ctx = ctx;
  pthread_mutex_unlock(&fp->mu);
}

void fake_provider_set_answer(fake_provider *fp, const char *text) {
  pthread_mutex_lock(&fp->mu);
  free(fp->answer);
  fp->answer = strdup(text);
  pthread_mutex_unlock(&fp->mu);
}

void fake_provider_set_pacing(fake_provider *fp, int token_delay_ms, int chars_per_event) {
  pthread_mutex_lock(&fp->mu);
  fp->token_delay_ms = token_delay_ms;
  fp->chars_per_event = chars_per_event > 0 ? chars_per_event : 8;
  pthread_mutex_unlock(&fp->mu);
}

void fake_provider_set_crlf(fake_provider *fp, bool crlf) {
  pthread_mutex_lock(&fp->mu);
  fp->crlf = crlf;
  pthread_mutex_unlock(&fp->mu);
}

void fake_provider_push(fake_provider *fp, fake_fault fault, const char *answer, int delay_ms,
                        const char *retry_after) {
  pthread_mutex_lock(&fp->mu);
  if (fp->step_count < MAX_STEPS) {
    step *st = &fp->steps[(fp->step_head + fp->step_count++) % MAX_STEPS];
    st->fault = fault;
    st->answer = answer ? strdup(answer) : NULL;
    st->delay_ms = delay_ms;
    snprintf(st->retry_after, sizeof st->retry_after, "%s", retry_after ? retry_after : "1");
  }
  pthread_mutex_unlock(&fp->mu);
}

void fake_provider_set_down(fake_provider *fp, fake_fault fault) {
  fake_provider_set_mode(fp, fault, 0, NULL);
}

void fake_provider_set_mode(fake_provider *fp, fake_fault fault, int delay_ms,
                            const char *retry_after) {
  pthread_mutex_lock(&fp->mu);
  fp->down = fault;
  fp->down_delay_ms = delay_ms;
  snprintf(fp->down_retry_after, sizeof fp->down_retry_after, "%s",
           retry_after ? retry_after : "1");
  pthread_mutex_unlock(&fp->mu);
  if (fault == FAKE_REFUSE && fp->daemon && fp->retired_count < MAX_RETIRED) {
    /* Stop accepting: later connects are refused; the daemon finishes the calls it has. */
    MHD_socket listener = MHD_quiesce_daemon(fp->daemon);
    if (listener != MHD_INVALID_SOCKET) close(listener);
    fp->retired[fp->retired_count++] = fp->daemon;
    fp->daemon = NULL;
  } else if (fault != FAKE_REFUSE && !fp->daemon) {
    fp->daemon = listen_on(fp, fp->port);
    if (!fp->daemon) fprintf(stderr, "fake provider: cannot listen on port %u again\n", fp->port);
  }
  if (fault == FAKE_REFUSE) {
    pthread_mutex_lock(&fp->mu);
    fp->fault_counts[FAKE_REFUSE]++; /* counts the outages: refused connects never arrive here */
    pthread_mutex_unlock(&fp->mu);
  }
}

int fake_provider_fault_count(fake_provider *fp, fake_fault fault) {
  pthread_mutex_lock(&fp->mu);
  int n = fault >= 0 && fault < FAKE_FAULT_COUNT ? fp->fault_counts[fault] : 0;
  pthread_mutex_unlock(&fp->mu);
  return n;
}

int fake_provider_request_count(fake_provider *fp) {
  pthread_mutex_lock(&fp->mu);
  int n = fp->requests;
  pthread_mutex_unlock(&fp->mu);
  return n;
}

json_t *fake_provider_last_request(fake_provider *fp) {
  pthread_mutex_lock(&fp->mu);
  json_t *r = fp->last_request ? json_deep_copy(fp->last_request) : NULL;
  pthread_mutex_unlock(&fp->mu);
  return r;
}

size_t fake_provider_text_sent_ns(fake_provider *fp, uint64_t *out, size_t max) {
  pthread_mutex_lock(&fp->mu);
  size_t n = fp->text_sent_count < max ? fp->text_sent_count : max;
  memcpy(out, fp->text_sent_ns, n * sizeof *out);
  fp->text_sent_count = 0;
  pthread_mutex_unlock(&fp->mu);
  return n;
}
