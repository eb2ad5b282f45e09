/* The decision log's journal: frames read back in order after a reopen, a torn or damaged tail
 * cut, files reused only once indexed, one owner at a time, synced appends. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vd_journal.h"
#include "vd_test.h"

typedef struct fixture {
  char dir[64];
  char db[128];
  char file[2][160];
} fixture;

static void fixture_init(fixture *f) {
  snprintf(f->dir, sizeof f->dir, "/tmp/vd-journal-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(f->dir));
  snprintf(f->db, sizeof f->db, "%s/decisions.db", f->dir);
  for (int i = 0; i < 2; i++) snprintf(f->file[i], sizeof f->file[i], "%s.journal-%d", f->db, i);
}

static void fixture_done(fixture *f) {
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
  ck_assert_int_eq(system(cmd), 0);
}

static long long file_size(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* What open's visitor saw. */
typedef struct seen {
  int count;
  uint64_t positions[64];
  char payloads[64][64];
  int fail_at; /* the visitor fails at this frame (1-based); 0: never */
} seen;

static bool visit(void *ctx, uint64_t position, const unsigned char *payload, size_t len,
                  vd_error *err) {
  seen *s = ctx;
  if (s->count + 1 == s->fail_at) return vd_error_set(err, "visitor refused frame %d", s->fail_at);
  ck_assert_int_lt(s->count, 64);
  s->positions[s->count] = position;
  snprintf(s->payloads[s->count], sizeof s->payloads[0], "%.*s", (int)len, (const char *)payload);
  s->count++;
  return true;
}

static vd_journal *open_journal(const fixture *f, bool sync, seen *s) {
  vd_error err = {0};
  vd_journal *j =
      vd_journal_open(f->db, &(vd_journal_options){.sync = sync}, s ? visit : NULL, s, NULL, &err);
  ck_assert_msg(j != NULL, "open: %s", err.message);
  return j;
}

static uint64_t append_text(vd_journal *j, const char *text) {
  vd_error err = {0};
  uint64_t position = vd_journal_append(j, text, strlen(text), &err);
  ck_assert_msg(position > 0, "append: %s", err.message);
  return position;
}

/* Appends 1 MiB frames until the file at path holds VD_JOURNAL_FILE_BYTES; the last position. */
static uint64_t fill_to_limit(vd_journal *j, const char *path) {
  enum { CHUNK = 1 << 20 };
  char *big = malloc(CHUNK);
  memset(big, 'x', CHUNK);
  uint64_t last = 0;
  vd_error err = {0};
  while (file_size(path) < VD_JOURNAL_FILE_BYTES)
    ck_assert_msg((last = vd_journal_append(j, big, CHUNK, &err)) > 0, "%s", err.message);
  free(big);
  return last;
}

START_TEST(frames_are_read_back_in_order_after_a_reopen) {
  fixture f;
  fixture_init(&f);
  vd_journal *j = open_journal(&f, false, NULL);
  ck_assert_uint_eq(append_text(j, "first"), 1);
  ck_assert_uint_eq(append_text(j, ""), 2);
  ck_assert_uint_eq(append_text(j, "third"), 3);
  vd_journal_close(j);
  seen s = {0};
  j = open_journal(&f, false, &s);
  ck_assert_int_eq(s.count, 3);
  ck_assert_str_eq(s.payloads[0], "first");
  ck_assert_str_eq(s.payloads[1], "");
  ck_assert_str_eq(s.payloads[2], "third");
  for (int i = 0; i < 3; i++) ck_assert_uint_eq(s.positions[i], (uint64_t)i + 1);
  ck_assert_uint_eq(append_text(j, "fourth"), 4); /* positions go on */
  vd_journal_close(j);
  fixture_done(&f);
}
END_TEST

/* A crash in the middle of a write leaves part of a frame: it is not read, and it is cut so the
 * next frame follows the last whole one. */
