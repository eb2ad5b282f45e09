/* Helpers shared by the Check suites. */
#ifndef VD_TEST_H
#define VD_TEST_H

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs a suite with CK_ENV-selected forking and returns the process exit code. */
static inline int vd_test_run(Suite *suite) {
  SRunner *runner = srunner_create(suite);
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Path of a file in the shared data folder, or NULL (after printing why) when it is absent, so a
 * test can skip with a clear message. */
static inline const char *vd_test_shared_path(const char *relative, char *buf, size_t size) {
  snprintf(buf, size, "%s/%s", VERDICT_SHARED_DIR, relative);
  FILE *f = fopen(buf, "r");
  if (!f) {
    fprintf(stderr, "SKIP: %s is absent (the shared data folder is not beside the checkout)\n",
            buf);
    return NULL;
  }
  fclose(f);
  return buf;
}

#endif
