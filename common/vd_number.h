/* vd_number: a number written as text (a CSV cell, a --set value) read exactly as a JSON body's
 * number is, so the same value is accepted or refused whichever way it arrives.
 *
 * The grammar is JSON's (RFC 8259 section 6): -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?,
 * decimal only, nothing around it. As jansson reads a body: a number without fraction or
 * exponent is an integer and must fit in 64 bits; any other is a double and must not overflow
 * (subnormals and values that round to 0 are kept). Refused: hexadecimal (0x10), a leading '+'
 * or zero (+5, 07), .5 and 5., inf and nan, spaces, a NUL byte — each with its reason.
 *
 * Stateless; nothing is allocated that outlives the call. */
#ifndef VD_NUMBER_H
#define VD_NUMBER_H

#include <stdbool.h>
#include <stddef.h>

#include "vd_error.h"

typedef struct vd_number {
  bool is_integer;   /* no fraction, no exponent: `integer` holds it exactly */
  long long integer; /* when is_integer */
  double real;       /* the value as the nearest double (both kinds) */
} vd_number;

/* The length of the JSON number at the start of text[0..len) (0 when none starts there): the
 * grammar above, its fraction and exponent taken only when whole ("1." spans 1). For scanners of
 * JSON text (vd_json_check); vd_number_parse reads with it too. */
size_t vd_number_span(const char *text, size_t len);

/* Parses text[0..len) as one JSON number. false with err's message saying why ("hexadecimal is
 * not a JSON number: write it in decimal"); the caller adds where (file:line, column). */
bool vd_number_parse(const char *text, size_t len, vd_number *out, vd_error *err);

#endif
