/* `verdict rules check|test`: output format and exit codes. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vd_ruleset.h"
#include "vd_test.h"

#define EXAMPLE VERDICT_SOURCE_DIR "/examples/promotions/rules.yaml"

typedef struct result {
  int code;
  char *out, *err;
} result;

static result run(int argc, const char **argv) {
  result r;
  size_t out_len, err_len;
  FILE *out = open_memstream(&r.out, &out_len);
  FILE *err = open_memstream(&r.err, &err_len);
  r.code = vd_verb_rules(argc, (char **)argv, out, err);
  fclose(out);
  fclose(err);
  return r;
}

static void result_free(result *r) {
  free(r->out);
  free(r->err);
}

static char dir[64];

static const char *write_file(const char *name, const char *text) {
  static char path[128];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
  return path;
}

static void setup(void) {
  snprintf(dir, sizeof dir, "/tmp/vd_rules_cli_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  ck_assert_int_eq(system(cmd), 0);
}

START_TEST(check_clean_file_prints_one_summary_line) {
  const char *argv[] = {"rules", "check", EXAMPLE};
  result r = run(3, argv);
  ck_assert_int_eq(r.code, 0);
  ck_assert_str_eq(r.err, "");
  ck_assert_msg(strncmp(r.out,
                        EXAMPLE ": ok: ruleset promotions, 7 rules (6 before_model, 1 "
                                "after_model), 12 tests passed, schema promotions (14 fields), "
                                "version ",
                        strlen(EXAMPLE) + 110) == 0,
                "%s", r.out);
  ck_assert_ptr_eq(strchr(r.out, '\n'), r.out + strlen(r.out) - 1); /* exactly one line */
  result_free(&r);
}
END_TEST

START_TEST(check_prints_every_error_with_source_and_caret) {
  const char *path =
      write_file("bad.yaml",
                 "ruleset: t\n"
                 "schema: { schema: s, fields: { subject.x: int, subject.flag: bool } }\n"
                 "default_score: 0\n"
                 "rules:\n"
                 "  - id: a\n"
                 "    stage: before_model\n"
                 "    when: subject.flga\n"
                 "    then: { deny: x }\n"
                 "  - id: b\n"
                 "    stage: before_model\n"
                 "    when: subject.x > 1\n"
                 "    then: { deni: x }\n");
  const char *argv[] = {"rules", "check", path};
  result r = run(3, argv);
  ck_assert_int_eq(r.code, 1);
  ck_assert_str_eq(r.out, "");
  char expected[2048];
  snprintf(expected, sizeof expected,
           "%s:7:11: rule a: unknown field subject.flga (did you mean subject.flag?)\n"
           "    when: subject.flga\n"
           "          ^\n"
           "%s:12:13: rule b: unknown action \"deni\" (did you mean \"deny\"?; actions are deny, "
           "allow, adjust, route, priority, escalate)\n"
           "    then: { deni: x }\n"
           "            ^\n"
           "%s: 2 errors\n",
           path, path, path);
  ck_assert_str_eq(r.err, expected);
  result_free(&r);
}
END_TEST

START_TEST(check_reports_errors_in_the_schema_file_it_names) {
  write_file("schema.yaml", "schema: s\nfields:\n  subject.x: { type: int, mni: 1 }\n");
  const char *path =
      write_file("r.yaml", "ruleset: t\nschema: schema.yaml\ndefault_score: 0\nrules: []\n");
  const char *argv[] = {"rules", "check", path};
  result r = run(3, argv);
  ck_assert_int_eq(r.code, 1);
  char expected[1024];
  snprintf(expected, sizeof expected,
           "%s/schema.yaml:3:27: unknown key \"mni\" in field subject.x (did you mean \"min\"?; "
           "expected one of: type, description, required, default, min, max, max_length, values, "
           "max_items)\n"
           "  subject.x: { type: int, mni: 1 }\n"
           "                          ^\n"
           "%s: 1 error\n",
           dir, path);
  ck_assert_str_eq(r.err, expected);
  result_free(&r);
}
END_TEST

/* A broken schema is the one error: the rules cannot be loaded without it, so their tests'
 * references to rule ids are not reported as missing too. */
