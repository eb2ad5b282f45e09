/* The server's limits against the real `verdict serve`, with raw sockets: many idle connections,
 * slow clients dribbling headers or a body (slowloris), oversized headers and bodies. Each is
 * bounded by the config (connection_timeout_s, request_timeout_ms, max_header_bytes,
 * max_body_bytes, max_connections) and the server keeps answering other clients quickly meanwhile.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vd_itest.h"
#include "vd_test.h"

static vd_itest_server server;

static const char customer[] =
    "{\"subject\": {\"id\": \"c42\", \"recency\": 6, \"history\": 329.08, \"mens\": true, "
    "\"womens\": true, \"zip_code\": \"Rural\", \"newbie\": true, \"channel\": \"Web\", "
    "\"marketing_opt_out\": false, \"emails_last_30d\": 1, \"country\": \"US\"}}";

static void start_server(void) {
  ck_assert(vd_itest_prepare(&server,
                             "limits:\n"
                             "  connection_timeout_s: 2\n"
                             "  request_timeout_ms: 1500\n"
                             "  max_connections: 600\n"
                             "  max_header_bytes: 8192\n"
                             "  max_body_bytes: 65536\n"));
  ck_assert_msg(vd_itest_start(&server), "verdict serve did not become ready");
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < 2048 && rl.rlim_max >= 2048) {
    rl.rlim_cur = 2048;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static void stop_server(void) {
  if (server.pid > 0) vd_itest_stop(&server, SIGTERM);
  vd_itest_cleanup(&server);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* A TCP connection to the server from the loopback address source (127.0.0.x: all of 127/8 is
 * the loopback interface, so one machine can act as several clients). */
static int connect_from(const char *source) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge(fd, 0);
  struct sockaddr_in from = {.sin_family = AF_INET};
  inet_pton(AF_INET, source, &from.sin_addr);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&from, sizeof from), 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)server.port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect: %s", strerror(errno));
  return fd;
}

static int connect_raw(void) { return connect_from("127.0.0.1"); }

static void send_all(int fd, const char *data, size_t size) {
  while (size) {
    ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) return; /* the server may close on us: the caller checks the answer */
    data += n;
    size -= (size_t)n;
  }
}

/* Reads until the peer closes or timeout_s passes; returns the bytes read (NUL-terminated) and
 * sets *closed when the server closed the connection. */
static char *read_answer(int fd, double timeout_s, bool *closed) {
  size_t cap = 1 << 16, len = 0;
  char *buf = calloc(1, cap + 1);
  double deadline = now_s() + timeout_s;
  *closed = false;
  while (now_s() < deadline && len < cap) {
    struct pollfd p = {fd, POLLIN, 0};
    int ms = (int)((deadline - now_s()) * 1000);
    if (poll(&p, 1, ms > 0 ? ms : 0) <= 0) break;
    ssize_t n = recv(fd, buf + len, cap - len, 0);
    if (n <= 0) {
      *closed = true;
      break;
    }
    len += (size_t)n;
    if (strstr(buf, "\r\n\r\n") && strstr(buf, "Content-Length: ")) {
      const char *cl = strstr(buf, "Content-Length: ");
      size_t body = strtoul(cl + 16, NULL, 10);
      const char *start = strstr(buf, "\r\n\r\n") + 4;
      if ((size_t)(buf + len - start) >= body) break;
    }
  }
  return buf;
}

/* A normal scoring request must still be answered 200 within a second. */
static void expect_serving(const char *while_what) {
  double t0 = now_s();
  vd_itest_response r = vd_itest_call(&server, "POST", "/v1/promotions/score", "demo-score",
                                      customer, strlen(customer));
  double elapsed = now_s() - t0;
  ck_assert_msg(r.status == 200, "while %s: HTTP %ld", while_what, r.status);
  ck_assert_msg(elapsed < 1.0, "while %s: a request took %.2f s", while_what, elapsed);
  vd_itest_response_free(&r);
}

