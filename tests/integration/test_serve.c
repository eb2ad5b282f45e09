/* The real `verdict serve` over HTTP: scoring Hillstrom rows, every 4xx path, reading decisions
 * back, metrics and health, hot reload under load, graceful SIGTERM. */
#define _GNU_SOURCE
#include <ctype.h>
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vd_buf.h"
#include "vd_itest.h"
#include "vd_test.h"
#include "vd_trace_blob.h"

static vd_itest_server server;

static const char customer[] =
    "{\"subject\": {\"id\": \"c42\", \"recency\": 6, \"history\": 329.08, \"mens\": true, "
    "\"womens\": true, \"zip_code\": \"Rural\", \"newbie\": true, \"channel\": \"Web\", "
    "\"marketing_opt_out\": false, \"emails_last_30d\": 1, \"country\": \"US\"}}";

static void start_server(void) {
  ck_assert_msg(vd_itest_prepare(&server, NULL), "cannot prepare a temp folder");
  ck_assert_msg(vd_itest_start(&server), "verdict serve did not become ready");
}

static void stop_server(void) {
  if (server.pid > 0) vd_itest_stop(&server, SIGTERM);
  vd_itest_cleanup(&server);
}

static vd_itest_response post(const char *path, const char *key, const char *body) {
  return vd_itest_call(&server, "POST", path, key, body, strlen(body));
}

static const char *error_code(const vd_itest_response *r) {
  return json_string_value(json_object_get(json_object_get(r->json, "error"), "code"));
}

START_TEST(scores_hillstrom_rows) {
  char **rows = NULL;
  size_t n = vd_itest_hillstrom_rows(200, &rows);
  if (n == 0) return;
  size_t offers = 0, denies = 0, scored = 0;
  for (size_t i = 0; i < n; i++) {
    char *body = vd_itest_hillstrom_request(rows[i], (int)i);
    ck_assert_ptr_nonnull(body);
    vd_itest_response r = post("/v1/promotions/score", "demo-score", body);
    ck_assert_msg(r.status == 200, "row %zu: status %ld: %s", i, r.status, r.body);
    const char *id = json_string_value(json_object_get(r.json, "decision_id"));
    ck_assert_ptr_nonnull(id);
    ck_assert_int_eq(strlen(id), 36);
    ck_assert_int_eq(id[14], '7'); /* UUIDv7 */
    json_t *results = json_object_get(r.json, "results");
    ck_assert_int_eq(json_array_size(results), 2);
    size_t k;
    json_t *res;
    long expected_rank = 1;
    json_array_foreach(results, k, res) {
      const char *action = json_string_value(json_object_get(res, "action"));
      ck_assert_ptr_nonnull(action);
      json_t *model = json_object_get(res, "model");
      if (json_is_true(json_object_get(res, "eligible"))) {
        ck_assert_int_eq(json_integer_value(json_object_get(res, "rank")), expected_rank++);
        offers++;
      } else {
        ck_assert(json_is_null(json_object_get(res, "rank")));
        ck_assert_str_eq(action, "deny");
        ck_assert_int_ge(json_array_size(json_object_get(res, "reasons")), 1);
        denies++;
      }
      if (model) {
        double pt = json_real_value(json_object_get(model, "p_treatment"));
        double pc = json_real_value(json_object_get(model, "p_control"));
        double up = json_real_value(json_object_get(model, "uplift"));
        ck_assert(pt > 0 && pt < 1 && pc > 0 && pc < 1);
        ck_assert_double_eq_tol(up, pt - pc, 1e-12);
        scored++;
      }
    }
    /* Eligible results come first, ranked by score. */
    double previous = 1e9;
    json_array_foreach(results, k, res) {
      if (!json_is_true(json_object_get(res, "eligible"))) break;
      double score = json_real_value(json_object_get(res, "score"));
      ck_assert(score <= previous);
      previous = score;
    }
    ck_assert(json_is_null(json_object_get(r.json, "fallback")));
    ck_assert_ptr_nonnull(
        json_string_value(json_object_get(json_object_get(r.json, "model"), "version")));
    vd_itest_response_free(&r);
    free(body);
    free(rows[i]);
  }
  free(rows);
  /* Real rows exercise both paths: rules that deny, and the model that scores. */
  ck_assert_uint_gt(offers, 0);
  ck_assert_uint_gt(denies, 0);
  ck_assert_uint_gt(scored, 0);
}
END_TEST

