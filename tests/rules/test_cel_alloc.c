/* Evaluating a scalar CEL expression must not touch the heap. This program interposes malloc,
 * calloc, realloc and free (glibc lets an executable replace them) and counts calls while it
 * evaluates typical rule conditions many times. Under AddressSanitizer, which owns the
 * allocator, the interposition is compiled out and only the arena's own counter is checked. */
#include <stdlib.h>
#include <string.h>

#include "vd_cel.h"
#include "vd_test.h"

#if defined(__SANITIZE_ADDRESS__)
#define VD_COUNT_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define VD_COUNT_MALLOC 0
#endif
#endif
#ifndef VD_COUNT_MALLOC
#if defined(__SANITIZE_THREAD__)
#define VD_COUNT_MALLOC 0
#else
#define VD_COUNT_MALLOC 1
#endif
#endif

/* The counter must be process-wide to see every allocation: the one mutable global here, and
 * only in this test program. */
static long heap_calls;
static int counting;

#if VD_COUNT_MALLOC
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);

void *malloc(size_t size) {
  if (counting) heap_calls++;
  return __libc_malloc(size);
}
void *calloc(size_t n, size_t size) {
  if (counting) heap_calls++;
  return __libc_calloc(n, size);
}
void *realloc(void *p, size_t size) {
  if (counting) heap_calls++;
  return __libc_realloc(p, size);
}
void free(void *p) {
  if (counting && p) heap_calls++;
  __libc_free(p);
}
#endif

typedef struct setup {
  vd_cel_env *env;
  vd_cel_value slots[6];
  vd_cel_value tags[2];
  vd_cel_list tag_list;
} setup;

static void setup_init(setup *s) {
  memset(s, 0, sizeof *s);
  s->env = vd_cel_env_new();
  const char *names[] = {"subject.recency", "subject.country", "subject.marketing_opt_out",
                         "score.uplift",    "context.now",     "subject.tags"};
  const vd_cel_type *types[] = {vd_cel_type_of_kind(VD_CEL_INT),
                                vd_cel_type_of_kind(VD_CEL_STRING),
                                vd_cel_type_of_kind(VD_CEL_BOOL),
                                vd_cel_type_of_kind(VD_CEL_DOUBLE),
                                vd_cel_type_of_kind(VD_CEL_TIMESTAMP),
                                vd_cel_type_list(s->env, vd_cel_type_of_kind(VD_CEL_STRING))};
  for (size_t i = 0; i < 6; i++)
    ck_assert(vd_cel_env_declare(s->env, names[i], types[i], NULL, NULL));
  s->slots[0] = vd_cel_int(3);
  s->slots[1] = vd_cel_string("US", 2);
  s->slots[2] = vd_cel_bool(false);
  s->slots[3] = vd_cel_double(0.02);
  ck_assert(vd_cel_timestamp_parse("2026-12-03T13:26:45Z", 20, &s->slots[4], NULL));
  s->tags[0] = vd_cel_string("vip", 3);
  s->tags[1] = vd_cel_string("new", 3);
  s->tag_list = (vd_cel_list){2, s->tags};
  s->slots[5] = vd_cel_list_value(&s->tag_list);
}

/* Evaluates src 1000 times with a stack scratch buffer; returns heap calls made meanwhile. */
static long heap_calls_during(setup *s, const char *src, size_t scratch_size, size_t *chunks) {
  vd_error err;
  vd_cel_program *p = vd_cel_compile(s->env, src, strlen(src), NULL, &err);
  ck_assert_msg(p != NULL, "%s: %s", src, err.message);
  static unsigned char scratch[32768];
  vd_cel_arena arena;
  vd_cel_arena_init(&arena, scratch_size ? scratch : NULL, scratch_size);
  size_t reads[8], nreads;
  vd_cel_value r = {.kind = VD_CEL_NULL};
  int errors = 0;
  heap_calls = 0;
  counting = 1; /* no Check assertion inside: Check itself allocates when it records a point */
  for (int i = 0; i < 1000; i++) {
    errors += !vd_cel_eval(p, s->slots, 6, &arena, &r, reads, &nreads);
    vd_cel_arena_reset(&arena);
  }
  counting = 0;
  ck_assert_msg(errors == 0, "%s: %s", src, r.v.error.message);
  *chunks = vd_cel_arena_heap_chunks(&arena);
  vd_cel_arena_free(&arena);
  vd_cel_program_free(p);
  return heap_calls;
}

START_TEST(scalar_evaluation_allocates_nothing) {
  setup s;
  setup_init(&s);
  const char *exprs[] = {
      "subject.marketing_opt_out",
      "subject.recency >= 3 && subject.country in ['US', 'CA'] && !subject.marketing_opt_out",
      "score.uplift < 0.005 || subject.recency > 6 ? 1.5 : 2.5",
      "'vip' in subject.tags && subject.tags.exists(t, t.startsWith('n'))",
      "size(subject.country) == 2 && subject.country.contains('U')",
      "context.now.getHours('Europe/Berlin') >= 9 && context.now.getDayOfWeek() != 0",
      "context.now - timestamp('2026-01-01T00:00:00Z') > duration('24h')",
      "has(subject.recency) && int(score.uplift * 100.0) == 2",
  };
  for (size_t i = 0; i < sizeof exprs / sizeof exprs[0]; i++) {
    size_t chunks;
    long calls = heap_calls_during(&s, exprs[i], 4096, &chunks);
    ck_assert_msg(calls == 0, "%s: %ld heap calls in 1000 evaluations", exprs[i], calls);
    ck_assert_msg(chunks == 0, "%s: the arena used %zu heap chunks", exprs[i], chunks);
  }
  /* PCRE2 wants about 20 KiB of backtracking frames per match: with a scratch buffer that
   * large, matches() stays off the heap too. */
  size_t chunks;
  long calls = heap_calls_during(&s, "subject.country.matches('^(US|CA)$')", 32768, &chunks);
  ck_assert_msg(calls == 0 && chunks == 0, "matches(): %ld heap calls, %zu chunks", calls, chunks);
  vd_cel_env_free(s.env);
}
END_TEST

/* The counter itself works: an expression that builds a list, with no scratch buffer, does
 * allocate (so the zero above is not a broken counter). */
START_TEST(building_values_without_scratch_uses_the_heap) {
  setup s;
  setup_init(&s);
  size_t chunks;
  long calls = heap_calls_during(&s, "subject.tags.map(t, t + '!')", 0, &chunks);
  ck_assert_uint_gt(chunks, 0);
#if VD_COUNT_MALLOC
  ck_assert_int_gt(calls, 0);
#else
  (void)calls;
#endif
  /* ...and with a big enough scratch buffer it does not. */
  calls = heap_calls_during(&s, "subject.tags.map(t, t + '!')", 4096, &chunks);
  ck_assert_int_eq(calls, 0);
  ck_assert_uint_eq(chunks, 0);
  vd_cel_env_free(s.env);
}
END_TEST

int main(void) {
  Suite *s = suite_create("cel_alloc");
  TCase *tc = tcase_create("alloc");
  tcase_add_test(tc, scalar_evaluation_allocates_nothing);
  tcase_add_test(tc, building_values_without_scratch_uses_the_heap);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
