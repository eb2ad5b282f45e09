/* The version of a model bundle (vd_bundle.h): canonical manifest + model file hash. */
#include "vd_bundle.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vd_args.h"
#include "vd_buf.h"

enum { MAX_MANIFEST_BYTES = 16 << 20 };

bool vd_bundle_version(const json_t *manifest, const char *model_sha256,
                       char version[VD_SHA256_HEX_SIZE], vd_error *err) {
  json_t *copy = json_copy((json_t *)manifest); /* shallow: only the top level loses a key */
  if (!copy) return vd_error_set(err, "out of memory");
  json_object_del(copy, "version");
  char *canonical =
      json_dumps(copy, JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(17) | JSON_ENCODE_ANY);
  json_decref(copy);
  if (!canonical) return vd_error_set(err, "out of memory");
  vd_buf b = {0};
  vd_buf_puts(&b, canonical);
  vd_buf_puts(&b, "\n");
  vd_buf_puts(&b, model_sha256);
  free(canonical);
  bool ok = !b.oom;
  if (ok)
    vd_sha256_hex(b.data, b.len, version);
  else
    vd_error_set(err, "out of memory");
  vd_buf_free(&b);
  return ok;
}

bool vd_bundle_stamp(json_t *manifest, size_t dump_flags, const char *model_sha256,
                     char version[VD_SHA256_HEX_SIZE], vd_error *err) {
  /* The hash is over the manifest as the loader will parse it: reals written with fewer digits
   * than a double holds read back as other numbers than the ones in memory. */
  char *text = json_dumps(manifest, dump_flags);
  json_t *written = text ? json_loads(text, 0, NULL) : NULL;
  free(text);
  if (!written) return vd_error_set(err, "out of memory");
  bool ok = vd_bundle_version(written, model_sha256, version, err);
  json_decref(written);
  if (ok && json_object_set_new(manifest, "version", json_string(version)) != 0)
    ok = vd_error_set(err, "out of memory");
  return ok;
}

bool vd_bundle_check_version(const json_t *manifest, const char *dir, const char *model_file,
                             const char *model_sha256, bool allow_legacy, vd_error *err) {
  const char *stamped = json_string_value(json_object_get(manifest, "version"));
  char expected[VD_SHA256_HEX_SIZE];
  if (!vd_bundle_version(manifest, model_sha256, expected, err)) return false;
  if (stamped && strcmp(stamped, expected) == 0) return true;
  bool old_scheme = stamped && strcmp(stamped, model_sha256) == 0;
  if (old_scheme && allow_legacy) return true;
  if (old_scheme)
    return vd_error_set(err,
                        "%s/manifest.json: version %.12s… is the SHA-256 of %s alone, as bundles "
                        "were stamped before the version covered the manifest too: run `verdict "
                        "models rehash %s` to stamp it (or retrain it with `verdict train`)",
                        dir, stamped, model_file, dir);
  return vd_error_set(err,
                      "%s/manifest.json: version %.12s… is not the bundle's content hash %.12s… "
                      "(manifest.json + %s): the bundle was altered after it was stamped. After "
                      "a deliberate edit of manifest.json (a reason text, an encoding, the "
                      "control arm) run `verdict models rehash %s` to stamp its new version; if "
                      "%s changed, restore it or retrain (`verdict train`)",
                      dir, stamped ? stamped : "(none)", expected, model_file, dir, model_file);
}

/* The manifest text with the version's value replaced: in place when the old value appears
 * exactly once as a JSON string (the rest of the text kept byte for byte), else re-written. */
