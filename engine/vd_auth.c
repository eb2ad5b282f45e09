#include "vd_auth.h"

#include <stdbool.h>
#include <strings.h>

static bool is_ows(char c) { return c == ' ' || c == '\t'; }

vd_auth_result vd_auth_check(const vd_config_key *keys, size_t key_count, const char *authorization,
                             unsigned required, const char **key_name) {
  if (key_name) *key_name = NULL;
  if (!authorization) return VD_AUTH_MISSING;
  /* RFC 9110 5.5: a field value excludes the optional whitespace (SP / HTAB) around it, so
   * "Bearer KEY " is "Bearer KEY". */
  const char *value = authorization;
  while (is_ows(*value)) value++;
  /* RFC 9110 11.4: the scheme is case-insensitive; one or more spaces separate it from the
   * token. */
  if (strncasecmp(value, "Bearer ", 7) != 0) return VD_AUTH_MISSING;
  const char *token = value + 7;
  while (*token == ' ') token++;
  size_t len = 0;
  while (token[len] && !is_ows(token[len])) len++;
  const char *rest = token + len;
  while (is_ows(*rest)) rest++;
  if (len == 0 || *rest) return VD_AUTH_MISSING;
  char presented[VD_SHA256_HEX_SIZE];
  vd_sha256_hex(token, len, presented);
  const vd_config_key *match = NULL;
  for (size_t i = 0; i < key_count; i++) /* no early exit: same work whichever key matches */
    if (vd_constant_time_equal(presented, keys[i].sha256, VD_SHA256_HEX_SIZE - 1)) match = &keys[i];
  if (!match) return VD_AUTH_UNKNOWN;
  if (key_name) *key_name = match->name;
  return (match->roles & required) ? VD_AUTH_OK : VD_AUTH_FORBIDDEN;
}
