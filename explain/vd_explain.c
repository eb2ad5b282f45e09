#include "vd_explain.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vd_printable.h"

enum { BAR_HALF = 24, MAX_BARS = 64, TRIAGE_BARS = 10 };

bool vd_explain_format_parse(const char *name, vd_explain_format *format) {
  static const char *const names[] = {"text", "html", "json"};
  for (int i = 0; i < 3; i++)
    if (name && strcmp(name, names[i]) == 0) {
      *format = (vd_explain_format)i;
      return true;
    }
  return false;
}

const char *vd_explain_content_type(vd_explain_format format) {
  switch (format) {
    case VD_EXPLAIN_TEXT:
      return "text/plain; charset=utf-8";
    case VD_EXPLAIN_HTML:
      return "text/html; charset=utf-8";
    case VD_EXPLAIN_JSON:
      break;
  }
  return "application/json";
}

/* ---- shared wording ------------------------------------------------------------------------ */

/* A triage decision (one request routed) is laid out by text_triage / html_triage; the rest of
 * this file lays out promotions decisions (candidates offered or not). */
static void text_triage(vd_buf *b, const json_t *t, const vd_ruleset *rs);
static void html_triage(vd_buf *b, const json_t *t, const vd_ruleset *rs);
static void html_candidates(vd_buf *b, const json_t *t, const json_t *fallback,
                            const vd_ruleset *rs);
static void html_versions(vd_buf *b, const json_t *t);

static bool is_triage(const json_t *trace) {
  const char *kind = json_string_value(json_object_get(trace, "kind"));
  return kind && strcmp(kind, "triage") == 0;
}

static const char *str(const json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : "";
}

static bool is_masked(const json_t *v) {
  return json_is_string(v) && strncmp(json_string_value(v), "hmac-sha256:", 12) == 0;
}

/* A request or rule value in plain words. */
static void value_words(const json_t *v, char *buf, size_t size) {
  if (!v || json_is_null(v))
    snprintf(buf, size, "(not given)");
  else if (is_masked(v))
    snprintf(buf, size, "(masked)");
  else if (json_is_string(v))
    snprintf(buf, size, "%s", json_string_value(v));
  else if (json_is_boolean(v))
    snprintf(buf, size, "%s", json_is_true(v) ? "yes" : "no");
  else if (json_is_integer(v))
    snprintf(buf, size, "%lld", (long long)json_integer_value(v));
  else if (json_is_real(v))
    snprintf(buf, size, "%.6g", json_real_value(v));
  else {
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(buf, size, "%s", text ? text : "?");
    free(text);
  }
}

static const char *stage_words(const char *stage) {
  return strcmp(stage, "after_model") == 0 ? "after the model's estimate" : "before the model";
}

/* What a rule does when it applies. */
static void action_words(const char *action, const char *id, const vd_ruleset *rs, char *buf,
                         size_t size) {
  const json_t *argument = NULL;
  for (size_t i = 0; rs && i < vd_ruleset_rule_count(rs); i++)
    if (strcmp(vd_ruleset_rule_id(rs, i), id) == 0) argument = vd_ruleset_rule_argument(rs, i);
  char arg[256] = "";
  if (argument) value_words(argument, arg, sizeof arg);
  if (strcmp(action, "deny") == 0)
    snprintf(buf, size, "declines the offer%s%s%s", *arg ? " (\"" : "", arg, *arg ? "\")" : "");
  else if (strcmp(action, "allow") == 0)
    snprintf(buf, size, "approves the offer without the model");
  else if (strcmp(action, "adjust") == 0)
    snprintf(buf, size, "changes the score by %s", *arg ? arg : "an amount");
  else if (strcmp(action, "route") == 0)
    snprintf(buf, size, "routes it to %s", *arg ? arg : "a queue");
  else if (strcmp(action, "priority") == 0)
    snprintf(buf, size, "sets the priority to %s", *arg ? arg : "a level");
  else if (strcmp(action, "escalate") == 0)
    snprintf(buf, size, "asks the LLM layer for the \"%s\" task (off the hot path)",
             *arg ? arg : "follow-up");
  else
    snprintf(buf, size, "%s%s%s", action, *arg ? " " : "", arg);
}

static const char *rule_description(const vd_ruleset *rs, const char *id) {
  for (size_t i = 0; rs && i < vd_ruleset_rule_count(rs); i++)
    if (strcmp(vd_ruleset_rule_id(rs, i), id) == 0) {
      const char *d = vd_ruleset_rule_description(rs, i);
      return d && *d ? d : NULL;
    }
  return NULL;
}

/* The outcome headline: "OFFERED (rank 1)", "NOT OFFERED — declined by rule X". */
static void outcome_words(const json_t *candidate, char *buf, size_t size) {
  const json_t *o = json_object_get(candidate, "outcome");
  const char *action = str(o, "action");
  const char *by = str(o, "decided_by");
  json_int_t rank = json_integer_value(json_object_get(o, "rank"));
  if (!*action && json_is_string(json_object_get(o, "route"))) /* a triage request */
    snprintf(buf, size, "ROUTED to %s (priority %s), handled by %s", str(o, "route"),
             str(o, "priority"), str(o, "handled_by"));
  else if (strcmp(action, "offer") == 0)
    snprintf(buf, size, "OFFERED (rank %lld)", (long long)rank);
  else if (strcmp(action, "allow") == 0)
    snprintf(buf, size, "OFFERED (rank %lld), approved by rule %s", (long long)rank, by);
  else if (strcmp(action, "route") == 0)
    snprintf(buf, size, "ROUTED by rule %s (rank %lld)", by, (long long)rank);
  else if (strcmp(action, "deny") == 0)
    snprintf(buf, size, "NOT OFFERED: declined by rule %s", by);
  else if (strcmp(action, "capped") == 0)
    snprintf(buf, size,
             "NOT OFFERED: eligible, but others ranked higher and only the top ones are "
             "sent");
  else
    snprintf(buf, size, "%s", action);
}

