/* HTTPS for the listener (config tls_cert/tls_key, libmicrohttpd with GnuTLS) against the real
 * server, with a self-signed certificate for IP 127.0.0.1 made at test time with openssl: a
 * client that trusts it scores over HTTPS with the certificate and host name verified; plain HTTP
 * on the port and a client that does not trust the certificate get nothing; a config naming only
 * one of the two files is refused with the position of the key. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vd_config.h"
#include "vd_itest.h"
#include "vd_test.h"

static const char customer[] =
    "{\"subject\": {\"id\": \"tls\", \"recency\": 6, \"history\": 329.08, \"mens\": true, "
    "\"womens\": true, \"zip_code\": \"Rural\", \"newbie\": true, \"channel\": \"Web\", "
    "\"marketing_opt_out\": false, \"emails_last_30d\": 1, \"country\": \"US\"}}";

/* Makes DIR/NAME.pem (certificate) and DIR/NAME.key for IP 127.0.0.1; false when openssl is
 * missing. */
static bool make_certificate(const char *dir, const char *name) {
  char command[1024];
  snprintf(command, sizeof command,
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
           "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout '%s/%s.key' "
           "-out '%s/%s.pem' >/dev/null 2>&1",
           dir, name, dir, name);
  int rc = system(command);
  return WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
}

START_TEST(serves_https_with_a_verified_certificate) {
  vd_itest_server server;
  ck_assert(vd_itest_prepare(&server, "tls_cert: server.pem\ntls_key: server.key\n"));
  if (!make_certificate(server.root, "server") || !make_certificate(server.root, "other")) {
    fprintf(stderr, "TLS test skipped: openssl is not installed\n");
    vd_itest_cleanup(&server);
    return;
  }
  snprintf(server.ca_file, sizeof server.ca_file, "%.250s/server.pem", server.root);
  ck_assert_msg(vd_itest_start(&server), "verdict serve did not become ready over HTTPS");

  vd_itest_response r = vd_itest_call(&server, "POST", "/v1/promotions/score", "demo-score",
                                      customer, strlen(customer));
  ck_assert_msg(r.status == 200, "score over HTTPS: %ld", r.status);
  ck_assert_ptr_nonnull(json_object_get(r.json, "decision_id"));
  vd_itest_response_free(&r);
  r = vd_itest_call(&server, "GET", "/v1/admin/versions", NULL, NULL, 0);
  ck_assert_int_eq(r.status, 401); /* keys are still checked over HTTPS */
  vd_itest_response_free(&r);

  /* A client that trusts another certificate refuses the connection (status 0). */
  vd_itest_server wrong = server;
  snprintf(wrong.ca_file, sizeof wrong.ca_file, "%.250s/other.pem", server.root);
  r = vd_itest_call(&wrong, "GET", "/healthz", NULL, NULL, 0);
  ck_assert_int_eq(r.status, 0);
  vd_itest_response_free(&r);

  /* Plain HTTP on the HTTPS port gets no HTTP answer. */
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)server.port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  static const char plain[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  ck_assert_int_eq(send(fd, plain, sizeof plain - 1, MSG_NOSIGNAL), (ssize_t)sizeof plain - 1);
  char answer[256] = "";
  struct pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, 3000) > 0) (void)recv(fd, answer, sizeof answer - 1, 0);
  ck_assert_msg(strncmp(answer, "HTTP/", 5) != 0, "plain HTTP answered: %s", answer);
  close(fd);

  /* ...and the server keeps serving HTTPS. */
  r = vd_itest_call(&server, "GET", "/healthz", NULL, NULL, 0);
  ck_assert_int_eq(r.status, 200);
  vd_itest_response_free(&r);
  ck_assert_int_eq(vd_itest_stop(&server, SIGTERM), 0);
  vd_itest_cleanup(&server);
}
END_TEST

START_TEST(tls_needs_both_files) {
  static const char *const configs[][2] = {
      {"data_dir: d\ndeployments: [p]\ntls_cert: c.pem\n", "tls_key"},
      {"data_dir: d\ndeployments: [p]\ntls_key: k.pem\n", "tls_cert"},
  };
  for (size_t i = 0; i < 2; i++) {
    vd_error err = {0};
    vd_config *c = vd_config_load_string(configs[i][0], "verdict.yaml", "/tmp", &err);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err.message, configs[i][1]) != NULL, "%s", err.message);
    ck_assert_int_eq(err.line, 3);
  }
  vd_error err = {0};
  vd_config *c = vd_config_load_string(
      "data_dir: d\ndeployments: [p]\ntls_cert: c.pem\n"
      "tls_key: /etc/k.pem\n",
      "verdict.yaml", "/srv/verdict", &err);
  ck_assert_msg(c != NULL, "%s", err.message);
  ck_assert_str_eq(c->tls_cert, "/srv/verdict/c.pem"); /* relative to the config's folder */
  ck_assert_str_eq(c->tls_key, "/etc/k.pem");
  vd_config_free(c);
}
END_TEST

int main(void) {
  Suite *s = suite_create("tls");
  TCase *tc = tcase_create("tls");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, serves_https_with_a_verified_certificate);
  tcase_add_test(tc, tls_needs_both_files);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
