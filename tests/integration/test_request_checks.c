/* Request checks against the real server (the new-user trial's and the attack run's findings):
 * explicit time bounds on a listing are honoured whatever their value (the epoch included), and
 * a bad bound names its parameter; a decision id is exactly a UUID (a "%00" or any byte after it
 * is a 400 naming the id); a body without a JSON Content-Type is a 415 saying what to send; a
 * start that fails leaves no data folder it made. */
#define _GNU_SOURCE
#include <ctype.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vd_buf.h"
#include "vd_itest.h"
#include "vd_json_path.h"
#include "vd_test.h"

static vd_itest_server server;
static char decision_id[64]; /* one stored decision of subject c-checks, scored by the fixture */
static char customer[512];   /* that customer's scoring body */

static void start_server(void) {
  vd_itest_customer("c-checks", customer, sizeof customer);
  ck_assert(vd_itest_start_with_decision(&server, "c-checks", decision_id, sizeof decision_id));
}

static void stop_server(void) { ck_assert(vd_itest_finish(&server)); }

static vd_itest_response get(const char *path) { return vd_itest_get_compliance(&server, path); }

/* How many decisions of the fixture's subject the listing at query returns. */
static size_t listed(const char *bounds) {
  char path[256];
  snprintf(path, sizeof path, "/v1/decisions?subject=c-checks&%s", bounds);
  vd_itest_response r = get(path);
  ck_assert_msg(r.status == 200, "%s: HTTP %ld: %s", path, r.status, r.body);
  size_t n = json_array_size(json_object_get(r.json, "decisions"));
  vd_itest_response_free(&r);
  return n;
}

START_TEST(time_bounds_at_the_epoch_are_bounds) {
  ck_assert_uint_eq(listed("limit=10"), 1);
  /* until is exclusive: nothing was decided before 1970 (it was read as "no bound") */
  ck_assert_uint_eq(listed("until=1970-01-01T00:00:00Z"), 0);
  ck_assert_uint_eq(listed("until=1970-01-01T00:00:00.000001Z"), 0);
  ck_assert_uint_eq(listed("since=1970-01-01T00:00:00Z"), 1);
  ck_assert_uint_eq(listed("since=1970-01-01T00:00:00Z&until=1970-01-01T00:00:00Z"), 0);
  ck_assert_uint_eq(listed("since=2999-01-01T00:00:00Z"), 0);
}
END_TEST

START_TEST(bad_time_bounds_name_their_parameter) {
  static const char *const names[] = {"since", "until"};
  for (int i = 0; i < 2; i++) {
    char path[128];
    snprintf(path, sizeof path, "/v1/decisions?%s=1970-13-01T00:00:00Z", names[i]);
    vd_itest_response r = get(path);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(vd_itest_error_string(&r, "field"), names[i]);
    const char *message = vd_itest_error_string(&r, "message");
    ck_assert_msg(message && strncmp(message, names[i], strlen(names[i])) == 0 &&
                      strstr(message, "1970-13-01T00:00:00Z"),
                  "%s: %s", names[i], message);
    vd_itest_response_free(&r);
  }
}
END_TEST

/* GET /v1/decisions/<id><suffix>: the status and, for a 400, that the field is "id". */
static void expect_get(const char *suffix, long status) {
  char path[512];
  snprintf(path, sizeof path, "/v1/decisions/%s%s", decision_id, suffix);
  vd_itest_response r = get(path);
  ck_assert_msg(r.status == status, "%s: HTTP %ld (want %ld): %.300s", path, r.status, status,
                r.body);
  ck_assert_msg(json_is_object(r.json) || strstr(path, "format=text"), "%s: not JSON: %.300s", path,
                r.body);
  if (status == 400) {
    ck_assert_str_eq(vd_itest_error_string(&r, "field"), "id");
    ck_assert_ptr_nonnull(strstr(vd_itest_error_string(&r, "message"), "is not a decision id"));
  }
  vd_itest_response_free(&r);
}

