/* The reload storm: 100 reloads through POST /v1/admin/reload, alternating a good edit of the
 * rule file (each with its own marker in a deny reason) and a broken one (a syntax error), while
 * clients keep scoring. No scoring request fails; every broken file is refused with 422 and the
 * previous version keeps serving; and every decision names the ruleset version that actually
 * decided it: the marker in its reason belongs to the version in its response, and its stored
 * trace names the same version. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vd_itest.h"
#include "vd_test.h"

enum { CLIENTS = 4, MAX_RELOADS = 100, MAX_SEEN = 200000 };

static const char opted_out[] =
    "{\"subject\": {\"id\": \"storm\", \"recency\": 6, \"history\": 329.08, \"mens\": true, "
    "\"womens\": true, \"zip_code\": \"Rural\", \"newbie\": true, \"channel\": \"Web\", "
    "\"marketing_opt_out\": true, \"emails_last_30d\": 1, \"country\": \"US\"}}";

static const char reason[] = "Customer opted out of marketing e-mail";

typedef struct seen {
  char id[40];
  char version[65];
  int marker; /* the generation named in the deny reason, -1 for the original file */
} seen;

typedef struct storm {
  const vd_itest_server *server;
  atomic_bool stop;
  atomic_long failed;
  atomic_long last_failure;
  pthread_mutex_t lock;
  seen *seen;
  size_t seen_count;
} storm;

static int marker_of(const char *text) {
  const char *at = text ? strstr(text, "(generation ") : NULL;
  return at ? (int)strtol(at + strlen("(generation "), NULL, 10) : -1;
}

static void *client(void *arg) {
  storm *s = arg;
  while (!atomic_load(&s->stop)) {
    vd_itest_response r = vd_itest_call(s->server, "POST", "/v1/promotions/score", "demo-score",
                                        opted_out, strlen(opted_out));
    if (r.status != 200) {
      atomic_fetch_add(&s->failed, 1);
      atomic_store(&s->last_failure, r.status);
    } else {
      json_t *first = json_array_get(json_object_get(r.json, "results"), 0);
      const char *text = json_string_value(
          json_object_get(json_array_get(json_object_get(first, "reasons"), 0), "text"));
      const char *version =
          json_string_value(json_object_get(json_object_get(r.json, "ruleset"), "version"));
      const char *id = json_string_value(json_object_get(r.json, "decision_id"));
      pthread_mutex_lock(&s->lock);
      if (s->seen_count < MAX_SEEN && id && version) {
        seen *e = &s->seen[s->seen_count++];
        snprintf(e->id, sizeof e->id, "%s", id);
        snprintf(e->version, sizeof e->version, "%s", version);
        e->marker = marker_of(text);
      }
      pthread_mutex_unlock(&s->lock);
    }
    vd_itest_response_free(&r);
  }
  return NULL;
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  char *text = calloc(1, 1 << 20);
  size_t n = fread(text, 1, (1 << 20) - 1, f);
  text[n] = '\0';
  fclose(f);
  return text;
}

/* Writes original with `from` replaced by `to` to path, atomically (rename). */
static void write_edit(const char *path, const char *original, const char *from, const char *to) {
  const char *at = strstr(original, from);
  ck_assert_ptr_nonnull(at);
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "%.*s%s%s", (int)(at - original), original, to, at + strlen(from));
  ck_assert_int_eq(fclose(f), 0);
  ck_assert_int_eq(rename(tmp, path), 0);
}

