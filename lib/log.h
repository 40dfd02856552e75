/* log: one-line records on stderr, which every web server keeps.
 *
 *   2026-11-22T23:59:59Z roost.fcgi[1234] warn req=4f1c... message
 *
 * The request id is set when a request starts and cleared when it ends, so
 * every line a request causes can be grepped by the id the client saw in
 * X-Request-Id.
 */
#ifndef ROOST_LOG_H
#define ROOST_LOG_H

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

/* Program name for the records (static string, not copied). */
void log_init(const char *progname, log_level min);
void log_set_level(log_level min);

/* Sends stderr, and so every record, to the file at path: opened for
 * appending (several processes may share it: one write per record), made
 * 0640 if it does not exist (an existing file keeps its mode and owner).
 * For front ends whose stderr goes nowhere (spawn-fcgi sends it to
 * /dev/null). Returns 0, or -1 with errno set. */
int log_to_file(const char *path);

/* Parses "debug", "info", "warn", "error"; returns -1 when unknown. */
int log_level_parse(const char *s);

/* The current request id (copied; NULL clears it). */
void log_set_request_id(const char *id);

void log_msg(log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
