/* stream: cursors, the Redis scripts that append and read, and the
 * per-subscriber filter. */
#include "stream.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

/* Every script gets KEYS stream, counter, epoch and, as ARGV[1], a fresh
 * random epoch: the one the stream takes if it has none yet (a new
 * stream, or Redis lost everything). Scripts cannot make random values
 * themselves (their effects must replay the same), so the caller does. */
#define LUA_EPOCH                                                              \
	"local ep = redis.call('GET', KEYS[3]) "                               \
	"if not ep then ep = ARGV[1] redis.call('SET', KEYS[3], ep) end "

/* ord(entry): its ordinal (field n). last(): the last entry's id, or
 * "0-0" for an empty stream. older(a, b): stream id a comes before b. */
#define LUA_HELPERS                                                            \
	"local function ord(ent) local f = ent[2] "                            \
	"for i = 1, #f, 2 do if f[i] == 'n' then return tonumber(f[i + 1]) "   \
	"end end return nil end "                                              \
	"local function last() "                                               \
	"local l = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1) "    \
	"if #l > 0 then return l[1][1] end return '0-0' end "                  \
	"local function older(a, b) "                                          \
	"local am, as = string.match(a, '^(%d+)-(%d+)$') "                     \
	"local bm, bs = string.match(b, '^(%d+)-(%d+)$') "                     \
	"if not am or not bm then return false end "                           \
	"am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), "          \
	"tonumber(bs) "                                                        \
	"return am < bm or (am == bm and as < bs) end "

/* Returns {epoch, ordinal, last id}. */
static const char head_lua[] = LUA_EPOCH LUA_HELPERS
    "local n = tonumber(redis.call('GET', KEYS[2]) or '0') "
    "return {ep, tostring(n), last()}";

/* ARGV: fresh epoch, then the cursor: epoch, ordinal, id; then count.
 * Returns {'resync', epoch} or {'ok', epoch, entries}. The cursor must
 * name an entry that is still there with its ordinal (or one trimmed
 * away, whose successor is now the first entry), or be exactly the end:
 * a crash can take the stream's last entries and keep the epoch, and new
 * entries would then reuse ordinals the client already holds. The first
 * entry after it must carry the next ordinal. Anything else is a resync:
 * lost, trimmed, or a cursor we never gave out. */
static const char read_lua[] = LUA_EPOCH LUA_HELPERS
    "if ARGV[2] ~= ep then return {'resync', ep} end "
    "local k = tonumber(ARGV[3]) "
    "local n = tonumber(redis.call('GET', KEYS[2]) or '0') "
    "if k > n then return {'resync', ep} end "
    "if k == n then "
    "  if last() ~= ARGV[4] then return {'resync', ep} end "
    "  return {'ok', ep, {}} "
    "end "
    "local cnt = tonumber(ARGV[5]) "
    "local r = redis.call('XRANGE', KEYS[1], ARGV[4], '+', 'COUNT', cnt + 1) "
    "if #r == 0 then return {'resync', ep} end "
    "local s = 1 "
    "if r[1][1] == ARGV[4] then "
    "  if ord(r[1]) ~= k then return {'resync', ep} end "
    "  s = 2 "
    "else "
    "  local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1) "
    "  if first[1][1] ~= r[1][1] then return {'resync', ep} end "
    "end "
    "if r[s] == nil or ord(r[s]) ~= k + 1 then return {'resync', ep} end "
    "local out = {} "
    "for i = s, #r do if #out < cnt then out[#out + 1] = r[i] end end "
    "return {'ok', ep, out}";

/* ARGV: fresh epoch, maxlen, wake channel, the expected end (epoch,
 * ordinal, id; epoch "" for none), the window, then 6 per event. First
 * the check (stream.h): an end that went back behind the expected one
 * gets a new epoch. Then the appends, and one PUBLISH when anything
 * changed.
 *
 * KEYS[4] is the window of outbox ids already appended (stream.h): a
 * sorted set, score the counter when the id was last offered. An id in
 * it is not appended again and takes no ordinal. Scores above the
 * counter belong to appends a crash took back with the counter (they
 * go together, in one script): those ids are forgotten first, so they
 * are appended again. Scores older than the window's last ARGV[7]
 * ordinals are trimmed after the appends.
 * Returns {epoch, ordinal, last id appended or '', rotated 0/1}; when
 * events were offered and all were already there, the stream's end. */
