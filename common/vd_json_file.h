/* vd_json_file: reads a JSON file a user names, safely.
 *
 * The file goes through vd_read_file, so a FIFO, a device, a socket or a folder is refused at once
 * (jansson's json_load_file would block on a FIFO and read /dev/zero until memory runs out), and a
 * file over max_size is refused. The error names the file and the cause: "PATH is a FIFO, not a
 * regular file", or PATH:line:col "not valid JSON: ...". The caller owns (json_decref) the value.
 */
#ifndef VD_JSON_FILE_H
#define VD_JSON_FILE_H

#include <jansson.h>
#include <stddef.h>

#include "vd_error.h"

/* flags are jansson's decoding flags (JSON_REJECT_DUPLICATES, ...). NULL on failure. */
json_t *vd_json_load_file(const char *path, size_t max_size, size_t flags, vd_error *err);

#endif
