/*
 * secrets.c: secret_resolve (secrets.h): NAME or the file NAME_FILE
 * names, with the checks an operator expects of a secret's file (its mode,
 * its size, not both ways at once with different values).
 */
#include "secrets.h"

#include "bookd_assert.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const secret_names[] = {
	"BOOKD_SERVICE_KEY",
	"BOOKD_ANON_KEY",
	"BOOKD_JWT_SECRET",
	"STRIPE_WEBHOOK_SECRET",
	"STRIPE_SECRET_KEY",
	"NOTIFY_WEBHOOK_SECRET",
	"SMTP_URL",
	"ESP_API_KEY",
	NULL,
};

int secret_is(const char *name)
{
	for (const char *const *n = secret_names; *n; n++)
		if (!strcmp(*n, name))
			return 1;
	return 0;
}

/* The file's content into a new string, one trailing newline stripped. */
static int read_secret_file(const char *var, const char *path, char **out,
			    char *err, size_t err_size)
{
	struct stat st;
	char *buf;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, err_size, "%s: cannot read %s: %s", var, path,
			 strerror(errno));
		return -EINVAL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, err_size, "%s: %s is not a regular file", var,
			 path);
		close(fd);
		return -EINVAL;
	}
	if (st.st_mode & (S_IRGRP | S_IROTH)) {
		snprintf(err, err_size,
			 "%s: %s is readable by %s (mode %03o): a secret's "
			 "file must be readable by its owner only (chmod 600)",
			 var, path,
			 st.st_mode & S_IROTH ? "others" : "its group",
			 (unsigned)(st.st_mode & 0777));
		close(fd);
		return -EINVAL;
	}
	buf = malloc(SECRET_SIZE_MAX + 2);
	ASSERT(buf); /* at start, before anything else is allocated */
	n = read(fd, buf, SECRET_SIZE_MAX + 1);
	close(fd);
	if (n < 0 || n > SECRET_SIZE_MAX) {
		snprintf(err, err_size, "%s: %s: %s", var, path,
			 n < 0 ? strerror(errno) : "larger than 4096 bytes");
		free(buf);
		return -EINVAL;
	}
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = 0;
	if (n == 0 || strlen(buf) != (size_t)n) {
		snprintf(err, err_size, "%s: %s is %s", var, path,
			 n == 0 ? "empty" : "not text (a NUL byte)");
		free(buf);
		return -EINVAL;
	}
	*out = buf;
	return 0;
}

int secret_resolve(const char *name, const char *given, const char **out,
		   char *err, size_t err_size)
{
	char var[64];
	const char *path;
	char *v;

	ASSERT(secret_is(name));
	snprintf(var, sizeof(var), "%s_FILE", name);
	path = getenv(var);
	*out = given;
	if (!path || !*path)
		return 0;
	if (read_secret_file(var, path, &v, err, err_size))
		return -EINVAL;
	if (given && strcmp(given, v) != 0) {
		snprintf(err, err_size,
			 "%s and %s are both set, with different values: set "
			 "one",
			 name, var);
		free(v);
		return -EINVAL;
	}
	if (setenv(name, v, 1) != 0) {
		snprintf(err, err_size, "%s: %s", name, strerror(errno));
		free(v);
		return -EINVAL;
	}
	*out = v; /* kept: the options point at it until exit */
	return 0;
}
