/* What `verdict serve` tells an operator on stderr when a start or a reload is refused: the
 * summary line names what failed (a refused mask_fields entry is not a deployment that failed to
 * load), and every error of a refused reload is logged — POST /v1/admin/reload and SIGHUP alike —
 * in the server's log line format ("<RFC 3339 time> verdict: ..."). */
#define _GNU_SOURCE
#include <ctype.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "vd_buf.h"
#include "vd_itest.h"
#include "vd_test.h"

/* Runs cmd; its output (stdout and what the command redirects there) goes to *output. */
static int run(const char *cmd, char **output) {
  FILE *p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  size_t got;
  while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
    len += got;
    if (cap - len < 4096) buf = realloc(buf, cap *= 2);
  }
  buf[len] = '\0';
  int status = pclose(p);
  *output = buf;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(a_refused_mask_field_is_named_in_the_summary_line) {
  vd_itest_server s;
  ck_assert(vd_itest_prepare(&s, "mask_fields: [subject.idd]\n"));
  char cmd[1024], *out = NULL;
  snprintf(cmd, sizeof cmd, "%s serve --config %s 2>&1", VERDICT_EXE, s.config);
  ck_assert_int_eq(run(cmd, &out), 1);
  ck_assert_msg(strstr(out, "mask_fields: subject.idd is not a field of any served schema"), "%s",
                out);
  ck_assert_msg(strstr(out, "verdict serve: mask_fields was refused (the deployments loaded)\n"),
                "%s", out);
  ck_assert_msg(!strstr(out, "deployments failed to load"), "%s", out);
  free(out);
  vd_itest_cleanup(&s);
}
END_TEST

/* Replaces the first `from` in path by `to` (atomically, as an editor or a deploy would). */
static void replace_in_file(const char *path, const char *from, const char *to) {
  size_t n = 0;
  vd_error e = {0};
  char *text = vd_read_file(path, 1 << 20, &n, &e);
  ck_assert_msg(text != NULL, "%s", e.message);
  char *at = strstr(text, from);
  ck_assert_msg(at != NULL, "'%s' not in %s", from, path);
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
  ck_assert_int_eq(fclose(f), 0);
  ck_assert_int_eq(rename(tmp, path), 0);
  free(text);
}

/* How often `needle` occurs in text. */
static size_t occurrences(const char *text, const char *needle) {
  size_t n = 0;
  for (const char *at = strstr(text, needle); at; at = strstr(at + 1, needle)) n++;
  return n;
}

/* Checks that every line of the log that mentions "reload" is in the server's log line format
 * (an RFC 3339 time, then "verdict: ") and returns how many are "reload: <error>" lines naming
 * the broken rules file. */
static size_t reload_error_lines(const char *log) {
  size_t errors = 0;
  for (const char *line = log; *line;) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    char text[2048];
    snprintf(text, sizeof text, "%.*s", (int)len, line);
    if (strstr(text, "reload")) {
      const char *after_time = strchr(text, ' ');
      ck_assert_msg(isdigit((unsigned char)text[0]) && text[4] == '-' && after_time &&
                        after_time[-1] == 'Z' && strncmp(after_time, " verdict: ", 10) == 0,
                    "not in the log line format: %s", text);
      if (strstr(after_time, " verdict: reload: ") == after_time && strstr(text, "rules.yaml:"))
        errors++;
    }
    line += len + (end ? 1 : 0);
  }
  return errors;
}

START_TEST(every_error_of_a_refused_reload_is_logged_with_a_time) {
  vd_itest_server s;
  ck_assert(vd_itest_prepare(&s, NULL));
  char log_path[400], rules[400];
  snprintf(log_path, sizeof log_path, "%.300s/server.stderr", s.root);
  snprintf(s.stderr_path, sizeof s.stderr_path, "%.300s", log_path);
  snprintf(rules, sizeof rules, "%.300s/rules.yaml", s.deployment);
  ck_assert_msg(vd_itest_start(&s), "verdict serve did not become ready");
  replace_in_file(rules, "score.uplift < 0.005", "score.uplift < ");

  vd_itest_response r = vd_itest_call(&s, "POST", "/v1/admin/reload", "demo-admin", NULL, 0);
  ck_assert_int_eq(r.status, 422);
  size_t errors = json_array_size(json_object_get(json_object_get(r.json, "error"), "errors"));
  ck_assert_uint_ge(errors, 1);
  vd_itest_response_free(&r);
  size_t n = 0;
  vd_error e = {0};
  char *log = vd_read_file(log_path, 1 << 24, &n, &e);
  ck_assert_msg(log != NULL, "%s", e.message);
  ck_assert_msg(occurrences(log, "reload refused") == 1, "%s", log);
  ck_assert_msg(reload_error_lines(log) == errors, "%zu errors in the answer, log:\n%s", errors,
                log);
  free(log);

  kill(s.pid, SIGHUP);
  for (int i = 0; i < 600; i++) { /* up to 30 s: sanitizer builds load slowly */
    log = vd_read_file(log_path, 1 << 24, &n, &e);
    ck_assert_msg(log != NULL, "%s", e.message);
    if (occurrences(log, "reload refused") == 2 && reload_error_lines(log) == 2 * errors) break;
    free(log);
    log = NULL;
    usleep(50 * 1000);
  }
  ck_assert_msg(log != NULL, "the SIGHUP reload's errors were not logged in the log line format");
  free(log);
  ck_assert_int_eq(vd_itest_stop(&s, SIGTERM), 0);
  vd_itest_cleanup(&s);
}
END_TEST

int main(void) {
  Suite *suite = suite_create("serve_messages");
  TCase *tc = tcase_create("serve_messages");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, a_refused_mask_field_is_named_in_the_summary_line);
  tcase_add_test(tc, every_error_of_a_refused_reload_is_logged_with_a_time);
  suite_add_tcase(suite, tc);
  return vd_test_run(suite);
}
