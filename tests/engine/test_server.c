/* vd_server: the HTTP transport — limits (body 413, headers 431, a slow body closes the
 * connection), keep-alive, query and header access, JSON errors, and the graceful stop (quiesce +
 * drain). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vd_server.h"
#include "vd_slice.h"
#include "vd_test.h"

typedef struct seen {
  atomic_int handled;
  atomic_int observed;
  atomic_int last_status;
  unsigned sleep_ms;
  _Atomic uint64_t handler_slice_ns; /* the handling thread's scheduler slice, last request */
} seen;

/* Echoes what it got: method, path, query "q", header "X-Test", body size. */
static void echo(void *ctx, const vd_http_request *req, vd_http_response *resp) {
  seen *s = ctx;
  atomic_fetch_add(&s->handled, 1);
  uint64_t slice = 0;
  if (vd_slice_get(&slice)) atomic_store(&s->handler_slice_ns, slice);
  if (s->sleep_ms) usleep(s->sleep_ms * 1000);
  size_t size = 0;
  vd_http_body(req, &size);
  const char *q = vd_http_query(req, "q");
  const char *flag = vd_http_query(req, "flag");
  const char *x = vd_http_header(req, "x-test"); /* case-insensitive */
  vd_http_respond_json(
      resp, 200,
      json_pack("{s:s, s:s, s:o, s:b, s:o, s:i}", "method", vd_http_method(req), "path",
                vd_http_path(req), "q", q ? json_string(q) : json_null(), "flag", flag != NULL, "x",
                x ? json_string(x) : json_null(), "size", (int)size));
}

static void observe(void *ctx, const vd_http_request *req, int status, uint64_t ns) {
  (void)req;
  (void)ns;
  seen *s = ctx;
  atomic_fetch_add(&s->observed, 1);
  atomic_store(&s->last_status, status);
}

static vd_server *start(seen *s, size_t max_body, unsigned request_timeout_ms) {
  vd_server_options o = {.host = "127.0.0.1",
                         .port = 0,
                         .threads = 2,
                         .connection_timeout_s = 5,
                         .request_timeout_ms = request_timeout_ms,
                         .max_body_bytes = max_body,
                         .max_header_bytes = 2048,
                         .handler = echo,
                         .observer = observe,
                         .ctx = s};
  vd_error err = {0};
  vd_server *server = vd_server_start(&o, &err);
  ck_assert_msg(server != NULL, "%s", err.message);
  ck_assert_int_gt(vd_server_port(server), 0);
  return server;
}

/* Sends raw bytes and reads the whole answer (until the server closes or `wait_ms` passes). */
static char *raw(int port, const char *parts[], size_t count, unsigned pause_ms) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  for (size_t i = 0; i < count; i++) {
    ssize_t n = send(fd, parts[i], strlen(parts[i]), MSG_NOSIGNAL);
    (void)n;
    if (pause_ms && i + 1 < count) usleep(pause_ms * 1000);
  }
  struct timeval tv = {3, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char *out = calloc(1, 65536);
  size_t len = 0;
  ssize_t n;
  while (len < 65535 && (n = recv(fd, out + len, 65535 - len, 0)) > 0) {
    len += (size_t)n;
    if (strstr(out, "\r\n\r\n") && strstr(out, "}")) break;
  }
  close(fd);
  return out;
}

