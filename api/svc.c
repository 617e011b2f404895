/*
 * svc.c: the notify protocol of systemd for bookd (svc.h), through
 * libsystemd's sd_notify. The watchdog's state is read once, at the first
 * svc_watchdog(): WATCHDOG_USEC (and WATCHDOG_PID, when set, naming this
 * process) from the environment, as sd_watchdog_enabled reads it; bookd
 * pings once a second, so the unit's WatchdogSec must be above 2 s
 * (deploy/bookd.service has 30 s).
 */
#include "svc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <systemd/sd-daemon.h>

#define SVC_STATUS_SIZE 512

static void send_with_status(const char *head, const char *fmt, va_list ap)
{
	char text[SVC_STATUS_SIZE];

	if (!getenv("NOTIFY_SOCKET"))
		return;
	vsnprintf(text, sizeof(text), fmt, ap);
	sd_notifyf(0, "%sSTATUS=%s", head, text);
}

void svc_status(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	send_with_status("", fmt, ap);
	va_end(ap);
}

void svc_ready(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	send_with_status("READY=1\n", fmt, ap);
	va_end(ap);
}

void svc_watchdog(void)
{
	/* -1: not read yet, 0: off, 1: on. Main thread only. */
	static int enabled = -1;

	if (enabled < 0) {
		uint64_t usec = 0;
		enabled = getenv("NOTIFY_SOCKET") &&
			  sd_watchdog_enabled(0, &usec) > 0;
	}
	if (enabled)
		sd_notify(0, "WATCHDOG=1");
}

void svc_stopping(const char *status)
{
	if (getenv("NOTIFY_SOCKET"))
		sd_notifyf(0, "STOPPING=1\nSTATUS=%s", status);
}
