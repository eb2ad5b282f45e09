/* bench_pan: cost of card-number masking (vd_pan_mask) per request text — the CLINC150
 * validation texts (what triage requests look like: almost never a digit) and the same texts
 * with a card number written in one of the masked formats appended — mean CPU time per text over
 * PASSES passes, one thread (thread CPU time, independent of other load on the machine).
 *
 * usage: bench_pan [PASSES [plain|carded]]   (default 20 passes over both sets of
 * VERDICT_SHARED_DIR/data/clinc150/val.jsonl; naming one set runs only it, e.g. under callgrind)
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vd_buf.h"
#include "vd_pan.h"

static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Masks every text `passes` times; prints the mean per text and returns the PANs found. */
static size_t run(const char *what, char **texts, size_t count, size_t passes) {
  vd_buf out = {0};
  size_t found = 0, bytes = 0;
  uint64_t t0 = thread_cpu_ns();
  for (size_t p = 0; p < passes; p++)
    for (size_t i = 0; i < count; i++) {
      vd_buf_reset(&out);
      size_t len = strlen(texts[i]);
      found += vd_pan_mask(texts[i], len, &out);
      bytes += len;
    }
  uint64_t ns = thread_cpu_ns() - t0;
  const size_t n = count * passes;
  printf("%-28s n=%zu  mean %.3f us/text  %.2f ns/byte  masked %zu\n", what, n,
         (double)ns / (double)n / 1000.0, (double)ns / (double)bytes, found / passes);
  vd_buf_free(&out);
  return found;
}

int main(int argc, char **argv) {
  size_t passes = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 20;
  if (passes == 0) passes = 20;
  vd_error err = {0};
  size_t size;
  char *data = vd_read_file(VERDICT_SHARED_DIR "/data/clinc150/val.jsonl", 64u << 20, &size, &err);
  if (!data) {
    fprintf(stderr, "bench_pan: %s (the shared data folder is needed)\n", err.message);
    return 1;
  }
  size_t cap = 4096, count = 0;
  char **texts = malloc(cap * sizeof *texts);
  char **carded = malloc(cap * sizeof *carded);
  static const char *const cards[] = {" 4111 1111 1111 1111", " card4111.1111.1111.1111",
                                      " 5500\xc2\xa0"
                                      "0055\xc2\xa0"
                                      "5555\xc2\xa0"
                                      "5559",
                                      " 3782-822463-10005"};
  for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
    json_t *j = json_loads(line, 0, NULL);
    const char *t = json_string_value(json_object_get(j, "text"));
    if (t) {
      if (count == cap) {
        cap *= 2;
        texts = realloc(texts, cap * sizeof *texts);
        carded = realloc(carded, cap * sizeof *carded);
      }
      const char *card = cards[count % 4];
      carded[count] = malloc(strlen(t) + strlen(card) + 1);
      strcpy(carded[count], t);
      strcat(carded[count], card);
      texts[count++] = strdup(t);
    }
    json_decref(j);
  }
  free(data);
  if (count == 0) {
    fprintf(stderr, "bench_pan: no texts in the validation file\n");
    return 1;
  }
  const char *only = argc > 2 ? argv[2] : "";
  if (strcmp(only, "carded") != 0) run("clinc150 val texts", texts, count, passes);
  if (strcmp(only, "plain") != 0) run("same + a card number", carded, count, passes);
  for (size_t i = 0; i < count; i++) {
    free(texts[i]);
    free(carded[i]);
  }
  free(texts);
  free(carded);
  return 0;
}
