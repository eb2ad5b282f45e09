/* The content-addressed version store: layout, atomic and idempotent puts, name checks. */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vd_buf.h"
#include "vd_store.h"
#include "vd_test.h"

static void make_temp(char *dir, size_t size) {
  snprintf(dir, size, "/tmp/vd-store-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_temp(const char *dir) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  ck_assert_int_eq(system(cmd), 0);
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

static void expect_file(const char *dir, const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  vd_error err = {0};
  char *got = vd_read_file(path, 1 << 20, NULL, &err);
  ck_assert_msg(got != NULL, "%s", err.message);
  ck_assert_str_eq(got, text);
  free(got);
}

/* Entries of a folder other than . and .. */
static int entries(const char *dir) {
  DIR *d = opendir(dir);
  ck_assert_ptr_nonnull(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
  closedir(d);
  return n;
}

START_TEST(put_and_find_a_version) {
  char data[64], src[64];
  make_temp(data, sizeof data);
  make_temp(src, sizeof src);
  char p[1024];
  snprintf(p, sizeof p, "%s/sub", src);
  ck_assert_int_eq(mkdir(p, 0755), 0);
  snprintf(p, sizeof p, "%s/empty", src);
  ck_assert_int_eq(mkdir(p, 0755), 0);
  snprintf(p, sizeof p, "%s/model.json", src);
  write_text(p, "{\"trees\": []}");
  snprintf(p, sizeof p, "%s/sub/manifest.json", src);
  write_text(p, "{\"name\": \"m\"}");

  vd_error err = {0};
  vd_store_txn *t = vd_store_begin(data, "models", "abc123", &err);
  ck_assert_msg(t != NULL, "%s", err.message);
  ck_assert(vd_store_add_tree(t, "", src, &err));
  ck_assert(vd_store_add_bytes(t, "extra/note.txt", "hello", 5, &err));
  char path[512];
  ck_assert_msg(vd_store_commit(t, path, sizeof path, &err), "%s", err.message);
  char want[512];
  snprintf(want, sizeof want, "%s/models/abc123", data);
  ck_assert_str_eq(path, want);

  char found[512];
  ck_assert(vd_store_path(data, "models", "abc123", found, sizeof found, &err));
  ck_assert_str_eq(found, want);
  expect_file(found, "model.json", "{\"trees\": []}");
  expect_file(found, "sub/manifest.json", "{\"name\": \"m\"}");
  expect_file(found, "extra/note.txt", "hello");
  snprintf(p, sizeof p, "%s/empty", found);
  struct stat sb;
  ck_assert(stat(p, &sb) == 0 && S_ISDIR(sb.st_mode));
  /* nothing temporary is left beside the version */
  snprintf(p, sizeof p, "%s/models", data);
  ck_assert_int_eq(entries(p), 1);
  remove_temp(data);
  remove_temp(src);
}
END_TEST

START_TEST(an_absent_version_is_a_clear_error) {
  char data[64];
  make_temp(data, sizeof data);
  char path[512];
  vd_error err = {0};
  ck_assert(!vd_store_path(data, "rulesets", "feed", path, sizeof path, &err));
  ck_assert_ptr_nonnull(strstr(err.message, "no rulesets version feed"));
  remove_temp(data);
}
END_TEST

START_TEST(putting_a_stored_version_again_keeps_the_first) {
  char data[64];
  make_temp(data, sizeof data);
  vd_error err = {0};
  vd_store_txn *t = vd_store_begin(data, "rulesets", "v1", &err);
  ck_assert(vd_store_add_bytes(t, "rules.yaml", "first", 5, &err));
  ck_assert(vd_store_commit(t, NULL, 0, &err));
  t = vd_store_begin(data, "rulesets", "v1", &err);
  ck_assert(vd_store_add_bytes(t, "rules.yaml", "second", 6, &err));
  char path[512];
  ck_assert_msg(vd_store_commit(t, path, sizeof path, &err), "%s", err.message);
  expect_file(path, "rules.yaml", "first");
  char kind_dir[512];
  snprintf(kind_dir, sizeof kind_dir, "%s/rulesets", data);
  ck_assert_int_eq(entries(kind_dir), 1);
  remove_temp(data);
}
END_TEST

typedef struct racer {
  const char *data;
  bool ok;
} racer;

static void *put_same(void *arg) {
  racer *r = arg;
  vd_store_txn *t = vd_store_begin(r->data, "models", "same", NULL);
  r->ok =
      t && vd_store_add_bytes(t, "model.json", "{}", 2, NULL) && vd_store_commit(t, NULL, 0, NULL);
  return NULL;
}

START_TEST(concurrent_puts_of_one_version_all_succeed) {
  char data[64];
  make_temp(data, sizeof data);
  enum { N = 8 };
  pthread_t threads[N];
  racer racers[N];
  for (int i = 0; i < N; i++) {
    racers[i] = (racer){data, false};
    pthread_create(&threads[i], NULL, put_same, &racers[i]);
  }
  for (int i = 0; i < N; i++) {
    pthread_join(threads[i], NULL);
    ck_assert(racers[i].ok);
  }
  char kind_dir[512];
  snprintf(kind_dir, sizeof kind_dir, "%s/models", data);
  ck_assert_int_eq(entries(kind_dir), 1);
  snprintf(kind_dir, sizeof kind_dir, "%s/models/same", data);
  expect_file(kind_dir, "model.json", "{}");
  remove_temp(data);
}
END_TEST

START_TEST(bad_names_are_refused) {
  char data[64];
  make_temp(data, sizeof data);
  vd_error err = {0};
  ck_assert_ptr_null(vd_store_begin(data, "Models", "v", &err));
  ck_assert_ptr_nonnull(strstr(err.message, "kind"));
  ck_assert_ptr_null(vd_store_begin(data, "models", "../x", &err));
  ck_assert_ptr_nonnull(strstr(err.message, "version"));
  ck_assert_ptr_null(vd_store_begin(data, "models", ".hidden", &err));
  ck_assert_ptr_null(vd_store_begin(data, "models", "", &err));
  vd_store_txn *t = vd_store_begin(data, "models", "v", &err);
  ck_assert_ptr_nonnull(t);
  const char *bad[] = {"../escape", "/abs", "a//b", "a/./b", "a/..", "", "a/"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_msg(!vd_store_add_bytes(t, bad[i], "x", 1, &err), "accepted '%s'", bad[i]);
    ck_assert_ptr_nonnull(strstr(err.message, "invalid file name"));
  }
  ck_assert(!vd_store_add_file(t, "f", "/nonexistent/file", &err));
  ck_assert_ptr_nonnull(strstr(err.message, "/nonexistent/file"));
  vd_store_abort(t);
  char kind_dir[512];
  snprintf(kind_dir, sizeof kind_dir, "%s/models", data);
  ck_assert_int_eq(entries(kind_dir), 0); /* abort left nothing */
  char path[64];
  ck_assert(!vd_store_path(data, "models", "..", path, sizeof path, &err));
  remove_temp(data);
}
END_TEST

START_TEST(a_data_folder_that_is_a_file_is_an_error) {
  char data[64];
  make_temp(data, sizeof data);
  char file[512];
  snprintf(file, sizeof file, "%s/plain", data);
  write_text(file, "x");
  vd_error err = {0};
  ck_assert_ptr_null(vd_store_begin(file, "models", "v", &err));
  ck_assert_ptr_nonnull(strstr(err.message, file));
  remove_temp(data);
}
END_TEST

int main(void) {
  Suite *s = suite_create("store");
  TCase *tc = tcase_create("store");
  tcase_add_test(tc, put_and_find_a_version);
  tcase_add_test(tc, an_absent_version_is_a_clear_error);
  tcase_add_test(tc, putting_a_stored_version_again_keeps_the_first);
  tcase_add_test(tc, concurrent_puts_of_one_version_all_succeed);
  tcase_add_test(tc, bad_names_are_refused);
  tcase_add_test(tc, a_data_folder_that_is_a_file_is_an_error);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
