/* http1: request-head parsing for roost-relay (see http1.h). */
#include "http1.h"

#include <string.h>
#include <strings.h>

/* RFC 9110 5.6.2 token characters. */
static bool
is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field-value bytes: visible ASCII, space, tab and obs-text. */
static bool
is_vbyte(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

bool
http1_eq(http1_str s, const char *lit)
{
	size_t n = strlen(lit);

	return s.n == n && memcmp(s.p, lit, n) == 0;
}

static bool
eq_nocase(http1_str s, const char *lit)
{
	size_t n = strlen(lit);

	return s.n == n && strncasecmp(s.p, lit, n) == 0;
}

const http1_str *
http1_header_get(const http1_request *req, const char *name)
{
	for (size_t i = 0; i < req->n_headers; i++)
		if (eq_nocase(req->headers[i].name, name))
			return &req->headers[i].value;
	return NULL;
}

bool
http1_has_token(http1_str v, const char *token)
{
	size_t i = 0;

	while (i < v.n) {
		size_t start, end;

		while (i < v.n &&
		    (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
			i++;
		start = i;
		while (i < v.n && v.p[i] != ',')
			i++;
		end = i;
		while (end > start &&
		    (v.p[end - 1] == ' ' || v.p[end - 1] == '\t'))
			end--;
		if (end > start &&
		    eq_nocase((http1_str){ v.p + start, end - start }, token))
			return true;
	}
	return false;
}

/* The next line of buf[*pos..lim): start and length without the line end.
 * false when no line end is there yet. */
static bool
next_line(const char *buf, size_t lim, size_t *pos, http1_str *line)
{
	const char *lf = memchr(buf + *pos, '\n', lim - *pos);
	size_t n;

	if (lf == NULL)
		return false;
	n = (size_t)(lf - (buf + *pos));
	line->p = buf + *pos;
	line->n = n > 0 && line->p[n - 1] == '\r' ? n - 1 : n;
	*pos += n + 1;
	return true;
}

static http1_status
fail(int *status, const char **why, int code, const char *reason)
{
	*status = code;
	*why = reason;
	return HTTP1_ERROR;
}

static http1_status
parse_request_line(
    http1_str line, http1_request *req, int *status, const char **why)
{
	const char *p = line.p, *end = line.p + line.n, *sp;
	size_t i;

	for (i = 0; p + i < end && is_tchar((unsigned char)p[i]); i++)
		;
	if (i == 0 || p + i == end || p[i] != ' ')
		return fail(status, why, 400, "malformed request line");
	req->method = (http1_str){ p, i };
	p += i + 1;
	sp = memchr(p, ' ', (size_t)(end - p));
	if (sp == NULL || sp == p)
		return fail(status, why, 400, "malformed request line");
	for (const char *q = p; q < sp; q++)
		if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
			return fail(
			    status, why, 400, "malformed request target");
	if (*p != '/')
		return fail(status, why, 400,
		    "only origin-form request targets are served");
	req->target = (http1_str){ p, (size_t)(sp - p) };
	{
		const char *q = memchr(p, '?', req->target.n);

		req->path =
		    (http1_str){ p, q ? (size_t)(q - p) : req->target.n };
		req->query = q ? (http1_str){ q + 1, (size_t)(sp - q - 1) }
		               : (http1_str){ sp, 0 };
	}
	p = sp + 1;
	if (end - p != 8 || memcmp(p, "HTTP/", 5) != 0 || p[5] < '0' ||
	    p[5] > '9' || p[6] != '.' || p[7] < '0' || p[7] > '9')
		return fail(status, why, 400, "malformed HTTP version");
	if (p[5] != '1' || p[7] > '1')
		return fail(
		    status, why, 505, "only HTTP/1.0 and 1.1 are served");
	req->minor = p[7] - '0';
	return HTTP1_DONE;
}

static http1_status
parse_header(http1_str line, http1_request *req, int *status, const char **why)
{
	const char *p = line.p, *end = line.p + line.n;
	http1_header *h;
	size_t i;

	if (*p == ' ' || *p == '\t')
		return fail(status, why, 400, "obsolete header line folding");
	for (i = 0; p + i < end && is_tchar((unsigned char)p[i]); i++)
		;
	/* No whitespace between name and colon (RFC 9112 5.1). */
	if (i == 0 || p + i == end || p[i] != ':')
		return fail(status, why, 400, "malformed header field");
	if (req->n_headers == HTTP1_MAX_HEADERS)
		return fail(status, why, 431, "too many header fields");
	h = &req->headers[req->n_headers++];
	h->name = (http1_str){ p, i };
	p += i + 1;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	for (const char *q = p; q < end; q++)
		if (!is_vbyte((unsigned char)*q))
			return fail(
			    status, why, 400, "control character in a header");
	h->value = (http1_str){ p, (size_t)(end - p) };
	return HTTP1_DONE;
}

/* Framing and connection semantics from the parsed fields. */
static http1_status
check_fields(http1_request *req, int *status, const char **why)
{
	bool close = false, keep = false, have_cl = false;
	int hosts = 0;

	for (size_t i = 0; i < req->n_headers; i++) {
		const http1_header *h = &req->headers[i];

		if (eq_nocase(h->name, "host")) {
			hosts++;
		} else if (eq_nocase(h->name, "connection")) {
			close = close || http1_has_token(h->value, "close");
			keep = keep || http1_has_token(h->value, "keep-alive");
		} else if (eq_nocase(h->name, "transfer-encoding")) {
			req->chunked = true;
		} else if (eq_nocase(h->name, "content-length")) {
			unsigned long long v = 0;

			if (h->value.n == 0 || h->value.n > 18)
				return fail(status, why, 400,
				    "malformed Content-Length");
			for (size_t k = 0; k < h->value.n; k++) {
				char c = h->value.p[k];

				if (c < '0' || c > '9')
					return fail(status, why, 400,
					    "malformed Content-Length");
				v = v * 10 + (unsigned long long)(c - '0');
			}
			if (have_cl && v != req->content_length)
				return fail(status, why, 400,
				    "conflicting Content-Length");
			req->content_length = v;
			have_cl = true;
		}
	}
	if (req->chunked && have_cl)
		return fail(status, why, 400,
		    "both Transfer-Encoding and Content-Length");
	if (req->minor == 1 && hosts != 1)
		return fail(status, why, 400, "HTTP/1.1 needs one Host header");
	if (hosts > 1)
		return fail(status, why, 400, "more than one Host header");
	req->has_body = req->chunked || req->content_length > 0;
	req->keep_alive = !close && (req->minor == 1 || keep);
	return HTTP1_DONE;
}

http1_status
http1_parse(const char *buf, size_t len, http1_request *req, int *status,
    const char **why)
{
	size_t lim = len < HTTP1_MAX_HEAD ? len : HTTP1_MAX_HEAD, pos = 0;
	http1_str line;
	http1_status st;

	memset(req, 0, sizeof(*req));
	*status = 0;
	*why = NULL;
	/* Empty lines before the request line (RFC 9112 2.2). */
	for (;;) {
		size_t at = pos;

		if (!next_line(buf, lim, &pos, &line))
			goto incomplete;
		if (line.n > 0) {
			pos = at;
			break;
		}
	}
	if (!next_line(buf, lim, &pos, &line))
		goto incomplete;
	if ((st = parse_request_line(line, req, status, why)) != HTTP1_DONE)
		return st;
	for (;;) {
		if (!next_line(buf, lim, &pos, &line))
			goto incomplete;
		if (line.n == 0)
			break;
		if ((st = parse_header(line, req, status, why)) != HTTP1_DONE)
			return st;
	}
	if ((st = check_fields(req, status, why)) != HTTP1_DONE)
		return st;
	req->head_len = pos;
	return HTTP1_DONE;
incomplete:
	if (len >= HTTP1_MAX_HEAD)
		return fail(status, why, 431, "the request head is too large");
	return HTTP1_INCOMPLETE;
}
