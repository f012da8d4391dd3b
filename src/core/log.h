/*
 * log.h - leveled logging to stderr, one line per event. Never log tokens, passwords
 * or query parameters. Thread-safe (one write(2) per line).
 */
#ifndef TD_CORE_LOG_H
#define TD_CORE_LOG_H

enum td_log_level { TD_LOG_ERROR, TD_LOG_WARN, TD_LOG_INFO, TD_LOG_DEBUG };

void td_log_set_level(enum td_log_level lvl);
/* Parse "error", "warn", "info" or "debug"; -1 when unknown. */
int td_log_parse_level(const char *s);
/* 1 when messages of lvl are written. */
int td_log_enabled(enum td_log_level lvl);
void td_log(enum td_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define td_log_error(...) td_log(TD_LOG_ERROR, __VA_ARGS__)
#define td_log_warn(...) td_log(TD_LOG_WARN, __VA_ARGS__)
#define td_log_info(...) td_log(TD_LOG_INFO, __VA_ARGS__)
#define td_log_debug(...) td_log(TD_LOG_DEBUG, __VA_ARGS__)

#endif