START_TEST(idle_connections_are_bounded_and_closed) {
  enum { IDLE = 400 };
  int fds[IDLE];
  for (int i = 0; i < IDLE; i++) fds[i] = connect_raw();
  usleep(200 * 1000);
  expect_serving("400 connections sit idle");
  /* connection_timeout_s = 2: every idle connection is closed by the server. */
  double t0 = now_s();
  int closed_count = 0;
  for (int i = 0; i < IDLE; i++) {
    bool closed = false;
    free(read_answer(fds[i], 6.0 - (now_s() - t0), &closed));
    closed_count += closed;
    close(fds[i]);
  }
  ck_assert_int_eq(closed_count, IDLE);
  ck_assert_msg(now_s() - t0 < 6.0, "idle connections closed after %.1f s", now_s() - t0);
  expect_serving("after the idle connections");
}
END_TEST

typedef struct dribble {
  atomic_bool stop;
  atomic_int closed; /* connections the server closed (or answered) on the slow client */
} dribble;

/* slowloris: 100 connections each sending one header byte every 0.5 s. */
static void *slow_headers(void *arg) {
  dribble *d = arg;
  enum { SLOW = 100 };
  int fds[SLOW];
  bool open_[SLOW];
  for (int i = 0; i < SLOW; i++) {
    fds[i] = connect_raw();
    open_[i] = true;
  }
  static const char request[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaa";
  for (size_t at = 0; !atomic_load(&d->stop) && at < sizeof request - 1; at++) {
    for (int i = 0; i < SLOW; i++)
      if (open_[i] && send(fds[i], request + at, 1, MSG_NOSIGNAL) != 1) {
        open_[i] = false;
        atomic_fetch_add(&d->closed, 1);
      }
    usleep(500 * 1000);
  }
  for (int i = 0; i < SLOW; i++) close(fds[i]);
  return NULL;
}

START_TEST(slow_header_clients_do_not_block_others) {
  dribble d = {0};
  pthread_t t;
  pthread_create(&t, NULL, slow_headers, &d);
  usleep(500 * 1000);
  for (int i = 0; i < 20; i++) {
    expect_serving("100 clients dribble their headers");
    usleep(100 * 1000);
  }
  atomic_store(&d.stop, true);
  pthread_join(t, NULL);
}
END_TEST

START_TEST(slow_body_is_cut_off) {
  int fd = connect_raw();
  char head[256];
  int n = snprintf(head, sizeof head,
                   "POST /v1/promotions/score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                   "demo-score\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                   strlen(customer));
  send_all(fd, head, (size_t)n);
  /* One byte every 100 ms: the body cannot arrive within request_timeout_ms (1.5 s); the server
   * closes the connection at the first byte after it, while serving others meanwhile. */
  double t0 = now_s();
  bool closed = false;
  for (size_t i = 0; i < strlen(customer) && !closed && now_s() - t0 < 10; i++) {
    if (send(fd, customer + i, 1, MSG_NOSIGNAL) != 1) break;
    if (i % 5 == 0) expect_serving("a client dribbles its body");
    char *answer = read_answer(fd, 0.1, &closed);
    ck_assert_msg(answer[0] == '\0', "slow body answered: %.300s", answer);
    free(answer);
  }
  ck_assert_msg(closed, "a slow body kept its connection for %.1f s", now_s() - t0);
  double took = now_s() - t0;
  ck_assert_msg(took >= 1.4 && took < 3.0, "closed after %.1f s (request_timeout_ms 1500)", took);
  close(fd);
  expect_serving("after the slow body");
}
END_TEST

/* Sends request on a fresh connection and expects exactly one answer, 400 bad_request, then the
 * connection closed by the server: nothing after the refused request is read as another one. */
static void expect_one_400_then_close(const char *request, const char *what) {
  int fd = connect_raw();
  send_all(fd, request, strlen(request));
  bool closed = false;
  char *answer = read_answer(fd, 5.0, &closed);
  ck_assert_msg(strncmp(answer, "HTTP/1.1 400", 12) == 0, "%s: %.300s", what, answer);
  ck_assert_msg(strstr(answer, "\"bad_request\""), "%s: %.300s", what, answer);
  ck_assert_msg(!strstr(answer + 12, "HTTP/1.1 "), "%s: a second request was read: %.600s", what,
                answer);
  free(answer);
  char rest[512];
  struct pollfd p = {fd, POLLIN, 0};
  ck_assert_msg(poll(&p, 1, 3000) == 1, "%s: the connection was left open", what);
  ssize_t n = recv(fd, rest, sizeof rest - 1, 0);
  if (n > 0) rest[n] = '\0';
  ck_assert_msg(n <= 0, "%s: a second answer: %.300s", what, n > 0 ? rest : "");
  close(fd);
}

/* Ambiguous framing (two Content-Lengths, or one with Transfer-Encoding) is how a request is
 * smuggled past a proxy that reads it differently: refused with 400 and the connection closed,
 * so nothing after it on the connection is read as a request. */
START_TEST(ambiguous_framing_is_refused_and_closes) {
  expect_one_400_then_close(
      "POST /v1/promotions/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
      "two Content-Lengths");
  expect_one_400_then_close(
      "POST /v1/promotions/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "Content-Length and Transfer-Encoding");
  expect_serving("after ambiguous framing");
}
END_TEST

/* RFC 9112 §5.1: no whitespace between a header's name and its colon; a server must answer 400.
 * A proxy that reads "Transfer-Encoding : chunked" as chunked framing and a server that ignores
 * it disagree on where the request ends, so the compliance listing inside the body was answered
 * as a request of its own. The same for "Content-Length : N", and for any name that is not a
 * token (RFC 9110 §5.1). */
START_TEST(header_names_with_whitespace_are_refused_and_close) {
  static const char inner[] =
      "GET /v1/decisions?limit=1 HTTP/1.1\r\nHost: x\r\n"
      "Authorization: Bearer demo-compliance\r\n\r\n";
  char request[1024];
  snprintf(request, sizeof request,
           "POST /v1/promotions/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "Authorization: Bearer demo-score\r\nTransfer-Encoding : chunked\r\nContent-Length: "
           "4\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n",
           strlen(inner), inner);
  expect_one_400_then_close(request, "Transfer-Encoding : chunked");
  snprintf(request, sizeof request,
           "POST /v1/promotions/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "Authorization: Bearer demo-score\r\nContent-Length : %zu\r\n\r\n%s",
           strlen(inner), inner);
  expect_one_400_then_close(request, "Content-Length : N");
  snprintf(request, sizeof request,
           "POST /v1/promotions/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "Authorization: Bearer demo-score\r\nContent-Length\t: %zu\r\n\r\n%s",
           strlen(inner), inner);
  expect_one_400_then_close(request, "Content-Length<TAB>: N");
  snprintf(request, sizeof request,
           "POST /v1/promotions/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "Authorization: Bearer demo-score\r\nContent(Length): %zu\r\n\r\n%s",
           strlen(inner), inner);
  expect_one_400_then_close(request, "a name that is not a token");
  expect_serving("after header names with whitespace");
}
END_TEST

START_TEST(oversized_headers_get_431) {
  /* One huge header, then many small ones: both over max_header_bytes = 8192; then one just over
   * the limit but within libmicrohttpd's pool, which verdict itself answers (JSON). */
  for (int variant = 0; variant < 3; variant++) {
    size_t cap = 64 * 1024, len = 0;
    char *req = malloc(cap);
    len += (size_t)snprintf(req, cap, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
    if (variant == 0) {
      len += (size_t)snprintf(req + len, cap - len, "X-Big: ");
      memset(req + len, 'a', 20000);
      len += 20000;
      len += (size_t)snprintf(req + len, cap - len, "\r\n");
    } else if (variant == 1) {
      for (int i = 0; i < 1500; i++)
        len += (size_t)snprintf(req + len, cap - len, "X-H%d: v\r\n", i);
    } else {
      len += (size_t)snprintf(req + len, cap - len, "X-Mid: ");
      memset(req + len, 'b', 9000);
      len += 9000;
      len += (size_t)snprintf(req + len, cap - len, "\r\n");
    }
    len += (size_t)snprintf(req + len, cap - len, "\r\n");
    int fd = connect_raw();
    send_all(fd, req, len);
    bool closed = false;
    char *answer = read_answer(fd, 5.0, &closed);
    ck_assert_msg(strncmp(answer, "HTTP/1.1 431", 12) == 0, "variant %d: %.200s", variant, answer);
    if (variant == 2)
      ck_assert_msg(strstr(answer, "\"request_header_fields_too_large\"") &&
                        strstr(answer, "over the limit of 8192"),
                    "%.400s", answer);
    free(answer);
    free(req);
    close(fd);
    expect_serving("after oversized headers");
  }
}
END_TEST

START_TEST(oversized_bodies_get_413) {
  /* Declared too large (refused before the body is read), and chunked without a length. */
  int fd = connect_raw();
  static const char declared[] =
      "POST /v1/promotions/score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer demo-score\r\n"
      "Content-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n";
  send_all(fd, declared, sizeof declared - 1);
  bool closed = false;
  char *answer = read_answer(fd, 5.0, &closed);
  ck_assert_msg(strncmp(answer, "HTTP/1.1 413", 12) == 0, "declared: %.200s", answer);
  free(answer);
  close(fd);

  static const char chunked[] =
      "POST /v1/promotions/score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer demo-score\r\n"
      "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
  char chunk[8192 + 16];
  int head = snprintf(chunk, sizeof chunk, "2000\r\n");
  memset(chunk + head, ' ', 8192);
  chunk[head + 8192] = '\r';
  chunk[head + 8193] = '\n';
  /* Somewhat over the limit (80 KiB chunked): read, dropped, answered 413. */
  fd = connect_raw();
  send_all(fd, chunked, sizeof chunked - 1);
  for (int i = 0; i < 10; i++) send_all(fd, chunk, (size_t)head + 8192 + 2);
  send_all(fd, "0\r\n\r\n", 5);
  answer = read_answer(fd, 5.0, &closed);
  ck_assert_msg(strncmp(answer, "HTTP/1.1 413", 12) == 0, "chunked 80 KiB: %.200s", answer);
  ck_assert_ptr_nonnull(strstr(answer, "payload_too_large"));
  free(answer);
  close(fd);

  fd = connect_raw();
  send_all(fd, chunked, sizeof chunked - 1);
  for (int i = 0; i < 40; i++) send_all(fd, chunk, (size_t)head + 8192 + 2); /* 320 KiB */
  send_all(fd, "0\r\n\r\n", 5);
  /* A chunked body growing past 4x max_body_bytes closes the connection, unanswered. */
  answer = read_answer(fd, 5.0, &closed);
  ck_assert_msg(closed && answer[0] == '\0', "chunked: %.200s", answer);
  free(answer);
  close(fd);
  expect_serving("after oversized bodies");
}
END_TEST

START_TEST(one_client_cannot_take_every_connection) {
  /* max_connections_per_ip = 20: a client at 127.0.0.2 holding 20 idle connections gets its
   * 21st closed at once, while other clients (127.0.0.1) are served. */
  vd_itest_server limited;
  ck_assert(vd_itest_prepare(&limited, "limits:\n  max_connections_per_ip: 20\n"));
  ck_assert(vd_itest_start(&limited));
  vd_itest_server saved = server;
  server = limited; /* connect_from and expect_serving talk to `server` */
  int fds[20];
  for (int i = 0; i < 20; i++) fds[i] = connect_from("127.0.0.2");
  usleep(200 * 1000);
  int extra = connect_from("127.0.0.2");
  send_all(extra, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 35);
  bool closed = false;
  char *answer = read_answer(extra, 3.0, &closed);
  ck_assert_msg(closed && answer[0] == '\0', "the 21st connection was served: %.100s", answer);
  free(answer);
  close(extra);
  expect_serving("one client holds its 20 connections");
  for (int i = 0; i < 20; i++) close(fds[i]);
  usleep(200 * 1000);
  int again = connect_from("127.0.0.2");
  send_all(again, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 35);
  answer = read_answer(again, 3.0, &closed);
  ck_assert_msg(strncmp(answer, "HTTP/1.1 200", 12) == 0, "after closing: %.100s", answer);
  free(answer);
  close(again);
  server = saved;
  ck_assert_int_eq(vd_itest_stop(&limited, SIGTERM), 0);
  vd_itest_cleanup(&limited);
}
END_TEST

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  Suite *s = suite_create("limits");
  TCase *tc = tcase_create("limits");
  tcase_set_timeout(tc, 120);
  tcase_add_unchecked_fixture(tc, start_server, stop_server);
  tcase_add_test(tc, idle_connections_are_bounded_and_closed);
  tcase_add_test(tc, slow_header_clients_do_not_block_others);
  tcase_add_test(tc, slow_body_is_cut_off);
  tcase_add_test(tc, oversized_headers_get_431);
  tcase_add_test(tc, ambiguous_framing_is_refused_and_closes);
  tcase_add_test(tc, header_names_with_whitespace_are_refused_and_close);
  tcase_add_test(tc, oversized_bodies_get_413);
  tcase_add_test(tc, one_client_cannot_take_every_connection);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