START_TEST(request_without_candidates_uses_all_and_max_results_caps) {
  vd_itest_response r = post("/v1/promotions/score", "demo-score", customer);
  ck_assert_int_eq(r.status, 200);
  ck_assert_int_eq(json_array_size(json_object_get(r.json, "results")), 2);
  vd_itest_response_free(&r);
  char body[1024];
  snprintf(body, sizeof body, "%.*s, \"max_results\": 1}", (int)strlen(customer) - 1, customer);
  r = post("/v1/promotions/score", "demo-score", body);
  ck_assert_msg(r.status == 200, "%s", r.body);
  ck_assert_int_eq(json_array_size(json_object_get(r.json, "results")), 1);
  vd_itest_response_free(&r);
  snprintf(body, sizeof body, "%.*s, \"candidates\": [{\"id\": \"womens-email\"}]}",
           (int)strlen(customer) - 1, customer);
  r = post("/v1/promotions/score", "demo-score", body);
  ck_assert_int_eq(r.status, 200);
  json_t *results = json_object_get(r.json, "results");
  ck_assert_int_eq(json_array_size(results), 1);
  ck_assert_str_eq(json_string_value(json_object_get(json_array_get(results, 0), "candidate")),
                   "womens-email");
  vd_itest_response_free(&r);
}
END_TEST

START_TEST(bad_json_names_line_column_and_position) {
  vd_itest_response r =
      post("/v1/promotions/score", "demo-score", "{\"subject\": {\n  \"id\": ,}}");
  ck_assert_int_eq(r.status, 400);
  ck_assert_str_eq(error_code(&r), "bad_json");
  json_t *e = json_object_get(r.json, "error");
  ck_assert_int_eq(json_integer_value(json_object_get(e, "line")), 2);
  ck_assert_int_eq(json_integer_value(json_object_get(e, "column")), 9);
  ck_assert_int_eq(json_integer_value(json_object_get(e, "position")), 23); /* 1-based byte */
  ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(e, "message")), "line 2"));
  vd_itest_response_free(&r);
  r = post("/v1/promotions/score", "demo-score", "[1, 2]");
  ck_assert_int_eq(r.status, 400);
  vd_itest_response_free(&r);
}
END_TEST

START_TEST(schema_violations_list_every_path) {
  vd_itest_response r =
      post("/v1/promotions/score", "demo-score",
           "{\"subject\": {\"id\": \"c1\", \"recency\": \"six\", \"history\": 10, \"mens\": true,"
           " \"womens\": false, \"zip_code\": \"Mars\", \"newbie\": false, \"channel\": \"Web\","
           " \"marketing_opt_out\": false, \"emails_last_30d\": 0, \"country\": \"US\"},"
           " \"candidates\": [{\"id\": \"sms\"}]}");
  ck_assert_int_eq(r.status, 400);
  ck_assert_str_eq(error_code(&r), "invalid_request");
  json_t *violations = json_object_get(json_object_get(r.json, "error"), "violations");
  bool recency = false, zip = false, candidate = false;
  size_t i;
  json_t *v;
  json_array_foreach(violations, i, v) {
    const char *field = json_string_value(json_object_get(v, "field"));
    recency = recency || strcmp(field, "subject.recency") == 0;
    zip = zip || strcmp(field, "subject.zip_code") == 0;
    candidate = candidate || strcmp(field, "candidates[0].id") == 0;
  }
  ck_assert_msg(recency && zip && candidate, "%s", r.body);
  ck_assert_int_eq(json_array_size(violations), 3);
  vd_itest_response_free(&r);
}
END_TEST

/* A value cut inside a character in a violation's message (byte 57 of "a"*55 + "é" + ...) is
 * still listed: the invalid message was dropped and the answer read "violations":[]. */
START_TEST(a_violation_cut_inside_a_character_is_listed) {
  char body[1024];
  snprintf(body, sizeof body,
           "{\"subject\": {\"id\": \"c1\", \"recency\": 6, \"history\": 10, \"mens\": true,"
           " \"womens\": false, \"zip_code\": \"%055d\xc3\xa9"
           "bbbbbbbbbb\", \"newbie\": false, \"channel\": \"Web\","
           " \"marketing_opt_out\": false, \"emails_last_30d\": 0, \"country\": \"US\"}}",
           0);
  vd_itest_response r = post("/v1/promotions/score", "demo-score", body);
  ck_assert_int_eq(r.status, 400);
  json_t *violations = json_object_get(json_object_get(r.json, "error"), "violations");
  ck_assert_msg(json_array_size(violations) == 1, "%s", r.body);
  const char *field = json_string_value(json_object_get(json_array_get(violations, 0), "field"));
  ck_assert_str_eq(field, "subject.zip_code");
  vd_itest_response_free(&r);
}
END_TEST