START_TEST(a_torn_tail_is_cut) {
  fixture f;
  fixture_init(&f);
  vd_journal *j = open_journal(&f, false, NULL);
  append_text(j, "whole");
  append_text(j, "torn by the crash");
  vd_journal_close(j);
  long long whole = VD_JOURNAL_HEADER + 5;
  ck_assert_int_eq(truncate(f.file[0], whole + VD_JOURNAL_HEADER + 3), 0);
  seen s = {0};
  j = open_journal(&f, false, &s);
  ck_assert_int_eq(s.count, 1);
  ck_assert_str_eq(s.payloads[0], "whole");
  ck_assert_int_eq(file_size(f.file[0]), whole);
  ck_assert_uint_eq(append_text(j, "next"), 2);
  vd_journal_close(j);
  s = (seen){0};
  j = open_journal(&f, false, &s);
  ck_assert_int_eq(s.count, 2);
  ck_assert_str_eq(s.payloads[1], "next");
  vd_journal_close(j);
  fixture_done(&f);
}
END_TEST

/* A flipped byte fails the frame's checksum: that frame is never read as different data; the
 * good frames after it are read, and the damaged bytes are counted and kept (no cut). */
START_TEST(a_damaged_frame_is_skipped_and_the_frames_after_it_read) {
  fixture f;
  fixture_init(&f);
  vd_journal *j = open_journal(&f, false, NULL);
  append_text(j, "one");
  append_text(j, "two");
  append_text(j, "three");
  vd_journal_close(j);
  long long size = file_size(f.file[0]);
  int fd = open(f.file[0], O_RDWR);
  ck_assert_int_ge(fd, 0);
  off_t second_payload = 2 * VD_JOURNAL_HEADER + 3;
  ck_assert_int_eq(pwrite(fd, "X", 1, second_payload + 1), 1);
  close(fd);
  seen s = {0};
  j = open_journal(&f, false, &s);
  ck_assert_int_eq(s.count, 2);
  ck_assert_str_eq(s.payloads[0], "one");
  ck_assert_str_eq(s.payloads[1], "three");
  ck_assert_uint_eq(s.positions[1], 3);
  ck_assert_uint_eq(vd_journal_damaged_bytes(j), VD_JOURNAL_HEADER + 3);
  ck_assert_int_eq(file_size(f.file[0]), size); /* the damage is kept, not cut */
  ck_assert_uint_eq(append_text(j, "four"), 4);
  vd_journal_close(j);
  fixture_done(&f);
}
END_TEST

/* A symbolic link where a journal file goes is refused, and what it points to is left alone. */
START_TEST(a_symbolic_link_is_refused) {
  fixture f;
  fixture_init(&f);
  char victim[200];
  snprintf(victim, sizeof victim, "%s/victim.txt", f.dir);
  FILE *v = fopen(victim, "w");
  fputs("precious", v);
  fclose(v);
  ck_assert_int_eq(symlink(victim, f.file[1]), 0);
  vd_error err = {0};
  ck_assert_ptr_null(vd_journal_open(f.db, &(vd_journal_options){0}, NULL, NULL, NULL, &err));
  ck_assert_msg(strstr(err.message, "symbolic link"), "%s", err.message);
  ck_assert_int_eq(file_size(victim), 8);
  fixture_done(&f);
}
END_TEST

/* Appends move to the other file once the active one is full and everything in the other is
 * indexed (an empty one at once); not before: its frames would be lost. */
