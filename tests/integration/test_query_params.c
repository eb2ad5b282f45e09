/* Ambiguous query parameters are refused, naming the parameter, against the real server: one
 * given twice (until=A&until=B — which bound counts would be a guess), a limit with a leading
 * space or sign (strtoll took them), an empty since/until/limit, and any parameter on
 * GET /v1/decisions/{id} (the explanation takes only format). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "vd_itest.h"
#include "vd_test.h"

static vd_itest_server server;
static char decision_id[64]; /* one stored decision of subject c-params, scored by the fixture */

static void start_server(void) {
  ck_assert(vd_itest_start_with_decision(&server, "c-params", decision_id, sizeof decision_id));
}

static void stop_server(void) { ck_assert(vd_itest_finish(&server)); }

/* GET path: the status, and for a 400 that error.field is field and the message says want. */
static void expect(const char *path, long status, const char *field, const char *want) {
  vd_itest_response r = vd_itest_get_compliance(&server, path);
  ck_assert_msg(r.status == status, "%s: HTTP %ld (want %ld): %.300s", path, r.status, status,
                r.body);
  if (status == 400) {
    const char *got_field = vd_itest_error_string(&r, "field");
    const char *message = vd_itest_error_string(&r, "message");
    ck_assert_msg(got_field && strcmp(got_field, field) == 0, "%s: %.300s", path, r.body);
    ck_assert_msg(message && strstr(message, want), "%s: %.300s", path, r.body);
  }
  vd_itest_response_free(&r);
}

START_TEST(listing_parameters_are_unambiguous) {
  expect("/v1/decisions?subject=c-params&limit=10", 200, NULL, NULL);
  expect("/v1/decisions?until=2999-01-01T00:00:00Z&until=1970-01-01T00:00:00Z", 400, "until",
         "query parameter 'until' is given more than once");
  expect("/v1/decisions?limit=5&kind=triage&limit=5", 400, "limit", "more than once");
  expect("/v1/decisions?subject=a&subject=b", 400, "subject", "more than once");
  expect("/v1/decisions?limit=%2010", 400, "limit", "limit must be an integer in [1, ");
  expect("/v1/decisions?limit=+10", 400, "limit", "limit must be an integer");
  expect("/v1/decisions?limit=", 400, "limit", "got ''");
  expect("/v1/decisions?since=", 400, "since", "since must be an RFC 3339 time");
  expect("/v1/decisions?until=", 400, "until", "until must be an RFC 3339 time");
  expect("/v1/decisions?sinse=2026-01-01T00:00:00Z", 400, "sinse",
         "unknown query parameter 'sinse'");
}
END_TEST

START_TEST(a_decision_takes_no_parameters_its_explanation_only_format) {
  char path[256];
  snprintf(path, sizeof path, "/v1/decisions/%s", decision_id);
  expect(path, 200, NULL, NULL);
  snprintf(path, sizeof path, "/v1/decisions/%s?foo=1", decision_id);
  expect(path, 400, "foo", "unknown query parameter 'foo' (GET /v1/decisions/ID takes none)");
  snprintf(path, sizeof path, "/v1/decisions/%s?format=text", decision_id);
  expect(path, 400, "format", "unknown query parameter 'format'");
  snprintf(path, sizeof path, "/v1/decisions/%s/explanation?format=json", decision_id);
  expect(path, 200, NULL, NULL);
  snprintf(path, sizeof path, "/v1/decisions/%s/explanation?format=json&x=1", decision_id);
  expect(path, 400, "x", "unknown query parameter 'x' (expected format)");
  snprintf(path, sizeof path, "/v1/decisions/%s/explanation?format=json&format=text", decision_id);
  expect(path, 400, "format", "query parameter 'format' is given more than once");
}
END_TEST

int main(void) {
  Suite *s = suite_create("query_params");
  TCase *tc = tcase_create("query");
  tcase_set_timeout(tc, 120);
  tcase_add_unchecked_fixture(tc, start_server, stop_server);
  tcase_add_test(tc, listing_parameters_are_unambiguous);
  tcase_add_test(tc, a_decision_takes_no_parameters_its_explanation_only_format);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