/* A stored trace that is JSON but not a trace is a damaged row: its explanation is answered as
 * GET /v1/decisions/{id} answers a damaged row (503, naming the decision), not 500 "internal". */
START_TEST(the_explanation_of_a_damaged_trace_names_the_decision) {
  vd_itest_response r = post("/v1/promotions/score", "demo-score", customer);
  ck_assert_int_eq(r.status, 200);
  char id[64];
  snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r.json, "decision_id")));
  vd_itest_response_free(&r);
  ck_assert(vd_itest_indexed(&server, id));
  char path[512];
  snprintf(path, sizeof path, "%s/decisions.db", server.data_dir);
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt *st = NULL;
  ck_assert_int_eq(sqlite3_prepare_v2(db, "UPDATE decisions SET trace = '{\"x\": 1}' WHERE id = ?1",
                                      -1, &st, NULL),
                   SQLITE_OK);
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
  ck_assert_int_eq(sqlite3_changes(db), 1);
  sqlite3_finalize(st);
  sqlite3_close(db);
  const char *formats[] = {"", "?format=text", "?format=json"};
  for (size_t f = 0; f < 3; f++) {
    snprintf(path, sizeof path, "/v1/decisions/%s/explanation%s", id, formats[f]);
    r = vd_itest_call(&server, "GET", path, "demo-compliance", NULL, 0);
    ck_assert_msg(r.status == 503, "%s: HTTP %ld %s", path, r.status, r.body);
    ck_assert_str_eq(error_code(&r), "decision_log_unavailable");
    const char *message = vd_itest_error_string(&r, "message");
    ck_assert_msg(message && strstr(message, id) && strstr(message, "not a decision trace"), "%s",
                  r.body);
    vd_itest_response_free(&r);
  }
}
END_TEST

START_TEST(oversized_body_is_413) {
  size_t size = 70 * 1024;
  char *body = malloc(size + 1);
  memset(body, ' ', size);
  body[0] = '{';
  body[size - 1] = '}';
  body[size] = '\0';
  vd_itest_response r =
      vd_itest_call(&server, "POST", "/v1/promotions/score", "demo-score", body, size);
  ck_assert_int_eq(r.status, 413);
  ck_assert_str_eq(error_code(&r), "payload_too_large");
  vd_itest_response_free(&r);
  free(body);
  /* The server is still fine afterwards. */
  r = post("/v1/promotions/score", "demo-score", customer);
  ck_assert_int_eq(r.status, 200);
  vd_itest_response_free(&r);
}
END_TEST

START_TEST(keys_and_roles) {
  vd_itest_response r = post("/v1/promotions/score", NULL, customer);
  ck_assert_int_eq(r.status, 401);
  ck_assert_str_eq(error_code(&r), "unauthorized");
  vd_itest_response_free(&r);
  r = post("/v1/promotions/score", "not-a-key", customer);
  ck_assert_int_eq(r.status, 401);
  vd_itest_response_free(&r);
  r = post("/v1/promotions/score", "demo-compliance", customer);
  ck_assert_int_eq(r.status, 403);
  ck_assert_str_eq(error_code(&r), "forbidden");
  vd_itest_response_free(&r);
  r = vd_itest_call(&server, "GET", "/v1/decisions?limit=1", "demo-score", NULL, 0);
  ck_assert_int_eq(r.status, 403);
  vd_itest_response_free(&r);
  r = vd_itest_call(&server, "POST", "/v1/admin/reload", "demo-compliance", NULL, 0);
  ck_assert_int_eq(r.status, 403);
  vd_itest_response_free(&r);
  r = vd_itest_call(&server, "GET", "/v1/admin/versions", "demo-admin", NULL, 0);
  ck_assert_int_eq(r.status, 200);
  vd_itest_response_free(&r);
}
END_TEST

