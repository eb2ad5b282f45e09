/* Access control against the real server, table-driven over every endpoint: no key, a malformed
 * header, an unknown key, each key of a wrong role and the right key. Keys are random secrets made
 * at test time (so a secret never equals a key's name), and afterwards neither the server's stderr
 * nor any file in its data folder holds a secret. */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vd_hash.h"
#include "vd_itest.h"
#include "vd_test.h"

enum { ROLE_NONE = -1, ROLE_SCORE, ROLE_COMPLIANCE, ROLE_ADMIN, ROLES };

static const char *const role_names[ROLES] = {"score", "compliance", "admin"};

typedef struct endpoint {
  const char *method;
  const char *path; /* "{id}" is replaced by a decision id made by scoring */
  int role;         /* ROLE_NONE: public */
  bool body;        /* sends the customer request */
  long ok_status;   /* what the right key (or anyone, when public) gets */
} endpoint;

static const endpoint endpoints[] = {
    {"POST", "/v1/promotions/score", ROLE_SCORE, true, 200},
    {"GET", "/v1/decisions/{id}", ROLE_COMPLIANCE, false, 200},
    {"GET", "/v1/decisions?limit=5", ROLE_COMPLIANCE, false, 200},
    {"GET", "/v1/admin/versions", ROLE_ADMIN, false, 200},
    {"POST", "/v1/admin/reload", ROLE_ADMIN, false, 200},
    {"GET", "/healthz", ROLE_NONE, false, 200},
    {"GET", "/readyz", ROLE_NONE, false, 200},
    {"GET", "/metrics", ROLE_NONE, false, 200},
};

static const char customer[] =
    "{\"subject\": {\"id\": \"c42\", \"recency\": 6, \"history\": 329.08, \"mens\": true, "
    "\"womens\": true, \"zip_code\": \"Rural\", \"newbie\": true, \"channel\": \"Web\", "
    "\"marketing_opt_out\": false, \"emails_last_30d\": 1, \"country\": \"US\"}}";

static vd_itest_server server;
static char secrets[ROLES][65];
static char hashes[ROLES][VD_SHA256_HEX_SIZE];
static char stderr_log[320];

static void start_server(void) {
  char keys[2048] = "keys:\n";
  for (int r = 0; r < ROLES; r++) {
    unsigned char raw[24];
    ck_assert_int_eq(getrandom(raw, sizeof raw, 0), (ssize_t)sizeof raw);
    for (size_t i = 0; i < sizeof raw; i++) sprintf(secrets[r] + 2 * i, "%02x", raw[i]);
    char *hash = hashes[r];
    vd_sha256_hex(secrets[r], strlen(secrets[r]), hash);
    size_t n = strlen(keys);
    snprintf(keys + n, sizeof keys - n, "  - {name: %s-team, sha256: %s, roles: [%s]}\n",
             role_names[r], hash, role_names[r]);
  }
  ck_assert(vd_itest_prepare_keys(&server, keys, NULL));
  snprintf(stderr_log, sizeof stderr_log, "%.250s/server.stderr", server.root);
  snprintf(server.stderr_path, sizeof server.stderr_path, "%s", stderr_log);
  ck_assert_msg(vd_itest_start(&server), "verdict serve did not become ready");
}

static void stop_server(void) {
  if (server.pid > 0) vd_itest_stop(&server, SIGTERM);
  vd_itest_cleanup(&server);
}

static vd_itest_response call(const endpoint *e, const char *path, const char *key) {
  return vd_itest_call(&server, e->method, path, key, e->body ? customer : NULL,
                       e->body ? strlen(customer) : 0);
}

static const char *code_of(const vd_itest_response *r) {
  return json_string_value(json_object_get(json_object_get(r->json, "error"), "code"));
}