static const char publish_lua[] = LUA_EPOCH LUA_HELPERS
    "local rotated = 0 "
    "if ARGV[4] == ep then "
    "  local k = tonumber(ARGV[5]) "
    "  local lost = tonumber(redis.call('GET', KEYS[2]) or '0') < k "
    "  if not lost and k > 0 then "
    "    local r = redis.call('XRANGE', KEYS[1], ARGV[6], ARGV[6]) "
    "    if #r > 0 then "
    "      lost = ord(r[1]) ~= k "
    "    else "
    "      local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1) "
    "      lost = #first == 0 or not older(ARGV[6], first[1][1]) "
    "    end "
    "  end "
    "  if lost then "
    "    ep = ARGV[1] "
    "    redis.call('SET', KEYS[3], ep) "
    "    rotated = 1 "
    "  end "
    "end "
    "local id, n = '', tonumber(redis.call('GET', KEYS[2]) or '0') "
    "local offered = #ARGV >= 8 "
    "if offered then "
    "  redis.call('ZREMRANGEBYSCORE', KEYS[4], '(' .. n, '+inf') "
    "end "
    "for i = 8, #ARGV, 6 do "
    "  local o = ARGV[i + 5] "
    "  if o ~= '' and redis.call('ZSCORE', KEYS[4], o) then "
    "    redis.call('ZADD', KEYS[4], n, o) "
    "  else "
    "    n = redis.call('INCR', KEYS[2]) "
    "    id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', "
    "      't', ARGV[i], 'r', ARGV[i + 1], 'u', ARGV[i + 2], "
    "      's', ARGV[i + 3], 'd', ARGV[i + 4], 'o', o, "
    "      'n', tostring(n)) "
    "    if o ~= '' then redis.call('ZADD', KEYS[4], n, o) end "
    "  end "
    "end "
    "if offered then "
    "  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', "
    "    n - tonumber(ARGV[7])) "
    "end "
    "if id ~= '' or rotated == 1 then "
    "  redis.call('PUBLISH', ARGV[3], id ~= '' and id or 'epoch') "
    "end "
    "if offered and id == '' then id = last() end "
    "return {ep, tostring(n), id, rotated}";

