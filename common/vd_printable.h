/* vd_printable: text a client wrote, made safe to print on a terminal or in a plain-text report.
 *
 * A value shown in a line-oriented text must not start lines of its own ("\n  Route: payments"
 * would forge a line), send terminal escapes ("\u001b[31m") or reorder what follows (bidi
 * overrides). vd_printable_append copies UTF-8 text, writing every such code point as an escape:
 * \n, \r, \t, \\ for a backslash (so a client-typed "\n" cannot pass for an escaped newline),
 * and \uXXXX (\UXXXXXXXX above U+FFFF) for the other C0/C1 controls, DEL, U+2028/U+2029
 * (line/paragraph separators), the bidi marks, embeddings, overrides and isolates (U+061C,
 * U+200E/F, U+202A-U+202E, U+2066-U+2069), zero-width and other invisible characters
 * (U+200B-U+200D, U+2060-U+2065, U+FEFF, the soft hyphen U+00AD, U+034F, U+180E, U+3164, the
 * interlinear annotation marks U+FFF9-U+FFFB, the tag characters U+E0000-U+E007F) and any byte that
 * is not valid UTF-8 (\xHH). Everything else is copied as is. */
#ifndef VD_PRINTABLE_H
#define VD_PRINTABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "vd_buf.h"

/* Appends text[0..len) to b, escaped as above. */
void vd_printable_append(vd_buf *b, const char *text, size_t len);
/* True when text[0..len) would be copied unchanged (nothing to escape). */
bool vd_printable_is_plain(const char *text, size_t len);

/* For quoting bad input in an error message: the first 40 bytes of text[0..len) in printable
 * ASCII, every other byte (and '\\') as \xHH, "..." when cut; written to out (NUL-terminated,
 * at most size bytes). */
void vd_printable_prefix(const char *text, size_t len, char *out, size_t size);

#endif
