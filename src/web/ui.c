/*
 * ui.c - serves the embedded UI (web/assets.h): its files under /ui/, the single-page app's shell
 * for every page URL (/d, /d/<slug>, /explore), and the built-in
 * dashboards as JSON (/api/dashboards, /api/dashboards/uid/<slug>).
 *
 * Assets carry a strong ETag and Cache-Control: no-cache, so a browser revalidates (a 304 costs
 * one round trip) and never runs a stale UI after an upgrade.
 */
#include "web/ui.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/json.h"
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

/* The dashboards are the embedded /dashboards/<slug>.json files. */
static bool dashboard_slug(const web_asset_t *a, str_t *slug)
{
    static const char pre[] = "/dashboards/", suf[] = ".json";
    size_t n = strlen(a->path);
    if (n <= sizeof pre - 1 + sizeof suf - 1 || strncmp(a->path, pre, sizeof pre - 1) != 0 ||
        strcmp(a->path + n - (sizeof suf - 1), suf) != 0)
        return false;
    *slug = (str_t){a->path + sizeof pre - 1, n - (sizeof pre - 1) - (sizeof suf - 1)};
    return true;
}

static void h_list(http_req_t *r, void *arg)
{
    (void)arg;
    buf_t out = BUF_INIT;
    jw_t w;
    jw_init(&w, &out);
    jw_arr(&w);
    for (size_t i = 0; i < web_n_assets; i++) {
        str_t slug;
        if (!dashboard_slug(&web_assets[i], &slug))
            continue;
        json_error_t je;
        json_t *d = json_loadb((const char *)web_assets[i].data, web_assets[i].len, 0, &je);
        const char *title = json_string_value(json_object_get(d, "title"));
        const char *desc = json_string_value(json_object_get(d, "description"));
        jw_obj(&w);
        jw_key(&w, "slug");
        jw_str(&w, slug);
        jw_key(&w, "title");
        jw_cstr(&w, title ? title : "");
        jw_key(&w, "description");
        jw_cstr(&w, desc ? desc : "");
        jw_key(&w, "url");
        char url[256];
        snprintf(url, sizeof url, "/d/%.*s", STR_FMT(slug));
        jw_cstr(&w, url);
        jw_end(&w);
        json_decref(d);
    }
    jw_end(&w);
    http_reply_buf(r, 200, "application/json", &out);
}

static void h_get(http_req_t *r, void *arg)
{
    (void)arg;
    str_t slug = http_req_tail(r);
    for (size_t i = 0; i < web_n_assets; i++) {
        str_t s;
        if (dashboard_slug(&web_assets[i], &s) && str_eq(s, slug)) {
            send_asset(r, &web_assets[i]);
            return;
        }
    }
    http_reply_text(r, 404, "no dashboard \"%.*s\"", STR_FMT(slug));
}

int ui_register(http_server_t *srv, const char *listener)
{
    static const char *const pages[] = {"/d", "/d/*", "/explore"};
    int rc = http_route(srv, listener, HTTP_GET, "/ui/*", h_asset, NULL, NULL);
    for (size_t i = 0; rc == 0 && i < sizeof pages / sizeof pages[0]; i++)
        rc = http_route(srv, listener, HTTP_GET, pages[i], h_shell, NULL, NULL);
    if (rc == 0)
        rc = http_route(srv, listener, HTTP_GET, "/api/dashboards", h_list, NULL, NULL);
    if (rc == 0)
        rc = http_route(srv, listener, HTTP_GET, "/api/dashboards/uid/*", h_get, NULL, NULL);
    return rc;
}