static bool stamped_text(const char *text, json_t *manifest, const char *version, vd_buf *out) {
  const char *old = json_string_value(json_object_get(manifest, "version"));
  const char *at = NULL;
  size_t count = 0, n = old ? strlen(old) : 0;
  for (const char *p = text; old && n && (p = strstr(p, old)); p += n)
    if (p > text && p[-1] == '"' && p[n] == '"' && count++ == 0) at = p;
  if (count == 1) {
    vd_buf_append(out, text, (size_t)(at - text));
    vd_buf_puts(out, version);
    vd_buf_puts(out, at + n);
    return !out->oom;
  }
  json_object_set_new(manifest, "version", json_string(version));
  char *dumped = json_dumps(manifest, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
  if (!dumped) return false;
  vd_buf_puts(out, dumped);
  vd_buf_puts(out, "\n");
  free(dumped);
  return !out->oom;
}

static bool write_replacing(const char *path, const vd_buf *b, vd_error *err) {
  char tmp[4200];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
    return vd_error_set(err, "path too long: %s", path);
  FILE *f = vd_fopen_write_regular(tmp, err); /* a FIFO there would block the open */
  if (!f) return false;
  bool ok = fwrite(b->data, 1, b->len, f) == b->len && fflush(f) == 0 && fsync(fileno(f)) == 0;
  ok = fclose(f) == 0 && ok;
  if (!ok || rename(tmp, path) != 0) {
    vd_error_set(err, "cannot write %s: %s", path, strerror(errno));
    unlink(tmp);
    return false;
  }
  return true;
}

bool vd_bundle_rehash(const char *dir, char version[VD_SHA256_HEX_SIZE], bool *changed,
                      vd_error *err) {
  char mpath[4096], model_path[8200];
  if ((size_t)snprintf(mpath, sizeof mpath, "%s/manifest.json", dir) >= sizeof mpath)
    return vd_error_set(err, "path too long: %s", dir);
  size_t size;
  char *text = vd_read_file(mpath, MAX_MANIFEST_BYTES, &size, err);
  if (!text) return false;
  json_error_t jerr;
  json_t *manifest = json_loadb(text, size, JSON_REJECT_DUPLICATES, &jerr);
  bool ok = false;
  vd_buf b = {0};
  if (!manifest) {
    vd_error_at(err, mpath, jerr.line, jerr.column, "not valid JSON: %s", jerr.text);
    goto done;
  }
  if (!json_is_object(manifest)) {
    vd_error_set(err, "%s: expected a JSON object", mpath);
    goto done;
  }
  const json_t *file = json_object_get(manifest, "model_file");
  const char *model_file = file ? json_string_value(file) : "model.json";
  if (!model_file || !*model_file || strchr(model_file, '/') || model_file[0] == '.') {
    vd_error_field(err, "model_file", "must be a file name inside the bundle");
    vd_error_prefix(err, "%s", mpath);
    goto done;
  }
  snprintf(model_path, sizeof model_path, "%s/%s", dir, model_file);
  char model_sha[VD_SHA256_HEX_SIZE];
  if (!vd_sha256_file_hex(model_path, model_sha, err) ||
      !vd_bundle_version(manifest, model_sha, version, err))
    goto done;
  const char *old = json_string_value(json_object_get(manifest, "version"));
  bool differs = !old || strcmp(old, version) != 0;
  if (changed) *changed = differs;
  if (!differs) {
    ok = true;
    goto done;
  }
  if (!stamped_text(text, manifest, version, &b)) {
    vd_error_set(err, "out of memory");
    goto done;
  }
  ok = write_replacing(mpath, &b, err);
done:
  vd_buf_free(&b);
  json_decref(manifest);
  free(text);
  return ok;
}

/* ---- the verb ---- */

enum { MAX_BUNDLES = 64 };

/* `verdict models version DIR`: the version the bundle should carry (on out, unless NULL), and
 * whether it does. */
static bool show_version(const char *dir, FILE *out, vd_error *err) {
  char mpath[4096], model_path[8200], model_sha[VD_SHA256_HEX_SIZE], version[VD_SHA256_HEX_SIZE];
  snprintf(mpath, sizeof mpath, "%s/manifest.json", dir);
  json_error_t jerr;
  json_t *manifest = json_load_file(mpath, JSON_REJECT_DUPLICATES, &jerr);
  if (!manifest) return vd_error_at(err, mpath, jerr.line, jerr.column, "%s", jerr.text);
  const json_t *file = json_object_get(manifest, "model_file");
  const char *model_file = file ? json_string_value(file) : "model.json";
  bool ok = model_file && !strchr(model_file, '/') && model_file[0] != '.';
  if (!ok) vd_error_set(err, "%s: model_file must be a file name inside the bundle", mpath);
  if (ok) {
    snprintf(model_path, sizeof model_path, "%s/%s", dir, model_file);
    ok = vd_sha256_file_hex(model_path, model_sha, err) &&
         vd_bundle_version(manifest, model_sha, version, err);
  }
  if (ok) {
    if (out) fprintf(out, "%s: %s\n", dir, version);
    ok = vd_bundle_check_version(manifest, dir, model_file, model_sha, false, err);
  }
  json_decref(manifest);
  return ok;
}

int vd_verb_models(int argc, char **argv, FILE *out, FILE *errf) {
  static const vd_verb_help help = {
      "models",
      "usage: verdict models rehash DIR...\n"
      "       verdict models version DIR...\n\n"
      "A model bundle's version is the SHA-256 of its model file and its manifest (every\n"
      "field but the version itself), so a bundle edited by hand no longer loads until it\n"
      "is stamped again. `rehash` stamps each bundle folder DIR with its version after a\n"
      "deliberate edit of manifest.json (a reason text, a feature's encoding, the control\n"
      "arm): only the manifest's \"version\" value changes, and decisions then name the new\n"
      "version. `version` prints the version each bundle should carry and checks it.",
      "exit status: 0 done, 1 a bundle could not be read or written (version: carries\n"
      "another version), 2 usage."};
  vd_option opts[] = {{"quiet", false, NULL, "print nothing but errors"}};
  const char *pos[MAX_BUNDLES + 1];
  size_t npos = 0;
  int parsed = vd_args_verb(&help, argc, argv, 1, opts, 1, pos, MAX_BUNDLES + 1, &npos, out, errf);
  if (parsed != VD_ARGS_GO_ON) return parsed;
  if (npos == 0) return vd_args_usage_error("models", errf, "expected rehash or version");
  bool rehash = strcmp(pos[0], "rehash") == 0;
  if (!rehash && strcmp(pos[0], "version") != 0)
    return vd_args_usage_error("models", errf, "unknown subcommand \"%s\" (rehash, version)",
                               pos[0]);
  if (npos < 2) return vd_args_usage_error("models", errf, "%s needs a bundle folder", pos[0]);
  bool quiet = vd_args_get(opts, 1, "quiet") != NULL;
  int status = 0;
  for (size_t i = 1; i < npos; i++) {
    vd_error e = {0};
    char version[VD_SHA256_HEX_SIZE];
    bool changed = false;
    bool ok = rehash ? vd_bundle_rehash(pos[i], version, &changed, &e)
                     : show_version(pos[i], quiet ? NULL : out, &e);
    if (!ok) {
      char text[1024];
      vd_error_format(&e, text, sizeof text);
      fprintf(errf, "verdict models %s: %s\n", pos[0], text);
      status = 1;
    } else if (rehash && !quiet) {
      fprintf(out, "%s: version %s%s\n", pos[i], version, changed ? " (stamped)" : " (unchanged)");
    }
  }
  return status;
}