START_TEST(a_file_is_reused_only_once_indexed) {
  fixture f;
  fixture_init(&f);
  vd_journal *j = open_journal(&f, false, NULL);
  vd_error err = {0};
  uint64_t last = fill_to_limit(j, f.file[0]);
  uint64_t first_in_1 = vd_journal_append(j, "a", 1, &err);
  ck_assert_int_eq(file_size(f.file[1]), VD_JOURNAL_HEADER + 1); /* journal-1 held nothing */
  fill_to_limit(j, f.file[1]);
  long long full0 = file_size(f.file[0]);
  ck_assert_uint_gt(vd_journal_append(j, "b", 1, &err), 0);
  ck_assert_int_eq(file_size(f.file[0]), full0); /* journal-0 is not indexed: kept */
  ck_assert_int_gt(file_size(f.file[1]), VD_JOURNAL_FILE_BYTES);
  vd_journal_indexed(j, last - 1);
  ck_assert_uint_gt(vd_journal_append(j, "c", 1, &err), 0);
  ck_assert_int_eq(file_size(f.file[0]), full0); /* one frame of it still is not */
  vd_journal_indexed(j, first_in_1);
  ck_assert_uint_gt(vd_journal_append(j, "d", 1, &err), 0);
  ck_assert_int_eq(file_size(f.file[0]), VD_JOURNAL_HEADER + 1); /* emptied, reused */
  ck_assert_uint_eq(vd_journal_bytes(j),
                    (uint64_t)file_size(f.file[0]) + (uint64_t)file_size(f.file[1]));
  vd_journal_close(j);
  fixture_done(&f);
}
END_TEST

/* After a move to the other file, a reopen reads the older file first: frames come back in
 * position order, and appends go on in the newer file. */
START_TEST(the_older_file_is_read_first) {
  fixture f;
  fixture_init(&f);
  vd_journal *j = open_journal(&f, false, NULL);
  uint64_t last = fill_to_limit(j, f.file[0]);
  vd_journal_indexed(j, 1); /* journal-1 holds nothing: it may be used */
  append_text(j, "in journal-1");
  vd_journal_close(j);
  seen s = {0};
  j = open_journal(&f, false, &s);
  ck_assert_int_eq(s.count, (int)last + 1);
  for (int i = 0; i < s.count; i++) ck_assert_uint_eq(s.positions[i], (uint64_t)i + 1);
  ck_assert_str_eq(s.payloads[last], "in journal-1");
  long long before = file_size(f.file[0]);
  ck_assert_uint_eq(append_text(j, "after"), last + 2);
  ck_assert_int_eq(file_size(f.file[0]), before); /* appended to journal-1 */
  vd_journal_close(j);
  fixture_done(&f);
}
END_TEST

/* recycle empties the file appends left, once indexed (and only then), ahead of the next move. */
START_TEST(recycle_empties_the_idle_file_once_indexed) {
  fixture f;
  fixture_init(&f);
  vd_journal *j = open_journal(&f, false, NULL);
  uint64_t last = fill_to_limit(j, f.file[0]);
  append_text(j, "in journal-1");
  vd_journal_recycle(j);
  ck_assert_int_ge(file_size(f.file[0]), VD_JOURNAL_FILE_BYTES); /* not indexed: kept */
  vd_journal_indexed(j, last);
  vd_journal_recycle(j);
  ck_assert_int_eq(file_size(f.file[0]), 0);
  ck_assert_int_eq(file_size(f.file[1]), VD_JOURNAL_HEADER + 12); /* the active one: untouched */
  vd_journal_close(j);
  seen s = {0};
  j = open_journal(&f, false, &s);
  ck_assert_int_eq(s.count, 1);
  ck_assert_str_eq(s.payloads[0], "in journal-1");
  vd_journal_close(j);
  fixture_done(&f);
}
END_TEST

START_TEST(one_owner_at_a_time) {
  fixture f;
  fixture_init(&f);
  vd_journal *j = open_journal(&f, false, NULL);
  bool busy = false;
  vd_error err = {0};
  ck_assert_ptr_null(vd_journal_open(f.db, &(vd_journal_options){0}, NULL, NULL, &busy, &err));
  ck_assert(busy);
  ck_assert_ptr_nonnull(strstr(err.message, "another process"));
  vd_journal_close(j);
  vd_journal *again = vd_journal_open(f.db, &(vd_journal_options){0}, NULL, NULL, &busy, &err);
  ck_assert_ptr_nonnull(again);
  ck_assert(!busy);
  vd_journal_close(again);
  fixture_done(&f);
}
END_TEST

