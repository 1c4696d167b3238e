/* NULL-terminated string vectors (argv, envp), owned by whoever holds the pointer. */
#ifndef BERTH_LIB_STRV_H
#define BERTH_LIB_STRV_H

#include <stddef.h>

size_t strv_len (char *const *v);
/* Returns a newly allocated deep copy (NULL only on allocation failure). */
char **strv_dup (char *const *v);
/* Appends a copy of s; returns 0 or -1 (ENOMEM), leaving *v valid either way. */
int strv_append (char ***v, const char *s);
/* For KEY=VALUE vectors: the value of key, or NULL. */
const char *strv_env_get (char *const *v, const char *key);
/* Sets KEY=VALUE, replacing an existing entry for key. */
int strv_env_set (char ***v, const char *key, const char *value);
void strv_free (char **v);
void strv_freep (char ***v);

#define _cleanup_strv_ __attribute__ ((cleanup (strv_freep)))

#endif
