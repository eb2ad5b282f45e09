/* The decision log's promise against the real server: `verdict serve` is SIGKILLed under
 * concurrent scoring load; after a restart every decision_id a client received is readable with a
 * compliance key, and the database passes PRAGMA integrity_check. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vd_itest.h"
#include "vd_test.h"

enum { CLIENTS = 8, MAX_IDS = 200000 };

typedef struct load {
  const vd_itest_server *server;
  char **rows;
  size_t row_count;
  atomic_bool stop;
  atomic_size_t next_row;
  pthread_mutex_t lock;
  char (*ids)[40]; /* every decision_id received with a 200 */
  size_t id_count;
  atomic_long refused; /* non-200 answers while the server was up (must be none) */
  atomic_bool killed;
} load;

static void *client(void *arg) {
  load *l = arg;
  while (!atomic_load(&l->stop)) {
    size_t i = atomic_fetch_add(&l->next_row, 1);
    char *body = vd_itest_hillstrom_request(l->rows[i % l->row_count], (int)i);
    vd_itest_response r =
        vd_itest_call(l->server, "POST", "/v1/promotions/score", "demo-score", body, strlen(body));
    free(body);
    const char *id = json_string_value(json_object_get(r.json, "decision_id"));
    if (r.status == 200 && id) {
      pthread_mutex_lock(&l->lock);
      if (l->id_count < MAX_IDS) snprintf(l->ids[l->id_count++], 40, "%s", id);
      pthread_mutex_unlock(&l->lock);
    } else if (!atomic_load(&l->killed)) {
      atomic_fetch_add(&l->refused, 1);
    }
    vd_itest_response_free(&r);
  }
  return NULL;
}

static size_t received(load *l) {
  pthread_mutex_lock(&l->lock);
  size_t n = l->id_count;
  pthread_mutex_unlock(&l->lock);
  return n;
}

static void expect_integrity_ok(const char *data_dir) {
  char path[512];
  snprintf(path, sizeof path, "%s/decisions.db", data_dir);
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *st = NULL;
  ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
  ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
  ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

START_TEST(every_received_decision_survives_sigkill) {
  char **rows = NULL;
  size_t row_count = vd_itest_hillstrom_rows(5000, &rows);
  if (row_count == 0) return; /* the shared data is absent: skipped with a message */
  vd_itest_server server;
  ck_assert_msg(vd_itest_prepare(&server, NULL), "cannot prepare a temp folder");
  ck_assert_msg(vd_itest_start(&server), "verdict serve did not become ready");

  load l = {.server = &server, .rows = rows, .row_count = row_count};
  pthread_mutex_init(&l.lock, NULL);
  l.ids = calloc(MAX_IDS, sizeof *l.ids);
  pthread_t threads[CLIENTS];
  for (int i = 0; i < CLIENTS; i++) pthread_create(&threads[i], NULL, client, &l);
  size_t wanted = getenv("VERDICT_UNDER_SANITIZER") ? 200 : 2000;
  for (int i = 0; i < 60000 && received(&l) < wanted; i++) usleep(1000);
  /* kill in the middle of the load: requests are in flight on every client */
  atomic_store(&l.killed, true);
  int status = vd_itest_stop(&server, SIGKILL);
  ck_assert_int_eq(status, 128 + SIGKILL);
  atomic_store(&l.stop, true);
  for (int i = 0; i < CLIENTS; i++) pthread_join(threads[i], NULL);
  size_t n = received(&l);
  ck_assert_uint_ge(n, wanted);
  ck_assert_int_eq(atomic_load(&l.refused), 0);

  ck_assert_msg(vd_itest_start(&server), "verdict serve did not restart on the killed data");
  for (size_t i = 0; i < n; i++) {
    char path[128];
    snprintf(path, sizeof path, "/v1/decisions/%s", l.ids[i]);
    vd_itest_response r = vd_itest_call(&server, "GET", path, "demo-compliance", NULL, 0);
    ck_assert_msg(r.status == 200, "decision %s (#%zu of %zu received) lost: HTTP %ld %s", l.ids[i],
                  i, n, r.status, r.body ? r.body : "");
    vd_itest_response_free(&r);
  }
  fprintf(stderr, "kill test: %zu decisions received before SIGKILL, all readable after restart\n",
          n);
  expect_integrity_ok(server.data_dir);
  ck_assert_int_eq(vd_itest_stop(&server, SIGTERM), 0);
  expect_integrity_ok(server.data_dir);
  vd_itest_cleanup(&server);
  free(l.ids);
  pthread_mutex_destroy(&l.lock);
  for (size_t i = 0; i < row_count; i++) free(rows[i]);
  free(rows);
}
END_TEST

int main(void) {
  Suite *s = suite_create("kill");
  TCase *tc = tcase_create("kill");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, every_received_decision_survives_sigkill);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
