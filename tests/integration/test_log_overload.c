/* When the decision log cannot store a decision — the queue of decisions waiting for the index
 * is full — the real server answers 503 decision_log_unavailable instead of a decision, and every
 * decision it did answer is stored; failing index commits alone do not refuse decisions (they
 * are journaled). The test stalls the index by holding SQLite's write lock on the server's
 * decisions.db from outside, as a hung disk would. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vd_buf.h"
#include "vd_itest.h"
#include "vd_test.h"

static const char customer[] =
    "{\"subject\": {\"id\": \"c7\", \"recency\": 6, \"history\": 329.08, \"mens\": true, "
    "\"womens\": true, \"zip_code\": \"Rural\", \"newbie\": true, \"channel\": \"Web\", "
    "\"marketing_opt_out\": false, \"emails_last_30d\": 1, \"country\": \"US\"}}";

enum { CLIENTS = 6 };

typedef struct call {
  const vd_itest_server *server;
  long status;
  char code[64];
  char id[64];
} call;

static void *score(void *arg) {
  call *c = arg;
  vd_itest_response r = vd_itest_call(c->server, "POST", "/v1/promotions/score", "demo-score",
                                      customer, strlen(customer));
  c->status = r.status;
  const char *code = json_string_value(json_object_get(json_object_get(r.json, "error"), "code"));
  const char *id = json_string_value(json_object_get(r.json, "decision_id"));
  snprintf(c->code, sizeof c->code, "%s", code ? code : "");
  snprintf(c->id, sizeof c->id, "%s", id ? id : "");
  vd_itest_response_free(&r);
  return NULL;
}

static sqlite3 *hold_write_lock(const vd_itest_server *s) {
  char path[512];
  snprintf(path, sizeof path, "%s/decisions.db", s->data_dir);
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  return db;
}

static void release_write_lock(sqlite3 *db) {
  ck_assert_int_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
}

/* Scores from CLIENTS threads while the write lock is held for hold_ms; fills calls. */
static void score_while_stalled(const vd_itest_server *s, int hold_ms, call *calls) {
  sqlite3 *lock = hold_write_lock(s);
  pthread_t threads[CLIENTS];
  for (int i = 0; i < CLIENTS; i++) {
    calls[i] = (call){.server = s};
    pthread_create(&threads[i], NULL, score, &calls[i]);
    usleep(20 * 1000); /* one after the other: the first stalls in a commit, the next queue */
  }
  usleep((useconds_t)hold_ms * 1000);
  release_write_lock(lock);
  for (int i = 0; i < CLIENTS; i++) pthread_join(threads[i], NULL);
}

/* Every 200 carried a decision that is stored; returns how many calls got 503 from the log. */
static int check_answers(const vd_itest_server *s, const call *calls, int *ok) {
  int refused = 0;
  *ok = 0;
  for (int i = 0; i < CLIENTS; i++) {
    if (calls[i].status == 200) {
      (*ok)++;
      char path[128];
      snprintf(path, sizeof path, "/v1/decisions/%s", calls[i].id);
      vd_itest_response r = vd_itest_call(s, "GET", path, "demo-compliance", NULL, 0);
      ck_assert_msg(r.status == 200, "answered decision %s is not stored", calls[i].id);
      vd_itest_response_free(&r);
    } else {
      ck_assert_msg(calls[i].status == 503, "unexpected HTTP %ld", calls[i].status);
      ck_assert_str_eq(calls[i].code, "decision_log_unavailable");
      refused++;
    }
  }
  return refused;
}

START_TEST(a_full_queue_answers_503) {
  vd_itest_server s;
  /* more HTTP threads than clients: every request reaches the log while it is stalled */
  ck_assert(vd_itest_prepare(&s,
                             "limits:\n  threads: 8\n"
                             "decision_log:\n  queue_capacity: 1\n  busy_timeout_ms: 10000\n"));
  snprintf(s.stderr_path, sizeof s.stderr_path, "%s/serve.log", s.root);
  ck_assert_msg(vd_itest_start(&s), "verdict serve did not become ready");
  call calls[CLIENTS];
  score_while_stalled(&s, 800, calls);
  int ok = 0;
  int refused = check_answers(&s, calls, &ok);
  /* one decision journaled and queued for the stalled index: the others found the queue full */
  ck_assert_int_ge(refused, 1);
  ck_assert_int_ge(ok, 1);
  ck_assert_int_eq(ok + refused, CLIENTS);
  /* the client is told to try again; the server's log says why, once for the burst */
  char *logged = vd_read_file(s.stderr_path, 1 << 20, NULL, NULL);
  ck_assert_ptr_nonnull(logged);
  ck_assert_msg(strstr(logged, "decision refused (overloaded)") &&
                    strstr(logged, "decisions already wait to be indexed"),
                "%s", logged);
  free(logged);
  /* and the log serves again */
  call after = {.server = &s};
  score(&after);
  ck_assert_int_eq(after.status, 200);
  ck_assert_int_eq(vd_itest_stop(&s, SIGTERM), 0);
  vd_itest_cleanup(&s);
}
END_TEST

/* Indexing commits that fail (the lock is held past busy_timeout_ms) do not fail the scoring:
 * the decisions are journaled and answered at once, a read of one meanwhile is a 503 saying it
 * is not indexed yet (not a 404), and once the lock goes every answered decision is readable. */
START_TEST(failing_index_commits_still_answer_and_catch_up) {
  vd_itest_server s;
  ck_assert(vd_itest_prepare(&s,
                             "limits:\n  threads: 8\n"
                             "decision_log:\n  busy_timeout_ms: 100\n"));
  ck_assert_msg(vd_itest_start(&s), "verdict serve did not become ready");
  sqlite3 *lock = hold_write_lock(&s);
  call calls[CLIENTS];
  for (int i = 0; i < CLIENTS; i++) {
    calls[i] = (call){.server = &s};
    score(&calls[i]);
    ck_assert_int_eq(calls[i].status, 200); /* answered while decisions.db is locked */
  }
  char path[128];
  snprintf(path, sizeof path, "/v1/decisions/%s", calls[0].id);
  vd_itest_response r = vd_itest_get_compliance(&s, path);
  ck_assert_int_eq(r.status, 503);
  ck_assert_ptr_nonnull(strstr(r.body, "not indexed yet"));
  vd_itest_response_free(&r);
  vd_itest_response m = vd_itest_call(&s, "GET", "/metrics", NULL, NULL, 0);
  ck_assert_ptr_nonnull(strstr(m.body, "verdict_decision_log_healthy 0"));
  vd_itest_response_free(&m);
  release_write_lock(lock);
  int ok = 0;
  ck_assert_int_eq(check_answers(&s, calls, &ok), 0);
  ck_assert_int_eq(ok, CLIENTS);
  m = vd_itest_call(&s, "GET", "/metrics", NULL, NULL, 0);
  ck_assert_ptr_nonnull(strstr(m.body, "verdict_decision_log_healthy 1"));
  vd_itest_response_free(&m);
  ck_assert_int_eq(vd_itest_stop(&s, SIGTERM), 0);
  vd_itest_cleanup(&s);
}
END_TEST

int main(void) {
  Suite *suite = suite_create("log_overload");
  TCase *tc = tcase_create("log_overload");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, a_full_queue_answers_503);
  tcase_add_test(tc, failing_index_commits_still_answer_and_catch_up);
  suite_add_tcase(suite, tc);
  return vd_test_run(suite);
}
