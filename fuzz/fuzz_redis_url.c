/* libFuzzer target: ROOST_REDIS_URL parsing (lib/redis_url.c).
 *
 * The input, cut at the first NUL, is the URL. Whatever it is, the parser
 * either refuses it with a reason or fills a consistent result: exactly one
 * of host and path, a port and database in range, no user without a
 * password, no empty password. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redis_url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *url = strndup((const char *)data, size);
	char err[256], where[512];
	redis_url u;

	if (url == NULL)
		abort();
	if (redis_url_parse(url, &u, err, sizeof(err)) != 0) {
		if (err[0] == '\0' || u.host || u.path || u.user || u.password)
			abort();
		free(url);
		return 0;
	}
	if ((u.host == NULL) == (u.path == NULL))
		abort();
	if (u.host && (u.host[0] == '\0' || u.port < 1 || u.port > 65535))
		abort();
	if (u.path && u.path[0] != '/')
		abort();
	if (u.dbnum < 0 || u.dbnum > 15)
		abort();
	if (u.user && u.password == NULL)
		abort();
	if (u.password && u.password[0] == '\0')
		abort();
	redis_url_where(&u, where, sizeof(where));
	redis_url_free(&u);
	free(url);
	return 0;
}