START_TEST(routing_errors) {
  vd_itest_response r =
      vd_itest_call(&server, "GET", "/v1/promotions/score", "demo-score", NULL, 0);
  ck_assert_int_eq(r.status, 405);
  vd_itest_response_free(&r);
  r = vd_itest_call_typed(&server, "POST", "/v1/promotions/score", "demo-score", "text/plain",
                          customer, strlen(customer));
  ck_assert_int_eq(r.status, 415);
  vd_itest_response_free(&r);
  r = vd_itest_call_typed(&server, "POST", "/v1/promotions/score", "demo-score",
                          "Application/JSON; charset=utf-8", customer, strlen(customer));
  ck_assert_int_eq(r.status, 200);
  vd_itest_response_free(&r);
  r = vd_itest_call(&server, "GET", "/v1/nothing", NULL, NULL, 0);
  ck_assert_int_eq(r.status, 404);
  ck_assert_str_eq(error_code(&r), "not_found");
  vd_itest_response_free(&r);
  r = vd_itest_call(&server, "GET", "/v1/decisions/not-a-uuid", "demo-compliance", NULL, 0);
  ck_assert_int_eq(r.status, 400);
  vd_itest_response_free(&r);
  r = vd_itest_call(&server, "GET", "/v1/decisions/01a23c2a-7289-7441-81f8-c38f843ea62d",
                    "demo-compliance", NULL, 0);
  ck_assert_int_eq(r.status, 404);
  vd_itest_response_free(&r);
  r = vd_itest_call(&server, "GET", "/v1/decisions?subjet=c1", "demo-compliance", NULL, 0);
  ck_assert_int_eq(r.status, 400);
  ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r.json, "error"), "field")),
                   "subjet");
  vd_itest_response_free(&r);
  r = vd_itest_call(&server, "GET", "/v1/decisions?since=yesterday", "demo-compliance", NULL, 0);
  ck_assert_int_eq(r.status, 400);
  vd_itest_response_free(&r);
}
END_TEST

/* Checks that every real number in text is written with the fewest digits that read back as
 * the same double (the writer's shortest of 15, 16, 17 significant digits); returns how many. */
static size_t assert_reals_shortest(const char *text) {
  size_t reals = 0;
  for (const char *p = text; *p; p++) {
    if (!(*p == '-' || (*p >= '0' && *p <= '9')) ||
        (p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '.' || p[-1] == '-')))
      continue;
    char *end = NULL;
    double v = strtod(p, &end);
    size_t len = (size_t)(end - p);
    if (!memchr(p, '.', len) && !memchr(p, 'e', len)) { /* an integer */
      p = end - 1;
      continue;
    }
    int digits = 0;
    bool significant = false; /* leading zeros are not significant digits */
    for (const char *q = p; q < end && *q != 'e'; q++) {
      significant = significant || (*q >= '1' && *q <= '9');
      digits += significant && *q >= '0' && *q <= '9';
    }
    int shortest = 17;
    for (int precision = 15; precision < 17; precision++) {
      char buf[40];
      snprintf(buf, sizeof buf, "%.*g", precision, v);
      if (strtod(buf, NULL) == v) {
        shortest = precision;
        break;
      }
    }
    /* integral reals print all their digits (and ".0"); others at most the shortest count */
    if (v != floor(v))
      ck_assert_msg(digits <= shortest, "%.*s is longer than its shortest form (%d digits)",
                    (int)len, p, shortest);
    reals++;
    p = end - 1;
  }
  return reals;
}

/* The response and the stored trace come out of one writer: reals in their shortest round-trip
 * form (0.06285524368286133, not %.17g's 0.062855243682861328), the same text in both. */
START_TEST(reals_are_written_shortest_in_response_and_trace) {
  vd_itest_response r = post("/v1/promotions/score", "demo-score", customer);
  ck_assert_int_eq(r.status, 200);
  ck_assert_uint_gt(assert_reals_shortest(r.body), 4);
  char id[64];
  snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r.json, "decision_id")));
  ck_assert(vd_itest_indexed(&server, id));
  char path[400];
  snprintf(path, sizeof path, "%s/decisions.db", server.data_dir);
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *st = NULL;
  ck_assert_int_eq(
      sqlite3_prepare_v2(db, "SELECT trace FROM decisions WHERE id = ?1", -1, &st, NULL),
      SQLITE_OK);
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
  /* stored compressed (vd_trace_blob), as a real trace shrinks */
  ck_assert_int_eq(sqlite3_column_type(st, 0), SQLITE_BLOB);
  size_t stored_len = 0;
  vd_error err = {0};
  char *stored = vd_trace_blob_decode(sqlite3_column_blob(st, 0),
                                      (size_t)sqlite3_column_bytes(st, 0), &stored_len, &err);
  ck_assert_msg(stored != NULL, "%s", err.message);
  ck_assert_uint_gt(assert_reals_shortest(stored), 20);
  /* the response is in the trace: its text is the stored text's "response" value, byte for byte */
  const char *results = strstr(r.body, "\"results\":");
  ck_assert_ptr_nonnull(results);
  ck_assert_ptr_nonnull(strstr(stored, results));
  free(stored);
  sqlite3_finalize(st);
  sqlite3_close(db);
  vd_itest_response_free(&r);
}
END_TEST

