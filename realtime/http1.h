/* http1: the HTTP/1.x request-head parser of roost-relay.
 *
 * The relay reads bytes from a socket into a connection buffer and asks
 * this parser whether a whole request head has arrived. The parser copies
 * nothing: the request it fills points into the caller's buffer, so the
 * buffer must not move or change while the request is in use.
 *
 * It accepts only what the relay serves: origin-form targets ("/path?q"),
 * HTTP/1.0 and HTTP/1.1, no request bodies (a body is reported, not read).
 * Everything else is refused with a status to answer before closing. Line
 * ends may be CRLF or a bare LF (RFC 9112 2.2); empty lines before the
 * request line are skipped; obsolete line folding is refused.
 */
#ifndef ROOST_HTTP1_H
#define ROOST_HTTP1_H

#include <stdbool.h>
#include <stddef.h>

/* Largest request head accepted (request line + headers + blank line). */
#define HTTP1_MAX_HEAD 16384
/* Most header fields accepted. */
#define HTTP1_MAX_HEADERS 100

typedef struct http1_str {
	const char *p; /* into the caller's buffer; not NUL-terminated */
	size_t n;
} http1_str;

typedef struct http1_header {
	http1_str name;  /* as sent (compare case-insensitively) */
	http1_str value; /* without surrounding whitespace */
} http1_header;

typedef struct http1_request {
	http1_str method;
	http1_str target; /* path and query as sent */
	http1_str path;   /* target up to '?' */
	http1_str query;  /* after '?', empty when none */
	int minor;        /* 0 or 1: HTTP/1.minor */
	http1_header headers[HTTP1_MAX_HEADERS];
	size_t n_headers;
	bool keep_alive; /* by version and Connection */
	bool has_body;   /* Content-Length > 0 or Transfer-Encoding */
	bool chunked;    /* Transfer-Encoding was sent */
	unsigned long long content_length;
	size_t head_len; /* bytes of the buffer the head used */
} http1_request;

typedef enum http1_status {
	HTTP1_DONE,       /* a complete head; req filled */
	HTTP1_INCOMPLETE, /* need more bytes */
	HTTP1_ERROR,      /* answer *status (400, 431, 505) and close */
} http1_status;

/* Parses the head at the start of buf[0..len). On HTTP1_ERROR *status
 * gets the HTTP status to answer and *why a static reason. A head that
 * has not ended within HTTP1_MAX_HEAD bytes is an error (431), as soon as
 * that many bytes are present. */
http1_status http1_parse(const char *buf, size_t len, http1_request *req,
    int *status, const char **why);

/* The first header named name (case-insensitive), or NULL. */
const http1_str *http1_header_get(const http1_request *req, const char *name);

/* Whether a comma-separated header value holds token (case-insensitive),
 * as in "Connection: keep-alive, Upgrade". */
bool http1_has_token(http1_str value, const char *token);

/* Whether s equals the NUL-terminated lit exactly. */
bool http1_eq(http1_str s, const char *lit);

#endif
