/* What `verdict serve` tells an operator on stderr when a start or a reload is refused: the
 * summary line names what failed (a refused mask_fields entry is not a deployment that failed to
 * load), and every error of a refused reload is logged — POST /v1/admin/reload and SIGHUP alike —
 * in the server's log line format ("<RFC 3339 time> verdict: ..."). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

int main(void) {
  Suite *suite = suite_create("serve_messages");
  TCase *tc = tcase_create("serve_messages");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, a_refused_mask_field_is_named_in_the_summary_line);
  suite_add_tcase(suite, tc);
  return vd_test_run(suite);
}
