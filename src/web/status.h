/*
 * status.h - the server's own endpoints, on every listener:
 *   GET /api/skillscope/status   JSON for `skillscope status` and the UI's home page
 *   GET /metrics                 Prometheus text: selfmon metrics plus storage statistics
 *   GET /-/healthy               200 "Skillscope is Healthy.\n" while the process serves HTTP
 *   GET /-/ready                 200 "Skillscope is Ready.\n" once the store is open, else 503
 *
 * Status JSON: {"version", "start_time", "uptime_seconds", "listen": [{"name","address"}],
 * "data_dir", "disk_bytes", "received": {"traces"|"metrics"|"logs": {"received", "accepted",
 * "refused"}},
 * "storage": {db_stats_t fields}} (storage is absent while the store is not open).
 */
#ifndef WEB_STATUS_H
#define WEB_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include "net/http.h"
#include "store/db.h"

/* Registers the routes above on every listener of srv. db may be NULL (not ready yet; see
 * status_set_db). start_ms is the process start time (ms since epoch). There is one status
 * context per process: registering again replaces it. */
int status_register(http_server_t *srv, db_t *db, int64_t start_ms);
/* Sets the store /-/ready and the statistics use; NULL makes /-/ready answer 503 (used while
 * starting and from the moment shutdown begins). Loop thread. */
void status_set_db(db_t *db);
/* The data directory shown in the status and measured for disk_bytes (copied). */
void status_set_data_dir(const char *dir);

#endif
