/* One decision-id parser for the API and the CLI: `verdict explain|replay` find upper-case ids as
 * GET /v1/decisions/{id} does, and refuse what the API refuses with 400 (exit 2, same message)
 * instead of answering "no decision with id". */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vd_cli_verbs.h"
#include "vd_decision_log.h"
#include "vd_test.h"

static const char stored_id[] = "01a23d82-7289-7441-81f8-c38f843ea620";

START_TEST(ids_are_parsed_and_normalised_once) {
  char id[VD_DECISION_ID_SIZE];
  vd_error err = {0};
  ck_assert(vd_decision_id_parse("01A23D82-7289-7441-81F8-C38F843EA620", 36, id, &err));
  ck_assert_str_eq(id, stored_id);
  /* the API's path is not NUL-terminated at the id: only len bytes count */
  ck_assert(vd_decision_id_parse("01a23d82-7289-7441-81f8-c38f843ea620/explanation", 36, id, &err));
  ck_assert_str_eq(id, stored_id);
  static const char *const bad[] = {
      "01a23d82-7289-7441-81f8-c38f843ea620%00", "01a23d82-7289-7441-81f8-c38f843ea62",
      "01a23d82-7289-7441-81f8-c38f843ea620x", "01a23d82+7289-7441-81f8-c38f843ea620", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert(!vd_decision_id_parse(bad[i], strlen(bad[i]), id, &err));
    char want[200];
    snprintf(want, sizeof want, "'%s' is not a decision id (a UUID such as ", bad[i]);
    ck_assert_msg(strstr(err.message, want), "%s", err.message);
    ck_assert_str_eq(id, "");
  }
  /* a NUL inside is not the end of the id */
  ck_assert(!vd_decision_id_parse("01a23d82-7289-7441-81f8-c38f843ea62\0", 36, id, &err));
  ck_assert_msg(strstr(err.message, "ea62\\x00' is not a decision id"), "%s", err.message);
}
END_TEST

typedef struct run {
  int rc;
  char *out, *err;
} run;

static run call(int (*verb)(int, char **, FILE *, FILE *), int argc, char **argv) {
  run r = {0};
  size_t out_size = 0, err_size = 0;
  FILE *out = open_memstream(&r.out, &out_size), *err = open_memstream(&r.err, &err_size);
  r.rc = verb(argc, argv, out, err);
  fclose(out);
  fclose(err);
  return r;
}

static void done(run *r) {
  free(r->out);
  free(r->err);
}

START_TEST(the_cli_reads_ids_as_the_api_does) {
  char data[] = "/tmp/vd-decision-ids-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(data));
  char log_path[100];
  snprintf(log_path, sizeof log_path, "%s/decisions.db", data);
  vd_error err = {0};
  vd_decision_log *log = vd_decision_log_open(&(vd_decision_log_config){.path = log_path}, &err);
  ck_assert_msg(log != NULL, "%s", err.message);
  char trace[200];
  snprintf(trace, sizeof trace, "{\"id\": \"%s\", \"trace_version\": 1, \"candidates\": []}",
           stored_id);
  vd_decision_record rec = {.id = stored_id, .kind = "promotions", .trace_json = trace};
  ck_assert_int_eq(vd_decision_log_append(log, &rec, &err), VD_LOG_OK);
  vd_decision_log_close(log);
  char upper[] = "01A23D82-7289-7441-81F8-C38F843EA620";
  char *explain[] = {"explain", upper, "--format", "json", "--data-dir", data, NULL};
  run r = call(vd_verb_explain, 6, explain);
  ck_assert_msg(r.rc == 0, "%s", r.err);
  ck_assert_msg(strstr(r.out, stored_id), "%s", r.out);
  done(&r);
  /* replay finds it too (it may not rebuild this bare trace's deployment, but it is no "no
   * decision") */
  char *replay[] = {"replay", upper, "--data-dir", data, NULL};
  r = call(vd_verb_replay, 4, replay);
  ck_assert_msg(!strstr(r.err, "no decision with id"), "%s", r.err);
  done(&r);
  static const char *const bad[] = {"01a23d82-7289-7441-81f8-c38f843ea620%00",
                                    "01a23d82-7289-7441-81f8-c38f843ea62",
                                    "01a23d82-7289-7441-81f8-c38f843ea620x"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char want[200];
    snprintf(want, sizeof want, "'%s' is not a decision id (a UUID such as ", bad[i]);
    char *e[] = {"explain", (char *)bad[i], "--data-dir", data, NULL};
    r = call(vd_verb_explain, 4, e);
    ck_assert_int_eq(r.rc, 2);
    ck_assert_msg(strstr(r.err, want), "%s", r.err);
    done(&r);
    char *p[] = {"replay", (char *)bad[i], "--data-dir", data, NULL};
    r = call(vd_verb_replay, 4, p);
    ck_assert_int_eq(r.rc, 2);
    ck_assert_msg(strstr(r.err, want), "%s", r.err);
    done(&r);
  }
  /* a well-formed id that is not there is still exit 1, "no decision" */
  char *missing[] = {"explain", "01a23d82-7289-7441-81f8-c38f843ea629", "--data-dir", data, NULL};
  r = call(vd_verb_explain, 4, missing);
  ck_assert_int_eq(r.rc, 1);
  ck_assert_msg(strstr(r.err, "no decision with id 01a23d82-7289-7441-81f8-c38f843ea629"), "%s",
                r.err);
  done(&r);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", data);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("decision_ids");
  TCase *tc = tcase_create("ids");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, ids_are_parsed_and_normalised_once);
  tcase_add_test(tc, the_cli_reads_ids_as_the_api_does);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
