/* Unit tests: lib/stream without Redis: cursors, parsing stream replies
 * built by hand, the per-subscriber filter, and the client-facing forms. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "buf.h"
#include "stream.h"
#include "tap.h"

static redisReply *
str(const char *s)
{
	redisReply *r = calloc(1, sizeof(*r));

	r->type = REDIS_REPLY_STRING;
	r->str = strdup(s);
	r->len = strlen(s);
	return r;
}

static redisReply *
arr(size_t n)
{
	redisReply *r = calloc(1, sizeof(*r));

	r->type = REDIS_REPLY_ARRAY;
	r->elements = n;
	r->element = calloc(n ? n : 1, sizeof(*r->element));
	return r;
}

/* One XRANGE entry: id, then field/value pairs (NULL-terminated). */
static redisReply *
entry(const char *id, ...)
{
	const char *fv[32];
	size_t n = 0;
	va_list ap;
	redisReply *e = arr(2), *f;

	va_start(ap, id);
	while (n < 32 && (fv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	e->element[0] = str(id);
	f = arr(n);
	for (size_t i = 0; i < n; i++)
		f->element[i] = str(fv[i]);
	e->element[1] = f;
	return e;
}

static void
free_reply(redisReply *r)
{
	if (r->type == REDIS_REPLY_ARRAY) {
		for (size_t i = 0; i < r->elements; i++)
			free_reply(r->element[i]);
		free(r->element);
	} else {
		free(r->str);
	}
	free(r);
}

static const char *EP = "0123456789abcdef";

static void
test_cursors(void)
{
	stream_cursor c;
	char out[STREAM_CURSOR_MAX];

	ok(stream_cursor_parse("0123456789abcdef-42-1700000000000-3", &c),
	    "a well-formed cursor parses");
	is_str(c.epoch, EP, "epoch");
	is_int(c.ordinal, 42, "ordinal");
	is_str(c.id, "1700000000000-3", "stream id");
	stream_cursor_format(&c, out);
	is_str(out, "0123456789abcdef-42-1700000000000-3", "formats back");
	ok(stream_cursor_parse("0123456789abcdef-0-0-0", &c) && c.ordinal == 0,
	    "the start of an empty stream");
	ok(!stream_cursor_parse("", &c), "empty is refused");
	ok(!stream_cursor_parse("garbage", &c), "garbage is refused");
	ok(!stream_cursor_parse("0123456789ABCDEF-1-1-0", &c),
	    "upper-case epoch is refused");
	ok(!stream_cursor_parse("0123456789abcde-1-1-0", &c),
	    "short epoch is refused");
	ok(!stream_cursor_parse("0123456789abcdef--1-1-0", &c),
	    "negative ordinal is refused");
	ok(!stream_cursor_parse("0123456789abcdef-1-1", &c),
	    "missing sequence is refused");
	ok(!stream_cursor_parse("0123456789abcdef-1-1-0-", &c),
	    "trailing dash is refused");
	ok(!stream_cursor_parse("0123456789abcdef-1-1-0 ", &c),
	    "trailing space is refused");
	ok(!stream_cursor_parse(
	       "0123456789abcdef-1-99999999999999999999-0", &c),
	    "an id part over 19 digits is refused");
	ok(!stream_cursor_parse("0123456789abcdef-1234567890123456-1-0", &c),
	    "an ordinal over 15 digits is refused");
	ok(!stream_cursor_parse(
	       "0123456789abcdef-1-1-0'; DROP TABLE events; --", &c),
	    "SQL in a cursor is refused");
}

static void
test_parse_entries(void)
{
	redisReply *list = arr(4);
	stream_entry v[4];
	size_t n;

	list->element[0] = entry("1-0", "t", "message.created", "r", "5", "u",
	    "", "s", "", "d", "{\"id\":1}", "o", "10", "n", "7", NULL);
	list->element[1] = entry("2-0", "t", "read.updated", "r", "", "u", "3",
	    "s", "9", "d", "{}", "o", "11", "n", "8", NULL);
	/* both audiences: refused */
	list->element[2] = entry("3-0", "t", "x.y", "r", "1", "u", "1", "s", "",
	    "d", "{}", "o", "12", "n", "9", NULL);
	/* no ordinal: refused */
	list->element[3] = entry(
	    "4-0", "t", "x.y", "r", "1", "u", "", "s", "", "d", "{}", NULL);
	n = stream_parse_entries(list, EP, v, 4);
	is_int(n, 2, "two well-formed entries of four");
	is_str(v[0].type, "message.created", "type");
	is_int(v[0].room_id, 5, "room audience");
	is_int(v[0].user_id, 0, "no user");
	is_int(v[0].at.ordinal, 7, "ordinal from n");
	is_str(v[0].at.id, "1-0", "id");
	is_str(v[0].at.epoch, EP, "epoch given");
	is_int(v[1].user_id, 3, "user audience");
	is_int(v[1].origin_session, 9, "origin session");
	free_reply(list);
}

static stream_entry
ev(const char *type, int64_t room, int64_t user, int64_t origin,
    const char *data, int64_t ord)
{
	stream_entry e;

	memset(&e, 0, sizeof(e));
	strcpy(e.at.epoch, EP);
	e.at.ordinal = ord;
	snprintf(e.at.id, sizeof(e.at.id), "%lld-0", (long long)ord);
	e.type = type;
	e.room_id = room;
	e.user_id = user;
	e.origin_session = origin;
	e.data = data;
	e.data_len = strlen(data);
	return e;
}

static void
test_filter(void)
{
	int64_t rooms[] = { 9, 3, 3, 5 };
	stream_sub s;
	stream_entry e;

	memset(&s, 0, sizeof(s));
	s.user_id = 7;
	s.session_id = 70;
	stream_sub_set_rooms(&s, rooms, 4);
	is_int(s.n_rooms, 3, "rooms deduplicated");
	ok(stream_sub_in_room(&s, 3) && stream_sub_in_room(&s, 5) &&
	        stream_sub_in_room(&s, 9) && !stream_sub_in_room(&s, 4),
	    "membership lookups");

	e = ev("message.created", 3, 0, 0, "{}", 1);
	ok(stream_sub_accept(&s, &e), "a message in my room");
	is_int(s.cursor.ordinal, 1, "the cursor moved");
	e = ev("message.created", 4, 0, 0, "{}", 2);
	ok(!stream_sub_accept(&s, &e), "not a message in another room");
	is_int(s.cursor.ordinal, 2, "the cursor moves past it too");
	e = ev("read.updated", 0, 8, 0, "{}", 3);
	ok(!stream_sub_accept(&s, &e), "not another user's event");
	e = ev("read.updated", 0, 7, 70, "{}", 4);
	ok(!stream_sub_accept(&s, &e), "not read.updated back to its session");
	e = ev("read.updated", 0, 7, 71, "{}", 5);
	ok(stream_sub_accept(&s, &e), "read.updated from my other session");
	e = ev("user.updated", 0, 0, 0, "{\"id\":2}", 6);
	ok(stream_sub_accept(&s, &e), "tenant events go to everyone");

	/* joining: the joiner sees its own member.joined, then the room */
	e = ev("message.created", 4, 0, 0, "{}", 7);
	ok(!stream_sub_accept(&s, &e), "room 4 before the join");
	e = ev("member.joined", 4, 0, 0,
	    "{\"room_id\":4,\"user_ids\":[1,7],\"by\":null}", 8);
	ok(stream_sub_accept(&s, &e), "my own member.joined");
	ok(stream_sub_in_room(&s, 4), "room 4 added");
	e = ev("message.created", 4, 0, 0, "{}", 9);
	ok(stream_sub_accept(&s, &e), "room 4 after the join");
	e = ev("member.joined", 5, 0, 0,
	    "{\"room_id\":5,\"user_ids\":[8],\"by\":7}", 10);
	ok(stream_sub_accept(&s, &e), "someone else joining my room");

	/* leaving: the room copy is not mine; the user copy is */
	e = ev("member.left", 4, 0, 0,
	    "{\"room_id\":4,\"user_ids\":[7],\"by\":null}", 11);
	ok(!stream_sub_accept(&s, &e), "the room's copy of my own leave");
	ok(!stream_sub_in_room(&s, 4), "room 4 removed");
	e = ev("member.left", 0, 7, 0,
	    "{\"room_id\":4,\"user_ids\":[7],\"by\":null}", 12);
	ok(stream_sub_accept(&s, &e), "my own copy of member.left");
	e = ev("message.created", 4, 0, 0, "{}", 13);
	ok(!stream_sub_accept(&s, &e), "nothing of room 4 after leaving");
	/* a member.joined whose room_id disagrees with its audience adds
	 * nothing */
	e = ev(
	    "member.joined", 6, 0, 0, "{\"room_id\":9,\"user_ids\":[7]}", 14);
	ok(!stream_sub_accept(&s, &e) && !stream_sub_in_room(&s, 6),
	    "a mismatched member event changes nothing");
	e = ev("room.deleted", 0, 7, 0, "{\"room_id\":9}", 15);
	ok(stream_sub_accept(&s, &e) && !stream_sub_in_room(&s, 9),
	    "room.deleted removes the room");
	e = ev("member.joined", 3, 0, 0, "not json", 16);
	ok(stream_sub_accept(&s, &e), "bad data in my room is still mine");

	e = ev("message.created", 30, 0, 0, "{}", 16);
	ok(!stream_sub_accept(&s, &e), "room 30 before it exists for me");
	e = ev(
	    "room.created", 30, 0, 0, "{\"id\":30,\"member_ids\":[7,8]}", 16);
	ok(stream_sub_accept(&s, &e) && stream_sub_in_room(&s, 30),
	    "room.created naming me among its first members adds it");
	e = ev("room.created", 31, 0, 0, "{\"id\":31,\"member_ids\":[8]}", 16);
	ok(!stream_sub_accept(&s, &e) && !stream_sub_in_room(&s, 31),
	    "someone else's new room stays out");
	e = ev("session.displaced", 0, 7, 0, "{\"session_id\":71}", 17);
	ok(stream_sub_accept(&s, &e) && !s.ended,
	    "another session displaced: stream goes on");
	e = ev("session.displaced", 0, 7, 0, "{\"session_id\":70}", 18);
	ok(stream_sub_accept(&s, &e) && s.ended,
	    "this session displaced: delivered, then the stream ends");
	stream_sub_free(&s);
}

static void
test_ephemeral(void)
{
	arena *a = arena_new();
	stream_ephemeral e;
	stream_sub s;
	int64_t rooms[] = { 2 };
	const char msg[] = "0 4,2\n{\"type\":\"typing\",\"room_id\":2}";
	buf b = BUF_INIT;

	memset(&s, 0, sizeof(s));
	s.user_id = 7;
	stream_sub_set_rooms(&s, rooms, 1);
	ok(stream_parse_ephemeral(a, msg, sizeof(msg) - 1, &e), "parses");
	is_int(e.n_rooms, 2, "two audience rooms");
	is_int(e.rooms[1], 2, "second room");
	ok(stream_sub_accept_ephemeral(&s, &e), "a member of one of them");
	ok(!stream_parse_ephemeral(a, "nonewline", 9, &e), "refused");
	ok(stream_parse_ephemeral(a, "7 \n{\"type\":\"presence\"}", 21, &e),
	    "user audience without rooms");
	ok(stream_sub_accept_ephemeral(&s, &e), "my own user");
	ok(stream_parse_ephemeral(a, "8 \n{\"type\":\"presence\"}", 21, &e) &&
	        !stream_sub_accept_ephemeral(&s, &e),
	    "not another user's with no shared room");
	ok(stream_parse_ephemeral(a, msg, sizeof(msg) - 1, &e), "again");
	stream_format_sse_ephemeral(&b, &e);
	ok(strncmp(b.data, "event: typing\ndata: {", 21) == 0 &&
	        strstr(b.data, "id:") == NULL &&
	        strcmp(b.data + b.len - 2, "\n\n") == 0,
	    "ephemeral SSE frame has no id");
	buf_free(&b);
	stream_sub_free(&s);
	arena_free(a);
}

static void
test_format(void)
{
	stream_entry e = ev("message.created", 3, 0, 0, "{\"a\":\"x\ny\"}", 5);
	buf b = BUF_INIT;

	stream_format_json(&b, &e);
	is_str(b.data,
	    "{\"id\":\"0123456789abcdef-5-5-0\",\"type\":\"message.created\","
	    "\"room_id\":3,\"data\":{\"a\":\"x y\"}}",
	    "JSON form; a raw newline cannot break a frame");
	buf_reset(&b);
	stream_format_sse(&b, &e);
	ok(strncmp(b.data,
	       "id: 0123456789abcdef-5-5-0\nevent: message.created\ndata: {",
	       55) == 0,
	    "SSE frame head");
	ok(strcmp(b.data + b.len - 3, "}\n\n") == 0, "SSE frame end");
	ok(strchr(b.data, '\n') != NULL &&
	        strstr(b.data, "\n\n") == b.data + b.len - 2,
	    "exactly one blank line, at the end");
	buf_reset(&b);
	e = ev("read.updated", 0, 7, 0, "{}", 6);
	stream_format_json(&b, &e);
	ok(strstr(b.data, "\"room_id\":null") != NULL, "user event: null room");
	buf_reset(&b);
	e = ev("evil\ntype", 3, 0, 0, "{}", 7);
	stream_format_sse(&b, &e);
	is_int(b.len, 0, "a type that could break a frame is not sent");
	buf_free(&b);
}

int
main(void)
{
	test_cursors();
	test_parse_entries();
	test_filter();
	test_ephemeral();
	test_format();
	return tap_done();
}
