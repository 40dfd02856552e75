/* libFuzzer target: what roost-relay reads from the network before the
 * application pipeline sees it: the HTTP/1.1 request head (pipelined
 * requests included), and the event cursor a client sends back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../realtime/http1.h"
#include "arena.h"
#include "stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t left = size;
	char *cur;

	/* Heads back to back, as a pipelining client sends them. */
	for (int i = 0; i < 8 && left > 0; i++) {
		http1_request req;
		const char *why;
		int status;

		if (http1_parse(p, left, &req, &status, &why) != HTTP1_DONE)
			break;
		if (req.head_len == 0 || req.head_len > left)
			abort(); /* the parser must consume what it parsed */
		(void)http1_header_get(&req, "connection");
		(void)http1_header_get(&req, "last-event-id");
		for (size_t h = 0; h < req.n_headers; h++)
			(void)http1_has_token(req.headers[h].value, "close");
		p += req.head_len;
		left -= req.head_len;
	}
	/* The same bytes as a cursor, and as an ephemeral message. */
	cur = malloc(size + 1);
	if (cur == NULL)
		return 0;
	memcpy(cur, data, size);
	cur[size] = '\0';
	{
		stream_cursor c;
		char back[STREAM_CURSOR_MAX];

		if (stream_cursor_parse(cur, &c)) {
			stream_cursor d;

			/* What we accept, we can give back and read again
			 * to the same position. */
			stream_cursor_format(&c, back);
			if (!stream_cursor_parse(back, &d) ||
			    strcmp(c.epoch, d.epoch) != 0 ||
			    c.ordinal != d.ordinal || strcmp(c.id, d.id) != 0)
				abort();
		}
	}
	{
		arena *a = arena_new();
		stream_ephemeral e;

		(void)stream_parse_ephemeral(a, (const char *)data, size, &e);
		arena_free(a);
	}
	free(cur);
	return 0;
}