START_TEST(a_failing_visitor_fails_the_open) {
  fixture f;
  fixture_init(&f);
  vd_journal *j = open_journal(&f, false, NULL);
  append_text(j, "one");
  append_text(j, "two");
  vd_journal_close(j);
  seen s = {.fail_at = 2};
  vd_error err = {0};
  ck_assert_ptr_null(vd_journal_open(f.db, &(vd_journal_options){0}, visit, &s, NULL, &err));
  ck_assert_str_eq(err.message, "visitor refused frame 2");
  s = (seen){0};
  j = open_journal(&f, false, &s); /* nothing was cut: both are still there */
  ck_assert_int_eq(s.count, 2);
  vd_journal_close(j);
  fixture_done(&f);
}
END_TEST

START_TEST(clear_and_close_leave_no_files) {
  fixture f;
  fixture_init(&f);
  vd_journal *j = open_journal(&f, false, NULL);
  append_text(j, "one");
  ck_assert(vd_journal_clear(j, NULL));
  ck_assert_uint_eq(vd_journal_bytes(j), 0);
  ck_assert_uint_eq(append_text(j, "two"), 2); /* positions go on after a clear */
  ck_assert(vd_journal_clear(j, NULL));
  vd_journal_close(j);
  ck_assert_int_eq(file_size(f.file[0]), -1);
  ck_assert_int_eq(file_size(f.file[1]), -1);
  fixture_done(&f);
}
END_TEST

typedef struct syncer {
  vd_journal *j;
  bool ok;
  uint64_t positions[50];
} syncer;

static void *append_synced(void *arg) {
  syncer *s = arg;
  s->ok = true;
  for (int i = 0; i < 50; i++) {
    uint64_t p = vd_journal_append(s->j, "synced", 6, NULL);
    s->positions[i] = p;
    if (!p || !vd_journal_sync(s->j, p, NULL)) s->ok = false;
  }
  return NULL;
}

/* Synced appends from many threads: each gets a distinct position and a sync covering it, and all
 * are read back. */
START_TEST(synced_appends_from_many_threads) {
  fixture f;
  fixture_init(&f);
  vd_journal *j = open_journal(&f, true, NULL);
  enum { THREADS = 8 };
  pthread_t threads[THREADS];
  syncer s[THREADS];
  for (int t = 0; t < THREADS; t++) {
    s[t] = (syncer){.j = j};
    pthread_create(&threads[t], NULL, append_synced, &s[t]);
  }
  bool used[THREADS * 50 + 1] = {false};
  for (int t = 0; t < THREADS; t++) {
    pthread_join(threads[t], NULL);
    ck_assert(s[t].ok);
    for (int i = 0; i < 50; i++) {
      ck_assert_uint_le(s[t].positions[i], THREADS * 50);
      ck_assert(!used[s[t].positions[i]]);
      used[s[t].positions[i]] = true;
    }
  }
  vd_journal_close(j);
  ck_assert_int_eq(file_size(f.file[0]), THREADS * 50 * (VD_JOURNAL_HEADER + 6));
  fixture_done(&f);
}
END_TEST

int main(void) {
  Suite *suite = suite_create("journal");
  TCase *tc = tcase_create("journal");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, frames_are_read_back_in_order_after_a_reopen);
  tcase_add_test(tc, a_torn_tail_is_cut);
  tcase_add_test(tc, a_damaged_frame_is_skipped_and_the_frames_after_it_read);
  tcase_add_test(tc, a_symbolic_link_is_refused);
  tcase_add_test(tc, a_file_is_reused_only_once_indexed);
  tcase_add_test(tc, the_older_file_is_read_first);
  tcase_add_test(tc, recycle_empties_the_idle_file_once_indexed);
  tcase_add_test(tc, one_owner_at_a_time);
  tcase_add_test(tc, a_failing_visitor_fails_the_open);
  tcase_add_test(tc, clear_and_close_leave_no_files);
  tcase_add_test(tc, synced_appends_from_many_threads);
  suite_add_tcase(suite, tc);
  return vd_test_run(suite);
}
