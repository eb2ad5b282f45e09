/* vd_hash: SHA-256 digests (OpenSSL libcrypto), as used for content-addressed versions. */
#ifndef VD_HASH_H
#define VD_HASH_H

#include <stdbool.h>
#include <stddef.h>

#include "vd_error.h"

enum { VD_SHA256_HEX_SIZE = 65 }; /* 64 hex digits and a NUL */

/* Writes the lowercase hex SHA-256 of data into hex (VD_SHA256_HEX_SIZE bytes). */
void vd_sha256_hex(const void *data, size_t size, char hex[VD_SHA256_HEX_SIZE]);
/* The same for a file's contents. Returns false with err set when the file cannot be read. */
bool vd_sha256_file_hex(const char *path, char hex[VD_SHA256_HEX_SIZE], vd_error *err);
/* Lowercase hex HMAC-SHA-256 of data under key. */
void vd_hmac_sha256_hex(const void *key, size_t key_size, const void *data, size_t size,
                        char hex[VD_SHA256_HEX_SIZE]);
/* Compares two byte strings in time independent of where they differ (for secrets). */
bool vd_constant_time_equal(const void *a, const void *b, size_t size);

#endif
