/*
 * secrets.h: every secret bookd takes (keys, signing secrets, URLs with a
 * password) from its variable NAME or from a file named by NAME_FILE (the
 * systemd-credentials and container-secrets convention: the file's
 * content, one trailing newline stripped). bookd.c's option handling sends
 * every secret through secret_resolve; SECRET_NAMES lists them.
 *
 * Refused (-EINVAL, err says why): a NAME_FILE that cannot be read, is
 * empty, larger than SECRET_SIZE_MAX, or readable by its group or by
 * others (chmod 600 or 400); NAME and NAME_FILE both set with different
 * values. Nothing here logs a secret's value, only names and paths.
 */
#ifndef BOOKD_SECRETS_H
#define BOOKD_SECRETS_H

#include <stddef.h>

#define SECRET_SIZE_MAX 4096

/* The variables that are secrets (each also as NAME_FILE), NULL-ended. */
extern const char *const secret_names[];

/* true when name is one of secret_names. */
int secret_is(const char *name);

/* The secret name: `given` (its flag or variable, NULL when unset) or the
 * content of the file getenv(NAME_FILE) names. *out: the value (given
 * itself, or a string kept for the life of the process), NULL when
 * neither is set. A value read from a file is also set as NAME in the
 * environment, so that a reader of NAME (getenv) sees it. 0 or -EINVAL. */
int secret_resolve(const char *name, const char *given, const char **out,
		   char *err, size_t err_size);

#endif
