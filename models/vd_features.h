/* vd_features: the feature encoding of a model — which request fields it reads and how each
 * becomes model input columns. The SAME encoder runs at training (over CSV rows turned into
 * request JSON) and at scoring (over normalised request JSON), so the two cannot drift apart.
 *
 * A feature spec (in train.yaml and, identically, in manifest.json) is a list of features:
 *
 *   - name: history              # the feature's name (reason codes, contributions)
 *     source: subject.history    # dotted path in the (normalised) request
 *     column: history            # CSV column at training (default: name)
 *     encoding: numeric          # numeric | bool | enum
 *     missing: native            # native (NaN: XGBoost's learned default branch) | error
 *                                # | impute (then `impute: VALUE`; numeric and bool only)
 *   - name: zip_code
 *     source: subject.zip_code
 *     encoding: enum             # one-hot, one column per category in the listed order
 *     categories: [Urban, Surburban, Rural]
 *     unknown: other             # a value not listed: other (an extra "=other" column) | zero
 *                                # (all columns 0) | error
 *     missing: native            # native (all columns NaN) | category (an extra "=missing"
 *                                # column) | error
 *
 * Encoded columns are named "history", "zip_code=Urban", ...; an uplift model appends one column
 * per treatment arm, "treatment=Mens E-Mail" (1 for that arm, 0 otherwise; all 0 = control).
 *
 * Ownership: vd_features_parse returns an immutable encoder the caller frees with
 * vd_features_free; it may be shared by any number of threads. Strings returned are borrowed.
 */
#ifndef VD_FEATURES_H
#define VD_FEATURES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "vd_error.h"

typedef struct vd_features vd_features;

typedef enum vd_feature_encoding {
  VD_ENCODING_NUMERIC,
  VD_ENCODING_BOOL,
  VD_ENCODING_ENUM,
} vd_feature_encoding;

/* Parses the feature list (a JSON array as above) and the optional treatment arms (JSON array of
 * strings, NULL for a model without treatment columns). Errors name the field path, prefixed
 * with `where` ("features[2].encoding: expected numeric, bool or enum, got \"text\""). */
vd_features *vd_features_parse(const json_t *features, const json_t *arms, const char *where,
                               vd_error *err);
void vd_features_free(vd_features *features);

/* The canonical JSON form of the feature list (as parsed, every default written out, plus the
 * encoded `columns` of each feature); parsing it back gives the same encoder. New reference. */
json_t *vd_features_to_json(const vd_features *features);

size_t vd_features_count(const vd_features *features); /* input features */
const char *vd_features_name(const vd_features *features, size_t feature);
const char *vd_features_source(const vd_features *features, size_t feature);
const char *vd_features_csv_column(const vd_features *features, size_t feature);
vd_feature_encoding vd_features_encoding(const vd_features *features, size_t feature);
/* Enum categories (0 for other encodings). */
size_t vd_features_category_count(const vd_features *features, size_t feature);
const char *vd_features_category(const vd_features *features, size_t feature, size_t index);

/* Encoded columns: the features' columns, then one per treatment arm. */
size_t vd_features_width(const vd_features *features);
size_t vd_features_base_width(const vd_features *features); /* without treatment columns */
const char *vd_features_column_name(const vd_features *features, size_t column);
/* The input feature a column belongs to, or vd_features_count() for a treatment column. */
size_t vd_features_column_feature(const vd_features *features, size_t column);

size_t vd_features_arm_count(const vd_features *features);
const char *vd_features_arm(const vd_features *features, size_t arm);

/* Encodes the features of a request into out[0 .. base_width). Errors name the request field:
 * "subject.zip_code: category \"Moon\" is not one of Urban, Surburban, Rural". */
bool vd_features_encode(const vd_features *features, const json_t *request, float *out,
                        vd_error *err);
/* Writes the treatment columns out[base_width .. width): `treatment` must be an arm, or the
 * control value (all zeros). */
bool vd_features_set_treatment(const vd_features *features, const char *treatment,
                               const char *control, float *out, vd_error *err);

/* Training input: finds each feature's CSV column in a header row (column_of[feature] = index). */
bool vd_features_bind_csv(const vd_features *features, const char *const *header, size_t count,
                          const char *file, size_t *column_of, vd_error *err);
/* Turns one CSV record into a request JSON object holding each feature's source field, typed by
 * its encoding (numeric → number, bool → true/false from 1/0/true/false, enum → string; an empty
 * cell → field absent). Errors are "file:line: column history: why". New reference. */
json_t *vd_features_csv_request(const vd_features *features, const size_t *column_of,
                                const char *const *cells, size_t count, const char *file,
                                size_t line, vd_error *err);

#endif
