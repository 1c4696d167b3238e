/* Fuzzes berth-control's dispatcher (action + JSON body from the network) past authentication,
 * on an in-memory store shared across inputs so that state-dependent paths are reached too.
 * Input: the action name, a newline, then the request body; a leading '!' calls as the agent. */
#include "controlplane/internal.h"
#include "lib/log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static cp_ctx *fuzz_ctx (void)
{
  static cp_ctx *ctx;
  if (ctx == NULL)
    {
      berr *err = NULL;
      blog_setup ("fuzz", BLOG_ERROR, BLOG_SINK_STDERR);
      if (cp_ctx_open (":memory:", "us-east-1", "000000000000", &ctx, &err) < 0)
        abort ();
      /* A small awsvpc subnet, so RunTask's address allocation is reached and runs out. */
      static const char subnets[] = "[{\"subnetId\":\"subnet-a\",\"cidr\":\"10.0.0.0/29\","
                                    "\"gateway\":\"10.0.0.1\"}]";
      char path[64];
      int fd = memfd_create ("subnets", MFD_CLOEXEC);
      snprintf (path, sizeof path, "/proc/self/fd/%d", fd);
      if (fd < 0 || write (fd, subnets, sizeof subnets - 1) != (ssize_t)sizeof subnets - 1
          || cp_ctx_load_subnets (ctx, path, &err) < 0)
        abort ();
      close (fd);
      /* Task roles, so RunTask issues credentials and the channel logs them. */
      static const char roles[] = "[arn:aws:iam::000000000000:role/app]\n"
                                  "aws_access_key_id = AKIAFUZZ\naws_secret_access_key = s\n";
      fd = memfd_create ("roles", MFD_CLOEXEC);
      snprintf (path, sizeof path, "/proc/self/fd/%d", fd);
      if (fd < 0 || fchmod (fd, 0600) < 0
          || write (fd, roles, sizeof roles - 1) != (ssize_t)sizeof roles - 1
          || cp_ctx_load_task_roles (ctx, path, &err) < 0)
        abort ();
      close (fd);
    }
  return ctx;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const uint8_t *nl = memchr (data, '\n', size);
  size_t alen = nl ? (size_t)(nl - data) : size;
  enum cp_role role = CP_ROLE_ADMIN;
  char action[128];
  if (alen > 0 && data[0] == '!')
    {
      role = CP_ROLE_AGENT;
      data++, size--, alen--;
    }
  if (alen >= sizeof action)
    return 0;
  memcpy (action, data, alen);
  action[alen] = '\0';
  const char *body = nl ? (const char *)nl + 1 : "";
  size_t blen = nl ? size - alen - 1 : 0;
  char *response = NULL;
  int status = cp_dispatch (fuzz_ctx (), role, action, body, blen, &response);
  if (status != -1 && (response == NULL || (status != 200 && status != 400 && status != 500)))
    abort ();
  free (response);
  return 0;
}
