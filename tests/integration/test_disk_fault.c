/* Disk faults under the real server, with its data folder on a small tmpfs mounted for the test
 * (the test skips, saying so, where mounting is not allowed):
 * - disk full: a filler file takes the rest of the space while clients score. Every answer is a
 *   decision (200) or 503 decision_log_unavailable — never a decision that was not stored — the
 *   server recovers by itself once the filler is removed, and every decision it answered is
 *   readable afterwards (also after a restart). This is what decision_log.min_free_bytes (default
 *   64 MiB, twice the largest WAL) is for: without it the WAL took the last free bytes and could
 * never be checkpointed again, so the log stayed at 503 after space returned.
 * - read-only data folder at start: `verdict serve` refuses to start, naming the folder. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vd_itest.h"
#include "vd_test.h"

enum { CLIENTS = 4, MAX_IDS = 200000 };

static const char customer[] =
    "{\"subject\": {\"id\": \"disk\", \"recency\": 6, \"history\": 329.08, \"mens\": true, "
    "\"womens\": true, \"zip_code\": \"Rural\", \"newbie\": true, \"channel\": \"Web\", "
    "\"marketing_opt_out\": false, \"emails_last_30d\": 1, \"country\": \"US\"}}";

typedef struct load {
  const vd_itest_server *server;
  atomic_bool stop;
  atomic_long ok, unavailable, other;
  atomic_long last_other;
  pthread_mutex_t lock;
  char (*ids)[40];
  size_t id_count;
} load;

static void *client(void *arg) {
  load *l = arg;
  while (!atomic_load(&l->stop)) {
    vd_itest_response r = vd_itest_call(l->server, "POST", "/v1/promotions/score", "demo-score",
                                        customer, strlen(customer));
    const char *code = json_string_value(json_object_get(json_object_get(r.json, "error"), "code"));
    const char *id = json_string_value(json_object_get(r.json, "decision_id"));
    if (r.status == 200 && id) {
      atomic_fetch_add(&l->ok, 1);
      pthread_mutex_lock(&l->lock);
      if (l->id_count < MAX_IDS) snprintf(l->ids[l->id_count++], 40, "%s", id);
      pthread_mutex_unlock(&l->lock);
    } else if (r.status == 503 && code && strcmp(code, "decision_log_unavailable") == 0) {
      atomic_fetch_add(&l->unavailable, 1);
    } else {
      atomic_fetch_add(&l->other, 1);
      atomic_store(&l->last_other, r.status);
    }
    vd_itest_response_free(&r);
  }
  return NULL;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* Mounts a tmpfs of size_kb on dir; false (after saying why) when not allowed here. */
static bool mount_tmpfs(const char *dir, unsigned size_kb, bool read_only) {
  mkdir(dir, 0750);
  char options[64];
  snprintf(options, sizeof options, "size=%uk,mode=0750", size_kb);
  if (mount("tmpfs", dir, "tmpfs", read_only ? MS_RDONLY : 0, options) != 0) {
    fprintf(stderr,
            "disk fault test skipped: cannot mount a tmpfs on %s (%s); run as root or "
            "with CAP_SYS_ADMIN\n",
            dir, strerror(errno));
    return false;
  }
  return true;
}

/* Fills the file system holding dir by appending to dir/filler (never truncating it, so the
 * space it takes is only returned when the test removes it): returns the bytes added. */
