/* api/health: GET /api/v1/health, for load balancers and monitors. */
#include "api.h"

#include "json.h"

rerr
api_health(req_ctx *c)
{
	app *ap = c->app;
	json_object *body = json_object_new_object();
	bool db_ok, kv_ok;

	db_ok = db_ensure(ap->db) == R_SUCCESS &&
	    db_ping(ap->db, c->a) == R_SUCCESS;
	kv_ok = kv_ping(ap->kv, c->a) == R_SUCCESS;

	json_object_object_add(
	    body, "status", json_str(db_ok && kv_ok ? "ok" : "unavailable"));
	json_object_object_add(body, "db", json_str(db_ok ? "ok" : "down"));
	json_object_object_add(body, "redis", json_str(kv_ok ? "ok" : "down"));
	json_object_object_add(body, "version", json_str(PACKAGE_VERSION));
	if (!(db_ok && kv_ok)) {
		json_object *err = json_object_new_object();

		json_object_object_add(
		    err, "code", json_str(rerr_code(R_UNAVAILABLE)));
		json_object_object_add(err, "message",
		    json_str(!db_ok && !kv_ok
		            ? "the database and Redis are down"
		            : !db_ok ? "the database is down"
		                     : "Redis is down"));
		json_object_object_add(body, "error", err);
		http_set_header(c->res, c->a, "Retry-After", "1");
		return reply_json(c, 503, body);
	}
	return reply_json(c, 200, body);
}