START_TEST(decision_is_read_back_with_compliance_key) {
  vd_itest_response r = post("/v1/promotions/score", "demo-score", customer);
  ck_assert_int_eq(r.status, 200);
  char id[64];
  snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r.json, "decision_id")));
  json_t *response = json_incref(r.json);
  vd_itest_response_free(&r);
  char path[128];
  snprintf(path, sizeof path, "/v1/decisions/%s", id);
  r = vd_itest_call(&server, "GET", path, "demo-compliance", NULL, 0);
  ck_assert_int_eq(r.status, 200);
  json_t *trace = r.json;
  ck_assert_str_eq(json_string_value(json_object_get(trace, "id")), id);
  ck_assert_int_eq(json_integer_value(json_object_get(trace, "trace_version")), 1);
  ck_assert_str_eq(json_string_value(json_object_get(trace, "kind")), "promotions");
  ck_assert_str_eq(json_string_value(json_object_get(
                       json_object_get(json_object_get(trace, "request"), "subject"), "id")),
                   "c42");
  ck_assert(json_equal(json_object_get(trace, "response"), response));
  json_t *candidates = json_object_get(trace, "candidates");
  ck_assert_int_eq(json_array_size(candidates), 2);
  json_t *first = json_array_get(candidates, 0);
  json_t *rules = json_object_get(json_object_get(first, "rules"), "rules");
  ck_assert_int_gt(json_array_size(rules), 0);
  ck_assert_ptr_nonnull(json_object_get(json_array_get(rules, 0), "read"));
  json_t *model = json_object_get(first, "model");
  ck_assert(json_is_object(model));
  ck_assert(json_is_object(json_object_get(model, "contributions")));
  ck_assert(json_is_object(json_object_get(model, "features")));
  ck_assert(json_is_object(json_object_get(trace, "timings_us")));
  vd_itest_response_free(&r);
  json_decref(response);

  r = vd_itest_call(&server, "GET", "/v1/decisions?subject=c42&kind=promotions&limit=1",
                    "demo-compliance", NULL, 0);
  ck_assert_int_eq(r.status, 200);
  ck_assert_int_eq(json_array_size(json_object_get(r.json, "decisions")), 1);
  vd_itest_response_free(&r);
}
END_TEST

START_TEST(pagination_walks_every_decision_once) {
  const char *subject =
      "{\"subject\": {\"id\": \"pager\", \"recency\": 3, \"history\": 50, "
      "\"mens\": false, \"womens\": true, \"zip_code\": \"Urban\", \"newbie\": "
      "false, \"channel\": \"Phone\", \"marketing_opt_out\": false, "
      "\"emails_last_30d\": 0, \"country\": \"CA\"}}";
  for (int i = 0; i < 7; i++) {
    vd_itest_response r = post("/v1/promotions/score", "demo-score", subject);
    ck_assert_int_eq(r.status, 200);
    vd_itest_response_free(&r);
  }
  char path[512] = "/v1/decisions?subject=pager&limit=3";
  size_t total = 0, pages = 0;
  for (;;) {
    vd_itest_response r = vd_itest_call(&server, "GET", path, "demo-compliance", NULL, 0);
    ck_assert_int_eq(r.status, 200);
    total += json_array_size(json_object_get(r.json, "decisions"));
    pages++;
    const char *next = json_string_value(json_object_get(r.json, "next_cursor"));
    if (!next) {
      vd_itest_response_free(&r);
      break;
    }
    char *escaped = curl_easy_escape(NULL, next, 0);
    snprintf(path, sizeof path, "/v1/decisions?subject=pager&limit=3&cursor=%s", escaped);
    curl_free(escaped);
    vd_itest_response_free(&r);
    ck_assert_uint_lt(pages, 10);
  }
  ck_assert_uint_eq(total, 7);
}
END_TEST

