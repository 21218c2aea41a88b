/*
 * ui.c - serves the embedded UI (web/assets.h): its files under /ui/ and the single-page app's
 * shell for every page URL (/d, /d/<slug>, /explore, /traces[/<id>], /logs, /tests[/<name>],
 * /alerts). The dashboards API is web/dashboards.c.
 *
 * Assets carry a strong ETag and Cache-Control: no-cache, so a browser revalidates (a 304 costs
 * one round trip) and never runs a stale UI after an upgrade.
 */
#include "web/ui.h"

#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "web/assets.h"

#define SHELL "/ui/index.html"

static int cmp_path(const char *path, size_t len, const char *asset)
{
    size_t n = strlen(asset);
    int c = memcmp(path, asset, len < n ? len : n);
    return c ? c : (len > n) - (len < n);
}

const web_asset_t *web_asset_find(const char *path, size_t len)
{
    size_t lo = 0, hi = web_n_assets;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_path(path, len, web_assets[mid].path);
        if (c == 0)
            return &web_assets[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static void send_asset(http_req_t *r, const web_asset_t *a)
{
    http_add_header(r, "ETag", a->etag);
    http_add_header(r, "Cache-Control", "no-cache");
    const char *inm = http_req_header(r, "If-None-Match");
    if (inm && strstr(inm, a->etag)) {
        http_reply(r, 304, NULL, NULL, 0);
        return;
    }
    http_reply(r, 200, a->content_type, a->data, a->len);
}

static void h_asset(http_req_t *r, void *arg)
{
    (void)arg;
    str_t p = http_req_path(r);
    const web_asset_t *a = web_asset_find(p.ptr, p.len);
    if (!a) {
        http_reply_text(r, 404, "no such UI file: %.*s", STR_FMT(p));
        return;
    }
    send_asset(r, a);
}

static void h_shell(http_req_t *r, void *arg)
{
    (void)arg;
    const web_asset_t *a = web_asset_find(SHELL, strlen(SHELL));
    if (!a) {
        http_reply_text(r, 500, "the UI was built without %s", SHELL);
        return;
    }
    send_asset(r, a);
}

int ui_register(http_server_t *srv, const char *listener)
{
    static const char *const pages[] = {"/d",    "/d/*",   "/explore", "/traces", "/traces/*",
                                        "/logs", "/tests", "/tests/*", "/alerts"};
    int rc = http_route(srv, listener, HTTP_GET, "/ui/*", h_asset, NULL, NULL);
    for (size_t i = 0; rc == 0 && i < sizeof pages / sizeof pages[0]; i++)
        rc = http_route(srv, listener, HTTP_GET, pages[i], h_shell, NULL, NULL);
    return rc;
}
