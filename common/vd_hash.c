#include "vd_hash.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "vd_buf.h"

static void to_hex(const unsigned char *digest, size_t size, char *hex) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < size; i++) {
    hex[2 * i] = digits[digest[i] >> 4];
    hex[2 * i + 1] = digits[digest[i] & 15];
  }
  hex[2 * size] = '\0';
}

void vd_sha256_hex(const void *data, size_t size, char hex[VD_SHA256_HEX_SIZE]) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data, size, digest, &len, EVP_sha256(), NULL);
  to_hex(digest, len, hex);
}

bool vd_sha256_file_hex(const char *path, char hex[VD_SHA256_HEX_SIZE], vd_error *err) {
  FILE *f = vd_fopen_regular(path, err);
  if (!f) return false;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
  unsigned char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) EVP_DigestUpdate(ctx, chunk, n);
  bool ok = !ferror(f);
  fclose(f);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, digest, &len);
  EVP_MD_CTX_free(ctx);
  if (!ok) return vd_error_set(err, "cannot read %s", path);
  to_hex(digest, len, hex);
  return true;
}

void vd_hmac_sha256_hex(const void *key, size_t key_size, const void *data, size_t size,
                        char hex[VD_SHA256_HEX_SIZE]) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key, (int)key_size, data, size, digest, &len);
  to_hex(digest, len, hex);
}

bool vd_constant_time_equal(const void *a, const void *b, size_t size) {
  return CRYPTO_memcmp(a, b, size) == 0;
}
