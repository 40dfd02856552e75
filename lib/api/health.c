/* api/health: GET /api/v1/health, for load balancers and monitors. */
#include "api.h"

#include "json.h"

/* 503 only when PostgreSQL is down: nothing works without it. Without
 * Redis the API still works (sends commit and wait in the outbox, the
 * per-user limit fails open, sessions are checked in PostgreSQL) but
 * realtime delivery, sign-in and presence do not: 200 with "degraded",
 * so a load balancer keeps the node while a monitor sees what is down. */
rerr
api_health(req_ctx *c)
{
	app *ap = c->app;
	json_object *body = json_object_new_object();
	bool db_ok, kv_ok;

	db_ok = db_ensure(ap->db) == R_SUCCESS &&
	    db_ping(ap->db, c->a) == R_SUCCESS;
	kv_ok = kv_ping(ap->kv, c->a) == R_SUCCESS;

	json_object_object_add(body, "status",
	    json_str(!db_ok ? "unavailable"
	            : kv_ok ? "ok"
	                    : "degraded"));
	json_object_object_add(body, "db", json_str(db_ok ? "ok" : "down"));
	json_object_object_add(body, "redis", json_str(kv_ok ? "ok" : "down"));
	json_object_object_add(body, "version", json_str(PACKAGE_VERSION));
	if (!db_ok) {
		json_object *err = json_object_new_object();

		json_object_object_add(
		    err, "code", json_str(rerr_code(R_UNAVAILABLE)));
		json_object_object_add(err, "message",
		    json_str(kv_ok ? "the database is down"
		                   : "the database and Redis are down"));
		json_object_object_add(body, "error", err);
		return reply_json(c, 503, body); /* with Retry-After */
	}
	return reply_json(c, 200, body);
}
