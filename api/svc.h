/*
 * svc.h: bookd under a service manager: systemd's notify protocol
 * (sd_notify through libsystemd; deploy/bookd.service is Type=notify with
 * WatchdogSec). Every call is a no-op when NOTIFY_SOCKET is unset (bookd
 * started by hand, by a test, by a container runtime), and a failed send
 * is ignored: the manager's view of bookd must never stop bookd.
 *
 * bookd.c sends, in this order: STATUS= while it recovers, READY=1 once
 * the listeners take connections (recovery done), WATCHDOG=1 after every
 * tick of its main loop (once a second; only when the manager asked for
 * it: WATCHDOG_USEC, sd_watchdog_enabled), STOPPING=1 on SIGTERM/SIGINT.
 * tests/integration/test_sd_notify.sh listens on a fake NOTIFY_SOCKET.
 */
#ifndef BOOKD_SVC_H
#define BOOKD_SVC_H

/* STATUS=<text>: what `systemctl status bookd` shows. */
void svc_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* READY=1 with STATUS=<text>. */
void svc_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* WATCHDOG=1 when the manager runs a watchdog on bookd, else nothing. */
void svc_watchdog(void);
/* STOPPING=1 with STATUS=<text>. */
void svc_stopping(const char *status);

#endif
