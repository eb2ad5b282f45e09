/* vd_uuid: time-ordered UUIDv7 identifiers (RFC 9562), used as decision ids.
 *
 * Layout of an id: 48-bit Unix milliseconds | version 7 | 42-bit counter | variant | 32 random
 * bits. The counter starts at a random value (top bit clear) each new millisecond and increases by
 * one for every further id in the same millisecond, so ids from one generator are strictly
 * increasing (byte-wise and as strings) even within a millisecond and when the wall clock steps
 * backwards (the generator then keeps using its last millisecond). Randomness comes from
 * getrandom().
 *
 * A vd_uuid_gen is owned by the caller (vd_uuid_gen_free) and is safe to share between threads. */
#ifndef VD_UUID_H
#define VD_UUID_H

#include <stdbool.h>
#include <stdint.h>

#include "vd_error.h"

enum { VD_UUID_STRING_SIZE = 37 }; /* "xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx" and a NUL */

typedef struct vd_uuid_gen vd_uuid_gen;

vd_uuid_gen *vd_uuid_gen_new(vd_error *err);
void vd_uuid_gen_free(vd_uuid_gen *gen);

/* Writes a new lowercase UUIDv7 string. Fails only when the kernel refuses random bytes. */
bool vd_uuid_v7(vd_uuid_gen *gen, char out[VD_UUID_STRING_SIZE], vd_error *err);
/* As vd_uuid_v7 with the clock reading given (Unix ms), for tests of clock steps. */
bool vd_uuid_v7_at(vd_uuid_gen *gen, int64_t unix_ms, char out[VD_UUID_STRING_SIZE], vd_error *err);

/* True when s is a canonical lowercase or uppercase UUID string (any version). */
bool vd_uuid_valid(const char *s);
/* The Unix milliseconds of a UUIDv7 string, or -1 when s is not a valid version-7 UUID. */
int64_t vd_uuid_v7_unix_ms(const char *s);

#endif
