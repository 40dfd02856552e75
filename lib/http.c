/* http: CGI environment -> http_request; http_response -> CGI output. */
#include "http.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "json.h"

static bool
is_tchar(int c)
{
	/* RFC 9110 token characters. */
	return isalnum(c) ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
http_pct_decode(arena *a, const char *src, size_t n, bool plus, size_t *out_len)
{
	char *out = arena_alloc(a, n + 1);
	size_t j = 0;

	for (size_t i = 0; i < n; i++) {
		char c = src[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return NULL;
			hi = hexval((unsigned char)src[i + 1]);
			lo = hexval((unsigned char)src[i + 2]);
			if (hi < 0 || lo < 0)
				return NULL;
			out[j++] = (char)(hi * 16 + lo);
			i += 2;
		} else if (c == '+' && plus) {
			out[j++] = ' ';
		} else {
			out[j++] = c;
		}
	}
	out[j] = '\0';
	if (out_len)
		*out_len = j;
	return out;
}

/* Decodes and checks the path: no NUL or control characters, valid UTF-8,
 * no encoded '/', no "." or ".." segment (path traversal). */
static const char *
clean_path(arena *a, const char *raw, size_t n, const char **why)
{
	size_t len, seg;
	char *p;

	for (size_t i = 0; i + 2 < n; i++)
		if (raw[i] == '%' && raw[i + 1] == '2' &&
		    (raw[i + 2] == 'f' || raw[i + 2] == 'F')) {
			*why = "encoded '/' in the path";
			return NULL;
		}
	p = http_pct_decode(a, raw, n, false, &len);
	if (p == NULL) {
		*why = "malformed percent-encoding in the path";
		return NULL;
	}
	if (len == 0 || p[0] != '/') {
		*why = "the path must start with '/'";
		return NULL;
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f ||
		    p[i] == '\\') {
			*why = "control character or backslash in the path";
			return NULL;
		}
	if (!json_utf8_valid(p, len)) {
		*why = "the path is not valid UTF-8";
		return NULL;
	}
	seg = 1;
	for (size_t i = 1; i <= len; i++) {
		if (i == len || p[i] == '/') {
			size_t sl = i - seg;

			if ((sl == 1 && p[seg] == '.') ||
			    (sl == 2 && p[seg] == '.' && p[seg + 1] == '.')) {
				*why = "'.' or '..' segment in the path";
				return NULL;
			}
			seg = i + 1;
		}
	}
	return p;
}

static const char *
env_get(char *const *envp, const char *name)
{
	size_t n = strlen(name);

	for (char *const *e = envp; *e != NULL; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

static rerr
parse_query(http_request *req, const http_limits *lim, const char **why)
{
	const char *q = req->query;
	size_t count = 0, i = 0;

	if (*q == '\0')
		return R_SUCCESS;
	for (const char *s = q; *s; s++)
		if (*s == '&')
			count++;
	count++;
	if (count > lim->max_query_params) {
		*why = "too many query parameters";
		return R_BAD_REQUEST;
	}
	req->params = arena_calloc(req->arena, count, sizeof(http_pair));
	while (*q) {
		const char *amp = strchr(q, '&');
		size_t n = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', n);
		size_t kn = eq ? (size_t)(eq - q) : n;
		size_t klen, vlen;
		char *k, *v;

		if (n > 0) {
			k = http_pct_decode(req->arena, q, kn, true, &klen);
			v = eq
			    ? http_pct_decode(
			          req->arena, eq + 1, n - kn - 1, true, &vlen)
			    : http_pct_decode(req->arena, "", 0, true, &vlen);
			if (k == NULL || v == NULL) {
				*why =
				    "malformed percent-encoding in the query";
				return R_BAD_REQUEST;
			}
			if (!json_utf8_valid(k, klen) ||
			    !json_utf8_valid(v, vlen) || strlen(k) != klen) {
				*why = "the query string is not valid UTF-8";
				return R_BAD_REQUEST;
			}
			req->params[i].name = k;
			req->params[i].value = v;
			req->params[i].value_len = vlen;
			i++;
		}
		q += n;
		if (*q == '&')
			q++;
	}
	req->n_params = i;
	return R_SUCCESS;
}

static rerr
parse_headers(http_request *req, char *const *envp, const http_limits *lim,
    const char **why)
{
	size_t count = 0, bytes = 0, i = 0;

	for (char *const *e = envp; *e != NULL; e++)
		if (strncmp(*e, "HTTP_", 5) == 0) {
			count++;
			bytes += strlen(*e) - 5;
		}
	if (count > lim->max_headers || bytes > lim->max_header_bytes) {
		*why = "too many or too large request headers";
		return R_HEADERS_TOO_LARGE;
	}
	req->headers =
	    arena_calloc(req->arena, count ? count : 1, sizeof(http_pair));
	for (char *const *e = envp; *e != NULL; e++) {
		const char *eq;
		char *name;
		size_t n;

		if (strncmp(*e, "HTTP_", 5) != 0 ||
		    (eq = strchr(*e, '=')) == NULL)
			continue;
		n = (size_t)(eq - (*e + 5));
		name = arena_strndup(req->arena, *e + 5, n);
		for (char *p = name; *p; p++)
			*p = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
		req->headers[i].name = name;
		req->headers[i].value = eq + 1;
		req->headers[i].value_len = strlen(eq + 1);
		i++;
	}
	req->n_headers = i;
	return R_SUCCESS;
}

rerr
http_request_from_env(http_request *req, arena *a, char *const *envp,
    const char *base_path, const http_limits *lim, const char **why)
{
	const char *method, *uri, *qs, *cl, *v;
	size_t mlen, plen, blen;
	rerr e;

	memset(req, 0, sizeof(*req));
	req->arena = a;
	req->method = "GET";
	req->path = "/";
	req->query = "";
	req->body = "";
	*why = NULL;

	/* Headers first: the request id may come from one. */
	e = parse_headers(req, envp, lim, why);
	http_assign_request_id(req);
	if (e != R_SUCCESS)
		return e;

	method = env_get(envp, "REQUEST_METHOD");
	mlen = method ? strlen(method) : 0;
	if (mlen == 0 || mlen > 16) {
		*why = "missing or overlong request method";
		return R_BAD_REQUEST;
	}
	for (size_t i = 0; i < mlen; i++)
		if (!is_tchar((unsigned char)method[i])) {
			*why = "malformed request method";
			return R_BAD_REQUEST;
		}
	req->method = method;

	v = env_get(envp, "REMOTE_ADDR");
	req->remote_addr = v ? v : "";
	v = env_get(envp, "HTTPS");
	req->https = v != NULL && strcasecmp(v, "on") == 0;
	v = env_get(envp, "REQUEST_SCHEME");
	if (v != NULL && strcasecmp(v, "https") == 0)
		req->https = true;

	/* REQUEST_URI is the client's own URI on every server we support;
	 * plain CGI hosts without it give SCRIPT_NAME + PATH_INFO. */
	uri = env_get(envp, "REQUEST_URI");
	if (uri == NULL) {
		const char *sn = env_get(envp, "SCRIPT_NAME");
		const char *pi = env_get(envp, "PATH_INFO");

		uri = arena_printf(a, "%s%s", sn ? sn : "", pi ? pi : "");
	}
	if (strlen(uri) > lim->max_uri) {
		*why = "the URI is too long";
		return R_URI_TOO_LONG;
	}
	qs = strchr(uri, '?');
	plen = qs ? (size_t)(qs - uri) : strlen(uri);
	req->path = clean_path(a, uri, plen, why);
	if (req->path == NULL) {
		req->path = "/";
		return R_BAD_REQUEST;
	}
	blen = strlen(base_path);
	if (blen > 0 && strncmp(req->path, base_path, blen) == 0 &&
	    (req->path[blen] == '/' || req->path[blen] == '\0'))
		req->path = req->path[blen] ? req->path + blen : "/";
	req->query = qs ? arena_strdup(a, qs + 1) : "";
	if ((e = parse_query(req, lim, why)) != R_SUCCESS)
		return e;

	req->content_type = env_get(envp, "CONTENT_TYPE");
	if (req->content_type != NULL && req->content_type[0] == '\0')
		req->content_type = NULL;
	cl = env_get(envp, "CONTENT_LENGTH");
	if (cl != NULL && *cl != '\0') {
		unsigned long long n;
		char *end;

		if (!isdigit((unsigned char)cl[0]) || strlen(cl) > 19) {
			*why = "malformed Content-Length";
			return R_BAD_REQUEST;
		}
		errno = 0;
		n = strtoull(cl, &end, 10);
		if (errno != 0 || *end != '\0') {
			*why = "malformed Content-Length";
			return R_BAD_REQUEST;
		}
		if (n > lim->max_body) {
			*why = "the request body is larger than the limit";
			return R_PAYLOAD_TOO_LARGE;
		}
		req->content_length = (size_t)n;
		req->has_content_length = true;
	} else {
		const char *te = env_get(envp, "HTTP_TRANSFER_ENCODING");

		req->body_to_eof = te != NULL && strcasestr(te, "chunked");
	}
	req->max_body = lim->max_body;
	return R_SUCCESS;
}

rerr
http_read_body(
    http_request *req, http_read_fn read_fn, void *ctx, const char **why)
{
	size_t want = req->content_length, got = 0;
	char *p;

	if (req->body_to_eof) {
		/* The web server de-chunked the body and ends the input
		 * after it. One byte past the limit is read to tell a body
		 * at the limit from one over it. */
		size_t cap =
		    65536 < req->max_body + 1 ? 65536 : req->max_body + 1;

		p = arena_alloc(req->arena, cap + 1);
		for (;;) {
			ssize_t r;

			if (got == cap) {
				size_t ncap = cap * 2 > req->max_body + 1
				    ? req->max_body + 1
				    : cap * 2;
				char *np;

				if (ncap == cap) {
					*why = "the request body is larger "
					       "than the limit";
					return R_PAYLOAD_TOO_LARGE;
				}
				np = arena_alloc(req->arena, ncap + 1);
				memcpy(np, p, got);
				p = np;
				cap = ncap;
			}
			r = read_fn(ctx, p + got, cap - got);
			if (r < 0) {
				*why = "the request body could not be read";
				return R_BAD_REQUEST;
			}
			if (r == 0)
				break;
			got += (size_t)r;
		}
		if (got > req->max_body) {
			*why = "the request body is larger than the limit";
			return R_PAYLOAD_TOO_LARGE;
		}
		p[got] = '\0';
		req->body = p;
		req->body_len = got;
		req->content_length = got;
		return R_SUCCESS;
	}
	if (want == 0)
		return R_SUCCESS;
	p = arena_alloc(req->arena, want + 1);
	while (got < want) {
		ssize_t r = read_fn(ctx, p + got, want - got);

		if (r <= 0) {
			*why =
			    "the request body is shorter than Content-Length";
			return R_BAD_REQUEST;
		}
		got += (size_t)r;
	}
	p[got] = '\0';
	req->body = p;
	req->body_len = got;
	return R_SUCCESS;
}

const char *
http_header(const http_request *req, const char *name)
{
	for (size_t i = 0; i < req->n_headers; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	if (strcasecmp(name, "content-type") == 0)
		return req->content_type;
	return NULL;
}

const char *
http_param(const http_request *req, const char *name, size_t *len)
{
	for (size_t i = 0; i < req->n_params; i++)
		if (strcmp(req->params[i].name, name) == 0) {
			if (len)
				*len = req->params[i].value_len;
			return req->params[i].value;
		}
	return NULL;
}

const char *
http_media_type(const http_request *req)
{
	const char *ct = req->content_type, *end;
	size_t n;
	char *out;

	if (ct == NULL)
		return NULL;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	end = strchr(ct, ';');
	n = end ? (size_t)(end - ct) : strlen(ct);
	while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	out = arena_strndup(req->arena, ct, n);
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

void
http_response_init(http_response *res, arena *a)
{
	memset(res, 0, sizeof(*res));
	res->status = 200;
	res->cap_headers = 8;
	res->headers = arena_calloc(a, res->cap_headers, sizeof(http_pair));
}

void
http_response_free(http_response *res)
{
	buf_free(&res->body);
}

static bool
header_safe(const char *s)
{
	for (; *s; s++)
		if (*s == '\r' || *s == '\n')
			return false;
	return true;
}

void
http_set_header(
    http_response *res, arena *a, const char *name, const char *value)
{
	assert(header_safe(name) && header_safe(value));
	if (res->n_headers == res->cap_headers) {
		http_pair *h =
		    arena_calloc(a, res->cap_headers * 2, sizeof(http_pair));

		memcpy(h, res->headers, res->n_headers * sizeof(http_pair));
		res->headers = h;
		res->cap_headers *= 2;
	}
	res->headers[res->n_headers].name = arena_strdup(a, name);
	res->headers[res->n_headers].value = arena_strdup(a, value);
	res->n_headers++;
}

static int
write_all(http_write_fn write_fn, void *ctx, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write_fn(ctx, p, n);

		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
http_response_write(const http_response *res, http_write_fn write_fn, void *ctx)
{
	buf head = BUF_INIT;
	int rc;

	buf_printf(
	    &head, "Status: %d %s\r\n", res->status, http_reason(res->status));
	for (size_t i = 0; i < res->n_headers; i++)
		buf_printf(&head, "%s: %s\r\n", res->headers[i].name,
		    res->headers[i].value);
	if (res->status != 204 && res->status != 304)
		buf_printf(&head, "Content-Length: %zu\r\n", res->body.len);
	buf_puts(&head, "\r\n");
	rc = write_all(write_fn, ctx, head.data, head.len);
	if (rc == 0 && !res->head_only && res->body.len > 0 &&
	    res->status != 204 && res->status != 304)
		rc = write_all(write_fn, ctx, res->body.data, res->body.len);
	buf_free(&head);
	return rc;
}

void
http_assign_request_id(http_request *req)
{
	static const char hex[] = "0123456789abcdef";
	const char *theirs = http_header(req, "x-request-id");
	unsigned char raw[16];

	if (theirs != NULL) {
		size_t n = strlen(theirs);
		bool okid = n >= 8 && n <= 36;

		for (size_t i = 0; okid && i < n; i++)
			okid = isalnum((unsigned char)theirs[i]) ||
			    theirs[i] == '-' || theirs[i] == '_';
		if (okid) {
			memcpy(req->request_id, theirs, n + 1);
			return;
		}
	}
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		/* The id is for correlation, not security: fall back. */
		static unsigned long counter;

		snprintf(req->request_id, sizeof(req->request_id), "%08lx%08lx",
		    (unsigned long)getpid(), ++counter);
		return;
	}
	for (size_t i = 0; i < sizeof(raw); i++) {
		req->request_id[2 * i] = hex[raw[i] >> 4];
		req->request_id[2 * i + 1] = hex[raw[i] & 15];
	}
	req->request_id[32] = '\0';
}
