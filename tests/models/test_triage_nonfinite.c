/* A triage model whose output is not a finite number (weights that overflow float when summed, a
 * NaN in model.ubj) is named as such — the model, its file and the byte — instead of surfacing as
 * "out of memory" (jansson's json_real refuses NaN, and nothing said why). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support_triage.h"
#include "vd_buf.h"
#include "vd_hash.h"
#include "vd_test.h"
#include "vd_triage.h"

/* The bundle's version scheme is being extended to cover the manifest (models/vd_bundle.h); until
 * that lands, a bundle's version is its model file's SHA-256. Either way the edited bundle is
 * stamped the way the loader checks it. */
#if __has_include("vd_bundle.h")
#include "vd_bundle.h"
static void stamp(const char *dir) {
  char version[VD_SHA256_HEX_SIZE];
  vd_error err = {0};
  ck_assert_msg(vd_bundle_rehash(dir, version, NULL, &err), "%s", err.message);
}
#else
static void stamp(const char *dir) {
  char path[1024], version[VD_SHA256_HEX_SIZE];
  vd_error err = {0};
  snprintf(path, sizeof path, "%s/model.ubj", dir);
  ck_assert_msg(vd_sha256_file_hex(path, version, &err), "%s", err.message);
  snprintf(path, sizeof path, "%s/manifest.json", dir);
  json_t *manifest = json_load_file(path, 0, NULL);
  ck_assert_ptr_nonnull(manifest);
  json_object_set_new(manifest, "version", json_string(version));
  ck_assert_int_eq(json_dump_file(manifest, path, JSON_INDENT(2)), 0);
  json_decref(manifest);
}
#endif

/* A copy of the shipped bundle in a new temporary folder (heap string). */
static char *copy_bundle(void) {
  char *dir = strdup("/tmp/vd-triage-nonfinite-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "cp %s/manifest.json %s/model.ubj %s/", TRIAGE_SHIPPED_BUNDLE,
           TRIAGE_SHIPPED_BUNDLE, dir);
  ck_assert_int_eq(system(cmd), 0);
  return dir;
}

static void remove_bundle(char *dir) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  ck_assert_int_eq(system(cmd), 0);
  free(dir);
}

/* Rewrites model.ubj's weights (the typed float32 array after "weights"): the first `count` of
 * them (all when count is 0) get the big-endian float32 `bits`; returns the byte offset of the
 * first weight. */
static size_t set_weights(const char *dir, uint32_t bits, size_t count) {
  char path[1024];
  snprintf(path, sizeof path, "%s/model.ubj", dir);
  size_t size = 0;
  vd_error err = {0};
  char *data = vd_read_file(path, 64 * 1024 * 1024, &size, &err);
  ck_assert_msg(data != NULL, "%s", err.message);
  const char header[] = "weights[$d#L";
  char *at = memmem(data, size, header, sizeof header - 1);
  ck_assert_ptr_nonnull(at);
  unsigned char *p = (unsigned char *)at + sizeof header - 1;
  uint64_t n = 0;
  for (int i = 0; i < 8; i++) n = n << 8 | p[i];
  p += 8;
  size_t first = (size_t)(p - (unsigned char *)data);
  ck_assert_uint_le(first + 4 * n, size);
  for (uint64_t i = 0; i < (count ? count : n); i++)
    for (int b = 0; b < 4; b++) p[4 * i + (size_t)b] = (unsigned char)(bits >> (24 - 8 * b));
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, size, f), size);
  ck_assert_int_eq(fclose(f), 0);
  free(data);
  stamp(dir);
  return first;
}

START_TEST(weights_that_overflow_are_named_not_out_of_memory) {
  char *dir = copy_bundle();
  set_weights(dir, 0x7f61b1e6u, 0); /* every weight 3e38f: finite, their sums are not */
  vd_error err = {0};
  vd_triage_model *m = vd_triage_load(dir, &err);
  ck_assert_msg(m != NULL, "%s", err.message);
  vd_triage_scratch *s = vd_triage_scratch_new(m);
  const char *text = "my card was charged twice for the same purchase";
  vd_triage_result r;
  ck_assert(!vd_triage_score(m, s, text, strlen(text), 3, true, &r, &err));
  ck_assert_msg(strstr(err.message, "triage model triage (model.ubj") &&
                    strstr(err.message, "margin of intent") &&
                    strstr(err.message, "not a finite number") && strstr(err.message, "overflow"),
                "%s", err.message);
  double margins[VD_TRIAGE_TOP_MAX * 64];
  ck_assert_uint_le(vd_triage_class_count(m), sizeof margins / sizeof margins[0]);
  err = (vd_error){0};
  ck_assert(!vd_triage_margins(m, s, text, strlen(text), margins, &err));
  ck_assert_ptr_nonnull(strstr(err.message, "not a finite number"));
  vd_triage_scratch_free(s);
  vd_triage_free(m);
  remove_bundle(dir);
}
END_TEST

START_TEST(a_nan_in_model_ubj_is_refused_at_load_with_its_offset) {
  char *dir = copy_bundle();
  size_t first = set_weights(dir, 0x7fc00000u, 1); /* the first weight NaN */
  vd_error err = {0};
  ck_assert_ptr_null(vd_triage_load(dir, &err));
  char want[64];
  snprintf(want, sizeof want, "byte %zu: float32 NaN is not a finite number", first);
  ck_assert_msg(strstr(err.message, "model.ubj") && strstr(err.message, want), "%s", err.message);
  remove_bundle(dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("triage_nonfinite");
  TCase *tc = tcase_create("triage_nonfinite");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, weights_that_overflow_are_named_not_out_of_memory);
  tcase_add_test(tc, a_nan_in_model_ubj_is_refused_at_load_with_its_offset);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
