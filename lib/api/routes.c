/* api/routes: every REST route, as data (STYLE.md rule 3). */
#include "api.h"

#define J ROUTE_JSON_BODY
#define PW ROUTE_PW_CHANGE_OK

const route api_routes[] = {
	{.method = "GET", .pattern = "/api/v1/health", .auth = AUTH_NONE,
	    .handler = api_health, .flags = ROUTE_NO_DB},

	{.method = "POST", .pattern = "/api/v1/auth/register",
	    .auth = AUTH_NONE, .handler = api_register, .flags = J},
	{.method = "POST", .pattern = "/api/v1/auth/login", .auth = AUTH_NONE,
	    .handler = api_login, .flags = J},
	{.method = "POST", .pattern = "/api/v1/auth/logout", .auth = AUTH_USER,
	    .handler = api_logout, .flags = PW},

	{.method = "GET", .pattern = "/api/v1/me", .auth = AUTH_USER,
	    .handler = api_me_get, .flags = PW},
	{.method = "PATCH", .pattern = "/api/v1/me", .auth = AUTH_USER,
	    .handler = api_me_patch, .flags = J},
	{.method = "POST", .pattern = "/api/v1/me/password", .auth = AUTH_USER,
	    .handler = api_me_password, .flags = J | PW},
	{.method = "GET", .pattern = "/api/v1/me/sessions", .auth = AUTH_USER,
	    .handler = api_me_sessions},
	{.method = "DELETE", .pattern = "/api/v1/me/sessions/{id:int}",
	    .auth = AUTH_USER, .handler = api_me_session_delete},
	{.method = "POST", .pattern = "/api/v1/me/tokens", .auth = AUTH_USER,
	    .handler = api_me_token_create, .flags = J},
	{.method = "GET", .pattern = "/api/v1/me/tokens", .auth = AUTH_USER,
	    .handler = api_me_tokens},
	{.method = "DELETE", .pattern = "/api/v1/me/tokens/{id:int}",
	    .auth = AUTH_USER, .handler = api_me_token_delete},

	{.method = "GET", .pattern = "/api/v1/users", .auth = AUTH_USER,
	    .handler = api_users_list},
	{.method = "GET", .pattern = "/api/v1/users/{id:int}",
	    .auth = AUTH_USER, .handler = api_user_get},

	{.method = "POST", .pattern = "/api/v1/admin/users", .auth = AUTH_ADMIN,
	    .handler = api_admin_user_create, .flags = J},
	{.method = "PATCH", .pattern = "/api/v1/admin/users/{id:int}",
	    .auth = AUTH_ADMIN, .handler = api_admin_user_patch, .flags = J},
	{.method = "POST",
	    .pattern = "/api/v1/admin/users/{id:int}/reset-password",
	    .auth = AUTH_ADMIN, .handler = api_admin_user_reset_password},
	{.method = "DELETE", .pattern = "/api/v1/admin/users/{id:int}",
	    .auth = AUTH_ADMIN, .handler = api_admin_user_delete},
	{.method = "GET", .pattern = "/api/v1/admin/settings",
	    .auth = AUTH_ADMIN, .handler = api_admin_settings_get},
	{.method = "PATCH", .pattern = "/api/v1/admin/settings",
	    .auth = AUTH_ADMIN, .handler = api_admin_settings_patch, .flags = J},
};

const size_t api_routes_count = sizeof(api_routes) / sizeof(api_routes[0]);
