/* vd_explain: a decision's trace rendered for a compliance reader with no engineering background
 * (GET /v1/decisions/{id}/explanation?format=text|html and `verdict explain ID`).
 *
 * Both formats say the same things, in this order: what was decided and when; for each
 * candidate its outcome in plain words, the principal reasons (the trace's reason codes), the
 * model's estimate (chance of a response with and without the e-mail), the rules checked with
 * the values each one read and whether it applied, and the model's contributions as a bar chart
 * (text: a diverging character chart; HTML: inline SVG, no external assets, no scripts); then
 * the versions of everything that decided (deployment, rule set, schema, model, trace format)
 * and the timings. Request values that were masked are shown as "(masked)".
 *
 * A triage decision (kind "triage") is laid out as one request routed: the (card-masked) text,
 * route, priority and who decided them (the rule that set each value, or the default), the
 * escalation handed to the LLM layer and — when the trace carries "amendments" (as read back from
 * the decision log) — the LLM's answer; what the model read (intent, confidence, the top intents,
 * the strongest token contributions as bars); every rule with its values (one that applied but
 * lost to an earlier one says so); and the versions, the gazetteer's included.
 *
 * ruleset (may be NULL) supplies each rule's description when it is the version the trace names
 * (the stored one, for a past decision); without it rules are shown by id and action only.
 *
 * Ownership: the trace and ruleset are borrowed; output is appended to out (caller frees).
 * Stateless and thread-safe.
 */
#ifndef VD_EXPLAIN_H
#define VD_EXPLAIN_H

#include <jansson.h>
#include <stdbool.h>

#include "vd_buf.h"
#include "vd_error.h"
#include "vd_ruleset.h"

typedef enum vd_explain_format {
  VD_EXPLAIN_TEXT,
  VD_EXPLAIN_HTML,
  VD_EXPLAIN_JSON, /* the trace itself, indented */
} vd_explain_format;

/* "text" | "html" | "json" → format; false for anything else. */
bool vd_explain_format_parse(const char *name, vd_explain_format *format);
/* The Content-Type of a format ("text/plain; charset=utf-8", ...). */
const char *vd_explain_content_type(vd_explain_format format);
/* Renders; false + err when the trace is not a trace (no trace_version / candidates). */
bool vd_explain_render(const json_t *trace, const vd_ruleset *ruleset, vd_explain_format format,
                       vd_buf *out, vd_error *err);

#endif