static double num(const json_t *o, const char *key) {
  return json_number_value(json_object_get(o, key));
}

/* Whether the candidate got what it was considered for (an offer, or a triage route). */
static bool selected_of(const json_t *candidate) {
  const json_t *o = json_object_get(candidate, "outcome");
  return json_integer_value(json_object_get(o, "rank")) > 0 ||
         json_is_string(json_object_get(o, "route"));
}

/* The model's column contributions, largest |value| first (zero ones left out). */
typedef struct bar {
  const char *label;
  double value;
} bar;

static int by_size(const void *a, const void *b) {
  double x = fabs(((const bar *)a)->value), y = fabs(((const bar *)b)->value);
  return x > y ? -1 : x < y;
}

static size_t bars_of(const json_t *model, bar *bars, size_t max, double *largest) {
  size_t n = 0;
  const char *key;
  json_t *v;
  size_t i;
  json_array_foreach(json_object_get(model, "tokens"), i, v) { /* a text model: per token */
    if (n < MAX_BARS && json_number_value(json_object_get(v, "contribution")) != 0.0)
      bars[n++] = (bar){str(v, "token"), json_number_value(json_object_get(v, "contribution"))};
  }
  json_object_foreach((json_t *)json_object_get(model, "contributions"), key, v) {
    if (n == MAX_BARS || json_number_value(v) == 0.0) continue;
    bars[n++] = (bar){key, json_number_value(v)};
  }
  qsort(bars, n, sizeof *bars, by_size);
  *largest = n ? fabs(bars[0].value) : 0.0;
  return n < max ? n : max;
}

static const char *subject_id(const json_t *trace) {
  const json_t *id =
      json_object_get(json_object_get(json_object_get(trace, "request"), "subject"), "id");
  if (is_masked(id)) return "(masked)";
  return json_is_string(id) ? json_string_value(id) : "(none given)";
}

/* "2026-12-03T14:37:50.733284Z" → "2026-12-03 at 14:37:50 UTC". */
static void when_words(const char *ts, char *buf, size_t size) {
  if (strlen(ts) >= 19)
    snprintf(buf, size, "%.10s at %.8s UTC", ts, ts + 11);
  else
    snprintf(buf, size, "%s", ts);
}

static void fallback_words(const json_t *fallback, char *buf, size_t size) {
  const char *reason = str(fallback, "reason");
  const char *why = strcmp(reason, "model_unavailable") == 0       ? "the model was not available"
                    : strcmp(reason, "model_budget_exceeded") == 0 ? "the model ran out of time"
                    : strcmp(reason, "model_error") == 0           ? "the model failed"
                                                                   : reason;
  snprintf(buf, size,
           "%s (%s), so the candidates it did not score were decided by the rules alone, each "
           "with the rule set's default score",
           why, str(fallback, "message"));
}

/* For a rule that applied and sets a value (route, priority, escalate) that another rule had
 * already set — the first one that applies wins — the winning rule's id, else NULL. */
static const char *overridden_by(const json_t *candidate, const json_t *rule) {
  const char *action = str(rule, "action");
  if (!json_is_true(json_object_get(rule, "matched")) ||
      (strcmp(action, "route") != 0 && strcmp(action, "priority") != 0 &&
       strcmp(action, "escalate") != 0))
    return NULL;
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(json_object_get(candidate, "rules"), "rules"), i, r) {
    if (r == rule) return NULL;
    if (json_is_true(json_object_get(r, "matched")) && strcmp(str(r, "action"), action) == 0)
      return str(r, "id");
  }
  return NULL;
}

/* ---- text ---------------------------------------------------------------------------------- */

static void text_rules(vd_buf *b, const json_t *candidate, const vd_ruleset *rs) {
  const json_t *rules = json_object_get(json_object_get(candidate, "rules"), "rules");
  vd_buf_printf(b, "  Rules checked, in the order they ran (%zu):\n", json_array_size(rules));
  size_t i;
  json_t *r;
  json_array_foreach(rules, i, r) {
    char action[512];
    action_words(str(r, "action"), str(r, "id"), rs, action, sizeof action);
    const char *applied = json_object_get(r, "error")                   ? "could not be evaluated"
                          : json_is_true(json_object_get(r, "matched")) ? "APPLIED"
                                                                        : "did not apply";
    const char *winner = overridden_by(candidate, r);
    if (winner)
      vd_buf_printf(b, "    - %s: applied, but rule %s had already set the %s (the first wins)\n",
                    str(r, "id"), winner, str(r, "action"));
    else
      vd_buf_printf(b, "    - %s: %s\n", str(r, "id"), applied);
    /* The description and the action's argument come from the rule file, not the trace (which
     * is made printable as a whole): escaped here, like every other text someone wrote. */
    const char *description = rule_description(rs, str(r, "id"));
    if (description) {
      vd_buf_puts(b, "        ");
      vd_printable_append(b, description, strlen(description));
      vd_buf_puts(b, "\n");
    }
    vd_buf_printf(b, "        checked %s; when it applies it ", stage_words(str(r, "stage")));
    vd_printable_append(b, action, strlen(action));
    vd_buf_puts(b, "\n");
    if (json_object_get(r, "error"))
      vd_buf_printf(b, "        evaluation error: %s\n", str(r, "error"));
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(r, "read"), key, v) {
      char value[256];
      value_words(v, value, sizeof value);
      vd_buf_printf(b, "        looked at %s = %s\n", key, value);
    }
  }
}

