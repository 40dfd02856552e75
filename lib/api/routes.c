/* api/routes: every REST route, as data (STYLE.md rule 3). */
#include "api.h"

const route api_routes[] = {
	{.method = "GET", .pattern = "/api/v1/health", .auth = AUTH_NONE,
	    .handler = api_health, .flags = ROUTE_NO_DB},
};

const size_t api_routes_count = sizeof(api_routes) / sizeof(api_routes[0]);