static bool
all_digits(const char *s, size_t n)
{
	if (n == 0 || n > 19)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool
valid_id(const char *s)
{
	const char *dash = strchr(s, '-');

	return dash != NULL && all_digits(s, (size_t)(dash - s)) &&
	    all_digits(dash + 1, strlen(dash + 1));
}

bool
stream_cursor_parse(const char *s, stream_cursor *out)
{
	const char *p = s, *d;
	size_t n;

	if (s == NULL || strlen(s) >= STREAM_CURSOR_MAX)
		return false;
	for (n = 0; n < STREAM_EPOCH_LEN; n++)
		if (!((p[n] >= '0' && p[n] <= '9') ||
		        (p[n] >= 'a' && p[n] <= 'f')))
			return false;
	if (p[n] != '-')
		return false;
	memcpy(out->epoch, p, STREAM_EPOCH_LEN);
	out->epoch[STREAM_EPOCH_LEN] = '\0';
	p += STREAM_EPOCH_LEN + 1;
	if ((d = strchr(p, '-')) == NULL || !all_digits(p, (size_t)(d - p)) ||
	    (size_t)(d - p) > 15)
		return false;
	out->ordinal = strtoll(p, NULL, 10);
	p = d + 1;
	if (strlen(p) >= sizeof(out->id) || !valid_id(p))
		return false;
	strcpy(out->id, p);
	return true;
}

void
stream_cursor_format(const stream_cursor *c, char *out)
{
	snprintf(out, STREAM_CURSOR_MAX, "%s-%" PRId64 "-%s", c->epoch,
	    c->ordinal, c->id);
}

static bool
set_epoch(stream_cursor *c, const redisReply *r)
{
	if (r->type != REDIS_REPLY_STRING || r->len != STREAM_EPOCH_LEN)
		return false;
	memcpy(c->epoch, r->str, STREAM_EPOCH_LEN);
	c->epoch[STREAM_EPOCH_LEN] = '\0';
	return true;
}

/* 16 random hex digits: an epoch for a stream that has none. */
static char *
fresh_epoch(arena *a)
{
	unsigned char raw[STREAM_EPOCH_LEN / 2];
	char *out = arena_alloc(a, STREAM_EPOCH_LEN + 1);

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(out, STREAM_EPOCH_LEN + 1, raw, sizeof(raw));
	return out;
}

/* EVAL script with KEYS stream, counter, epoch, window (only the
 * publish script uses it; every key of a tenant shares its hash slot) and
 * ARGV a fresh epoch, then args. */
#define EVAL_FIXED 8
static redisReply *
eval(kv *k, arena *a, const char *script, const char *tenant, int nargs,
    const char **args, const size_t *lens, rerr *e)
{
	const char **argv =
	    arena_calloc(a, (size_t)nargs + EVAL_FIXED, sizeof(*argv));
	size_t *l = arena_calloc(a, (size_t)nargs + EVAL_FIXED, sizeof(*l));

	argv[0] = "EVAL";
	argv[1] = script;
	argv[2] = "4";
	argv[3] = kv_key(a, tenant, "events");
	argv[4] = kv_key(a, tenant, "events:n");
	argv[5] = kv_key(a, tenant, "events:epoch");
	argv[6] = kv_key(a, tenant, "events:seen");
	argv[7] = fresh_epoch(a);
	for (int i = 0; i < EVAL_FIXED; i++)
		l[i] = strlen(argv[i]);
	for (int i = 0; i < nargs; i++) {
		argv[EVAL_FIXED + i] = args[i];
		l[EVAL_FIXED + i] = lens ? lens[i] : strlen(args[i]);
	}
	return kv_cmdv(k, a, e, nargs + EVAL_FIXED, argv, l);
}

rerr
stream_head(kv *k, arena *a, const char *tenant, stream_cursor *out)
{
	redisReply *r;
	rerr e;

	r = eval(k, a, head_lua, tenant, 0, NULL, NULL, &e);
	if (r == NULL || e != R_SUCCESS || r->type != REDIS_REPLY_ARRAY ||
	    r->elements != 3 || !set_epoch(out, r->element[0]) ||
	    r->element[1]->type != REDIS_REPLY_STRING ||
	    r->element[2]->type != REDIS_REPLY_STRING ||
	    r->element[2]->len >= sizeof(out->id))
		return R_UNAVAILABLE;
	out->ordinal = strtoll(r->element[1]->str, NULL, 10);
	memcpy(out->id, r->element[2]->str, r->element[2]->len + 1);
	return R_SUCCESS;
}

static int64_t
num_field(const redisReply *v)
{
	if (v->type != REDIS_REPLY_STRING || v->len == 0)
		return 0;
	return strtoll(v->str, NULL, 10);
}

size_t
stream_parse_entries(
    const redisReply *r, const char *epoch, stream_entry *v, size_t cap)
{
	size_t n = 0;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY)
		return 0;
	for (size_t i = 0; i < r->elements && n < cap; i++) {
		const redisReply *ent = r->element[i], *f;
		stream_entry *e = &v[n];
		bool have_n = false;

		if (ent->type != REDIS_REPLY_ARRAY || ent->elements != 2 ||
		    ent->element[0]->type != REDIS_REPLY_STRING ||
		    ent->element[0]->len >= sizeof(e->at.id) ||
		    ent->element[1]->type != REDIS_REPLY_ARRAY)
			continue;
		memset(e, 0, sizeof(*e));
		strcpy(e->at.epoch, epoch);
		memcpy(
		    e->at.id, ent->element[0]->str, ent->element[0]->len + 1);
		f = ent->element[1];
		for (size_t j = 0; j + 1 < f->elements; j += 2) {
			const redisReply *key = f->element[j],
			                 *val = f->element[j + 1];

			if (key->type != REDIS_REPLY_STRING || key->len != 1 ||
			    val->type != REDIS_REPLY_STRING)
				continue;
			switch (key->str[0]) {
			case 't': e->type = val->str; break;
			case 'r': e->room_id = num_field(val); break;
			case 'u': e->user_id = num_field(val); break;
			case 's': e->origin_session = num_field(val); break;
			case 'd':
				e->data = val->str;
				e->data_len = val->len;
				break;
			case 'n':
				e->at.ordinal = num_field(val);
				have_n = true;
				break;
			default: break;
			}
		}
		if (e->type == NULL || e->data == NULL || !have_n ||
		    (e->room_id != 0 && e->user_id != 0))
			continue;
		n++;
	}
	return n;
}

