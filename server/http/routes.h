/* routes.h: which handler serves a method and URL (routes.c). */
#ifndef HMMBA_SRV_ROUTES_H
#define HMMBA_SRV_ROUTES_H

#include "server/http/request.h"

#include <stdbool.h>

/* Find the handler for method+url. Sets *async. Returns NULL and fills
 * status (404 or 405) and allow when there is none. */
srv_handler srv_route(const char *method, const char *url, bool *async, int *status,
                      const char **allow);

#endif