START_TEST(health_ready_and_metrics) {
  vd_itest_response r = vd_itest_call(&server, "GET", "/healthz", NULL, NULL, 0);
  ck_assert_int_eq(r.status, 200);
  vd_itest_response_free(&r);
  r = vd_itest_call(&server, "GET", "/readyz", NULL, NULL, 0);
  ck_assert_int_eq(r.status, 200);
  vd_itest_response_free(&r);
  r = post("/v1/promotions/score", "demo-score", customer);
  vd_itest_response_free(&r);
  r = post("/v1/promotions/score", NULL, customer);
  vd_itest_response_free(&r);
  /* A new customer who bought recently (new-customer-welcome fires): the counters below come from
   * this test's own requests, not from the shared-data rows another test may have skipped. */
  r = post("/v1/promotions/score", "demo-score",
           "{\"subject\": {\"id\": \"c43\", \"recency\": 2, \"history\": 120.5, \"mens\": true, "
           "\"womens\": false, \"zip_code\": \"Urban\", \"newbie\": true, \"channel\": \"Web\", "
           "\"marketing_opt_out\": false, \"emails_last_30d\": 0, \"country\": \"US\"}}");
  ck_assert_msg(r.status == 200, "%ld: %s", r.status, r.body);
  vd_itest_response_free(&r);
  r = vd_itest_call(&server, "GET", "/metrics", NULL, NULL, 0);
  ck_assert_int_eq(r.status, 200);
  ck_assert_ptr_nonnull(strstr(r.content_type, "text/plain"));
  const char *wanted[] = {
      "verdict_http_requests_total{endpoint=\"score\",status=\"200\"}",
      "verdict_http_requests_total{endpoint=\"score\",status=\"401\"}",
      "verdict_http_request_duration_seconds_bucket{endpoint=\"score\",le=\"+Inf\"}",
      "verdict_decisions_total{action=\"offer\"}",
      "verdict_rules_fired_total{rule=\"new-customer-welcome\"}",
      "verdict_decision_log_queue_depth",
      "verdict_decision_log_commit_seconds_bucket",
  };
  for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++)
    ck_assert_msg(strstr(r.body, wanted[i]), "missing %s in /metrics", wanted[i]);
  vd_itest_response_free(&r);
}
END_TEST

/* ---- Reload under load --------------------------------------------------------------------- */

typedef struct load {
  atomic_bool stop;
  atomic_long ok;
  atomic_long failed;
  atomic_long last_failure;
} load;

static void *hammer(void *arg) {
  load *l = arg;
  while (!atomic_load(&l->stop)) {
    vd_itest_response r = post("/v1/promotions/score", "demo-score", customer);
    if (r.status == 200)
      atomic_fetch_add(&l->ok, 1);
    else {
      atomic_fetch_add(&l->failed, 1);
      atomic_store(&l->last_failure, r.status);
    }
    vd_itest_response_free(&r);
  }
  return NULL;
}

static char *ruleset_version(void) {
  vd_itest_response r = vd_itest_call(&server, "GET", "/v1/admin/versions", "demo-admin", NULL, 0);
  ck_assert_int_eq(r.status, 200);
  json_t *d = json_array_get(json_object_get(r.json, "deployments"), 0);
  char *v = strdup(json_string_value(json_object_get(json_object_get(d, "ruleset"), "version")));
  vd_itest_response_free(&r);
  return v;
}

static void replace_in_rules(const char *from, const char *to) {
  char path[512];
  snprintf(path, sizeof path, "%s/rules.yaml", server.deployment);
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  char *text = calloc(1, 1 << 20);
  size_t n = fread(text, 1, (1 << 20) - 1, f);
  fclose(f);
  text[n] = '\0';
  char *at = strstr(text, from);
  ck_assert_msg(at != NULL, "'%s' not in rules.yaml", from);
  char *out = calloc(1, n + strlen(to) + 1);
  memcpy(out, text, (size_t)(at - text));
  strcat(out, to);
  strcat(out, at + strlen(from));
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  f = fopen(tmp, "w");
  fputs(out, f);
  fclose(f);
  ck_assert_int_eq(rename(tmp, path), 0); /* atomic, as an editor or a deploy would */
  free(text);
  free(out);
}

