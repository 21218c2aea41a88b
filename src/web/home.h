/*
 * home.h - GET / on the main listener: a small page saying what this server is, where to send
 * data (the OTEL_* variables with this server's real ports), what arrived so far and which APIs
 * answer. The dashboards UI replaces it when it lands (issue 6).
 */
#ifndef WEB_HOME_H
#define WEB_HOME_H

#include "net/http.h"

/* Registers GET / on the listener named listener (NULL = every listener). */
int home_register(http_server_t *srv, const char *listener);

#endif