static void text_bars(vd_buf *b, const json_t *model, size_t max) {
  bar bars[MAX_BARS];
  double largest;
  size_t n = bars_of(model, bars, max, &largest);
  if (!n) return;
  if (json_object_get(model, "tokens"))
    vd_buf_printf(b,
                  "  The words that drove it (each word's share of the score for \"%s\"; right = "
                  "pointed towards it,\n  left = away from it; the %zu strongest of %zu, from the "
                  "starting point %+.3f to %+.3f):\n",
                  str(model, "intent"), n, json_array_size(json_object_get(model, "tokens")),
                  num(model, "bias"), num(model, "margin"));
  else
    vd_buf_printf(b,
                  "  What moved the model's estimate, per model column (right = raised it, left = "
                  "lowered it; they add up\n  from the starting point %+.3f to %+.3f, in "
                  "log-odds). An input the model reads as several columns (a category\n  such as "
                  "zip_code=Rural, the e-mail as treatment=...) has a bar per column; the "
                  "principal reasons above\n  are per input, its columns added up, so their "
                  "figures can differ from the bars:\n",
                  num(model, "bias"), num(model, "margin"));
  for (size_t i = 0; i < n; i++) {
    int len = (int)lround(fabs(bars[i].value) / largest * BAR_HALF);
    char left[BAR_HALF + 1], right[BAR_HALF + 1];
    memset(left, ' ', BAR_HALF);
    memset(right, ' ', BAR_HALF);
    left[BAR_HALF] = right[BAR_HALF] = '\0';
    if (bars[i].value < 0)
      memset(left + BAR_HALF - len, '#', (size_t)len);
    else
      memset(right, '#', (size_t)len);
    size_t end = strlen(right);
    while (end > 0 && right[end - 1] == ' ') right[--end] = '\0';
    vd_buf_printf(b, "    %-26s %+8.3f  %s|%s\n", bars[i].label, bars[i].value, left, right);
  }
}

static void text_candidate(vd_buf *b, const json_t *c, const vd_ruleset *rs) {
  char headline[512];
  outcome_words(c, headline, sizeof headline);
  vd_buf_printf(b, "\nCANDIDATE %s: %s\n", str(c, "candidate"), headline);
  const json_t *reasons = json_object_get(c, "reasons");
  const json_t *outcome = json_object_get(c, "outcome");
  bool selected = selected_of(c);
  if (json_array_size(reasons)) {
    vd_buf_printf(b, "  Principal reasons %s:\n", selected ? "for this outcome" : "against it");
    size_t i;
    json_t *r;
    json_array_foreach(reasons, i, r) {
      if (strcmp(str(r, "kind"), "model") == 0)
        vd_buf_printf(b, "    %zu. %s (model, %+.3f)\n", i + 1, str(r, "text"),
                      num(r, "contribution"));
      else
        vd_buf_printf(b, "    %zu. %s (rule %s)\n", i + 1, str(r, "text"), str(r, "code"));
    }
  }
  const json_t *model = json_object_get(c, "model");
  if (json_is_object(model) && json_object_get(model, "intent")) {
    vd_buf_printf(b, "  Model: recognised the request as \"%s\" with %.1f%% confidence%s%s\n",
                  str(model, "intent"), 100 * num(model, "confidence"),
                  json_is_string(json_object_get(model, "reason")) ? "; escalated: " : "",
                  str(model, "reason"));
  } else if (json_is_object(model)) {
    vd_buf_printf(b, "  Model estimate:\n");
    vd_buf_printf(b, "    chance of a response with this offer:   %6.2f%%\n",
                  100 * num(model, "p_treatment"));
    vd_buf_printf(b, "    chance of a response without any offer: %6.2f%%\n",
                  100 * num(model, "p_control"));
    vd_buf_printf(b, "    expected difference (uplift):           %+6.2f percentage points\n",
                  100 * num(model, "uplift"));
  } else if (json_is_object(json_object_get(c, "fallback"))) {
    const json_t *f = json_object_get(c, "fallback");
    vd_buf_printf(b,
                  "  The model did not score this candidate (%s: %s); it got the rule set's "
                  "default score.\n",
                  str(f, "reason"), str(f, "message"));
  } else {
    vd_buf_printf(b, "  The model was not consulted: a rule settled this candidate first.\n");
  }
  if (json_is_number(json_object_get(outcome, "score")))
    vd_buf_printf(b, "  Final score: %.4f\n", num(outcome, "score"));
  text_rules(b, c, rs);
  if (json_is_object(model)) text_bars(b, model, MAX_BARS);
}

static void text_versions(vd_buf *b, const json_t *t) {
  const json_t *d = json_object_get(t, "deployment");
  const json_t *m = json_object_get(t, "model");
  vd_buf_printf(b, "\nVERSIONS USED (exact, content-addressed; replay re-runs on these)\n");
  vd_buf_printf(b, "  deployment  %-14s %s\n", str(d, "name"), str(d, "version"));
  vd_buf_printf(b, "  rule set    %-14s %s\n", str(json_object_get(t, "ruleset"), "name"),
                str(json_object_get(t, "ruleset"), "version"));
  vd_buf_printf(b, "  schema      %-14s %s\n", str(json_object_get(t, "schema"), "name"),
                str(json_object_get(t, "schema"), "version"));
  if (json_is_object(m))
    vd_buf_printf(b, "  model       %-14s %s\n", str(m, "name"), str(m, "version"));
  else
    vd_buf_printf(b, "  model       (none: rules only)\n");
  if (json_is_object(json_object_get(t, "gazetteer")))
    vd_buf_printf(b, "  gazetteer   %-14s %s\n", "places",
                  str(json_object_get(t, "gazetteer"), "version"));
  vd_buf_printf(b, "  trace format %lld\n",
                (long long)json_integer_value(json_object_get(t, "trace_version")));
  const json_t *tm = json_object_get(t, "timings_us");
  if (tm)
    vd_buf_printf(b,
                  "\nTIMINGS (microseconds): validation %.0f, rules %.0f, model %.0f, total %.0f\n",
                  num(tm, "validate"), num(tm, "rules"), num(tm, "model"), num(tm, "total"));
}