START_TEST(routes_requests_to_the_handler) {
  seen s = {0};
  vd_server *server = start(&s, 1024, 0);
  char port[16];
  snprintf(port, sizeof port, "%d", vd_server_port(server));
  char request[512];
  snprintf(request, sizeof request,
           "POST /v1/x%%20y?q=a%%26b&flag HTTP/1.1\r\nHost: h\r\nX-Test: yes\r\n"
           "Content-Length: 5\r\n\r\nhello");
  const char *parts[] = {request};
  char *out = raw(vd_server_port(server), parts, 1, 0);
  ck_assert_ptr_nonnull(strstr(out, "HTTP/1.1 200"));
  ck_assert_ptr_nonnull(strstr(out, "application/json"));
  ck_assert_ptr_nonnull(strstr(out, "\"method\":\"POST\""));
  ck_assert_ptr_nonnull(strstr(out, "\"path\":\"/v1/x y\""));
  ck_assert_ptr_nonnull(strstr(out, "\"q\":\"a&b\""));
  ck_assert_ptr_nonnull(strstr(out, "\"flag\":true"));
  ck_assert_ptr_nonnull(strstr(out, "\"x\":\"yes\""));
  ck_assert_ptr_nonnull(strstr(out, "\"size\":5"));
  free(out);
  vd_server_stop(server);
  ck_assert_int_eq(atomic_load(&s.observed), 1);
}
END_TEST

/* time_slice_us: the worker threads run with that scheduler slice, and the thread that started
 * the server keeps its own. */
START_TEST(workers_run_with_the_configured_time_slice) {
  uint64_t own = 0;
  if (!vd_slice_get(&own) || own == 0) {
    fprintf(stderr, "time slice test skipped: this kernel has no custom slices (before 6.12)\n");
    return;
  }
  seen s = {0};
  vd_server_options o = {
      .host = "127.0.0.1", .threads = 2, .time_slice_us = 250, .handler = echo, .ctx = &s};
  vd_error err = {0};
  vd_server *server = vd_server_start(&o, &err);
  ck_assert_msg(server != NULL, "%s", err.message);
  const char *parts[] = {"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"};
  char *out = raw(vd_server_port(server), parts, 1, 0);
  ck_assert_ptr_nonnull(strstr(out, "HTTP/1.1 200"));
  free(out);
  vd_server_stop(server);
  ck_assert_uint_eq(atomic_load(&s.handler_slice_ns), 250000);
  uint64_t after = 0;
  ck_assert(vd_slice_get(&after));
  ck_assert_uint_eq(after, own);
}
END_TEST

START_TEST(keep_alive_serves_several_requests_on_one_connection) {
  seen s = {0};
  vd_server *server = start(&s, 1024, 0);
  const char *two = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  const char *parts[] = {two};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)vd_server_port(server))};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert(send(fd, parts[0], strlen(parts[0]), MSG_NOSIGNAL) > 0);
  char out[8192] = "";
  size_t len = 0;
  struct timeval tv = {3, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  while (len < sizeof out - 1 && !strstr(out, "\"/b\"")) {
    ssize_t n = recv(fd, out + len, sizeof out - 1 - len, 0);
    if (n <= 0) break;
    len += (size_t)n;
    out[len] = '\0';
  }
  close(fd);
  ck_assert_ptr_nonnull(strstr(out, "\"path\":\"/a\""));
  ck_assert_ptr_nonnull(strstr(out, "\"path\":\"/b\""));
  vd_server_stop(server);
  ck_assert_int_eq(atomic_load(&s.handled), 2);
}
END_TEST

START_TEST(declared_body_over_the_limit_is_413_unread) {
  seen s = {0};
  vd_server *server = start(&s, 100, 0);
  const char *parts[] = {"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n"};
  char *out = raw(vd_server_port(server), parts, 1, 0);
  ck_assert_ptr_nonnull(strstr(out, "HTTP/1.1 413"));
  ck_assert_ptr_nonnull(strstr(out, "\"code\":\"payload_too_large\""));
  ck_assert_ptr_nonnull(strstr(out, "\"field\":null"));
  free(out);
  vd_server_stop(server);
  ck_assert_int_eq(atomic_load(&s.handled), 0);
  ck_assert_int_eq(atomic_load(&s.last_status), 413);
}
END_TEST

