/* vd_json_schema: validation against a subset of JSON Schema (draft 2020-12 semantics) — the
 * keywords every LLM task's output schema uses:
 *   type (a name or a list of names: object, array, string, integer, number, boolean, null),
 *   properties, required, additionalProperties (false or a schema), items, minItems, maxItems,
 *   enum, minimum, maximum, minLength, maxLength (in UTF-8 code points); and, for documents of
 *   several shapes (the decision trace, one shape per kind), const, allOf, if/then/else and
 *   $ref to an entry of the root's $defs ("#/$defs/NAME"; no other references).
 * "title", "description" and "$schema" are accepted and ignored. Any other keyword makes
 * vd_json_schema_check fail, so a schema never silently means less than it says.
 *
 * Ownership: nothing is retained; the caller keeps the schema and instance. diags entries are
 * appended (free them with vd_diags_free). Thread-safe (no state). */
#ifndef VD_JSON_SCHEMA_H
#define VD_JSON_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>

#include "vd_error.h"

/* Checks that schema is well formed and uses only the supported keywords. err names the schema
 * path of the first problem ("properties.days.items: unknown keyword \"oneOf\""). */
bool vd_json_schema_check(const json_t *schema, vd_error *err);

/* Validates instance; appends every violation (field path such as "days[0].activities[2].title"
 * in err.field, "(root)" for the document itself) to diags. Returns true when valid. */
bool vd_json_schema_validate(const json_t *schema, const json_t *instance, vd_diags *diags);

#endif