rerr
stream_read(kv *k, arena *a, const char *tenant, const stream_cursor *after,
    size_t max, stream_batch *out)
{
	char ord[24], cnt[24];
	/* ARGV[2..5] of read_lua (eval puts a fresh epoch first). */
	const char *args[4] = { after->epoch, ord, after->id, cnt };
	const redisReply *list;
	redisReply *r;
	rerr e;

	memset(out, 0, sizeof(*out));
	out->head = *after;
	if (max == 0 || max > 10000)
		max = STREAM_READ_BATCH;
	snprintf(ord, sizeof(ord), "%" PRId64, after->ordinal);
	snprintf(cnt, sizeof(cnt), "%zu", max);
	r = eval(k, a, read_lua, tenant, 4, args, NULL, &e);
	if (r == NULL || e != R_SUCCESS || r->type != REDIS_REPLY_ARRAY ||
	    r->elements < 2 || r->element[0]->type != REDIS_REPLY_STRING)
		return R_UNAVAILABLE;
	if (strcmp(r->element[0]->str, "resync") == 0) {
		out->status = STREAM_RESYNC;
		return R_SUCCESS;
	}
	if (r->elements != 3 || r->element[2]->type != REDIS_REPLY_ARRAY)
		return R_UNAVAILABLE;
	list = r->element[2];
	out->status = STREAM_OK;
	out->v = arena_calloc(a, list->elements + 1, sizeof(*out->v));
	out->n =
	    stream_parse_entries(list, after->epoch, out->v, list->elements);
	if (list->elements > 0) {
		/* The head moves past everything returned, parsed or not. */
		const redisReply *lastent = list->element[list->elements - 1];

		if (out->n > 0)
			out->head = out->v[out->n - 1].at;
		if (lastent->type == REDIS_REPLY_ARRAY &&
		    lastent->elements == 2 &&
		    lastent->element[0]->type == REDIS_REPLY_STRING &&
		    lastent->element[0]->len < sizeof(out->head.id) &&
		    (out->n == 0 ||
		        strcmp(out->v[out->n - 1].at.id,
		            lastent->element[0]->str) != 0)) {
			/* A malformed last entry: step over it. */
			memcpy(out->head.id, lastent->element[0]->str,
			    lastent->element[0]->len + 1);
			out->head.ordinal =
			    after->ordinal + (int64_t)list->elements;
		}
	}
	out->more = list->elements >= max;
	return R_SUCCESS;
}

rerr
stream_publish(kv *k, arena *a, const char *tenant, long maxlen,
    const stream_cursor *expect, size_t n_events, const char *const *fields,
    stream_cursor *appended, bool *rotated)
{
	int nargs = 6 + (int)(n_events * 6);
	const char **args = arena_calloc(a, (size_t)nargs, sizeof(*args));
	stream_cursor got;
	redisReply *r;
	rerr e;

	*rotated = false;
	args[0] = arena_printf(a, "%ld", maxlen > 0 ? maxlen : 100000L);
	args[1] = kv_key(a, tenant, "wake");
	args[2] = expect ? expect->epoch : "";
	args[3] =
	    arena_printf(a, "%" PRId64, expect ? expect->ordinal : (int64_t)0);
	args[4] = expect ? expect->id : "0-0";
	args[5] = arena_printf(a, "%d", STREAM_SEEN_WINDOW);
	for (size_t i = 0; i < n_events * 6; i++)
		args[6 + i] = fields[i];
	r = eval(k, a, publish_lua, tenant, nargs, args, NULL, &e);
	if (r == NULL || e != R_SUCCESS || r->type != REDIS_REPLY_ARRAY ||
	    r->elements != 4 || !set_epoch(&got, r->element[0]) ||
	    r->element[1]->type != REDIS_REPLY_STRING ||
	    r->element[2]->type != REDIS_REPLY_STRING ||
	    r->element[2]->len >= sizeof(got.id) ||
	    r->element[3]->type != REDIS_REPLY_INTEGER ||
	    (n_events > 0 && r->element[2]->len == 0))
		return R_UNAVAILABLE;
	*rotated = r->element[3]->integer == 1;
	if (appended != NULL && r->element[2]->len > 0) {
		got.ordinal = strtoll(r->element[1]->str, NULL, 10);
		memcpy(got.id, r->element[2]->str, r->element[2]->len + 1);
		*appended = got;
	}
	return R_SUCCESS;
}

