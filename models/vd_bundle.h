/* vd_bundle: the version of a model bundle — one definition for the promotions bundles
 * (vd_model.h) and the triage bundles (vd_triage.h), used by training (stamping), loading
 * (checking), the content-addressed store and `verdict models rehash`.
 *
 * A bundle's version covers everything in it that can change a decision or its explanation:
 *
 *     version = SHA-256( C "\n" H )
 *
 * C is the manifest's canonical JSON without its own "version" member: the manifest as parsed,
 * written with keys sorted, no whitespace, reals with 17 significant digits, strings as UTF-8
 * (jansson JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(17)); H is the lowercase hex
 * SHA-256 of the model file's bytes (the file the manifest's "model_file" names). C holds no raw
 * newline, so the split is unambiguous. Editing any value of the manifest (a reason text, a
 * feature's encoding, the control arm, a metric) changes the version; re-indenting it or
 * reordering its keys does not. After a deliberate edit, `verdict models rehash DIR` stamps the
 * new version (vd_bundle_rehash); retraining stamps it too.
 *
 * Legacy scheme: bundles stamped before the version covered the manifest have version = H. A
 * bundle given to a config or a verb must carry the current version; only a bundle read back
 * from the data folder's store may carry the legacy one (allow_legacy), because the decision logs
 * written before name those versions and replay must keep finding them.
 *
 * Nothing here keeps state; strings are copied into the caller's buffers. */
#ifndef VD_BUNDLE_H
#define VD_BUNDLE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "vd_error.h"
#include "vd_hash.h"

/* The version of a bundle whose manifest is `manifest` (its "version" member is ignored) and
 * whose model file has the hex SHA-256 model_sha256. False (err) only when out of memory. */
bool vd_bundle_version(const json_t *manifest, const char *model_sha256,
                       char version[VD_SHA256_HEX_SIZE], vd_error *err);

/* Stamps a manifest a trainer is about to write with dump_flags (json_dumps flags): sets its
 * "version" (in place: the member keeps its position) to the version of the manifest as it will
 * read back from that text, and copies it into version. False (err) only when out of memory. */
bool vd_bundle_stamp(json_t *manifest, size_t dump_flags, const char *model_sha256,
                     char version[VD_SHA256_HEX_SIZE], vd_error *err);

/* Checks the manifest's "version" against the content (manifest and model_sha256). False with
 * err ("bundle_dir/manifest.json: version …") saying what to do: rehash after a deliberate
 * manifest edit, restore or retrain otherwise. A legacy version (see above) is accepted only with
 * allow_legacy, and refused otherwise with a message saying it is one. */
bool vd_bundle_check_version(const json_t *manifest, const char *bundle_dir, const char *model_file,
                             const char *model_sha256, bool allow_legacy, vd_error *err);

/* Re-stamps bundle_dir: reads manifest.json and the model file it names ("model_file", default
 * model.json), and rewrites manifest.json with the current version — only the version's value
 * changes in the text (the rest stays byte for byte; written to a temporary file, then renamed).
 * version gets the new version, *changed (may be NULL) whether it differed from the old one. */
bool vd_bundle_rehash(const char *bundle_dir, char version[VD_SHA256_HEX_SIZE], bool *changed,
                      vd_error *err);

/* `verdict models rehash DIR...` (and `verdict models version DIR...`, which prints the version
 * the bundle should carry and whether it does, exit 1 when one does not). */
int vd_verb_models(int argc, char **argv, FILE *out, FILE *err);

#endif