START_TEST(an_id_must_be_exactly_a_decision_id) {
  expect_get("", 200);
  expect_get("/explanation?format=text", 200);
  /* a NUL after percent-decoding ended the C string: the id was found */
  expect_get("%00", 400);
  expect_get("%00abc", 400);
  expect_get("%00/explanation", 400);
  expect_get("%20", 400);
  expect_get("x", 400);
  expect_get("%FF", 400);
  expect_get("0123456789012345678901234567890123456789", 400); /* was a 404 */
  /* the message shows what came, readable and valid JSON */
  char path[128];
  snprintf(path, sizeof path, "/v1/decisions/%s%%00%%FF", decision_id);
  vd_itest_response r = get(path);
  char want[128];
  snprintf(want, sizeof want, "'%s%%00\\xff' is not a decision id", decision_id);
  ck_assert_msg(strstr(vd_itest_error_string(&r, "message"), want), "%s", r.body);
  vd_itest_response_free(&r);
  /* well formed: 404 when absent; either case finds it */
  r = get("/v1/decisions/01a23c2a-7289-7441-81f8-c38f843ea62d");
  ck_assert_int_eq(r.status, 404);
  ck_assert_str_eq(vd_itest_error_string(&r, "field"), "id");
  vd_itest_response_free(&r);
  char upper[64], upper_path[128];
  snprintf(upper, sizeof upper, "%s", decision_id);
  for (char *c = upper; *c; c++) *c = (char)toupper((unsigned char)*c);
  snprintf(upper_path, sizeof upper_path, "/v1/decisions/%s", upper);
  r = get(upper_path);
  ck_assert_int_eq(r.status, 200);
  vd_itest_response_free(&r);
  /* a NUL in a query value is not a cut either: "promotions%00x" is no kind, and the subject
   * "c-checks%00x" has no decisions */
  r = get("/v1/decisions?kind=promotions%00x");
  ck_assert_int_eq(r.status, 400);
  ck_assert_str_eq(vd_itest_error_string(&r, "field"), "kind");
  vd_itest_response_free(&r);
  r = get("/v1/decisions?subject=c-checks%00x");
  ck_assert_int_eq(r.status, 200);
  ck_assert_uint_eq(json_array_size(json_object_get(r.json, "decisions")), 0);
  vd_itest_response_free(&r);
}
END_TEST

/* POSTs the customer to path with content_type (NULL: no Content-Type header at all). */
static vd_itest_response post_typed(const char *path, const char *content_type) {
  return vd_itest_call_typed(&server, "POST", path, "demo-score", content_type, customer,
                             strlen(customer));
}

START_TEST(a_body_must_be_declared_json) {
  /* none, or another type: 415 saying what to send (a missing type was accepted) */
  static const char *const refused[] = {NULL,
                                        "text/plain",
                                        "application/x-www-form-urlencoded",
                                        "application/jsonx",
                                        "application/json-seq",
                                        "application/json; charset=latin-1",
                                        "application/json; boundary=x"};
  static const char *const endpoints[] = {"/v1/promotions/score", "/v1/triage", "/v1/itineraries"};
  for (size_t e = 0; e < sizeof endpoints / sizeof endpoints[0]; e++)
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
      vd_itest_response r = post_typed(endpoints[e], refused[i]);
      const char *what = refused[i] ? refused[i] : "(none)";
      ck_assert_msg(r.status == 415, "%s %s: HTTP %ld: %.300s", endpoints[e], what, r.status,
                    r.body);
      ck_assert_str_eq(vd_itest_error_string(&r, "code"), "unsupported_media_type");
      ck_assert_str_eq(vd_itest_error_string(&r, "field"), "Content-Type");
      ck_assert_str_eq(vd_itest_error_string(&r, "expected"), "application/json");
      const char *message = vd_itest_error_string(&r, "message");
      ck_assert_msg(strstr(message, "'Content-Type: application/json'"), "%s", message);
      if (refused[i]) {
        char got[128];
        snprintf(got, sizeof got, "got '%s'", refused[i]);
        ck_assert_msg(strstr(message, got), "%s", message);
      } else {
        ck_assert_msg(strstr(message, "has none"), "%s", message);
      }
      vd_itest_response_free(&r);
    }
  static const char *const accepted[] = {
      "application/json", "Application/JSON", "application/json; charset=utf-8",
      "application/json;charset=UTF-8", "application/json; charset=\"utf-8\""};
  for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
    vd_itest_response r = post_typed("/v1/promotions/score", accepted[i]);
    ck_assert_msg(r.status == 200, "%s: HTTP %ld: %.300s", accepted[i], r.status, r.body);
    vd_itest_response_free(&r);
  }
}
END_TEST