START_TEST(every_endpoint_checks_its_role) {
  vd_itest_response scored = vd_itest_call(&server, "POST", "/v1/promotions/score",
                                           secrets[ROLE_SCORE], customer, strlen(customer));
  ck_assert_int_eq(scored.status, 200);
  char id[64];
  snprintf(id, sizeof id, "%s", json_string_value(json_object_get(scored.json, "decision_id")));
  vd_itest_response_free(&scored);

  size_t checks = 0;
  for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++) {
    const endpoint *e = &endpoints[i];
    char path[256];
    const char *at = strstr(e->path, "{id}");
    if (at)
      snprintf(path, sizeof path, "%.*s%s", (int)(at - e->path), e->path, id);
    else
      snprintf(path, sizeof path, "%s", e->path);
    /* no key, an unknown key, a key of each role */
    vd_itest_response r = call(e, path, NULL);
    if (e->role == ROLE_NONE) {
      ck_assert_msg(r.status == e->ok_status, "%s %s without a key: %ld", e->method, path,
                    r.status);
    } else {
      ck_assert_msg(r.status == 401, "%s %s without a key: %ld", e->method, path, r.status);
      ck_assert_str_eq(code_of(&r), "unauthorized");
    }
    vd_itest_response_free(&r);
    r = call(e, path, "0123456789abcdef0123456789abcdef0123456789abcdef");
    if (e->role != ROLE_NONE) {
      ck_assert_msg(r.status == 401, "%s %s with an unknown key: %ld", e->method, path, r.status);
      ck_assert_str_eq(code_of(&r), "unauthorized");
    }
    vd_itest_response_free(&r);
    checks += 2;
    for (int role = 0; role < ROLES; role++) {
      r = call(e, path, secrets[role]);
      long want = e->role == ROLE_NONE || e->role == role ? e->ok_status : 403;
      ck_assert_msg(r.status == want, "%s %s with the %s key: %ld (want %ld): %.200s", e->method,
                    path, role_names[role], r.status, want, r.body ? r.body : "");
      if (want == 403 && e->role >= 0) {
        ck_assert_str_eq(code_of(&r), "forbidden");
        const char *message =
            json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
        ck_assert_ptr_nonnull(strstr(message, role_names[e->role])); /* names the role needed */
      }
      vd_itest_response_free(&r);
      checks++;
    }
  }
  fprintf(stderr, "access: %zu endpoint/key combinations checked\n", checks);
}
END_TEST

START_TEST(malformed_authorization_is_401) {
  static const char *const headers[] = {"Basic Zm9vOmJhcg==", "Bearer", "Bearer  ", "bearer",
                                        "Token abc"};
  /* vd_itest_call sends "Authorization: Bearer VALUE": a second scheme word, a doubled scheme
   * or no token make the header malformed (401, never a match). */
  for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
    vd_itest_response r = vd_itest_call(&server, "GET", "/v1/admin/versions", headers[i], NULL, 0);
    ck_assert_msg(r.status == 401, "Authorization 'Bearer %s': %ld", headers[i], r.status);
    vd_itest_response_free(&r);
  }
  /* The right secret with trailing junk is not the right secret. */
  char longer[80];
  snprintf(longer, sizeof longer, "%sx", secrets[ROLE_ADMIN]);
  vd_itest_response r = vd_itest_call(&server, "GET", "/v1/admin/versions", longer, NULL, 0);
  ck_assert_int_eq(r.status, 401);
  vd_itest_response_free(&r);
  snprintf(longer, sizeof longer, "%.40s", secrets[ROLE_ADMIN]);
  r = vd_itest_call(&server, "GET", "/v1/admin/versions", longer, NULL, 0);
  ck_assert_int_eq(r.status, 401);
  vd_itest_response_free(&r);
  /* Whitespace around the field value is not part of it (RFC 9110 5.5): the right secret. */
  snprintf(longer, sizeof longer, "%s \t ", secrets[ROLE_ADMIN]);
  r = vd_itest_call(&server, "GET", "/v1/admin/versions", longer, NULL, 0);
  ck_assert_int_eq(r.status, 200);
  vd_itest_response_free(&r);
}
END_TEST

/* True when the file holds needle anywhere (binary-safe). */
static bool file_contains(const char *path, const char *needle) {
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  size_t n = strlen(needle), cap = 1 << 16, len = 0;
  char *buf = malloc(cap + n);
  bool found = false;
  size_t got;
  while (!found && (got = fread(buf + len, 1, cap, f)) > 0) {
    len += got;
    found = memmem(buf, len, needle, n) != NULL;
    if (len >= n) { /* keep the last n-1 bytes for a match across reads */
      memmove(buf, buf + len - (n - 1), n - 1);
      len = n - 1;
    }
  }
  free(buf);
  fclose(f);
  return found;
}