START_TEST(hundred_reloads_under_load) {
  vd_itest_server server;
  ck_assert(vd_itest_prepare(&server, NULL));
  ck_assert_msg(vd_itest_start(&server), "verdict serve did not become ready");
  char rules[400];
  snprintf(rules, sizeof rules, "%s/rules.yaml", server.deployment);
  char *original = read_text(rules);

  /* 100 reloads; 20 under the sanitizers (ThreadSanitizer runs this test: same storm, shorter) */
  const int reloads = getenv("VERDICT_UNDER_SANITIZER") ? 20 : MAX_RELOADS;
  /* version (hex) of each good generation, to check the markers against */
  static char versions[MAX_RELOADS][65];
  storm s = {.server = &server};
  pthread_mutex_init(&s.lock, NULL);
  s.seen = calloc(MAX_SEEN, sizeof *s.seen);
  pthread_t threads[CLIENTS];
  for (int i = 0; i < CLIENTS; i++) pthread_create(&threads[i], NULL, client, &s);
  usleep(100 * 1000);

  int good = 0, refused = 0;
  for (int n = 0; n < reloads; n++) {
    if (n % 2 == 0) {
      char edited[160];
      snprintf(edited, sizeof edited, "%s (generation %d)", reason, n);
      write_edit(rules, original, reason, edited);
    } else {
      write_edit(rules, original, "when: subject.marketing_opt_out",
                 "when: subject.marketing_opt_out &&");
    }
    vd_itest_response r = vd_itest_call(&server, "POST", "/v1/admin/reload", "demo-admin", NULL, 0);
    if (n % 2 == 0) {
      ck_assert_msg(r.status == 200, "good reload %d: HTTP %ld %s", n, r.status, r.body);
      json_t *d = json_array_get(json_object_get(r.json, "reloaded"), 0);
      const char *v = json_string_value(json_object_get(json_object_get(d, "ruleset"), "version"));
      ck_assert_ptr_nonnull(v);
      snprintf(versions[n], sizeof versions[n], "%s", v);
      good++;
    } else {
      ck_assert_msg(r.status == 422, "broken reload %d: HTTP %ld %s", n, r.status, r.body);
      refused++;
    }
    vd_itest_response_free(&r);
    usleep(20 * 1000);
  }
  usleep(100 * 1000);
  atomic_store(&s.stop, true);
  for (int i = 0; i < CLIENTS; i++) pthread_join(threads[i], NULL);

  ck_assert_msg(atomic_load(&s.failed) == 0, "%ld scoring requests failed (last HTTP %ld)",
                atomic_load(&s.failed), atomic_load(&s.last_failure));
  ck_assert_uint_gt(s.seen_count, (size_t)reloads);
  /* The marker in each decision's reason belongs to the version its response names. */
  int generations_seen = 0;
  for (int n = 0; n < reloads; n += 2) {
    bool any = false;
    for (size_t i = 0; i < s.seen_count && !any; i++) any = s.seen[i].marker == n;
    generations_seen += any;
  }
  for (size_t i = 0; i < s.seen_count; i++) {
    const seen *e = &s.seen[i];
    if (e->marker < 0) continue; /* decided by the original file, before the first reload */
    ck_assert_msg(e->marker < reloads && e->marker % 2 == 0, "decision %s: marker %d", e->id,
                  e->marker);
    ck_assert_msg(strcmp(e->version, versions[e->marker]) == 0,
                  "decision %s was decided by generation %d (%s) but names ruleset %s", e->id,
                  e->marker, versions[e->marker], e->version);
  }
  /* Each stored trace names the same version as its response (every 7th, to keep it quick). */
  size_t traces = 0;
  for (size_t i = 0; i < s.seen_count; i += 7) {
    char path[128];
    snprintf(path, sizeof path, "/v1/decisions/%s", s.seen[i].id);
    vd_itest_response r = vd_itest_call(&server, "GET", path, "demo-compliance", NULL, 0);
    ck_assert_int_eq(r.status, 200);
    const char *v =
        json_string_value(json_object_get(json_object_get(r.json, "ruleset"), "version"));
    ck_assert_msg(v && strcmp(v, s.seen[i].version) == 0, "trace %s names %s, response %s",
                  s.seen[i].id, v, s.seen[i].version);
    vd_itest_response_free(&r);
    traces++;
  }
  fprintf(stderr,
          "reload storm: %d reloads (%d good, %d broken refused), %zu decisions, 0 failed, %d "
          "generations seen deciding, %zu traces checked\n",
          reloads, good, refused, s.seen_count, generations_seen, traces);
  ck_assert_int_eq(vd_itest_stop(&server, SIGTERM), 0);
  vd_itest_cleanup(&server);
  free(original);
  free(s.seen);
  pthread_mutex_destroy(&s.lock);
}
END_TEST

int main(void) {
  Suite *s = suite_create("reload_storm");
  TCase *tc = tcase_create("reload_storm");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, hundred_reloads_under_load);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