/* verdict serve on config with a broken rule file: exit 1 and, when it made the data folder, no
 * folder left (it left an empty decision log, a masking key and a lock file); a folder that was
 * there before stays, with what it held. */
START_TEST(a_failed_start_leaves_no_data_folder) {
  vd_itest_server broken;
  ck_assert(vd_itest_prepare(&broken, NULL));
  char path[512], cmd[1200];
  snprintf(path, sizeof path, "%s/rules.yaml", broken.deployment);
  FILE *f = fopen(path, "a");
  ck_assert_ptr_nonnull(f);
  fputs("  - id: broken\n    when: subject.no_such_field\n    then: { deny: x }\n", f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "%s serve --config %s --data-dir %s/new/data 2>/dev/null", VERDICT_EXE,
           broken.config, broken.root);
  int status = system(cmd);
  ck_assert_int_eq(WEXITSTATUS(status), 1);
  snprintf(path, sizeof path, "%s/new", broken.root);
  ck_assert_msg(access(path, F_OK) != 0, "%s was left behind", path);
  /* an existing folder is kept as it was */
  ck_assert_int_eq(mkdir(broken.data_dir, 0750), 0);
  snprintf(path, sizeof path, "%s/keep.txt", broken.data_dir);
  f = fopen(path, "w");
  fclose(f);
  snprintf(cmd, sizeof cmd, "%s serve --config %s 2>/dev/null", VERDICT_EXE, broken.config);
  ck_assert_int_eq(WEXITSTATUS(system(cmd)), 1);
  ck_assert_int_eq(access(path, F_OK), 0);
  vd_itest_cleanup(&broken);
}
END_TEST

START_TEST(an_unknown_kind_is_refused) {
  vd_itest_response r = get("/v1/decisions?kind=promo");
  ck_assert_msg(r.status == 400, "HTTP %ld: %s", r.status, r.body);
  ck_assert_str_eq(vd_itest_error_string(&r, "field"), "kind");
  ck_assert_ptr_nonnull(strstr(vd_itest_error_string(&r, "message"), "promotions or triage"));
  vd_itest_response_free(&r);
}
END_TEST

static size_t listed_on(vd_itest_server *on, const char *subject) {
  char path[256];
  snprintf(path, sizeof path, "/v1/decisions?subject=%s", subject);
  vd_itest_response r = vd_itest_get_compliance(on, path);
  ck_assert_msg(r.status == 200, "%s: HTTP %ld: %s", path, r.status, r.body);
  size_t n = json_array_size(json_object_get(r.json, "decisions"));
  vd_itest_response_free(&r);
  return n;
}

/* With subject.id masked, the stored subject is its HMAC: a listing by the id the caller knows
 * found nothing (the new-user trial); the stored text still matches too. */
