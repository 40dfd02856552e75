/* tenant: schema-name validation and per-request tenant resolution. */
#include "tenant.h"

#include <string.h>

bool
tenant_schema_valid(const char *s)
{
	size_t n;

	if (s == NULL)
		return false;
	n = strlen(s);
	if (n == 0 || n > 63)
		return false;
	if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	if (strncmp(s, "pg_", 3) == 0 || strcmp(s, "information_schema") == 0 ||
	    strcmp(s, "public") == 0)
		return false;
	return true;
}

rerr
tenant_resolve(const roost_config *cfg, const http_request *req, tenant *out)
{
	(void)req; /* host mode will read req's Host header here */
	out->schema = cfg->schema;
	out->id = cfg->schema;
	return R_SUCCESS;
}
