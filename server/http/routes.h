/* routes.h: which handler serves a method and URL (routes.c). */
#ifndef HMMBA_SRV_ROUTES_H
#define HMMBA_SRV_ROUTES_H

#include "server/http/request.h"

#include <stdbool.h>
#include <stddef.h>

/* Find the handler for method+url. Sets *async. Returns NULL and fills
 * status (404 or 405) and allow when there is none. */
srv_handler srv_route(const char *method, const char *url, bool *async, int *status,
                      const char **allow);

/* Entry i of the route table: its method and path, where {name} stands
 * for one path segment (the /sessions entries are served by
 * srv_session_route and listed here too). false when i is past the end.
 * The strings are static. */
bool srv_route_entry(size_t i, const char **method, const char **path);

#endif
