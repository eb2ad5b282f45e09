/* vd_store: the content-addressed store of versions in the data folder (rulesets, schemas, model
 * bundles), so that `verdict replay` can find any version a past decision used.
 *
 * Layout: DATA_DIR/<kind>/<version>/<files...>, e.g. DATA_DIR/models/3f2a.../model.json.
 * kind is [a-z0-9_-]+ ("models", "rulesets", "schemas"); version is [A-Za-z0-9._-]+ not starting
 * with a dot — normally the SHA-256 the owning module computes (the store does not re-hash: each
 * kind defines its own version). A stored version is immutable: it appears at once, complete
 * (written into a temporary folder, fsync'ed, then renamed into place), and putting a version that
 * is already there keeps the existing one (same version = same content) and succeeds.
 *
 * Usage:
 *     vd_store_txn *t = vd_store_begin(data_dir, "models", version, &err);
 *     ok = t && vd_store_add_tree(t, "", bundle_dir, &err) && vd_store_commit(t, path, size, &err);
 *     (on a failed add, call vd_store_abort(t); commit frees t whether it succeeds or not)
 *     ...
 *     vd_store_path(data_dir, "models", version, path, size, &err)  →  DATA_DIR/models/<version>
 *
 * Names inside a version are relative paths ("schema.yaml", "sub/dir/file"): no "..", ".", empty
 * components or leading "/". Ownership: a vd_store_txn is freed by vd_store_commit or
 * vd_store_abort. Concurrent puts of the same version (threads or processes) are safe.
 */
#ifndef VD_STORE_H
#define VD_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "vd_error.h"

typedef struct vd_store_txn vd_store_txn;

/* Removes a folder and everything below it, not following symbolic links (best effort: for
 * folders this process made, such as a store's temporary ones). */
void vd_remove_tree(const char *path);

/* Starts writing a version (creates DATA_DIR/<kind>/ if needed). */
vd_store_txn *vd_store_begin(const char *data_dir, const char *kind, const char *version,
                             vd_error *err);
/* Adds one file with the given bytes. */
bool vd_store_add_bytes(vd_store_txn *t, const char *name, const void *bytes, size_t size,
                        vd_error *err);
/* Adds a copy of the file at src_path under `name`. */
bool vd_store_add_file(vd_store_txn *t, const char *name, const char *src_path, vd_error *err);
/* Adds a copy of every regular file and folder under src_dir, below `name` ("" = the version's
 * root). Anything that is neither (a socket, a device) is refused. */
bool vd_store_add_tree(vd_store_txn *t, const char *name, const char *src_dir, vd_error *err);
/* Puts the version in place (or keeps the one already there) and writes its folder's path into
 * path (may be NULL). Frees t. */
bool vd_store_commit(vd_store_txn *t, char *path, size_t size, vd_error *err);
/* Discards what was written. Frees t; NULL is fine. */
void vd_store_abort(vd_store_txn *t);

/* The folder of a stored version. False with err ("no models version X in DATA_DIR") when it is
 * not there or the names are invalid. */
bool vd_store_path(const char *data_dir, const char *kind, const char *version, char *path,
                   size_t size, vd_error *err);

#endif
