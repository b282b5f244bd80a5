/* session_routes.h: the /sessions endpoints (session_routes.c). */
#ifndef HMMBA_SRV_SESSION_ROUTES_H
#define HMMBA_SRV_SESSION_ROUTES_H

#include "server/http/request.h"

#include <stdbool.h>

/* Sessions endpoints (session_routes.c); url starts with /sessions. */
srv_handler srv_session_route(const char *method, const char *url, bool *async, int *status,
                              const char **allow);

#endif
