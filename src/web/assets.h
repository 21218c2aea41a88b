/*
 * assets.h - the UI's files, embedded in the binary at build time (scripts/embed-assets.py
 * generates the table from ui/, dashboards/ and uPlot's dist files), so the UI works with no
 * network and no files beside the binary.
 */
#ifndef WEB_ASSETS_H
#define WEB_ASSETS_H

#include <stddef.h>

typedef struct web_asset {
    const char *path;          /* URL path, e.g. "/ui/app.js"; the table is sorted by it */
    const char *content_type;  /* e.g. "text/javascript; charset=utf-8" */
    const unsigned char *data; /* NUL-terminated (not counted in len) */
    size_t len;
    const char *etag; /* quoted strong ETag from the content's hash */
} web_asset_t;

extern const web_asset_t web_assets[];
extern const size_t web_n_assets;

/* The asset at path, or NULL (binary search). */
const web_asset_t *web_asset_find(const char *path, size_t len);

#endif
