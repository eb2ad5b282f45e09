/* Request checks against the real server (the new-user trial's and the attack run's findings):
 * explicit time bounds on a listing are honoured whatever their value (the epoch included), and
 * a bad bound names its parameter. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "vd_itest.h"
#include "vd_test.h"

static vd_itest_server server;
static char decision_id[64]; /* one stored decision, scored by the fixture */

static const char customer[] =
    "{\"subject\": {\"id\": \"c-checks\", \"recency\": 6, \"history\": 329.08, \"mens\": true, "
    "\"womens\": true, \"zip_code\": \"Rural\", \"newbie\": true, \"channel\": \"Web\", "
    "\"marketing_opt_out\": false, \"emails_last_30d\": 1, \"country\": \"US\"}}";

static void start_server(void) {
  ck_assert_msg(vd_itest_prepare(&server, NULL), "cannot prepare a temp folder");
  ck_assert_msg(vd_itest_start(&server), "verdict serve did not become ready");
  vd_itest_response r = vd_itest_call(&server, "POST", "/v1/promotions/score", "demo-score",
                                      customer, strlen(customer));
  ck_assert_msg(r.status == 200, "scoring: HTTP %ld: %s", r.status, r.body);
  snprintf(decision_id, sizeof decision_id, "%s",
           json_string_value(json_object_get(r.json, "decision_id")));
  vd_itest_response_free(&r);
}

static void stop_server(void) {
  if (server.pid > 0) ck_assert_int_eq(vd_itest_stop(&server, SIGTERM), 0);
  vd_itest_cleanup(&server);
}

static vd_itest_response get(const char *path) {
  return vd_itest_call(&server, "GET", path, "demo-compliance", NULL, 0);
}

static const char *error_string(const vd_itest_response *r, const char *key) {
  return json_string_value(json_object_get(json_object_get(r->json, "error"), key));
}

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
    ck_assert_str_eq(error_string(&r, "field"), names[i]);
    const char *message = error_string(&r, "message");
    ck_assert_msg(message && strncmp(message, names[i], strlen(names[i])) == 0 &&
                      strstr(message, "1970-13-01T00:00:00Z"),
                  "%s: %s", names[i], message);
    vd_itest_response_free(&r);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("request_checks");
  TCase *tc = tcase_create("request_checks");
  tcase_set_timeout(tc, 120);
  tcase_add_unchecked_fixture(tc, start_server, stop_server);
  tcase_add_test(tc, time_bounds_at_the_epoch_are_bounds);
  tcase_add_test(tc, bad_time_bounds_name_their_parameter);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