START_TEST(a_masked_subject_is_found_by_its_id) {
  vd_itest_server masked;
  ck_assert(vd_itest_prepare(&masked, "mask_fields: [subject.id]\n"));
  ck_assert(vd_itest_start(&masked));
  vd_itest_response r = vd_itest_call(&masked, "POST", "/v1/promotions/score", "demo-score",
                                      customer, strlen(customer));
  ck_assert_msg(r.status == 200, "scoring: HTTP %ld: %s", r.status, r.body);
  vd_itest_response_free(&r);
  ck_assert_uint_eq(listed_on(&masked, "c-checks"), 1);
  ck_assert_uint_eq(listed_on(&masked, "c-other"), 0);
  r = vd_itest_get_compliance(&masked, "/v1/decisions?subject=c-checks");
  json_t *trace = json_array_get(json_object_get(r.json, "decisions"), 0);
  const char *stored =
      json_string_value(vd_json_get_path(json_object_get(trace, "request"), "subject.id"));
  ck_assert_msg(stored && strncmp(stored, "hmac-sha256:", 12) == 0, "stored %s", r.body);
  ck_assert_uint_eq(listed_on(&masked, stored), 1);
  vd_itest_response_free(&r);
  ck_assert_int_eq(vd_itest_stop(&masked, SIGTERM), 0);
  vd_itest_cleanup(&masked);
}
END_TEST

/* A copy of the example config alone (the README says to copy it) misses the files it names
 * relative to itself: the error says which key and where paths start (it said only "cannot
 * open ./triage/gazetteer.tsv"). */
START_TEST(a_copied_config_names_the_key_it_misses) {
  char dir[] = "/tmp/vd-copied-config-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "cp %s/examples/verdict.yaml %s/ && cd %s && %s serve --config verdict.yaml "
           "--listen 127.0.0.1:0 --data-dir %s/data 2>%s/stderr",
           VERDICT_SOURCE_DIR, dir, dir, VERDICT_EXE, dir, dir);
  ck_assert_int_eq(WEXITSTATUS(system(cmd)), 1);
  char path[256];
  snprintf(path, sizeof path, "%s/stderr", dir);
  vd_error err = {0};
  char *text = vd_read_file(path, 1 << 16, NULL, &err);
  ck_assert_msg(text, "%s", err.message);
  ck_assert_msg(strstr(text, "verdict.yaml: llm.gazetteer") &&
                    strstr(text, "paths start at the config file's folder"),
                "%s", text);
  free(text);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* An error message or field quoting bytes that are not UTF-8 (an unknown parameter named %FF) went
 * out with an empty body: JSON text must be UTF-8, so such bytes are shown as \xNN. */
START_TEST(an_error_quoting_bad_bytes_is_still_json) {
  vd_itest_response r = get("/v1/decisions?%FF=1");
  ck_assert_int_eq(r.status, 400);
  ck_assert_msg(r.json != NULL, "body: '%s'", r.body);
  ck_assert_str_eq(vd_itest_error_string(&r, "field"), "\\xff");
  ck_assert_ptr_nonnull(strstr(vd_itest_error_string(&r, "message"), "'\\xff'"));
  vd_itest_response_free(&r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("request_checks");
  TCase *tc = tcase_create("request_checks");
  tcase_set_timeout(tc, 120);
  tcase_add_unchecked_fixture(tc, start_server, stop_server);
  tcase_add_test(tc, time_bounds_at_the_epoch_are_bounds);
  tcase_add_test(tc, bad_time_bounds_name_their_parameter);
  tcase_add_test(tc, an_id_must_be_exactly_a_decision_id);
  tcase_add_test(tc, a_body_must_be_declared_json);
  tcase_add_test(tc, a_failed_start_leaves_no_data_folder);
  tcase_add_test(tc, an_unknown_kind_is_refused);
  tcase_add_test(tc, a_masked_subject_is_found_by_its_id);
  tcase_add_test(tc, a_copied_config_names_the_key_it_misses);
  tcase_add_test(tc, an_error_quoting_bad_bytes_is_still_json);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
