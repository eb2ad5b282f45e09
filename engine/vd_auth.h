/* vd_auth: API keys. A request carries `Authorization: Bearer KEY`; the config stores only each
 * key's SHA-256, so a leaked config file does not leak keys. The presented key is hashed and
 * compared with EVERY configured hash in constant time (vd_constant_time_equal), so neither the
 * position of a mismatch nor which key matched shows in the response time.
 *
 * Stateless: the keys are borrowed from the config for the call. */
#ifndef VD_AUTH_H
#define VD_AUTH_H

#include <stddef.h>

#include "vd_config.h"

typedef enum vd_auth_result {
  VD_AUTH_OK,        /* a known key with the required role */
  VD_AUTH_MISSING,   /* no Authorization header, or not "Bearer KEY": 401 */
  VD_AUTH_UNKNOWN,   /* a key that matches no configured key: 401 */
  VD_AUTH_FORBIDDEN, /* a known key without the required role: 403 */
} vd_auth_result;

/* Checks an Authorization header value (may be NULL) for `required` (a vd_role). *key_name (may
 * be NULL) gets the matching key's name (borrowed from keys) when the key is known. */
vd_auth_result vd_auth_check(const vd_config_key *keys, size_t key_count, const char *authorization,
                             unsigned required, const char **key_name);

#endif