/* Ephemeral message: "<user> <room>,<room>,...\n<json>". */
rerr
stream_publish_ephemeral(kv *k, arena *a, const char *tenant,
    const int64_t *audience_rooms, size_t n_rooms, int64_t audience_user,
    const char *event_json)
{
	buf b = BUF_INIT;
	redisReply *r;
	const char *argv[3];
	size_t lens[3];
	rerr e;

	buf_printf(&b, "%" PRId64 " ", audience_user);
	for (size_t i = 0; i < n_rooms; i++)
		buf_printf(&b, "%s%" PRId64, i ? "," : "", audience_rooms[i]);
	buf_putc(&b, '\n');
	buf_puts(&b, event_json);
	argv[0] = "PUBLISH";
	argv[1] = kv_key(a, tenant, "eph");
	argv[2] = b.data;
	lens[0] = 7;
	lens[1] = strlen(argv[1]);
	lens[2] = b.len;
	r = kv_cmdv(k, a, &e, 3, argv, lens);
	buf_free(&b);
	return r == NULL || e != R_SUCCESS ? R_UNAVAILABLE : R_SUCCESS;
}

bool
stream_parse_ephemeral(
    arena *a, const char *msg, size_t len, stream_ephemeral *out)
{
	const char *nl = memchr(msg, '\n', len), *p;
	char *head, *sp, *end;
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	if (nl == NULL)
		return false;
	/* The head as a string of its own: msg need not be terminated. */
	head = arena_strndup(a, msg, (size_t)(nl - msg));
	if ((sp = strchr(head, ' ')) == NULL)
		return false;
	out->user_id = strtoll(head, &end, 10);
	if (end != sp || out->user_id < 0)
		return false;
	for (p = sp + 1; *p; p++)
		if (*p == ',')
			n++;
	if (sp[1] != '\0')
		n++;
	out->rooms = arena_calloc(a, n + 1, sizeof(*out->rooms));
	for (p = sp + 1; *p && out->n_rooms < n;) {
		long long v = strtoll(p, &end, 10);

		if (end == p)
			return false;
		out->rooms[out->n_rooms++] = v;
		p = end;
		if (*p == ',')
			p++;
		else if (*p != '\0')
			return false;
	}
	out->json_len = len - (size_t)(nl + 1 - msg);
	out->json = arena_strndup(a, nl + 1, out->json_len);
	return true;
}

static int
cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;

	return a < b ? -1 : a > b;
}

void
stream_sub_set_rooms(stream_sub *s, const int64_t *rooms, size_t n)
{
	size_t w = 0;

	if (n > s->cap_rooms) {
		int64_t *p = realloc(s->rooms, n * sizeof(*p));

		if (p == NULL)
			abort();
		s->rooms = p;
		s->cap_rooms = n;
	}
	if (n)
		memcpy(s->rooms, rooms, n * sizeof(*rooms));
	if (n > 1) /* s->rooms is NULL for a user in no room */
		qsort(s->rooms, n, sizeof(*s->rooms), cmp_i64);
	for (size_t i = 0; i < n; i++)
		if (w == 0 || s->rooms[w - 1] != s->rooms[i])
			s->rooms[w++] = s->rooms[i];
	s->n_rooms = w;
}

bool
stream_sub_in_room(const stream_sub *s, int64_t room_id)
{
	return s->n_rooms > 0 &&
	    bsearch(&room_id, s->rooms, s->n_rooms, sizeof(*s->rooms),
	        cmp_i64) != NULL;
}

static void
add_room(stream_sub *s, int64_t room)
{
	size_t i;

	if (stream_sub_in_room(s, room))
		return;
	if (s->n_rooms == s->cap_rooms) {
		size_t cap = s->cap_rooms ? s->cap_rooms * 2 : 8;
		int64_t *p = realloc(s->rooms, cap * sizeof(*p));

		if (p == NULL)
			abort();
		s->rooms = p;
		s->cap_rooms = cap;
	}
	for (i = s->n_rooms; i > 0 && s->rooms[i - 1] > room; i--)
		s->rooms[i] = s->rooms[i - 1];
	s->rooms[i] = room;
	s->n_rooms++;
}

