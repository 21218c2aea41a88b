/*
 * ui.h - the browser UI: embedded assets, the single-page app's page URLs and the dashboards API.
 *
 *   GET /ui/<file>                  an embedded asset (ETag, 304 on If-None-Match)
 *   GET /d/<slug>, /explore, /traces[/<id>], /logs, /tests[/<test>], /alerts
 *                                   the app shell (/ui/index.html); the page is chosen in the
 * browser GET /api/dashboards             [{slug, title, description, url}] of the built-in
 * dashboards GET /api/dashboards/uid/<slug>  one dashboard's JSON (schema: docs/DASHBOARDS.md)
 */
#ifndef WEB_UI_H
#define WEB_UI_H

#include "net/http.h"

/* Registers the routes on the named listener (NULL = all). */
int ui_register(http_server_t *srv, const char *listener);

#endif
