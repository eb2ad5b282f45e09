/* vd_pan: finds payment card numbers (PANs) in free text and masks them before the text is
 * stored, logged, scored or sent anywhere.
 *
 * A PAN is 13 to 19 digits that pass the Luhn check, written as one run of digits or in groups
 * separated by 1 to 3 separator characters: ASCII punctuation and white space, Unicode spaces,
 * dashes, dots and invisible format characters ("4111.1111.1111.1111", "4111 - 1111 - ...",
 * "4111<NBSP>1111..."). Digits are ASCII or full-width (U+FF10-FF19), Arabic-Indic, Devanagari,
 * Bengali or mathematical ones. Letters next to it do not matter ("card4111111111111111").
 * Within a longer run of digit groups (a card number followed by an expiry or a CVV:
 * "4111 1111 1111 1111 12 27") every sub-run of whole groups is tried, longest first, so the
 * number is found there too. A single run of more than 19 digits is a reference number, not a
 * card, and is left alone; so are Luhn-invalid numbers (order numbers, phone numbers) and groups
 * four or more separators (or a word, or any other character) apart.
 *
 * The text is read as UTF-8 (strictly: invalid, overlong or truncated sequences are other
 * characters and copied unchanged); a mask covers whole characters only, so valid UTF-8 stays
 * valid. Time is linear in the length: at most 19 groups are looked at from each group.
 *
 * Each PAN is replaced by "****DDDD" (the last four digits in ASCII, which PCI DSS allows to be
 * shown): a human still sees which card, the text model sees a number where there was one (its
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
