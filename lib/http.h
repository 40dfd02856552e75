/* http: the transport-neutral request and response.
 *
 * The FastCGI and CGI front ends both receive a CGI environment (an array
 * of "NAME=value" strings) and a body stream, and both emit a CGI response
 * ("Status: 200 OK\r\nHeader: v\r\n\r\nbody"). This module turns the first
 * into an http_request and an http_response into the second, so handlers
 * never know which front end ran them.
 *
 * Everything a request points to lives in its arena.
 */
#ifndef ROOST_HTTP_H
#define ROOST_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "arena.h"
#include "buf.h"
#include "error.h"

typedef struct http_pair {
	const char *name; /* headers: lower-case, '-' separated */
	const char *value;
	size_t value_len; /* query values may contain decoded NULs */
} http_pair;

/* Limits applied while parsing; the app fills them from configuration. */
typedef struct http_limits {
	size_t max_uri;          /* REQUEST_URI bytes; over it: 414 */
	size_t max_headers;      /* number of HTTP_* variables; over it: 431 */
	size_t max_header_bytes; /* all header names + values; over it: 431 */
	size_t max_body;         /* CONTENT_LENGTH; over it: 413 */
	size_t max_query_params; /* over it: 400 */
} http_limits;

typedef struct http_request {
	arena *arena;
	const char *method; /* as sent, validated as an HTTP token */
	const char *path;   /* percent-decoded, normalised, base path
	                     * stripped; always starts with '/' */
	const char *query;  /* raw query string, "" when none */
	http_pair *headers;
	size_t n_headers;
	http_pair *params; /* decoded query parameters, in order */
	size_t n_params;
	const char *content_type; /* NULL when absent */
	size_t content_length;
	bool has_content_length;
	/* No CONTENT_LENGTH, but Transfer-Encoding: chunked (Apache's
	 * mod_proxy_fcgi passes such bodies without a length): the body is
	 * read to the end of input, up to max_body. */
	bool body_to_eof;
	size_t max_body;
	const char *body; /* NUL-terminated; "" when none */
	size_t body_len;
	const char *remote_addr;
	bool https;
	char request_id[40];
} http_request;

typedef struct http_response {
	int status;
	http_pair *headers; /* in arena */
	size_t n_headers;
	size_t cap_headers;
	buf body;       /* heap; owned by the response */
	bool head_only; /* HEAD: headers only */
} http_response;

/* Reads the request line, path, query and headers from a CGI environment.
 * base_path ("" or e.g. "/roost") is stripped from the front of the path.
 * Returns R_SUCCESS, or R_BAD_REQUEST (malformed method, path,
 * percent-encoding, path traversal, NUL), R_URI_TOO_LONG, R_HEADERS_TOO_LARGE,
 * R_PAYLOAD_TOO_LARGE (CONTENT_LENGTH over max_body); a body without a
 * CONTENT_LENGTH counts as empty.
 * On error *why names the problem (static string). The request is usable
 * (method and request_id set) even on error, so an error can be answered. */
rerr http_request_from_env(http_request *req, arena *a, char *const *envp,
    const char *base_path, const http_limits *lim, const char **why);

/* Reads the body announced by CONTENT_LENGTH through read_fn, which returns
 * bytes read (0 at end of input, -1 on error). A short body is R_BAD_REQUEST.
 */
typedef ssize_t (*http_read_fn)(void *ctx, char *dst, size_t n);
rerr http_read_body(
    http_request *req, http_read_fn read_fn, void *ctx, const char **why);

/* Header value by case-insensitive name, or NULL. */
const char *http_header(const http_request *req, const char *name);

/* First query parameter named name, or NULL; *len gets its length. */
const char *http_param(const http_request *req, const char *name, size_t *len);

/* Media type of the request body without parameters, lower-cased, e.g.
 * "application/json"; NULL when there is no Content-Type. */
const char *http_media_type(const http_request *req);

/* Percent-decodes src[0..n) into arena memory ('+' as space when plus is
 * true). Returns NULL on a malformed escape. *out_len gets the length. */
char *http_pct_decode(
    arena *a, const char *src, size_t n, bool plus, size_t *out_len);

/* Response setup. The response's headers live in arena a. */
void http_response_init(http_response *res, arena *a);
void http_response_free(http_response *res);

/* Adds a header (not replacing). name and value must be header-safe: no CR,
 * LF or NUL (asserted: values come from code, not input). Copied. */
void http_set_header(
    http_response *res, arena *a, const char *name, const char *value);

/* Serialises the response in CGI form through write_fn (returns bytes
 * written or -1). Adds Content-Length. Returns 0, or -1 on write error. */
typedef ssize_t (*http_write_fn)(void *ctx, const char *src, size_t n);
int http_response_write(
    const http_response *res, http_write_fn write_fn, void *ctx);

/* Fills req->request_id with a fresh random id (32 hex characters), or the
 * client's X-Request-Id when it is 8..36 characters of [A-Za-z0-9-_]. */
void http_assign_request_id(http_request *req);

#endif
