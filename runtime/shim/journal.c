/* The journald log driver: every line is one datagram in journald's native protocol sent to
 * its socket. No libsystemd (the shim is static); sends never wait, so a journal that is busy
 * or absent costs the container nothing: the line is dropped and counted. */
#include "runtime/shim/shim.h"

#include "lib/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define JOURNAL_SOCKET "/run/systemd/journal/socket"
/* For tests only: another socket path, so a test can receive the datagrams itself. */
#define JOURNAL_SOCKET_ENV "BERTH_SHIM_JOURNAL_SOCKET"
/* Room per datagram beyond the message: PRIORITY=N\n and MESSAGE\n with its length. */
#define RECORD_EXTRA 64

/* Appends KEY=VALUE\n, or the binary form KEY\n<le64 length>VALUE\n when VALUE holds a newline
 * (the protocol's only way to carry one). out needs strlen(key) + n + 10 bytes. */
static size_t add_field (char *out, const char *key, const char *value, size_t n)
{
  size_t k = strlen (key), at = k;
  memcpy (out, key, k);
  if (memchr (value, '\n', n) == NULL)
    out[at++] = '=';
  else
    {
      out[at++] = '\n';
      uint64_t len = n;
      for (int i = 0; i < 8; i++)
        out[at++] = (char)((len >> (8 * i)) & 0xff);
    }
  memcpy (out + at, value, n);
  at += n;
  out[at++] = '\n';
  return at;
}

static int build_head (struct shim_journal *jn, const struct shim_opts *o, berr **err)
{
  const char *tag = o->log_tag ? o->log_tag : o->id;
  const char *name = o->log_name ? o->log_name : o->id;
  const char *keys[] = { "CONTAINER_NAME", "CONTAINER_ID", "CONTAINER_TAG", "SYSLOG_IDENTIFIER" };
  const char *values[] = { name, o->id, tag, tag };
  size_t cap = 0;
  for (size_t i = 0; i < 4; i++)
    cap += strlen (keys[i]) + strlen (values[i]) + 10;
  jn->head = malloc (cap);
  if (jn->head == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  jn->head_len = 0;
  for (size_t i = 0; i < 4; i++)
    jn->head_len += add_field (jn->head + jn->head_len, keys[i], values[i], strlen (values[i]));
  return 0;
}

int shim_journal_open (struct shim_log *lg, const struct shim_opts *o, berr **err)
{
  struct shim_journal *jn = &lg->jn;
  const char *path = getenv (JOURNAL_SOCKET_ENV);
  jn->socket = strdup (path && *path ? path : JOURNAL_SOCKET);
  if (jn->socket == NULL || build_head (jn, o, err) < 0)
    return jn->socket ? -1 : berr_make (err, ENOMEM, "out of memory");
  if (strlen (jn->socket) >= sizeof ((struct sockaddr_un *)0)->sun_path)
    return berr_make (err, ENAMETOOLONG, "journal socket path `%s` is too long", jn->socket);
  jn->msg = malloc (jn->head_len + RECORD_EXTRA + SHIM_LINE_MAX);
  if (jn->msg == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  memcpy (jn->msg, jn->head, jn->head_len);
  jn->fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (jn->fd < 0)
    return berr_sys (err, "journal socket");
  /* A deeper send queue rides out short journal stalls (capped by net.core.wmem_max). */
  int sz = 8 << 20;
  (void)setsockopt (jn->fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
  lg->path = jn->socket;
  return 0;
}

/* The journal socket is missing or nobody listens: said once, then counted quietly. */
static void drop_absent (struct shim_log *lg)
{
  if (!lg->jn.warned_absent)
    blog_warn ("journal socket `%s` is absent (%s): container output is dropped and counted",
               lg->jn.socket, strerror (errno));
  lg->jn.warned_absent = true;
  lg->dropped++;
}

static void send_record (struct shim_log *lg, enum shim_stream_kind kind, const char *data,
                         size_t n)
{
  struct shim_journal *jn = &lg->jn;
  size_t at = jn->head_len;
  at += add_field (jn->msg + at, "PRIORITY", kind == SHIM_STDERR ? "3" : "6", 1);
  at += add_field (jn->msg + at, "MESSAGE", data, n);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  memcpy (sa.sun_path, jn->socket, strlen (jn->socket));
  ssize_t w;
  do
    w = sendto (jn->fd, jn->msg, at, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa,
                sizeof sa);
  while (w < 0 && errno == EINTR);
  if (w >= 0)
    return;
  if (errno == ENOENT || errno == ECONNREFUSED || errno == ENOTDIR)
    {
      drop_absent (lg);
      return;
    }
  lg->write_errno = errno;
  shim_log_count_drops (lg, 1);
}

void shim_journal_write (struct shim_log *lg, enum shim_stream_kind kind, const char *data,
                         size_t n)
{
  if (lg->jn.fd < 0)
    return;
  /* The line's newline is the record separator, not part of the message. */
  if (n > 0 && data[n - 1] == '\n')
    n--;
  do
    {
      size_t take = n < SHIM_LINE_MAX ? n : SHIM_LINE_MAX;
      send_record (lg, kind, data, take);
      data += take;
      n -= take;
    }
  while (n > 0);
}

void shim_journal_close (struct shim_log *lg)
{
  struct shim_journal *jn = &lg->jn;
  if (jn->fd >= 0)
    close (jn->fd);
  jn->fd = -1;
  free (jn->socket);
  free (jn->head);
  free (jn->msg);
  jn->socket = jn->head = jn->msg = NULL;
  lg->path = NULL;
}
