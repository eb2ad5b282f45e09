/* Fuzzes what the decision log reads back from its journal at open (vd_journal.h, vd_log_row.h:
 * what a killed process, a damaged disk or a hostile file leaves): the input is journal-0's
 * content. Every frame handed over must lie inside the file, every row read must point inside
 * its frame, the file must end right after the last frame handed over (frames and skipped damage
 * before it), and a frame appended then must be read back after it. Never a crash, an overread or
 * an unbounded allocation. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vd_journal.h"
#include "vd_log_row.h"

typedef struct seen {
  size_t frames, bytes;
  uint64_t last;
} seen;

static bool visit(void *ctx, uint64_t position, const unsigned char *payload, size_t len,
                  vd_error *err) {
  (void)err;
  seen *s = ctx;
  s->frames++;
  s->bytes += VD_JOURNAL_HEADER + len;
  s->last = position;
  vd_log_row row;
  vd_error row_err = {0};
  if (vd_log_row_read(payload, len, &row, &row_err)) {
    for (int i = 0; i < VD_ROW_FIELDS; i++) {
      const unsigned char *f = (const unsigned char *)row.field[i];
      if (f && (f < payload || f + row.field_len[i] > payload + len)) abort();
    }
  } else if (!row_err.message[0]) {
    abort();
  }
  return true;
}

static void write_file(const char *path, const uint8_t *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f || (size && fwrite(data, 1, size, f) != size)) abort();
  fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char dir[64], db[128], file0[160], file1[160];
  if (!dir[0]) {
    snprintf(dir, sizeof dir, "/tmp/vd-fuzz-journal-XXXXXX");
    if (!mkdtemp(dir)) abort();
    snprintf(db, sizeof db, "%s/decisions.db", dir);
    snprintf(file0, sizeof file0, "%s.journal-0", db);
    snprintf(file1, sizeof file1, "%s.journal-1", db);
  }
  write_file(file0, data, size);
  write_file(file1, NULL, 0);
  seen s = {0};
  vd_error err = {0};
  vd_journal *j = vd_journal_open(db, &(vd_journal_options){0}, visit, &s, NULL, &err);
  if (!j) abort(); /* a visitor that never refuses: only I/O can fail */
  struct stat sb;
  /* the file ends after its last good frame: frames and skipped damage up to there */
  if (stat(file0, &sb) != 0 || (size_t)sb.st_size != s.bytes + vd_journal_damaged_bytes(j)) abort();
  uint64_t position = vd_journal_append(j, "after", 5, &err);
  if (position != s.last + 1) abort();
  vd_journal_close(j);
  seen again = {0};
  j = vd_journal_open(db, &(vd_journal_options){0}, visit, &again, NULL, &err);
  if (!j || again.frames != s.frames + 1 || again.last != position) abort();
  vd_journal_close(j);
  return 0;
}
