/* vd_suggest: "did you mean ...?" for misspelt names (fields, keys, actions).
 *
 * Nothing is allocated; the returned pointer is one of the caller's candidates. */
#ifndef VD_SUGGEST_H
#define VD_SUGGEST_H

#include <stddef.h>

/* The candidate closest to `word` by edit distance (insertions, deletions, substitutions and
 * swaps of adjacent characters, case-insensitive), or NULL when none is close enough to be a
 * plausible typo (distance at most 1 for short words, 2 from 5 characters, 3 from 12).
 * Candidates equal to `word` are never suggested. NULL entries in candidates are skipped. */
const char *vd_suggest(const char *word, const char *const *candidates, size_t count);

/* Edit distance as above (capped at 255: longer words are compared on their first 255 bytes). */
size_t vd_edit_distance(const char *a, const char *b);

#endif