static size_t fill(const char *dir) {
  char path[512];
  snprintf(path, sizeof path, "%s/filler", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  ck_assert_int_ge(fd, 0);
  static char block[4096];
  size_t total = 0;
  ssize_t n;
  while ((n = write(fd, block, sizeof block)) > 0) total += (size_t)n;
  ck_assert_int_eq(errno, ENOSPC);
  close(fd);
  return total;
}

START_TEST(disk_full_answers_503_and_recovers) {
  vd_itest_server server;
  ck_assert(vd_itest_prepare(&server, NULL));
  if (!mount_tmpfs(server.data_dir, 128 * 1024, false)) { /* twice min_free_bytes */
    vd_itest_cleanup(&server);
    return;
  }
  ck_assert_msg(vd_itest_start(&server), "verdict serve did not become ready");
  load l = {.server = &server};
  pthread_mutex_init(&l.lock, NULL);
  l.ids = calloc(MAX_IDS, sizeof *l.ids);
  pthread_t threads[CLIENTS];
  for (int i = 0; i < CLIENTS; i++) pthread_create(&threads[i], NULL, client, &l);
  usleep(300 * 1000);
  ck_assert_int_gt(atomic_load(&l.ok), 0);

  /* Disk full: wait for the log to refuse (its WAL must grow), up to 60 s. */
  size_t filled = fill(server.data_dir);
  double t0 = now_s(), full_since = t0;
  while (atomic_load(&l.unavailable) == 0 && now_s() - t0 < 60) {
    usleep(50 * 1000);
    fill(server.data_dir); /* keep it full: SQLite may free pages meanwhile */
  }
  long refused = atomic_load(&l.unavailable);
  ck_assert_msg(refused > 0, "the disk was full for 60 s but no request was refused");
  usleep(500 * 1000); /* stay full a little: all answers must still be 200 or 503 */
  double full_seconds = now_s() - full_since;

  /* Space returns: the server recovers without a restart. */
  char filler[512];
  snprintf(filler, sizeof filler, "%s/filler", server.data_dir);
  ck_assert_int_eq(unlink(filler), 0);
  long ok_before = atomic_load(&l.ok);
  t0 = now_s();
  while (atomic_load(&l.ok) < ok_before + 50 && now_s() - t0 < 30) usleep(20 * 1000);
  ck_assert_msg(atomic_load(&l.ok) >= ok_before + 50,
                "no recovery 30 s after space returned: %ld ok, %ld refused, %ld other (last %ld)",
                atomic_load(&l.ok) - ok_before, atomic_load(&l.unavailable), atomic_load(&l.other),
                atomic_load(&l.last_other));
  double recovered_in = now_s() - t0;
  atomic_store(&l.stop, true);
  for (int i = 0; i < CLIENTS; i++) pthread_join(threads[i], NULL);
  ck_assert_msg(atomic_load(&l.other) == 0, "%ld answers were neither 200 nor 503 (last %ld)",
                atomic_load(&l.other), atomic_load(&l.last_other));

  /* Nothing answered was lost: every decision is readable, also after a restart. */
  for (int pass = 0; pass < 2; pass++) {
    for (size_t i = 0; i < l.id_count; i++) {
      char path[128];
      snprintf(path, sizeof path, "/v1/decisions/%s", l.ids[i]);
      vd_itest_response r = vd_itest_call(&server, "GET", path, "demo-compliance", NULL, 0);
      ck_assert_msg(r.status == 200, "decision %s lost (pass %d): HTTP %ld", l.ids[i], pass,
                    r.status);
      vd_itest_response_free(&r);
    }
    if (pass == 0) {
      ck_assert_int_eq(vd_itest_stop(&server, SIGTERM), 0);
      ck_assert(vd_itest_start(&server));
    }
  }
  fprintf(stderr,
          "disk fault: filled %zu kB; %ld requests refused with 503 while full (%.1f s), %ld "
          "decisions answered in all, recovered %.2f s after space returned, none lost\n",
          filled / 1024, atomic_load(&l.unavailable), full_seconds, (long)l.id_count, recovered_in);
  ck_assert_int_eq(vd_itest_stop(&server, SIGTERM), 0);
  umount2(server.data_dir, MNT_DETACH);
  vd_itest_cleanup(&server);
  free(l.ids);
  pthread_mutex_destroy(&l.lock);
}
END_TEST

START_TEST(read_only_data_folder_refuses_to_start) {
  vd_itest_server server;
  ck_assert(vd_itest_prepare(&server, NULL));
  if (!mount_tmpfs(server.data_dir, 1024, true)) {
    vd_itest_cleanup(&server);
    return;
  }
  char log[320];
  snprintf(log, sizeof log, "%.250s/stderr", server.root);
  snprintf(server.stderr_path, sizeof server.stderr_path, "%s", log);
  ck_assert_msg(!vd_itest_start(&server), "started on a read-only data folder");
  int status = vd_itest_stop(&server, SIGKILL);
  ck_assert_int_eq(status, 1);
  FILE *f = fopen(log, "r");
  ck_assert_ptr_nonnull(f);
  char text[4096] = "";
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  fclose(f);
  ck_assert_msg(strstr(text, server.data_dir) != NULL, "the error does not name the folder: %s",
                text);
  fprintf(stderr, "read-only data folder: %s", text);
  umount2(server.data_dir, MNT_DETACH);
  vd_itest_cleanup(&server);
}
END_TEST

int main(void) {
  Suite *s = suite_create("disk_fault");
  TCase *tc = tcase_create("disk_fault");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, disk_full_answers_503_and_recovers);
  tcase_add_test(tc, read_only_data_folder_refuses_to_start);
  suite_add_tcase(s, tc);
  return vd_test_run(s);
}