static size_t scan(const char *dir, const char *needle, char *hit, size_t hit_size) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  size_t files = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct stat st;
    if (lstat(path, &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      files += scan(path, needle, hit, hit_size);
    } else if (S_ISREG(st.st_mode)) {
      files++;
      if (file_contains(path, needle)) snprintf(hit, hit_size, "%s", path);
    }
  }
  closedir(d);
  return files;
}

START_TEST(secrets_never_reach_logs_or_traces) {
  /* Make the server write: decisions (traces, in the database and its WAL), failed auths, a
   * reload event. */
  for (int i = 0; i < 20; i++) {
    vd_itest_response r = vd_itest_call(&server, "POST", "/v1/promotions/score", secrets[i % ROLES],
                                        customer, strlen(customer));
    vd_itest_response_free(&r);
  }
  vd_itest_response r =
      vd_itest_call(&server, "POST", "/v1/admin/reload", secrets[ROLE_ADMIN], NULL, 0);
  ck_assert_int_eq(r.status, 200);
  vd_itest_response_free(&r);
  usleep(200 * 1000);                               /* the event line is flushed at once */
  ck_assert(file_contains(stderr_log, "reloaded")); /* the server's log was captured at all */
  for (int role = 0; role < ROLES; role++) {
    char hit[1024] = "";
    size_t files = scan(server.root, secrets[role], hit, sizeof hit);
    ck_assert_uint_gt(files, 3);
    ck_assert_msg(hit[0] == '\0', "the %s key's secret is in %s", role_names[role], hit);
    ck_assert_msg(!file_contains(stderr_log, secrets[role]), "secret in the server's stderr");
  }
}
END_TEST

/* The start-up log says where the server listens and stores, what each deployment serves
 * (kind and every version, as /v1/admin/versions reports them), threads and durability — and
 * names no key: neither a secret, nor its hash, nor its name. */
START_TEST(the_start_up_log_says_what_serves_and_no_key) {
  char line[512];
  snprintf(line, sizeof line, "listening on http://127.0.0.1:%d", server.port);
  ck_assert_msg(file_contains(stderr_log, line), "no '%s' in the start-up log", line);
  snprintf(line, sizeof line, "data folder %s", server.data_dir);
  ck_assert_msg(file_contains(stderr_log, line), "no '%s' in the start-up log", line);
  vd_itest_response r =
      vd_itest_call(&server, "GET", "/v1/admin/versions", secrets[ROLE_ADMIN], NULL, 0);
  ck_assert_int_eq(r.status, 200);
  size_t i;
  json_t *d;
  json_array_foreach(json_object_get(r.json, "deployments"), i, d) {
    const char *parts[] = {"ruleset", "schema", "model"};
    snprintf(line, sizeof line, "serving deployment %s (kind %s",
             json_string_value(json_object_get(d, "name")),
             json_string_value(json_object_get(d, "kind")));
    ck_assert_msg(file_contains(stderr_log, line), "no '%s' in the start-up log", line);
    for (size_t p = 0; p < 3; p++) {
      snprintf(line, sizeof line, "%s %s", parts[p],
               json_string_value(json_object_get(json_object_get(d, parts[p]), "version")));
      ck_assert_msg(file_contains(stderr_log, line), "no '%s' in the start-up log", line);
    }
  }
  ck_assert_uint_gt(i, 0);
  vd_itest_response_free(&r);
  ck_assert(file_contains(stderr_log, "HTTP threads"));
  ck_assert(file_contains(stderr_log, "durability normal"));
  for (int role = 0; role < ROLES; role++) {
    ck_assert(!file_contains(stderr_log, secrets[role]));
    ck_assert(!file_contains(stderr_log, hashes[role]));
    snprintf(line, sizeof line, "%s-team", role_names[role]);
    ck_assert(!file_contains(stderr_log, line));
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("access");
  TCase *tc = tcase_create("access");
  tcase_set_timeout(tc, 120);
  tcase_add_unchecked_fixture(tc, start_server, stop_server);
  tcase_add_test(tc, every_endpoint_checks_its_role);
  tcase_add_test(tc, malformed_authorization_is_401);
  tcase_add_test(tc, secrets_never_reach_logs_or_traces);
  tcase_add_test(tc, the_start_up_log_says_what_serves_and_no_key);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