static void render_text(vd_buf *b, const json_t *t, const vd_ruleset *rs) {
  char when[64];
  when_words(str(t, "timestamp"), when, sizeof when);
  vd_buf_printf(b, "DECISION %s\n", str(t, "id"));
  vd_buf_printf(b, "  What:     a %s decision (deployment %s)%s\n", str(t, "kind"),
                str(json_object_get(t, "deployment"), "name"),
                is_triage(t) ? ": where a customer's request goes" : "");
  vd_buf_printf(b, "  When:     %s\n", when);
  vd_buf_printf(b, "  Customer: %s\n", subject_id(t));
  if (is_triage(t)) {
    text_triage(b, t, rs);
    text_versions(b, t);
    return;
  }
  const json_t *fallback = json_object_get(t, "fallback");
  if (json_is_object(fallback)) {
    char words[1024];
    fallback_words(fallback, words, sizeof words);
    vd_buf_printf(b, "  Note:     %s.\n", words);
  }
  vd_buf_printf(b, "\nOUTCOME\n");
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(t, "candidates"), i, c) {
    char headline[512];
    outcome_words(c, headline, sizeof headline);
    vd_buf_printf(b, "  %-16s %s\n", str(c, "candidate"), headline);
  }
  json_array_foreach(json_object_get(t, "candidates"), i, c) text_candidate(b, c, rs);
  text_versions(b, t);
}

/* ---- HTML ---------------------------------------------------------------------------------- */

/* Text someone wrote, for the page: made printable first as the text form does (curl in a
 * terminal prints the page raw: an ESC ] ... BEL would retitle it), then HTML-escaped. */
static void esc(vd_buf *b, const char *text) {
  vd_buf shown = {0};
  vd_printable_append(&shown, text, strlen(text));
  vd_buf_puts(&shown, ""); /* NUL-terminated */
  if (shown.oom) {
    b->oom = true;
    vd_buf_free(&shown);
    return;
  }
  for (const char *s = shown.data; *s; s++) switch (*s) {
      case '<':
        vd_buf_puts(b, "&lt;");
        break;
      case '>':
        vd_buf_puts(b, "&gt;");
        break;
      case '&':
        vd_buf_puts(b, "&amp;");
        break;
      case '"':
        vd_buf_puts(b, "&quot;");
        break;
      case '\'':
        vd_buf_puts(b, "&#39;");
        break;
      default:
        vd_buf_append(b, s, 1);
    }
  vd_buf_free(&shown);
}

static void html_bars(vd_buf *b, const json_t *model, size_t max) {
  bar bars[MAX_BARS];
  double largest;
  size_t n = bars_of(model, bars, max, &largest);
  if (!n) return;
  const int label_w = 210, half = 200, row = 22, value_w = 70;
  const int width = label_w + 2 * half + value_w, height = (int)n * row + 30;
  if (json_object_get(model, "tokens")) {
    vd_buf_puts(b,
                "<h4>The words that drove it</h4><p class=\"note\">Each bar is one word's "
                "share of the score for <b>");
    esc(b, str(model, "intent"));
    vd_buf_printf(b,
                  "</b>: <span class=\"up\">green to the right pointed towards it</span>, <span "
                  "class=\"down\">red to the left away from it</span>. The %zu strongest of %zu "
                  "words; they add up from the starting point %+.3f to %+.3f.</p>\n",
                  n, json_array_size(json_object_get(model, "tokens")), num(model, "bias"),
                  num(model, "margin"));
  } else {
    vd_buf_printf(b,
                  "<h4>What moved the model's estimate</h4><p class=\"note\">Each bar is one "
                  "model column's contribution: <span class=\"up\">green to the right "
                  "raised</span> the estimated chance of a response, <span class=\"down\">red "
                  "to the left lowered</span> it. They add up from the starting point %+.3f to "
                  "%+.3f (log-odds). An input the model reads as several columns (a category "
                  "such as zip_code=Rural, the e-mail as treatment=&hellip;) has a bar per "
                  "column; the principal reasons above are per input, its columns added up, so "
                  "their figures can differ from the bars.</p>\n",
                  num(model, "bias"), num(model, "margin"));
  }
  vd_buf_printf(b,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\" "
                "aria-label=\"contributions bar chart\" font-family=\"sans-serif\" "
                "font-size=\"13\">\n",
                width, height);
  int axis = label_w + half;
  for (size_t i = 0; i < n; i++) {
    int y = (int)i * row + 4;
    double w = fabs(bars[i].value) / largest * (half - 10);
    double x = bars[i].value < 0 ? axis - w : axis;
    vd_buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", label_w - 8, y + 15);
    esc(b, bars[i].label);
    vd_buf_printf(b, "</text><rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"16\" fill=\"%s\"/>",
                  x, y + 2, w < 1 ? 1 : w, bars[i].value < 0 ? "#c0392b" : "#2e8b57");
    vd_buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%+.3f</text>\n", width - 4,
                  y + 15, bars[i].value);
  }
  vd_buf_printf(b,
                "<line x1=\"%d\" y1=\"0\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>"
                "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" fill=\"#555\">lowered</text>"
                "<text x=\"%d\" y=\"%d\" fill=\"#555\">raised</text></svg>\n",
                axis, axis, height - 22, axis - 6, height - 6, axis + 6, height - 6);
}

