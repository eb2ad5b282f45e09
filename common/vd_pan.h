/* vd_pan: finds payment card numbers (PANs) in free text and masks them before the text is
 * stored, logged, scored or sent anywhere.
 *
 * A PAN is 13 to 19 digits that pass the Luhn check, written either as one run of digits or in
 * groups separated by single spaces or dashes ("4111 1111 1111 1111", "4111-1111-1111-1111"),
 * not glued to letters or other digits. Within a longer run of digit groups (a card number
 * followed by an expiry or a CVV: "4111 1111 1111 1111 12 27") every sub-run of whole groups is
 * tried, longest first, so the number is found there too. A single run of more than 19 digits is
 * a reference number, not a card, and is left alone; so are Luhn-invalid numbers (order numbers,
 * phone numbers).
 *
 * Each PAN is replaced by "****DDDD" (the last four digits, which PCI DSS allows to be shown):
 * a human still sees which card, the text model sees a number where there was one (its
 * featuriser reads "****1111" like the digits it replaces, so masking does not move the
 * predicted intent; a wordy placeholder such as "[card ending 1111]" would pull requests towards
 * card intents), and no full number survives.
 *
 * Stateless and thread-safe; the output buffer is the caller's.
 */
#ifndef VD_PAN_H
#define VD_PAN_H

#include <stdbool.h>
#include <stddef.h>

#include "vd_buf.h"

/* True when digits[0..count) (ASCII digits only) pass the Luhn check. */
bool vd_luhn_valid(const char *digits, size_t count);

/* Appends text[0..len) to out with every PAN replaced; returns how many were replaced. On out
 * of memory out->oom is set (check it). */
size_t vd_pan_mask(const char *text, size_t len, vd_buf *out);

#endif
