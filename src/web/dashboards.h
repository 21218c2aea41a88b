/*
 * dashboards.h - the dashboards the UI shows: the built-in ones embedded in the binary
 * (dashboards/<name>.json) and the user's, kept as files in a directory (--dashboards DIR, default
 * <data-dir>/dashboards) that load beside them; a user dashboard with a built-in one's slug
 * replaces it.
 *
 *   GET  /api/dashboards              [{slug, title, description, url, builtin}]
 *   GET  /api/dashboards/uid/<slug>   one dashboard in Skillscope's schema (docs/DASHBOARDS.md)
 *   POST /api/dashboards/db           Grafana's import call: {"dashboard": {...}, "overwrite":
 *                                     bool}; takes Skillscope's schema or the supported subset of
 *                                     Grafana dashboard JSON (converted; what was not understood is
 *                                     listed in the answer), saves it as <dir>/<slug>.json
 *   DELETE /api/dashboards/uid/<slug> removes a user dashboard
 *
 * Threads: the loop thread.
 */
#ifndef WEB_DASHBOARDS_H
#define WEB_DASHBOARDS_H

#include <jansson.h>

#include "base/buf.h"
#include "base/err.h"
#include "net/http.h"

/* Loads the user dashboards of dir (created when missing) and registers the routes on the named
 * listener. A file that is not valid JSON is skipped with a warning naming it. */
int dashboards_register(http_server_t *srv, const char *listener, const char *dir, err_t *err);
void dashboards_free(void);

/* Converts a dashboard (Grafana's JSON or ours, borrowed) into a new object in Skillscope's
 * schema. Every Grafana feature that was dropped or approximated is appended to not_understood
 * (a JSON array of strings, e.g. "panel 3 \"Latency\": unit \"dtdurations\""). ERR_INVAL with err
 * when the input is not a dashboard at all. Exposed for tests. */
int dashboards_convert(const json_t *in, json_t **out, json_t *not_understood, err_t *err);

#endif
