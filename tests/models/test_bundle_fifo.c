/* A bundle's files are read only when regular: a triage manifest.json that is a FIFO made
 * POST /v1/admin/reload never answer (jansson's json_load_file waits for a writer). */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vd_test.h"
#include "vd_triage.h"

START_TEST(triage_manifest_fifo_is_refused_by_name) {
  alarm(30); /* without the fix the load blocks for ever */
  char dir[] = "/tmp/vd-bundle-fifo-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char manifest[100];
  snprintf(manifest, sizeof manifest, "%s/manifest.json", dir);
  ck_assert_int_eq(mkfifo(manifest, 0600), 0);
  vd_error err = {0};
  ck_assert_ptr_null(vd_triage_load(dir, &err));
  ck_assert_msg(strstr(err.message, manifest) && strstr(err.message, "is a FIFO"), "%s",
                err.message);
  unlink(manifest);
  /* A broken manifest still says where. */
  FILE *f = fopen(manifest, "w");
  fputs("{\"name\": \"x\",\n \"version\": }\n", f);
  fclose(f);
  ck_assert_ptr_null(vd_triage_load(dir, &err));
  ck_assert_str_eq(err.file, manifest);
  ck_assert_int_eq(err.line, 2);
  unlink(manifest);
  rmdir(dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("bundle_fifo");
  TCase *tc = tcase_create("fifo");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, triage_manifest_fifo_is_refused_by_name);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