static void html_rules(vd_buf *b, const json_t *c, const vd_ruleset *rs) {
  const json_t *rules = json_object_get(json_object_get(c, "rules"), "rules");
  vd_buf_puts(b,
              "<h4>Rules checked, in the order they ran</h4>\n<table><tr><th>Rule</th><th>What "
              "it does when it applies</th><th>Values it looked at</th><th>Result</th></tr>\n");
  size_t i;
  json_t *r;
  json_array_foreach(rules, i, r) {
    char action[512];
    action_words(str(r, "action"), str(r, "id"), rs, action, sizeof action);
    bool matched = json_is_true(json_object_get(r, "matched"));
    bool error = json_object_get(r, "error") != NULL;
    vd_buf_puts(b, matched ? "<tr class=\"applied\"><td><b>" : "<tr><td><b>");
    esc(b, str(r, "id"));
    vd_buf_puts(b, "</b>");
    const char *description = rule_description(rs, str(r, "id"));
    if (description) {
      vd_buf_puts(b, "<br><span class=\"note\">");
      esc(b, description);
      vd_buf_puts(b, "</span>");
    }
    vd_buf_puts(b, "</td><td>Checked ");
    esc(b, stage_words(str(r, "stage")));
    vd_buf_puts(b, "; ");
    esc(b, action);
    vd_buf_puts(b, "</td><td>");
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(r, "read"), key, v) {
      char value[256];
      value_words(v, value, sizeof value);
      vd_buf_puts(b, "<code>");
      esc(b, key);
      vd_buf_puts(b, "</code> = ");
      esc(b, value);
      vd_buf_puts(b, "<br>");
    }
    vd_buf_puts(b, "</td><td class=\"result\">");
    if (error) {
      vd_buf_puts(b, "could not be evaluated: ");
      esc(b, str(r, "error"));
    } else {
      const char *winner = overridden_by(c, r);
      if (winner) {
        vd_buf_puts(b, "applied, but rule ");
        esc(b, winner);
        vd_buf_puts(b, " had already set the ");
        esc(b, str(r, "action"));
        vd_buf_puts(b, " (the first wins)");
      } else {
        vd_buf_puts(b, matched ? "<b>applied</b>" : "did not apply");
      }
    }
    vd_buf_puts(b, "</td></tr>\n");
  }
  vd_buf_puts(b, "</table>\n");
}

static void html_candidate(vd_buf *b, const json_t *c, const vd_ruleset *rs) {
  char headline[512];
  outcome_words(c, headline, sizeof headline);
  const json_t *outcome = json_object_get(c, "outcome");
  bool selected = selected_of(c);
  vd_buf_printf(b, "<section class=\"candidate %s\"><h3>", selected ? "offered" : "declined");
  esc(b, str(c, "candidate"));
  vd_buf_puts(b, ": ");
  esc(b, headline);
  vd_buf_puts(b, "</h3>\n");
  const json_t *reasons = json_object_get(c, "reasons");
  if (json_array_size(reasons)) {
    vd_buf_printf(b, "<h4>Principal reasons %s</h4><ol>\n",
                  selected ? "for this outcome" : "against it");
    size_t i;
    json_t *r;
    json_array_foreach(reasons, i, r) {
      vd_buf_puts(b, "<li>");
      esc(b, str(r, "text"));
      if (strcmp(str(r, "kind"), "model") == 0)
        vd_buf_printf(b, " <span class=\"note\">(model, %+.3f)</span>", num(r, "contribution"));
      else {
        vd_buf_puts(b, " <span class=\"note\">(rule ");
        esc(b, str(r, "code"));
        vd_buf_puts(b, ")</span>");
      }
      vd_buf_puts(b, "</li>\n");
    }
    vd_buf_puts(b, "</ol>\n");
  }
  const json_t *model = json_object_get(c, "model");
  if (json_is_object(model) && json_object_get(model, "intent")) {
    vd_buf_puts(b, "<p>The model recognised the request as <b>");
    esc(b, str(model, "intent"));
    vd_buf_printf(b, "</b> with %.1f%% confidence", 100 * num(model, "confidence"));
    if (json_is_string(json_object_get(model, "reason"))) {
      vd_buf_puts(b, "; escalated: ");
      esc(b, str(model, "reason"));
    }
    vd_buf_puts(b, ".</p>\n");
  } else if (json_is_object(model)) {
    vd_buf_printf(b,
                  "<h4>Model estimate</h4><table class=\"estimate\"><tr><td>Chance of a response "
                  "with this offer</td><td>%.2f%%</td></tr><tr><td>Chance of a response without "
                  "any offer</td><td>%.2f%%</td></tr><tr><td>Expected difference "
                  "(uplift)</td><td>%+.2f percentage points</td></tr></table>\n",
                  100 * num(model, "p_treatment"), 100 * num(model, "p_control"),
                  100 * num(model, "uplift"));
  } else if (json_is_object(json_object_get(c, "fallback"))) {
    const json_t *f = json_object_get(c, "fallback");
    vd_buf_puts(b, "<p>The model did not score this candidate (");
    esc(b, str(f, "reason"));
    vd_buf_puts(b, ": ");
    esc(b, str(f, "message"));
    vd_buf_puts(b, "); it got the rule set's default score.</p>\n");
  } else {
    vd_buf_puts(b, "<p>The model was not consulted: a rule settled this candidate first.</p>\n");
  }
  if (json_is_number(json_object_get(outcome, "score")))
    vd_buf_printf(b, "<p>Final score: <b>%.4f</b></p>\n", num(outcome, "score"));
  html_rules(b, c, rs);
  if (json_is_object(model)) html_bars(b, model, MAX_BARS);
  vd_buf_puts(b, "</section>\n");
}

static void html_row(vd_buf *b, const char *what, const char *name, const char *version) {
  vd_buf_puts(b, "<tr><td>");
  esc(b, what);
  vd_buf_puts(b, "</td><td>");
  esc(b, name);
  vd_buf_puts(b, "</td><td><code>");
  esc(b, version);
  vd_buf_puts(b, "</code></td></tr>\n");
}

