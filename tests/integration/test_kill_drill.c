/* The kill drill: `verdict serve` under concurrent scoring load is SIGKILLed at a random moment,
 * ten times over the same data folder. After every restart, every decision_id any client was
 * answered (in this round and all earlier ones) is in the database, the ones answered in the
 * round just killed are read back whole with a compliance key (after the last restart: all of
 * them), and the database passes PRAGMA integrity_check. (test_kill.c is the single, heavier kill;
 * this one is about repeated kills at unpredictable points: during startup's warm load, mid-batch,
 * idle.) The seed is printed; VERDICT_DRILL_SEED replays a run. */
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

enum { CLIENTS = 6, KILLS = 10, MAX_IDS = 100000 };

static const char customer_fmt[] =
    "{\"subject\": {\"id\": \"c%d\", \"recency\": %d, \"history\": 329.08, \"mens\": true, "
    "\"womens\": %s, \"zip_code\": \"Rural\", \"newbie\": true, \"channel\": \"Web\", "
    "\"marketing_opt_out\": false, \"emails_last_30d\": 1, \"country\": \"US\"}}";

typedef struct drill {
  const vd_itest_server *server;
  atomic_bool stop;
  atomic_bool killing;
  atomic_int next;
  pthread_mutex_t lock;
  char (*ids)[40];
  size_t id_count;
  atomic_long refused; /* non-200 answers while the server was up and not being killed */
} drill;

static void *client(void *arg) {
  drill *d = arg;
  while (!atomic_load(&d->stop)) {
    int i = atomic_fetch_add(&d->next, 1);
    char body[512];
    int n = snprintf(body, sizeof body, customer_fmt, i, 1 + i % 12, i % 2 ? "true" : "false");
    vd_itest_response r =
        vd_itest_call(d->server, "POST", "/v1/promotions/score", "demo-score", body, (size_t)n);
    const char *id = json_string_value(json_object_get(r.json, "decision_id"));
    if (r.status == 200 && id) {
      pthread_mutex_lock(&d->lock);
      if (d->id_count < MAX_IDS) snprintf(d->ids[d->id_count++], 40, "%s", id);
      pthread_mutex_unlock(&d->lock);
    } else if (!atomic_load(&d->killing)) {
      atomic_fetch_add(&d->refused, 1);
    }
    vd_itest_response_free(&r);
  }
  return NULL;
}

static void expect_integrity_ok(const char *data_dir) {
  char path[512];
  snprintf(path, sizeof path, "%s/decisions.db", data_dir);
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt *st = NULL;
  ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
  ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
  ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

static int compare_ids(const void *a, const void *b) { return strcmp(a, b); }

/* Every stored decision id, read from the restarted server's database (read-only), sorted. */
static char (*stored_ids(const char *data_dir, size_t *count))[40] {
  char path[512];
  snprintf(path, sizeof path, "%s/decisions.db", data_dir);
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt *st = NULL;
  ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT id FROM decisions", -1, &st, NULL), SQLITE_OK);
  size_t cap = 1024, n = 0;
  char(*ids)[40] = malloc(cap * sizeof *ids);
  while (sqlite3_step(st) == SQLITE_ROW) {
    if (n == cap) ids = realloc(ids, (cap *= 2) * sizeof *ids);
    snprintf(ids[n++], 40, "%s", (const char *)sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  qsort(ids, n, sizeof *ids, compare_ids);
  *count = n;
  return ids;
}

/* Reads one decision through the compliance API. */
static void expect_readable(const vd_itest_server *server, const char *id, int round) {
  char path[128];
  snprintf(path, sizeof path, "/v1/decisions/%s", id);
  vd_itest_response r = vd_itest_call(server, "GET", path, "demo-compliance", NULL, 0);
  ck_assert_msg(r.status == 200, "round %d: decision %s lost: HTTP %ld", round, id, r.status);
  ck_assert_str_eq(json_string_value(json_object_get(r.json, "id")), id);
  vd_itest_response_free(&r);
}

/* After a restart: every answered id is in the database, and the ids answered from `from` on
 * (the round just killed: the ones in flight at the kill) are read back whole through the API.
 * Returns the number checked. */
static size_t expect_all_stored(const vd_itest_server *server, drill *d, size_t from, int round) {
  size_t stored_count = 0;
  char(*stored)[40] = stored_ids(server->data_dir, &stored_count);
  for (size_t i = 0; i < d->id_count; i++)
    ck_assert_msg(bsearch(d->ids[i], stored, stored_count, sizeof *stored, compare_ids),
                  "round %d: decision %s (#%zu answered) lost", round, d->ids[i], i);
  free(stored);
  for (size_t i = from; i < d->id_count; i++) expect_readable(server, d->ids[i], round);
  return d->id_count;
}

START_TEST(ten_random_kills_lose_nothing) {
  const char *seed_env = getenv("VERDICT_DRILL_SEED");
  unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10) : (unsigned)time(NULL);
  fprintf(stderr, "kill drill: seed %u (VERDICT_DRILL_SEED replays it)\n", seed);
  srand(seed);
  vd_itest_server server;
  ck_assert_msg(vd_itest_prepare(&server, NULL), "cannot prepare a temp folder");
  drill d = {.server = &server};
  pthread_mutex_init(&d.lock, NULL);
  d.ids = calloc(MAX_IDS, sizeof *d.ids);
  size_t verified_total = 0, round_start = 0;
  for (int round = 0; round < KILLS; round++) {
    ck_assert_msg(vd_itest_start(&server), "round %d: verdict serve did not (re)start", round);
    /* Everything answered so far survives (the previous round's kill included). */
    verified_total += expect_all_stored(&server, &d, round_start, round);
    round_start = d.id_count;
    expect_integrity_ok(server.data_dir);

    atomic_store(&d.stop, false);
    atomic_store(&d.killing, false);
    pthread_t threads[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) pthread_create(&threads[i], NULL, client, &d);
    useconds_t delay = 50000u + (useconds_t)(rand() % 1500) * 1000u; /* 50 ms .. 1.55 s */
    usleep(delay);
    atomic_store(&d.killing, true);
    ck_assert_int_eq(vd_itest_stop(&server, SIGKILL), 128 + SIGKILL);
    atomic_store(&d.stop, true);
    for (int i = 0; i < CLIENTS; i++) pthread_join(threads[i], NULL);
    fprintf(stderr, "kill drill: round %d killed after %u ms, %zu decisions answered so far\n",
            round + 1, delay / 1000, d.id_count);
  }
  ck_assert_msg(vd_itest_start(&server), "final restart");
  verified_total += expect_all_stored(&server, &d, 0, KILLS); /* all through the API */
  expect_integrity_ok(server.data_dir);
  ck_assert_int_eq(atomic_load(&d.refused), 0);
  ck_assert_uint_gt(d.id_count, 10 * KILLS);
  fprintf(stderr,
          "kill drill: %d SIGKILLs survived, %zu decisions answered, all readable after every "
          "restart (%zu checks), integrity ok\n",
          KILLS, d.id_count, verified_total);
  ck_assert_int_eq(vd_itest_stop(&server, SIGTERM), 0);
  vd_itest_cleanup(&server);
  free(d.ids);
  pthread_mutex_destroy(&d.lock);
}
END_TEST

int main(void) {
  Suite *s = suite_create("kill_drill");
  TCase *tc = tcase_create("kill_drill");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, ten_random_kills_lose_nothing);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
