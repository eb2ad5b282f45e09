/* UUIDv7 decision ids: format, embedded time, strict ordering (also within one millisecond, across
 * threads and when the clock steps back), uniqueness. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vd_test.h"
#include "vd_time.h"
#include "vd_uuid.h"

START_TEST(format_is_canonical_version_7) {
  vd_error err = {0};
  vd_uuid_gen *gen = vd_uuid_gen_new(&err);
  ck_assert_ptr_nonnull(gen);
  char id[VD_UUID_STRING_SIZE];
  ck_assert(vd_uuid_v7(gen, id, &err));
  ck_assert_uint_eq(strlen(id), 36);
  ck_assert(vd_uuid_valid(id));
  ck_assert_int_eq(id[14], '7');
  ck_assert_ptr_nonnull(strchr("89ab", id[19]));
  for (const char *p = id; *p; p++) ck_assert(*p == '-' || strchr("0123456789abcdef", *p));
  int64_t now_ms = vd_wall_us() / 1000;
  int64_t ms = vd_uuid_v7_unix_ms(id);
  ck_assert(ms <= now_ms && ms >= now_ms - 1000);
  vd_uuid_gen_free(gen);
}
END_TEST

START_TEST(timestamp_round_trips) {
  vd_uuid_gen *gen = vd_uuid_gen_new(NULL);
  char id[VD_UUID_STRING_SIZE];
  ck_assert(vd_uuid_v7_at(gen, INT64_C(1764768405123), id, NULL));
  ck_assert_int_eq(vd_uuid_v7_unix_ms(id), INT64_C(1764768405123));
  ck_assert(strncmp(id, "019ae464-d683-7", 15) == 0);
  vd_uuid_gen_free(gen);
}
END_TEST

START_TEST(validation_refuses_malformed) {
  ck_assert(!vd_uuid_valid(NULL));
  ck_assert(!vd_uuid_valid(""));
  ck_assert(!vd_uuid_valid("019ae4a7-b483-7000-8000-00000000000"));   /* short */
  ck_assert(!vd_uuid_valid("019ae4a7-b483-7000-8000-0000000000000")); /* long */
  ck_assert(!vd_uuid_valid("019ae4a7xb483-7000-8000-000000000000"));  /* dash */
  ck_assert(!vd_uuid_valid("019ae4a7-b483-7000-8000-00000000000g"));  /* hex */
  ck_assert(vd_uuid_valid("019AE4A7-B483-7000-8000-000000000000"));
  ck_assert_int_eq(vd_uuid_v7_unix_ms("019ae4a7-b483-4000-8000-000000000000"), -1); /* v4 */
  ck_assert_int_eq(vd_uuid_v7_unix_ms("019ae4a7-b483-7000-c000-000000000000"), -1); /* variant */
}
END_TEST

START_TEST(strictly_increasing_within_one_millisecond) {
  vd_uuid_gen *gen = vd_uuid_gen_new(NULL);
  char prev[VD_UUID_STRING_SIZE], id[VD_UUID_STRING_SIZE];
  ck_assert(vd_uuid_v7_at(gen, 1000000, prev, NULL));
  for (int i = 0; i < 100000; i++) {
    ck_assert(vd_uuid_v7_at(gen, 1000000, id, NULL));
    ck_assert_msg(strcmp(prev, id) < 0, "%s !< %s", prev, id);
    ck_assert_int_eq(vd_uuid_v7_unix_ms(id), 1000000);
    memcpy(prev, id, sizeof id);
  }
  vd_uuid_gen_free(gen);
}
END_TEST

START_TEST(monotonic_when_the_clock_steps_back) {
  vd_uuid_gen *gen = vd_uuid_gen_new(NULL);
  char a[VD_UUID_STRING_SIZE], b[VD_UUID_STRING_SIZE], c[VD_UUID_STRING_SIZE];
  ck_assert(vd_uuid_v7_at(gen, 5000000, a, NULL));
  ck_assert(vd_uuid_v7_at(gen, 4000000, b, NULL)); /* an NTP step backwards */
  ck_assert(vd_uuid_v7_at(gen, 5000001, c, NULL));
  ck_assert(strcmp(a, b) < 0);
  ck_assert(strcmp(b, c) < 0);
  ck_assert_int_eq(vd_uuid_v7_unix_ms(b), 5000000);
  vd_uuid_gen_free(gen);
}
END_TEST

enum { THREADS = 4, PER_THREAD = 20000 };

typedef struct worker {
  vd_uuid_gen *gen;
  char (*ids)[VD_UUID_STRING_SIZE];
  bool ordered;
} worker;

static void *generate(void *arg) {
  worker *w = arg;
  w->ordered = true;
  for (int i = 0; i < PER_THREAD; i++) {
    if (!vd_uuid_v7(w->gen, w->ids[i], NULL)) w->ordered = false;
    if (i > 0 && strcmp(w->ids[i - 1], w->ids[i]) >= 0) w->ordered = false;
  }
  return NULL;
}

static int compare_ids(const void *a, const void *b) { return strcmp(a, b); }

START_TEST(unique_and_ordered_across_threads) {
  vd_uuid_gen *gen = vd_uuid_gen_new(NULL);
  char(*ids)[VD_UUID_STRING_SIZE] = calloc(THREADS * PER_THREAD, VD_UUID_STRING_SIZE);
  pthread_t threads[THREADS];
  worker workers[THREADS];
  for (int t = 0; t < THREADS; t++) {
    workers[t] = (worker){gen, ids + t * PER_THREAD, false};
    pthread_create(&threads[t], NULL, generate, &workers[t]);
  }
  for (int t = 0; t < THREADS; t++) {
    pthread_join(threads[t], NULL);
    ck_assert(workers[t].ordered);
  }
  qsort(ids, THREADS * PER_THREAD, VD_UUID_STRING_SIZE, compare_ids);
  for (int i = 1; i < THREADS * PER_THREAD; i++) ck_assert_str_ne(ids[i - 1], ids[i]);
  free(ids);
  vd_uuid_gen_free(gen);
}
END_TEST

int main(void) {
  Suite *s = suite_create("uuid");
  TCase *tc = tcase_create("uuid");
  tcase_add_test(tc, format_is_canonical_version_7);
  tcase_add_test(tc, timestamp_round_trips);
  tcase_add_test(tc, validation_refuses_malformed);
  tcase_add_test(tc, strictly_increasing_within_one_millisecond);
  tcase_add_test(tc, monotonic_when_the_clock_steps_back);
  tcase_add_test(tc, unique_and_ordered_across_threads);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
