#include "vd_auth.h"

#include <strings.h>

vd_auth_result vd_auth_check(const vd_config_key *keys, size_t key_count, const char *authorization,
                             unsigned required, const char **key_name) {
  if (key_name) *key_name = NULL;
  /* RFC 7235: the scheme is case-insensitive; one or more spaces separate it from the token. */
  if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0) return VD_AUTH_MISSING;
  const char *token = authorization + 7;
  while (*token == ' ') token++;
  size_t len = 0;
  while (token[len] && token[len] != ' ' && token[len] != '\t') len++;
  if (len == 0 || token[len]) return VD_AUTH_MISSING;
  char presented[VD_SHA256_HEX_SIZE];
  vd_sha256_hex(token, len, presented);
  const vd_config_key *match = NULL;
  for (size_t i = 0; i < key_count; i++) /* no early exit: same work whichever key matches */
    if (vd_constant_time_equal(presented, keys[i].sha256, VD_SHA256_HEX_SIZE - 1)) match = &keys[i];
  if (!match) return VD_AUTH_UNKNOWN;
  if (key_name) *key_name = match->name;
  return (match->roles & required) ? VD_AUTH_OK : VD_AUTH_FORBIDDEN;
}
