/*
 * ui.h - the browser UI: embedded assets and the single-page app's page URLs (the dashboards API
 * is web/dashboards.h).
 *
 *   GET /ui/<file>          an embedded asset (ETag, 304 on If-None-Match)
 *   GET /d, /d/<slug>       the app shell (/ui/index.html); the page is chosen in the browser
 *   GET /explore, /traces[/<id>], /logs, /tests[/<name>], /alerts   the same
 */
#ifndef WEB_UI_H
#define WEB_UI_H

#include "net/http.h"

/* Registers the routes on the named listener (NULL = all). */
int ui_register(http_server_t *srv, const char *listener);

#endif