START_TEST(chunked_body_over_the_limit_is_413) {
  seen s = {0};
  vd_server *server = start(&s, 100, 0);
  char chunk[256];
  memset(chunk, 'a', 80);
  snprintf(chunk + 80, sizeof chunk - 80, "%s", "");
  char request[512];
  snprintf(request, sizeof request,
           "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n50\r\n%.*s\r\n"
           "50\r\n%.*s\r\n0\r\n\r\n",
           80, chunk, 80, chunk);
  const char *parts[] = {request};
  char *out = raw(vd_server_port(server), parts, 1, 0);
  ck_assert_msg(strstr(out, "HTTP/1.1 413"), "%s", out);
  free(out);
  /* A body exactly at the limit passes. */
  snprintf(request, sizeof request,
           "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n%.*s%.*s", 80, chunk, 20,
           chunk);
  parts[0] = request;
  out = raw(vd_server_port(server), parts, 1, 0);
  ck_assert_ptr_nonnull(strstr(out, "\"size\":100"));
  free(out);
  vd_server_stop(server);
}
END_TEST

/* Two Content-Type headers: which one describes the body would be a guess (the first won). */
START_TEST(duplicate_content_type_is_400_unhandled) {
  seen s = {0};
  vd_server *server = start(&s, 1024, 0);
  const char *twice[] = {
      "POST /x HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
      "content-type: text/plain\r\nContent-Length: 2\r\n\r\n{}"};
  char *out = raw(vd_server_port(server), twice, 1, 0);
  ck_assert_msg(strstr(out, "HTTP/1.1 400") && strstr(out, "more than one Content-Type header"),
                "%s", out);
  free(out);
  ck_assert_int_eq(atomic_load(&s.handled), 0);
  const char *once[] = {
      "POST /x HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
      "Content-Length: 2\r\n\r\n{}"};
  out = raw(vd_server_port(server), once, 1, 0);
  ck_assert_msg(strstr(out, "HTTP/1.1 200"), "%s", out);
  free(out);
  vd_server_stop(server);
  ck_assert_int_eq(atomic_load(&s.handled), 1);
}
END_TEST

START_TEST(headers_over_the_limit_are_refused) {
  seen s = {0};
  vd_server *server = start(&s, 1024, 0);
  char *big = malloc(20000);
  char *p = big + sprintf(big, "GET /x HTTP/1.1\r\nHost: h\r\nX-Big: ");
  memset(p, 'b', 16000);
  strcpy(p + 16000, "\r\n\r\n");
  const char *parts[] = {big};
  char *out = raw(vd_server_port(server), parts, 1, 0);
  ck_assert_msg(strstr(out, "HTTP/1.1 431") || strstr(out, "HTTP/1.1 413"), "%.200s", out);
  free(out);
  free(big);
  vd_server_stop(server);
  ck_assert_int_eq(atomic_load(&s.handled), 0);
}
END_TEST

START_TEST(slow_body_closes_the_connection) {
  seen s = {0};
  vd_server *server = start(&s, 1024, 200);
  /* The third part arrives after the 200 ms request timeout: the connection is closed then
   * (libmicrohttpd cannot answer mid-body), never handed to the handler, never held open. */
  const char *parts[] = {"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nab", "cd", "ef"};
  char *out = raw(vd_server_port(server), parts, 3, 150);
  ck_assert_msg(out[0] == '\0', "%s", out);
  free(out);
  /* The same body in time is handled. */
  const char *fast[] = {"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nab", "cd", "ef"};
  out = raw(vd_server_port(server), fast, 3, 20);
  ck_assert_msg(strstr(out, "HTTP/1.1 200"), "%s", out);
  free(out);
  ck_assert_int_eq(atomic_load(&s.handled), 1);
  vd_server_stop(server);
}
END_TEST

typedef struct client {
  int port;
  char *answer;
} client;

static void *slow_client(void *arg) {
  client *c = arg;
  const char *parts[] = {"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n"};
  c->answer = raw(c->port, parts, 1, 0);
  return NULL;
}