static void render_html(vd_buf *b, const json_t *t, const vd_ruleset *rs) {
  char when[64];
  when_words(str(t, "timestamp"), when, sizeof when);
  vd_buf_puts(b,
              "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Decision ");
  esc(b, str(t, "id"));
  vd_buf_puts(
      b,
      "</title><style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222;"
      "line-height:1.4}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
      "padding:4px 8px;text-align:left;vertical-align:top}th{background:#f2f2f2}"
      ".note{color:#555;font-size:.9em}.up{color:#2e8b57}.down{color:#c0392b}"
      "tr.applied{background:#fff6d5}td.result{white-space:nowrap}section.candidate{border-left:"
      "6px solid #999;padding:0 1em;"
      "margin:1.5em 0}section.offered{border-color:#2e8b57}section.declined{border-color:#c0392b}"
      "code{font-size:.85em;word-break:break-all}blockquote.request{border-left:4px solid #999;"
      "margin:.5em 0;padding:.3em "
      "1em;background:#f7f7f7;white-space:pre-wrap}</style></head><body>\n<h1>Decision ");
  esc(b, str(t, "id"));
  vd_buf_puts(b, "</h1>\n<table><tr><td>What</td><td>A ");
  esc(b, str(t, "kind"));
  vd_buf_puts(b, " decision (deployment ");
  esc(b, str(json_object_get(t, "deployment"), "name"));
  vd_buf_puts(b, is_triage(t) ? "): where a customer's request goes</td></tr><tr><td>When</td><td>"
                              : ")</td></tr><tr><td>When</td><td>");
  esc(b, when);
  vd_buf_puts(b, "</td></tr><tr><td>Customer</td><td>");
  esc(b, subject_id(t));
  vd_buf_puts(b, "</td></tr></table>\n");
  const json_t *fallback = json_object_get(t, "fallback");
  if (is_triage(t)) {
    html_triage(b, t, rs);
  } else {
    html_candidates(b, t, fallback, rs);
  }
  html_versions(b, t);
}

static void html_candidates(vd_buf *b, const json_t *t, const json_t *fallback,
                            const vd_ruleset *rs) {
  if (json_is_object(fallback)) {
    char words[1024];
    fallback_words(fallback, words, sizeof words);
    vd_buf_puts(b, "<p><b>Note:</b> ");
    esc(b, words);
    vd_buf_puts(b, ".</p>\n");
  }
  vd_buf_puts(b, "<h2>Outcome</h2>\n<table><tr><th>Candidate</th><th>Outcome</th></tr>\n");
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(t, "candidates"), i, c) {
    char headline[512];
    outcome_words(c, headline, sizeof headline);
    vd_buf_puts(b, "<tr><td>");
    esc(b, str(c, "candidate"));
    vd_buf_puts(b, "</td><td>");
    esc(b, headline);
    vd_buf_puts(b, "</td></tr>\n");
  }
  vd_buf_puts(b, "</table>\n<h2>Why, candidate by candidate</h2>\n");
  json_array_foreach(json_object_get(t, "candidates"), i, c) html_candidate(b, c, rs);
}

static void html_versions(vd_buf *b, const json_t *t) {
  vd_buf_puts(b,
              "<h2>Versions used</h2><p class=\"note\">Exact versions, kept in the data folder; "
              "a replay re-runs the decision on them.</p>\n<table><tr><th>Part</th><th>Name</th>"
              "<th>Version</th></tr>\n");
  html_row(b, "Deployment", str(json_object_get(t, "deployment"), "name"),
           str(json_object_get(t, "deployment"), "version"));
  html_row(b, "Rule set", str(json_object_get(t, "ruleset"), "name"),
           str(json_object_get(t, "ruleset"), "version"));
  html_row(b, "Schema", str(json_object_get(t, "schema"), "name"),
           str(json_object_get(t, "schema"), "version"));
  const json_t *m = json_object_get(t, "model");
  if (json_is_object(m))
    html_row(b, "Model", str(m, "name"), str(m, "version"));
  else
    html_row(b, "Model", "(none: rules only)", "");
  if (json_is_object(json_object_get(t, "gazetteer")))
    html_row(b, "Gazetteer", "places for itineraries",
             str(json_object_get(t, "gazetteer"), "version"));
  char tv[32];
  snprintf(tv, sizeof tv, "%lld",
           (long long)json_integer_value(json_object_get(t, "trace_version")));
  html_row(b, "Trace format", "", tv);
  vd_buf_puts(b, "</table>\n</body></html>\n");
}

/* ---- triage decisions ---------------------------------------------------------------------- */

/* One triage decision in plain words: every sentence both formats say. */
typedef struct triage_words {
  char route[512], priority[512], handled[512], escalation[1024], answer[1024], note[768];
  char request_note[160];
  bool amended;
} triage_words;

/* The first rule that applied with this action (the one whose value stands: rules run in order
 * and the first match of each action wins), or NULL. */
static const char *rule_setting(const json_t *record, const char *action) {
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(json_object_get(record, "rules"), "rules"), i, r) {
    if (json_is_true(json_object_get(r, "matched")) && strcmp(str(r, "action"), action) == 0)
      return str(r, "id");
  }
  return NULL;
}

