/* api: the REST handlers, one file per resource; the table is routes.c. */
#ifndef ROOST_API_H
#define ROOST_API_H

#include "../app.h"

rerr api_health(req_ctx *c);

#endif