START_TEST(reload_good_and_broken_under_load) {
  load l = {0};
  pthread_t threads[4];
  for (int i = 0; i < 4; i++) pthread_create(&threads[i], NULL, hammer, &l);
  usleep(200 * 1000);
  char *before = ruleset_version();

  /* A good edit: a reworded reason (the file's own tests still pass). */
  replace_in_rules("Expected uplift below half a percentage point",
                   "Expected uplift below 0.5 percentage points");
  vd_itest_response r = vd_itest_call(&server, "POST", "/v1/admin/reload", "demo-admin", NULL, 0);
  ck_assert_msg(r.status == 200, "%s", r.body);
  vd_itest_response_free(&r);
  char *after = ruleset_version();
  ck_assert_str_ne(before, after);
  usleep(200 * 1000);

  /* A broken edit: a syntax error in a `when`. */
  replace_in_rules("score.uplift < 0.005", "score.uplift < ");
  r = vd_itest_call(&server, "POST", "/v1/admin/reload", "demo-admin", NULL, 0);
  ck_assert_int_eq(r.status, 422);
  ck_assert_str_eq(error_code(&r), "reload_failed");
  json_t *errors = json_object_get(json_object_get(r.json, "error"), "errors");
  ck_assert_int_ge(json_array_size(errors), 1);
  json_t *first = json_array_get(errors, 0);
  ck_assert_int_gt(json_integer_value(json_object_get(first, "line")), 0);
  ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(first, "file")), "rules.yaml"));
  vd_itest_response_free(&r);
  char *still = ruleset_version();
  ck_assert_str_eq(after, still); /* the good version keeps serving */

  /* SIGHUP reloads too: fix the file and signal. */
  replace_in_rules("score.uplift < ", "score.uplift < 0.005");
  replace_in_rules("Expected uplift below 0.5 percentage points",
                   "Expected uplift below half a percentage point");
  kill(server.pid, SIGHUP);
  char *again = NULL;
  for (int i = 0; i < 600; i++) { /* up to 30 s: sanitizer builds load slowly */
    free(again);
    again = ruleset_version();
    if (strcmp(again, before) == 0) break;
    usleep(50 * 1000);
  }
  ck_assert_str_eq(again, before); /* same content as at the start: same version */
  usleep(200 * 1000);

  atomic_store(&l.stop, true);
  for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
  ck_assert_msg(atomic_load(&l.failed) == 0, "%ld requests failed (last status %ld)",
                atomic_load(&l.failed), atomic_load(&l.last_failure));
  ck_assert_int_gt(atomic_load(&l.ok), 20);
  free(before);
  free(after);
  free(still);
  free(again);
}
END_TEST

START_TEST(sigterm_finishes_in_flight_and_exits_0) {
  load l = {0};
  pthread_t threads[4];
  for (int i = 0; i < 4; i++) pthread_create(&threads[i], NULL, hammer, &l);
  usleep(300 * 1000);
  int status = vd_itest_stop(&server, SIGTERM);
  atomic_store(&l.stop, true);
  for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
  ck_assert_int_eq(status, 0);
  ck_assert_int_gt(atomic_load(&l.ok), 0);
}
END_TEST

/* Runs `verdict serve ARGS` with a shell and returns its exit status; *output gets stdout+stderr.
 */
