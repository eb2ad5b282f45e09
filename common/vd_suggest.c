#include "vd_suggest.h"

#include <ctype.h>
#include <string.h>

enum { MAX_WORD = 255 };

static size_t min3(size_t a, size_t b, size_t c) {
  size_t m = a < b ? a : b;
  return m < c ? m : c;
}

/* Optimal string alignment distance with three rolling rows (no heap). */
size_t vd_edit_distance(const char *a, const char *b) {
  size_t n = strlen(a), m = strlen(b);
  if (n > MAX_WORD) n = MAX_WORD;
  if (m > MAX_WORD) m = MAX_WORD;
  size_t rows[3][MAX_WORD + 1];
  size_t *before = rows[0], *previous = rows[1], *current = rows[2];
  for (size_t j = 0; j <= m; j++) previous[j] = j;
  for (size_t i = 1; i <= n; i++) {
    current[0] = i;
    for (size_t j = 1; j <= m; j++) {
      int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
      size_t cost = ca == cb ? 0 : 1;
      current[j] = min3(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost);
      if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
          tolower((unsigned char)a[i - 2]) == cb && before[j - 2] + 1 < current[j])
        current[j] = before[j - 2] + 1;
    }
    size_t *recycled = before;
    before = previous;
    previous = current;
    current = recycled;
  }
  return previous[m];
}

const char *vd_suggest(const char *word, const char *const *candidates, size_t count) {
  size_t length = strlen(word);
  size_t allowed = length >= 12 ? 3 : length >= 5 ? 2 : 1;
  const char *best = NULL;
  size_t best_distance = allowed + 1;
  for (size_t i = 0; i < count; i++) {
    if (!candidates[i] || strcmp(candidates[i], word) == 0) continue;
    size_t d = vd_edit_distance(word, candidates[i]);
    if (d < best_distance) {
      best = candidates[i];
      best_distance = d;
    }
  }
  return best;
}