static void
remove_room(stream_sub *s, int64_t room)
{
	for (size_t i = 0; i < s->n_rooms; i++)
		if (s->rooms[i] == room) {
			memmove(&s->rooms[i], &s->rooms[i + 1],
			    (s->n_rooms - i - 1) * sizeof(*s->rooms));
			s->n_rooms--;
			return;
		}
}

void
stream_sub_free(stream_sub *s)
{
	free(s->rooms);
	s->rooms = NULL;
	s->n_rooms = s->cap_rooms = 0;
}

/* The entry's data as JSON: a new reference, or NULL. */
static json_object *
entry_json(const stream_entry *e)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = json_tokener_parse_ex(tok, e->data, (int)e->data_len);

	json_tokener_free(tok);
	return o;
}

/* Whether o[key] is an array holding id (never for id 0). */
static bool
id_listed(json_object *o, const char *key, int64_t id)
{
	json_object *ids;

	if (id == 0 || !json_object_object_get_ex(o, key, &ids) ||
	    !json_object_is_type(ids, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(ids); i++) {
		json_object *v = json_object_array_get_idx(ids, i);

		if (json_object_is_type(v, json_type_int) &&
		    json_object_get_int64(v) == id)
			return true;
	}
	return false;
}

/* For member events: the room and whether s's user is among the ids in
 * data[key] (user_ids of member events, member_ids of room.created). */
static bool
names_me_in(const stream_entry *e, const char *key, int64_t me, int64_t *room)
{
	json_object *o = entry_json(e), *rid;
	bool found;

	if (o == NULL)
		return false;
	*room = 0;
	if (json_object_object_get_ex(o, "room_id", &rid) &&
	    json_object_is_type(rid, json_type_int))
		*room = json_object_get_int64(rid);
	found = id_listed(o, key, me);
	json_object_put(o);
	return found;
}

static bool
names_me(const stream_entry *e, int64_t me, int64_t *room)
{
	return names_me_in(e, "user_ids", me, room);
}

static bool
session_named(const stream_entry *e, int64_t sid)
{
	json_object *o = entry_json(e), *v;
	bool yes = false;

	if (o != NULL && json_object_object_get_ex(o, "session_id", &v) &&
	    json_object_is_type(v, json_type_int))
		yes = json_object_get_int64(v) == sid;
	json_object_put(o);
	return yes;
}

/* A reason as we write them: lower-case words joined by '_'. */
static bool
safe_reason(const char *r)
{
	size_t n = 0;

	for (; r[n] != '\0'; n++)
		if (!((r[n] >= 'a' && r[n] <= 'z') || r[n] == '_'))
			return false;
	return n > 0 && n < STREAM_REASON_MAX;
}

void
stream_sub_end(stream_sub *s, const char *reason)
{
	if (s->end_reason[0] != '\0')
		return;
	snprintf(s->end_reason, sizeof(s->end_reason), "%s",
	    reason != NULL && safe_reason(reason) ? reason : "revoked");
}

/* session.ended {reason, all?, session_ids?, token_ids?}: does it end s? */
static bool
ends_me(stream_sub *s, const stream_entry *e)
{
	json_object *o = entry_json(e), *v;
	bool yes = false;

	if (o == NULL || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return false;
	}
	if (json_object_object_get_ex(o, "all", &v) &&
	    json_object_is_type(v, json_type_boolean))
		yes = json_object_get_boolean(v);
	yes = yes || id_listed(o, "session_ids", s->session_id) ||
	    id_listed(o, "token_ids", s->token_id);
	if (yes)
		stream_sub_end(s,
		    json_object_object_get_ex(o, "reason", &v) &&
		            json_object_is_type(v, json_type_string)
		        ? json_object_get_string(v)
		        : NULL);
	json_object_put(o);
	return yes;
}

bool
stream_sub_accept(stream_sub *s, const stream_entry *e)
{
	int64_t room = 0;

	s->cursor = e->at;
	if (e->user_id == 0 && e->room_id == 0)
		return true; /* the whole tenant */
	if (e->user_id != 0) {
		if (e->user_id != s->user_id)
			return false;
		if (strcmp(e->type, "session.ended") == 0)
			return ends_me(s, e);
		if (strcmp(e->type, "session.displaced") == 0 &&
		    s->session_id != 0 && session_named(e, s->session_id))
			s->ended = true;
		if (strcmp(e->type, "room.deleted") == 0 ||
		    strcmp(e->type, "member.left") == 0) {
			(void)names_me(e, s->user_id, &room);
			if (room > 0)
				remove_room(s, room);
		}
		if (strcmp(e->type, "read.updated") == 0 &&
		    s->session_id != 0 && e->origin_session == s->session_id)
			return false;
		return true;
	}
	if (strcmp(e->type, "member.joined") == 0 &&
	    names_me(e, s->user_id, &room) && room == e->room_id)
		add_room(s, e->room_id);
	else if (strcmp(e->type, "room.created") == 0 &&
	    names_me_in(e, "member_ids", s->user_id, &room))
		add_room(s, e->room_id); /* the creator, or the two of a DM */
	else if (strcmp(e->type, "member.left") == 0 &&
	    names_me(e, s->user_id, &room) && room == e->room_id) {
		/* The leaver gets its own copy (user audience). */
		remove_room(s, e->room_id);
		return false;
	}
	return stream_sub_in_room(s, e->room_id);
}

bool
stream_sub_accept_ephemeral(const stream_sub *s, const stream_ephemeral *e)
{
	if (e->user_id != 0 && e->user_id == s->user_id)
		return true;
	for (size_t i = 0; i < e->n_rooms; i++)
		if (stream_sub_in_room(s, e->rooms[i]))
			return true;
	return false;
}

/* Event types are our own constants; anything else is not sent. */
static bool
safe_type(const char *t)
{
	if (*t == '\0')
		return false;
	for (; *t; t++)
		if (!((*t >= 'a' && *t <= 'z') || *t == '.' || *t == '_'))
			return false;
	return true;
}

void
stream_format_json(buf *out, const stream_entry *e)
{
	char cur[STREAM_CURSOR_MAX];

	if (!safe_type(e->type))
		return;
	stream_cursor_format(&e->at, cur);
	buf_printf(
	    out, "{\"id\":\"%s\",\"type\":\"%s\",\"room_id\":", cur, e->type);
	if (e->room_id)
		buf_printf(out, "%" PRId64, e->room_id);
	else
		buf_puts(out, "null");
	buf_puts(out, ",\"data\":");
	/* jsonb text has no raw newlines; guard anyway, since SSE frames
	 * end at a blank line. */
	for (size_t i = 0; i < e->data_len; i++)
		buf_putc(out, e->data[i] == '\n' ? ' ' : e->data[i]);
	buf_putc(out, '}');
}

void
stream_format_sse(buf *out, const stream_entry *e)
{
	char cur[STREAM_CURSOR_MAX];

	if (!safe_type(e->type))
		return;
	stream_cursor_format(&e->at, cur);
	buf_printf(out, "id: %s\nevent: %s\ndata: ", cur, e->type);
	stream_format_json(out, e);
	buf_puts(out, "\n\n");
}

void
stream_format_sse_ephemeral(buf *out, const stream_ephemeral *e)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = json_tokener_parse_ex(tok, e->json, (int)e->json_len),
	            *t;
	const char *type = NULL;

	json_tokener_free(tok);
	if (o != NULL && json_object_object_get_ex(o, "type", &t) &&
	    json_object_is_type(t, json_type_string))
		type = json_object_get_string(t);
	if (type != NULL && safe_type(type)) {
		buf_printf(out, "event: %s\ndata: ", type);
		for (size_t i = 0; i < e->json_len; i++)
			buf_putc(out, e->json[i] == '\n' ? ' ' : e->json[i]);
		buf_puts(out, "\n\n");
	}
	json_object_put(o);
}

void
stream_format_ended(buf *out, const stream_cursor *at, const char *reason)
{
	char cur[STREAM_CURSOR_MAX];

	if (reason == NULL || !safe_reason(reason))
		reason = "revoked";
	if (at != NULL) {
		stream_cursor_format(at, cur);
		buf_printf(out, "id: %s\n", cur);
	}
	buf_puts(out, "event: session.ended\ndata: {");
	if (at != NULL)
		buf_printf(out, "\"id\":\"%s\",", cur);
	buf_printf(out,
	    "\"type\":\"session.ended\",\"room_id\":null,"
	    "\"data\":{\"reason\":\"%s\"}}\n\n",
	    reason);
}