static void triage_describe(const json_t *t, triage_words *w) {
  const json_t *record = json_array_get(json_object_get(t, "candidates"), 0);
  const json_t *o = json_object_get(record, "outcome");
  const char *by = rule_setting(record, "route");
  if (by)
    snprintf(w->route, sizeof w->route, "%s (set by rule %s)", str(o, "route"), by);
  else
    snprintf(w->route, sizeof w->route, "%s (the default: no rule set a route)", str(o, "route"));
  by = rule_setting(record, "priority");
  if (by)
    snprintf(w->priority, sizeof w->priority, "%s (set by rule %s)", str(o, "priority"), by);
  else
    snprintf(w->priority, sizeof w->priority, "%s (the default: no rule set a priority)",
             str(o, "priority"));
  const char *handled = str(o, "handled_by");
  snprintf(w->handled, sizeof w->handled, "%s",
           strcmp(handled, "rules") == 0 ? "the rules alone, before the model (\"rules\")"
           : strcmp(handled, "model") == 0
               ? "the model's reading of the text and the rules after it (\"model\")"
               : "provisionally; an LLM classification was requested and decides the final route "
                 "(\"llm_pending\")");
  const json_t *esc_json = json_object_get(t, "escalation");
  /* the task handed over (an itinerary the text cannot fill became an extract, see the note) */
  const char *task = json_is_string(json_object_get(esc_json, "task")) ? str(esc_json, "task")
                                                                       : str(o, "escalate");
  const char *asked_by = rule_setting(record, "escalate");
  char why[300];
  if (asked_by)
    snprintf(why, sizeof why, "asked for by rule %s", asked_by);
  else
    snprintf(why, sizeof why, "asked for because the model was not available");
  if (!*task)
    snprintf(w->escalation, sizeof w->escalation, "none");
  else if (json_is_string(json_object_get(esc_json, "job_id")))
    snprintf(w->escalation, sizeof w->escalation,
             "an LLM \"%s\" job, %s; handed to the LLM layer as job %s (never awaited by the "
             "decision)",
             task, why, str(esc_json, "job_id"));
  else if (json_is_string(json_object_get(esc_json, "error")))
    snprintf(w->escalation, sizeof w->escalation,
             "an LLM \"%s\" job, %s; it could not be submitted (%s), so the route above stands",
             task, why, str(esc_json, "error"));
  else
    snprintf(w->escalation, sizeof w->escalation, "an LLM \"%s\" job, %s (not submitted)", task,
             why);
  const json_t *amendments = json_object_get(t, "amendments");
  const json_t *last = json_array_get(amendments, json_array_size(amendments) - 1);
  w->amended = last != NULL;
  if (last) {
    char when[64];
    when_words(str(last, "amended_at"), when, sizeof when);
    const char *state = str(last, "state");
    char ended[160];
    if (strcmp(state, "succeeded") == 0)
      snprintf(ended, sizeof ended, "was answered by the LLM");
    else if (strcmp(state, "fallback") == 0)
      snprintf(ended, sizeof ended, "got no LLM answer and fell back to the %s",
               *str(last, "handled_by") ? str(last, "handled_by") : "rules");
    else
      snprintf(ended, sizeof ended, "%s", state);
    if (json_is_string(json_object_get(last, "final_route")))
      snprintf(w->answer, sizeof w->answer, "on %s the \"%s\" job %s: intent %s, route %s%s", when,
               str(last, "task"), ended, str(last, "final_intent"), str(last, "final_route"),
               strcmp(str(last, "final_route"), str(o, "route")) != 0
                   ? " (this replaces the provisional route above)"
                   : " (the same as the provisional route)");
    else
      snprintf(w->answer, sizeof w->answer, "on %s the \"%s\" job %s", when, str(last, "task"),
               ended);
  } else if (*task) {
    snprintf(w->answer, sizeof w->answer, "no answer stored on the decision yet");
  }
  const json_t *note = json_object_get(t, "escalation_note");
  if (note)
    snprintf(w->note, sizeof w->note, "an itinerary was asked for, but %s", str(note, "why"));
  json_int_t cards = json_integer_value(json_object_get(record, "cards_masked"));
  if (cards)
    snprintf(w->request_note, sizeof w->request_note,
             "%lld payment card number%s masked (****DDDD) before anything read the text",
             (long long)cards, cards == 1 ? " was" : "s were");
}

static const char *model_reason_words(const json_t *model) {
  const char *reason = str(model, "reason");
  if (strcmp(reason, "out_of_scope") == 0)
    return "the request looks like nothing this service handles (out of scope)";
  if (strcmp(reason, "low_confidence") == 0)
    return "its confidence is below the threshold at which it answers on its own";
  return NULL;
}

static void text_triage(vd_buf *b, const json_t *t, const vd_ruleset *rs) {
  const json_t *request = json_object_get(t, "request");
  const json_t *record = json_array_get(json_object_get(t, "candidates"), 0);
  triage_words w = {0};
  triage_describe(t, &w);
  char channel[128];
  value_words(json_object_get(request, "channel"), channel, sizeof channel);
  vd_buf_printf(b, "  Channel:  %s\n  Request:  \"%s\"\n", channel, str(request, "text"));
  if (*w.request_note) vd_buf_printf(b, "            (%s)\n", w.request_note);
  vd_buf_printf(b, "\nOUTCOME\n  Route:       %s\n  Priority:    %s\n  Decided by:  %s\n", w.route,
                w.priority, w.handled);
  vd_buf_printf(b, "  Escalation:  %s\n", w.escalation);
  if (*w.answer) vd_buf_printf(b, "  LLM answer:  %s\n", w.answer);
  if (*w.note) vd_buf_printf(b, "  Note:        %s\n", w.note);
  const json_t *model = json_object_get(record, "model");
  vd_buf_printf(b, "\nWHAT THE MODEL READ\n");
  if (json_is_object(model)) {
    vd_buf_printf(b, "  It recognised the request as \"%s\" with %.1f%% confidence.\n",
                  str(model, "intent"), 100 * num(model, "confidence"));
    const char *why = model_reason_words(model);
    if (why) vd_buf_printf(b, "  It did not decide alone: %s.\n", why);
    vd_buf_printf(b, "  Most likely intents:");
    size_t i;
    json_t *top;
    json_array_foreach(json_object_get(model, "top"), i, top)
        vd_buf_printf(b, "%s %zu. %s %.1f%%", i ? "," : "", i + 1, str(top, "intent"),
                      100 * num(top, "probability"));
    vd_buf_puts(b, "\n");
    text_bars(b, model, TRIAGE_BARS);
  } else if (json_is_object(json_object_get(t, "fallback"))) {
    vd_buf_printf(b, "  The model was not available (%s), so the rules after it could not run.\n",
                  str(json_object_get(t, "fallback"), "message"));
  } else {
    vd_buf_printf(b, "  The model was not consulted: rule %s settled the request first.\n",
                  rule_setting(record, "route") ? rule_setting(record, "route") : "(a rule)");
  }
  vd_buf_puts(b, "\n");
  text_rules(b, record, rs);
}