START_TEST(check_stops_at_a_broken_schema) {
  write_file("schema.yaml", "schema: s\nfields:\n  subject.x: { type: integr }\n");
  const char *path = write_file("r.yaml",
                                "ruleset: t\nschema: schema.yaml\ndefault_score: 0\n"
                                "rules:\n"
                                "  - id: big-x\n"
                                "    stage: before_model\n"
                                "    when: subject.x > 3\n"
                                "    then: { deny: big }\n"
                                "tests:\n"
                                "  - name: a big x is denied\n"
                                "    input: { subject: { x: 4 }, candidate: { id: c } }\n"
                                "    expect: { eligible: false, fired: [big-x] }\n");
  const char *argv[] = {"rules", "check", path};
  result r = run(3, argv);
  ck_assert_int_eq(r.code, 1);
  ck_assert_msg(strstr(r.err, "schema.yaml:3:"), "%s", r.err);
  ck_assert_msg(!strstr(r.err, "no rule has id"), "%s", r.err);
  char summary[256];
  snprintf(summary, sizeof summary, "%s: 1 error\n", path);
  ck_assert_msg(strstr(r.err, summary), "%s", r.err);
  result_free(&r);
}
END_TEST

START_TEST(test_prints_pass_lines_and_the_summary) {
  const char *argv[] = {"rules", "test", EXAMPLE};
  result r = run(3, argv);
  ck_assert_int_eq(r.code, 0);
  ck_assert_msg(strstr(r.out, "PASS " EXAMPLE ": opted-out customers are denied\n"), "%s", r.out);
  const char *last = r.out + strlen(r.out) - strlen("12 passed, 0 failed\n");
  ck_assert_str_eq(last, "12 passed, 0 failed\n");
  result_free(&r);
}
END_TEST

START_TEST(test_shows_the_difference_and_fails) {
  const char *path = write_file(
      "t.yaml",
      "ruleset: t\n"
      "schema: { schema: s, fields: { subject.x: int } }\n"
      "default_score: 0\n"
      "rules:\n"
      "  - { id: big, stage: before_model, when: subject.x > 3, then: { deny: big } }\n"
      "tests:\n"
      "  - name: small passes\n    input: { subject: { x: 1 } }\n    expect: { eligible: true }\n"
      "  - name: wrong\n    input: { subject: { x: 9 } }\n"
      "    expect: { eligible: true, fired: [] }\n");
  const char *argv[] = {"rules", "test", path};
  result r = run(3, argv);
  ck_assert_int_eq(r.code, 1);
  char expected[1024];
  snprintf(expected, sizeof expected,
           "PASS %s: small passes\n"
           "FAIL %s: wrong\n"
           "     eligible: expected true, got false; fired: expected [], got [big]\n"
           "1 passed, 1 failed\n",
           path, path);
  ck_assert_str_eq(r.out, expected);
  result_free(&r);
}
END_TEST

START_TEST(bad_usage_exits_2) {
  const char *none[] = {"rules"};
  result r = run(1, none);
  ck_assert_int_eq(r.code, 2);
  result_free(&r);
  const char *unknown[] = {"rules", "lint", "x"};
  r = run(3, unknown);
  ck_assert_int_eq(r.code, 2);
  ck_assert_msg(strstr(r.err, "unknown command 'lint'"), "%s", r.err);
  result_free(&r);
  const char *nofile[] = {"rules", "check"};
  r = run(2, nofile);
  ck_assert_int_eq(r.code, 2);
  result_free(&r);
  const char *option[] = {"rules", "test", "--fast", EXAMPLE};
  r = run(4, option);
  ck_assert_int_eq(r.code, 2);
  result_free(&r);
  const char *help[] = {"rules", "--help"};
  r = run(2, help);
  ck_assert_int_eq(r.code, 0);
  ck_assert_msg(strstr(r.out, "usage: verdict rules check FILE..."), "%s", r.out);
  result_free(&r);
}
END_TEST