static int run_serve(const char *args, char *output, size_t size) {
  char command[1024];
  snprintf(command, sizeof command, "'%s' serve %s 2>&1", VERDICT_EXE, args);
  FILE *p = popen(command, "r");
  ck_assert_ptr_nonnull(p);
  size_t n = fread(output, 1, size - 1, p);
  output[n] = '\0';
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(serve_usage_and_bad_configs) {
  char out[8192];
  ck_assert_int_eq(run_serve("--help", out, sizeof out), 0);
  ck_assert_ptr_nonnull(strstr(out, "usage: verdict serve --config FILE"));
  ck_assert_int_eq(run_serve("", out, sizeof out), 2);
  ck_assert_ptr_nonnull(strstr(out, "--config FILE is required"));
  ck_assert_int_eq(run_serve("--config /nonexistent.yaml", out, sizeof out), 2);
  ck_assert_int_eq(run_serve("--frobnicate", out, sizeof out), 2);
  char dir[] = "/tmp/verdict-cli-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char path[128], args[256];
  snprintf(path, sizeof path, "%s/bad.yaml", dir);
  FILE *f = fopen(path, "w");
  fputs("data_dir: d\ndeployments: [x]\nlimits:\n  max_body: 10\n", f);
  fclose(f);
  snprintf(args, sizeof args, "--config %s", path);
  ck_assert_int_eq(run_serve(args, out, sizeof out), 2);
  ck_assert_msg(strstr(out, "bad.yaml:4:3: unknown key 'max_body' in limits"), "%s", out);
  /* A deployment folder that does not load is fatal at start (exit 1), naming the file. */
  f = fopen(path, "w");
  fprintf(f, "data_dir: d\ndeployments: [nowhere]\n");
  fclose(f);
  ck_assert_int_eq(run_serve(args, out, sizeof out), 1);
  ck_assert_msg(strstr(out, "nowhere/deployment.yaml"), "%s", out);
  snprintf(args, sizeof args, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(args), 0);
}
END_TEST

/* One server per data folder: a second `verdict serve` on the running one's folder stops at once
 * naming the folder and the holder's pid, and the first keeps serving. */
START_TEST(a_second_server_on_the_same_data_folder_is_refused) {
  char command[1024], log[400];
  snprintf(log, sizeof log, "%s/second.log", server.root);
  snprintf(command, sizeof command, "'%s' serve --config '%s' --listen 127.0.0.1:0 2> '%s'",
           VERDICT_EXE, server.config, log);
  int status = system(command);
  ck_assert(WIFEXITED(status) && WEXITSTATUS(status) != 0);
  size_t size = 0;
  vd_error err = {0};
  char *text = vd_read_file(log, 1 << 20, &size, &err);
  ck_assert_msg(text != NULL, "%s", err.message);
  char expected[400];
  snprintf(expected, sizeof expected, "in use by another verdict server (pid %d)", (int)server.pid);
  ck_assert_msg(strstr(text, server.data_dir) && strstr(text, expected), "%s", text);
  free(text);
  vd_itest_response r = vd_itest_call(&server, "GET", "/readyz", NULL, NULL, 0);
  ck_assert_int_eq(r.status, 200);
  vd_itest_response_free(&r);
}
END_TEST

int main(void) {
  curl_global_init(CURL_GLOBAL_ALL);
  Suite *s = suite_create("serve");
  TCase *api = tcase_create("api");
  tcase_add_unchecked_fixture(api, start_server, stop_server);
  tcase_set_timeout(api, 300);
  tcase_add_test(api, scores_hillstrom_rows);
  tcase_add_test(api, reals_are_written_shortest_in_response_and_trace);
  tcase_add_test(api, request_without_candidates_uses_all_and_max_results_caps);
  tcase_add_test(api, bad_json_names_line_column_and_position);
  tcase_add_test(api, schema_violations_list_every_path);
  tcase_add_test(api, oversized_body_is_413);
  tcase_add_test(api, keys_and_roles);
  tcase_add_test(api, routing_errors);
  tcase_add_test(api, decision_is_read_back_with_compliance_key);
  tcase_add_test(api, pagination_walks_every_decision_once);
  tcase_add_test(api, health_ready_and_metrics);
  tcase_add_test(api, a_second_server_on_the_same_data_folder_is_refused);
  tcase_add_test(api, a_violation_cut_inside_a_character_is_listed);
  tcase_add_test(
      api, the_explanation_of_a_damaged_trace_names_the_decision); /* last: it damages a row */
  suite_add_tcase(s, api);
  TCase *reload = tcase_create("reload");
  tcase_add_checked_fixture(reload, start_server, stop_server);
  tcase_set_timeout(reload, 300);
  tcase_add_test(reload, reload_good_and_broken_under_load);
  suite_add_tcase(s, reload);
  TCase *stop = tcase_create("stop");
  tcase_add_checked_fixture(stop, start_server, stop_server);
  tcase_set_timeout(stop, 300);
  tcase_add_test(stop, sigterm_finishes_in_flight_and_exits_0);
  suite_add_tcase(s, stop);
  TCase *cli = tcase_create("cli");
  tcase_set_timeout(cli, 120);
  tcase_add_test(cli, serve_usage_and_bad_configs);
  suite_add_tcase(s, cli);
  int rc = vd_test_run(s);
  curl_global_cleanup();
  return rc;
}
