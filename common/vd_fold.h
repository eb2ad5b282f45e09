/* vd_fold: folding UTF-8 text to plain ASCII for matching names and words.
 *
 * Latin letters with diacritics lose them ("Zürich" -> "Zurich", "Wrocław" -> "Wroclaw",
 * "Straße" -> "Strasse", "Ærø" -> "AEro"), typographic dashes, quotes, spaces and ellipses become
 * their ASCII forms, every other non-ASCII character and every invalid UTF-8 byte becomes one
 * space. Case is kept (lowercase separately if wanted), so callers can still see capitals.
 * Covers Latin-1 Supplement, Latin Extended-A/B and Latin Extended Additional (Vietnamese). */
#ifndef VD_FOLD_H
#define VD_FOLD_H

#include <stddef.h>

/* Folds in[0..len) into out and NUL-terminates it; returns the folded length. The folded text is
 * never longer than the input, so out_size >= len + 1 always suffices; with less, the result is
 * cut at out_size - 1 bytes. No allocation. */
size_t vd_fold_ascii(const char *in, size_t len, char *out, size_t out_size);

#endif