START_TEST(missing_file_is_an_error) {
  const char *argv[] = {"rules", "check", "/nonexistent/rules.yaml"};
  result r = run(3, argv);
  ck_assert_int_eq(r.code, 1);
  ck_assert_msg(strstr(r.err, "/nonexistent/rules.yaml"), "%s", r.err);
  result_free(&r);
}
END_TEST

/* Many tests of one name: each duplicate named once, pointing at the first, in linear time —
 * 3,000 took 22 s (every name compared with every earlier one, every error's position and
 * source line searched from the start). 20,000 now take ~2 s; quadratic, over a minute. */
START_TEST(duplicate_test_names_are_found_in_linear_time) {
  enum { TESTS = 20000 };
  size_t size = 0;
  char *rules = NULL;
  FILE *f = open_memstream(&rules, &size);
  fprintf(f,
          "ruleset: dup\nschema: %s/examples/promotions/schema.yaml\ndefault_score: 0\nrules:\n"
          "  - id: r\n    stage: before_model\n    when: subject.recency > 100\n"
          "    then: { deny: \"x\" }\ntests:\n",
          VERDICT_SOURCE_DIR);
  for (int i = 0; i < TESTS; i++)
    fputs(
        "  - name: same\n    input: { subject: { id: c1, recency: 3, history: 1.0, mens: true, "
        "womens: false, zip_code: Urban, newbie: false, channel: Web, marketing_opt_out: "
        "false, emails_last_30d: 0, country: US }, candidate: { id: mens-email } }\n"
        "    expect: { eligible: true }\n",
        f);
  fclose(f);
  const char *path = write_file("dup.yaml", rules);
  free(rules);
  const char *argv[] = {"rules", "check", path};
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  result r = run(3, argv);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double seconds = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  ck_assert_int_eq(r.code, 1);
  char summary[64];
  snprintf(summary, sizeof summary, "dup.yaml: %d errors", TESTS - 1);
  ck_assert_msg(strstr(r.err, summary), "%.300s", r.err);
  ck_assert_msg(strstr(r.err, "dup.yaml:13:5: duplicate test name \"same\" (first at line 10)"),
                "%.300s", r.err);
  result_free(&r);
  double bound = getenv("VERDICT_UNDER_SANITIZER") ? 90.0 : 30.0;
  ck_assert_msg(seconds < bound, "%d duplicate names took %.1f s", TESTS, seconds);
}
END_TEST

/* A FIFO blocked the check for ever (opening it waits for a writer); a device or a folder is no
 * rule file either: each is refused at once, saying what it is. */
START_TEST(only_regular_files_are_read) {
  alarm(20); /* a blocking open fails the test instead of hanging it */
  char fifo[128];
  snprintf(fifo, sizeof fifo, "%s/rules.fifo", dir);
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  const char *paths[] = {fifo, "/dev/zero", dir};
  const char *kinds[] = {"is a FIFO (named pipe), not a regular file",
                         "is a character device, not a regular file",
                         "is a folder, not a regular file"};
  for (int i = 0; i < 3; i++) {
    const char *argv[] = {"rules", "check", paths[i]};
    result r = run(3, argv);
    ck_assert_int_eq(r.code, 1);
    ck_assert_msg(strstr(r.err, paths[i]) && strstr(r.err, kinds[i]), "%s", r.err);
    result_free(&r);
  }
  unlink(fifo);
  alarm(0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("rules_cli");
  TCase *t = tcase_create("cli");
  tcase_add_checked_fixture(t, setup, teardown);
  tcase_add_test(t, check_clean_file_prints_one_summary_line);
  tcase_add_test(t, check_prints_every_error_with_source_and_caret);
  tcase_add_test(t, check_reports_errors_in_the_schema_file_it_names);
  tcase_add_test(t, check_stops_at_a_broken_schema);
  tcase_add_test(t, test_prints_pass_lines_and_the_summary);
  tcase_add_test(t, test_shows_the_difference_and_fails);
  tcase_add_test(t, bad_usage_exits_2);
  tcase_add_test(t, missing_file_is_an_error);
  tcase_add_test(t, only_regular_files_are_read);
  tcase_add_test(t, duplicate_test_names_are_found_in_linear_time);
  suite_add_tcase(s, t);
  return vd_test_run(s);
}