START_TEST(quiesce_and_drain_finish_requests_in_flight) {
  seen s = {.sleep_ms = 300};
  vd_server *server = start(&s, 1024, 0);
  client c = {.port = vd_server_port(server)};
  pthread_t t;
  pthread_create(&t, NULL, slow_client, &c);
  for (int i = 0; i < 200 && atomic_load(&s.handled) == 0; i++) usleep(5000);
  ck_assert_int_eq(atomic_load(&s.handled), 1);
  vd_server_quiesce(server);
  /* New connections are refused from now on. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c.port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_ne(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  close(fd);
  ck_assert(vd_server_drain(server, 5000));
  pthread_join(t, NULL);
  ck_assert_ptr_nonnull(strstr(c.answer, "HTTP/1.1 200"));
  ck_assert_ptr_nonnull(strstr(c.answer, "Connection: close"));
  free(c.answer);
  vd_server_stop(server);
}
END_TEST

START_TEST(drain_gives_up_after_its_timeout) {
  seen s = {.sleep_ms = 1500};
  vd_server *server = start(&s, 1024, 0);
  client c = {.port = vd_server_port(server)};
  pthread_t t;
  pthread_create(&t, NULL, slow_client, &c);
  for (int i = 0; i < 200 && atomic_load(&s.handled) == 0; i++) usleep(5000);
  vd_server_quiesce(server);
  ck_assert(!vd_server_drain(server, 100));
  ck_assert_uint_eq(vd_server_in_flight(server), 1);
  ck_assert(vd_server_drain(server, 5000));
  pthread_join(t, NULL);
  free(c.answer);
  vd_server_stop(server);
}
END_TEST

START_TEST(error_bodies_have_code_message_field) {
  vd_http_response r = {0};
  vd_http_respond_error(&r, 400, "invalid_request", "subject.recency",
                        json_pack("{s:i}", "line", 3), "bad %s", "value");
  ck_assert_int_eq(r.status, 400);
  json_t *j = json_loadb(r.body, r.body_size, 0, NULL);
  json_t *e = json_object_get(j, "error");
  ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "invalid_request");
  ck_assert_str_eq(json_string_value(json_object_get(e, "message")), "bad value");
  ck_assert_str_eq(json_string_value(json_object_get(e, "field")), "subject.recency");
  ck_assert_int_eq(json_integer_value(json_object_get(e, "line")), 3);
  json_decref(j);
  free(r.body);
}
END_TEST

START_TEST(port_in_use_is_a_clear_error) {
  seen s = {0};
  vd_server *first = start(&s, 1024, 0);
  vd_server_options o = {.host = "127.0.0.1", .port = vd_server_port(first), .handler = echo};
  vd_error err = {0};
  ck_assert_ptr_null(vd_server_start(&o, &err));
  ck_assert_ptr_nonnull(strstr(err.message, "cannot listen on 127.0.0.1:"));
  vd_server_stop(first);
}
END_TEST

int main(void) {
  Suite *s = suite_create("server");
  TCase *tc = tcase_create("server");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, routes_requests_to_the_handler);
  tcase_add_test(tc, workers_run_with_the_configured_time_slice);
  tcase_add_test(tc, keep_alive_serves_several_requests_on_one_connection);
  tcase_add_test(tc, declared_body_over_the_limit_is_413_unread);
  tcase_add_test(tc, chunked_body_over_the_limit_is_413);
  tcase_add_test(tc, headers_over_the_limit_are_refused);
  tcase_add_test(tc, duplicate_content_type_is_400_unhandled);
  tcase_add_test(tc, slow_body_closes_the_connection);
  tcase_add_test(tc, quiesce_and_drain_finish_requests_in_flight);
  tcase_add_test(tc, drain_gives_up_after_its_timeout);
  tcase_add_test(tc, error_bodies_have_code_message_field);
  tcase_add_test(tc, port_in_use_is_a_clear_error);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
