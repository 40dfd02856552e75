/* tap: a minimal Test Anything Protocol emitter for the unit tests.
 *
 * Each check prints "ok N - name" or "not ok N - name" with the file and
 * line of a failure; tap_done() prints the plan and returns the exit code.
 * Automake's tap-driver counts the lines, so every assertion is counted.
 */
#ifndef ROOST_TAP_H
#define ROOST_TAP_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int tap_count, tap_failures;

__attribute__((format(printf, 4, 5))) static bool
tap_ok(bool cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	tap_count++;
	printf("%sok %d - ", cond ? "" : "not ", tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond) {
		tap_failures++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return cond;
}

#define ok(cond, ...) tap_ok((cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, ...)                                                 \
	do {                                                                   \
		int64_t tap_g_ = (int64_t)(got), tap_w_ = (int64_t)(want);     \
		if (!tap_ok(                                                   \
		        tap_g_ == tap_w_, __FILE__, __LINE__, __VA_ARGS__))    \
			printf("#   got %" PRId64 ", want %" PRId64 "\n",      \
			    tap_g_, tap_w_);                                   \
	} while (0)

#define is_str(got, want, ...)                                                 \
	do {                                                                   \
		const char *tap_g_ = (got), *tap_w_ = (want);                  \
		bool tap_same_ = (tap_g_ == NULL && tap_w_ == NULL) ||         \
		    (tap_g_ && tap_w_ && strcmp(tap_g_, tap_w_) == 0);         \
		if (!tap_ok(tap_same_, __FILE__, __LINE__, __VA_ARGS__))       \
			printf("#   got \"%s\", want \"%s\"\n",                \
			    tap_g_ ? tap_g_ : "(null)",                        \
			    tap_w_ ? tap_w_ : "(null)");                       \
	} while (0)

static int
tap_done(void)
{
	printf("1..%d\n", tap_count);
	return tap_failures == 0 ? 0 : 1;
}

#endif
