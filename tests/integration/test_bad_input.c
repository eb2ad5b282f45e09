/* Hostile request bodies against the real server: deeply nested JSON, huge numbers, invalid
 * UTF-8, NUL bytes (raw and escaped), duplicate keys, very long strings and wide arrays. Each gets
 * a clear JSON 400 (413 when over the body limit) quickly, never a crash or a hang, and the server
 * keeps answering good requests afterwards. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vd_itest.h"
#include "vd_test.h"

static vd_itest_server server;

static const char fields[] =
    "\"id\": \"c42\", \"recency\": 6, \"history\": 329.08, \"mens\": true, \"womens\": true, "
    "\"zip_code\": \"Rural\", \"newbie\": true, \"channel\": \"Web\", \"marketing_opt_out\": "
    "false, "
    "\"emails_last_30d\": 1, \"country\": \"US\"";

static void start_server(void) {
  ck_assert_msg(vd_itest_prepare(&server, NULL), "cannot prepare a temp folder");
  ck_assert_msg(vd_itest_start(&server), "verdict serve did not become ready");
}

static void stop_server(void) {
  if (server.pid > 0) ck_assert_int_eq(vd_itest_stop(&server, SIGTERM), 0);
  vd_itest_cleanup(&server);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* Posts body (size bytes, may hold NULs) and checks: the expected status, a JSON error object
 * with a code and a message, an answer within 5 s, and a good request still scoring after. */
static void expect_refused(const char *what, const char *body, size_t size, long status,
                           const char *code) {
  double t0 = now_s();
  vd_itest_response r =
      vd_itest_call(&server, "POST", "/v1/promotions/score", "demo-score", body, size);
  double elapsed = now_s() - t0;
  ck_assert_msg(r.status == status, "%s: HTTP %ld (want %ld): %.300s", what, r.status, status,
                r.body ? r.body : "(no body)");
  json_t *error = json_object_get(r.json, "error");
  ck_assert_msg(json_is_object(error), "%s: not a JSON error: %.300s", what, r.body);
  const char *got = json_string_value(json_object_get(error, "code"));
  ck_assert_msg(got && strcmp(got, code) == 0, "%s: code %s (want %s)", what, got, code);
  const char *message = json_string_value(json_object_get(error, "message"));
  ck_assert_msg(message && strlen(message) > 10, "%s: no message", what);
  ck_assert_msg(elapsed < 5.0, "%s: took %.2f s", what, elapsed);
  vd_itest_response_free(&r);

  char good[512];
  int n = snprintf(good, sizeof good, "{\"subject\": {%s}}", fields);
  r = vd_itest_call(&server, "POST", "/v1/promotions/score", "demo-score", good, (size_t)n);
  ck_assert_msg(r.status == 200, "after %s: a good request got HTTP %ld", what, r.status);
  vd_itest_response_free(&r);
}

/* "{\"subject\": {<fields>, \"id\": <value>}}" with value replacing the id. */
static char *with_id(const char *value, size_t value_len, size_t *size) {
  const char *rest = strstr(fields, ", ");
  size_t cap = value_len + strlen(fields) + 64;
  char *body = malloc(cap);
  int head = snprintf(body, cap, "{\"subject\": {\"id\": ");
  memcpy(body + head, value, value_len);
  int tail = snprintf(body + head + value_len, cap - head - value_len, "%s}}", rest);
  *size = (size_t)head + value_len + (size_t)tail;
  return body;
}

START_TEST(deep_nesting_is_400) {
  /* Past jansson's parse depth (2048): refused by the parser. */
  size_t depth = 20000, size = 0;
  char *body = malloc(2 * depth + 64);
  size = (size_t)sprintf(body, "{\"subject\": ");
  memset(body + size, '[', depth);
  size += depth;
  memset(body + size, ']', depth);
  size += depth;
  body[size++] = '}';
  expect_refused("20000 nested arrays", body, size, 400, "bad_json");
  /* Within the parse depth but where no nesting is allowed: a schema violation. */
  size = (size_t)sprintf(body, "{\"subject\": {%s, \"extra\": ", fields);
  for (int i = 0; i < 1000; i++) size += (size_t)sprintf(body + size, "{\"a\":");
  size += (size_t)sprintf(body + size, "1");
  for (int i = 0; i < 1000; i++) body[size++] = '}';
  size += (size_t)sprintf(body + size, "}}");
  expect_refused("1000 nested objects in subject", body, size, 400, "invalid_request");
  /* Nested under a top-level key the schema does not govern. */
  size = (size_t)sprintf(body, "{\"subject\": {%s}, \"deep\": ", fields);
  memset(body + size, '[', 2000);
  size += 2000;
  memset(body + size, ']', 2000);
  size += 2000;
  body[size++] = '}';
  expect_refused("2000 nested arrays at the top level", body, size, 400, "invalid_request");
  free(body);
}
END_TEST