static void html_triage(vd_buf *b, const json_t *t, const vd_ruleset *rs) {
  const json_t *request = json_object_get(t, "request");
  const json_t *record = json_array_get(json_object_get(t, "candidates"), 0);
  triage_words w = {0};
  triage_describe(t, &w);
  char channel[128];
  value_words(json_object_get(request, "channel"), channel, sizeof channel);
  vd_buf_puts(b, "<h2>The request</h2><blockquote class=\"request\">");
  esc(b, str(request, "text"));
  vd_buf_puts(b, "</blockquote><p class=\"note\">Channel: ");
  esc(b, channel);
  if (*w.request_note) {
    vd_buf_puts(b, ". ");
    esc(b, w.request_note);
  }
  vd_buf_puts(b, ".</p>\n<h2>Outcome</h2>\n<table>");
  const char *rows[][2] = {{"Route", w.route},        {"Priority", w.priority},
                           {"Decided by", w.handled}, {"Escalation", w.escalation},
                           {"LLM answer", w.answer},  {"Note", w.note}};
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    if (!*rows[i][1]) continue;
    vd_buf_puts(b, "<tr><td>");
    esc(b, rows[i][0]);
    vd_buf_puts(b, i == 0 || (i == 4 && w.amended) ? "</td><td><b>" : "</td><td>");
    esc(b, rows[i][1]);
    vd_buf_puts(b, i == 0 || (i == 4 && w.amended) ? "</b></td></tr>\n" : "</td></tr>\n");
  }
  vd_buf_puts(b, "</table>\n<h2>What the model read</h2>\n");
  const json_t *model = json_object_get(record, "model");
  if (json_is_object(model)) {
    vd_buf_puts(b, "<p>It recognised the request as <b>");
    esc(b, str(model, "intent"));
    vd_buf_printf(b, "</b> with %.1f%% confidence.", 100 * num(model, "confidence"));
    const char *why = model_reason_words(model);
    if (why) {
      vd_buf_puts(b, " It did not decide alone: ");
      esc(b, why);
      vd_buf_puts(b, ".");
    }
    vd_buf_puts(b, "</p>\n<table><tr><th>Most likely intents</th><th>Probability</th></tr>\n");
    size_t i;
    json_t *top;
    json_array_foreach(json_object_get(model, "top"), i, top) {
      vd_buf_puts(b, "<tr><td>");
      esc(b, str(top, "intent"));
      vd_buf_printf(b, "</td><td>%.1f%%</td></tr>\n", 100 * num(top, "probability"));
    }
    vd_buf_puts(b, "</table>\n");
    html_bars(b, model, TRIAGE_BARS);
  } else if (json_is_object(json_object_get(t, "fallback"))) {
    vd_buf_puts(b, "<p>The model was not available (");
    esc(b, str(json_object_get(t, "fallback"), "message"));
    vd_buf_puts(b, "), so the rules after it could not run.</p>\n");
  } else {
    vd_buf_puts(b, "<p>The model was not consulted: rule ");
    esc(b, rule_setting(record, "route") ? rule_setting(record, "route") : "(a rule)");
    vd_buf_puts(b, " settled the request first.</p>\n");
  }
  html_rules(b, record, rs);
}

/* A string as the text form shows it: control and other non-printing code points escaped. */
static json_t *printable_string(const char *s, size_t len) {
  if (vd_printable_is_plain(s, len)) return json_stringn(s, len);
  vd_buf b = {0};
  vd_printable_append(&b, s, len);
  json_t *v = b.oom ? NULL : json_stringn(b.data, b.len);
  vd_buf_free(&b);
  return v;
}

/* A copy of the trace with every string (keys too) printable: the text form prints values a
 * client wrote (the request's text, subject.id, the values rules read, reasons that quote them),
 * and one "\nOUTCOME\n  Route: payments" or "\u001b[31m" in them would forge report lines or
 * drive the reader's terminal. Escaping the whole trace once covers every value printed, now and
 * when a new line is added. NULL on out of memory. */
static json_t *printable_copy(const json_t *v) {
  if (json_is_string(v)) return printable_string(json_string_value(v), json_string_length(v));
  if (json_is_array(v)) {
    json_t *a = json_array();
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item) {
      if (json_array_append_new(a, printable_copy(item)) != 0) return json_decref(a), NULL;
    }
    return a;
  }
  if (json_is_object(v)) {
    json_t *o = json_object();
    const char *key;
    const json_t *item;
    json_object_foreach((json_t *)v, key, item) {
      json_t *k = printable_string(key, strlen(key));
      bool ok = k && json_object_set_new(o, json_string_value(k), printable_copy(item)) == 0;
      json_decref(k);
      if (!ok) return json_decref(o), NULL;
    }
    return o;
  }
  return json_deep_copy(v);
}

bool vd_explain_render(const json_t *trace, const vd_ruleset *ruleset, vd_explain_format format,
                       vd_buf *out, vd_error *err) {
  if (!json_is_object(trace) || !json_is_integer(json_object_get(trace, "trace_version")) ||
      !json_is_array(json_object_get(trace, "candidates")))
    return vd_error_set(err, "not a decision trace (no trace_version or candidates)");
  if (ruleset &&
      strcmp(vd_ruleset_version(ruleset), str(json_object_get(trace, "ruleset"), "version")) != 0)
    ruleset = NULL; /* descriptions only from the version that decided */
  switch (format) {
    case VD_EXPLAIN_TEXT: {
      json_t *shown = printable_copy(trace);
      if (!shown) return vd_error_set(err, "out of memory");
      render_text(out, shown, ruleset);
      json_decref(shown);
      break;
    }
    case VD_EXPLAIN_HTML:
      render_html(out, trace, ruleset);
      break;
    case VD_EXPLAIN_JSON: {
      char *text = json_dumps(trace, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
      if (!text) return vd_error_set(err, "out of memory");
      vd_buf_puts(out, text);
      vd_buf_puts(out, "\n");
      free(text);
      break;
    }
  }
  return true;
}