START_TEST(huge_numbers_are_400) {
  static const char *const cases[][2] = {
      {"{\"subject\": {\"id\": \"a\", \"recency\": 99999999999999999999999999}}", "bad_json"},
      {"{\"subject\": {\"id\": \"a\", \"history\": 1e400}}", "bad_json"},
      {"{\"subject\": {\"id\": \"a\", \"history\": -1e99999}}", "bad_json"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    expect_refused(cases[i][0], cases[i][0], strlen(cases[i][0]), 400, cases[i][1]);
  /* Representable but out of the schema's range. */
  size_t size = 0;
  char body[1024];
  snprintf(body, sizeof body, "{\"subject\": {%s}, \"candidates\": [{\"id\": \"mens-email\"}]}",
           fields);
  char *at = strstr(body, "\"recency\": 6");
  char patched[1024];
  size = (size_t)snprintf(patched, sizeof patched, "%.*s\"recency\": 9223372036854775807%s",
                          (int)(at - body), body, at + strlen("\"recency\": 6"));
  expect_refused("recency = INT64_MAX", patched, size, 400, "invalid_request");
  at = strstr(body, "\"history\": 329.08");
  size = (size_t)snprintf(patched, sizeof patched, "%.*s\"history\": 1.7976931348623157e308%s",
                          (int)(at - body), body, at + strlen("\"history\": 329.08"));
  vd_itest_response r =
      vd_itest_call(&server, "POST", "/v1/promotions/score", "demo-score", patched, size);
  ck_assert_msg(r.status == 200 || r.status == 400, "history = DBL_MAX: HTTP %ld %s", r.status,
                r.body);
  vd_itest_response_free(&r);
}
END_TEST

START_TEST(invalid_utf8_is_400) {
  static const char *const values[] = {"\"\xff\xfe\"", "\"\xc3\"", "\"\xed\xa0\x80\"",
                                       "\"\xc0\xaf\"", "\"\\ud800\""};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    size_t size = 0;
    char *body = with_id(values[i], strlen(values[i]), &size);
    expect_refused("invalid UTF-8 in a string", body, size, 400, "bad_json");
    free(body);
  }
  /* In a key too. */
  const char key[] = "{\"subject\": {\"\xff\": 1}}";
  expect_refused("invalid UTF-8 in a key", key, sizeof key - 1, 400, "bad_json");
}
END_TEST

START_TEST(nul_bytes_are_400) {
  size_t size = 0;
  char *body = with_id("\"a\0b\"", 5, &size);
  expect_refused("a raw NUL inside a string", body, size, 400, "bad_json");
  free(body);
  body = with_id("\"a\\u0000b\"", 10, &size);
  expect_refused("an escaped NUL inside a string", body, size, 400, "bad_json");
  free(body);
  char trailing[600];
  size = (size_t)snprintf(trailing, sizeof trailing, "{\"subject\": {%s}}", fields);
  trailing[size++] = '\0';
  expect_refused("a NUL after the object", trailing, size, 400, "bad_json");
}
END_TEST

START_TEST(duplicate_keys_are_400) {
  char body[600];
  size_t size = (size_t)snprintf(body, sizeof body, "{\"subject\": {%s, \"recency\": 7}}", fields);
  expect_refused("a duplicate key inside subject", body, size, 400, "bad_json");
  size = (size_t)snprintf(body, sizeof body, "{\"subject\": {%s}, \"subject\": {}}", fields);
  expect_refused("a duplicate top-level key", body, size, 400, "bad_json");
}
END_TEST

START_TEST(long_strings_are_400_or_413) {
  size_t n = 60000, size = 0;
  char *value = malloc(n + 2);
  value[0] = '"';
  memset(value + 1, 'x', n - 2);
  value[n - 1] = '"';
  char *body = with_id(value, n, &size);
  expect_refused("a 60 kB id (max_length 64)", body, size, 400, "invalid_request");
  free(body);
  char key[600];
  size = (size_t)snprintf(key, sizeof key, "{\"subject\": {%s}, \"", fields);
  char *long_key = malloc(n + sizeof key + 16);
  memcpy(long_key, key, size);
  memset(long_key + size, 'k', n - 2);
  size += n - 2;
  size += (size_t)sprintf(long_key + size, "\": 1}");
  expect_refused("a 60 kB unknown top-level key", long_key, size, 400, "invalid_request");
  free(long_key);
  free(value);
  /* Over the body limit (64 KiB by default). */
  n = 200000;
  value = malloc(n);
  value[0] = '"';
  memset(value + 1, 'x', n - 2);
  value[n - 1] = '"';
  body = with_id(value, n, &size);
  expect_refused("a 200 kB id", body, size, 413, "payload_too_large");
  free(body);
  free(value);
}
END_TEST

/* A hand-edited body's syntax error names where and the probable cause, in the message and in
 * the error's details, over HTTP (triage and scoring share the parser). */
START_TEST(syntax_errors_name_their_cause) {
  static const struct {
    const char *path, *body, *message;
  } cases[] = {
      {"/v1/promotions/score", "{\"subject\": {\"id\": \"c1\",}}",
       "invalid JSON at line 1, column 25: string or '}' expected near '}' — a trailing comma "
       "before '}'?"},
      {"/v1/triage", "{\"text\": \"where is my bag, \"channel\": \"web\"}",
       "— a missing ',' between members?"},
      {"/v1/triage", "{\"text\": \"where is my bag", "— an unterminated string (no closing '\"')?"},
      {"/v1/triage", "{'text': 'where is my bag'}", "— keys and strings take double quotes, not '"},
      {"/v1/promotions/score", "{\"subject\": {\"id\": \"c1\", \"mens\": True}}",
       "— JSON's literals are lower case: true, false, null"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    vd_itest_response r = vd_itest_call(&server, "POST", cases[i].path, "demo-score", cases[i].body,
                                        strlen(cases[i].body));
    ck_assert_msg(r.status == 400, "%s: HTTP %ld", cases[i].body, r.status);
    json_t *error = json_object_get(r.json, "error");
    const char *message = json_string_value(json_object_get(error, "message"));
    ck_assert_msg(message && strstr(message, cases[i].message), "%s: '%s' does not say '%s'",
                  cases[i].body, message, cases[i].message);
    const char *hint = strstr(cases[i].message, "— ") + strlen("— ");
    const char *detail = json_string_value(json_object_get(error, "hint"));
    ck_assert_msg(detail && strcmp(detail, hint) == 0, "%s: error.hint in %s", cases[i].body,
                  r.body);
    vd_itest_response_free(&r);
  }
}
END_TEST

/* An empty (or whitespace-only) body says so, at a real position (jansson's own says column 0),
 * with the same code and fields as every other JSON syntax error. */
START_TEST(an_empty_body_says_it_is_empty) {
  static const struct {
    const char *body, *message;
    int line, column, position;
  } cases[] = {
      {"",
       "invalid JSON at line 1, column 1: the body is empty — send the request as a JSON "
       "object",
       1, 1, 1},
      {" \r\n\t",
       "invalid JSON at line 2, column 2: the body is only whitespace — send the "
       "request as a JSON object",
       2, 2, 5},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *body = cases[i].body;
    expect_refused(cases[i].message, body, strlen(body), 400, "bad_json");
    vd_itest_response r =
        vd_itest_call(&server, "POST", "/v1/triage", "demo-score", body, strlen(body));
    ck_assert_msg(r.status == 400, "case %zu: HTTP %ld", i, r.status);
    json_t *error = json_object_get(r.json, "error");
    ck_assert_str_eq(json_string_value(json_object_get(error, "code")), "bad_json");
    ck_assert_str_eq(json_string_value(json_object_get(error, "message")), cases[i].message);
    ck_assert_str_eq(json_string_value(json_object_get(error, "hint")),
                     "send the request as a JSON object");
    ck_assert_int_eq(json_integer_value(json_object_get(error, "line")), cases[i].line);
    ck_assert_int_eq(json_integer_value(json_object_get(error, "column")), cases[i].column);
    ck_assert_int_eq(json_integer_value(json_object_get(error, "position")), cases[i].position);
    vd_itest_response_free(&r);
  }
}
END_TEST

START_TEST(wide_candidate_lists_are_bounded) {
  /* As many candidates as fit in the body limit: refused (unknown ids) or capped, quickly. */
  size_t cap = 64000, size = 0;
  char *body = malloc(cap + 64);
  size = (size_t)sprintf(body, "{\"subject\": {%s}, \"candidates\": [", fields);
  while (size + 40 < cap) size += (size_t)sprintf(body + size, "{\"id\": \"mens-email\"},");
  size += (size_t)sprintf(body + size, "{\"id\": \"mens-email\"}]}");
  expect_refused("thousands of duplicate candidates", body, size, 400, "invalid_request");
  free(body);
}
END_TEST

int main(void) {
  Suite *s = suite_create("bad_input");
  TCase *tc = tcase_create("bad_input");
  tcase_set_timeout(tc, 120);
  tcase_add_unchecked_fixture(tc, start_server, stop_server);
  tcase_add_test(tc, deep_nesting_is_400);
  tcase_add_test(tc, huge_numbers_are_400);
  tcase_add_test(tc, invalid_utf8_is_400);
  tcase_add_test(tc, nul_bytes_are_400);
  tcase_add_test(tc, duplicate_keys_are_400);
  tcase_add_test(tc, long_strings_are_400_or_413);
  tcase_add_test(tc, wide_candidate_lists_are_bounded);
  tcase_add_test(tc, syntax_errors_name_their_cause);
  tcase_add_test(tc, an_empty_body_says_it_is_empty);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
