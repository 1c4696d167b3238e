/* awsvpc: a pinned namespace per task holding its ENI as eth0 (an EC2-attached link moved in, or
 * a macvlan made on-prem). A record per task, written before anything is made, lets teardown undo
 * exactly and reconcile find leftovers after a restart. Design: docs/networking.md, "awsvpc". */
#include "net/internal.h"
#include "net/net.h"

#include "lib/cleanup.h"
#include "lib/fs.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECORD_SUFFIX ".awsvpc"
/* Left in the state dir by version 1, whose per-task metadata links took their addresses from
 * it; nothing reads it any more, and reconcile removes it. */
#define OLD_META_IPAM_FILE "metadata-ipam"

static char *record_path (const struct net_awsvpc_config *cfg, const char *key)
{
  char *p = NULL;
  if (asprintf (&p, "%s/%s" RECORD_SUFFIX, cfg->state_dir, key) < 0)
    return NULL;
  return p;
}

int net_awsvpc_record_format (const struct net_awsvpc_record *r, int version, const char *meta,
                              char *text, size_t size)
{
  const uint8_t *m = r->mac;
  char mac[18], metaline[32] = "";
  snprintf (mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  if (version == 1)
    snprintf (metaline, sizeof metaline, "meta %s\n", meta);
  return snprintf (text, size, "berth-awsvpc %d\nmac %s\nkind %s %s\n%scomplete %d\n", version, mac,
                   r->kind == NET_ENI_MOVED ? "moved" : "macvlan",
                   r->kind == NET_ENI_MOVED ? r->name : "-", metaline, r->complete);
}

static int record_write (const struct net_awsvpc_config *cfg, const char *key,
                         const struct net_awsvpc_record *r, berr **err)
{
  char text[256];
  int n = net_awsvpc_record_format (r, 2, NULL, text, sizeof text);
  _cleanup_close_ int dfd = open (cfg->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return berr_sys (err, "open `%s`", cfg->state_dir);
  char file[96];
  snprintf (file, sizeof file, "%s" RECORD_SUFFIX, key);
  return bfs_write_atomic_volatile (dfd, file, text, (size_t)n, 0644, err);
}

int net_awsvpc_record_parse (const char *text, size_t len, struct net_awsvpc_record *r)
{
  char mac[18], kind[8], name[IFNAMSIZ], meta[INET_ADDRSTRLEN] = "-", again[256];
  int complete, version = 2;
  struct in_addr ignored;
  memset (r, 0, sizeof *r);
  if (strnlen (text, len) != len) /* a NUL byte inside */
    return 0;
  if (sscanf (text, "berth-awsvpc 2\nmac %17s\nkind %7s %15s\ncomplete %d", mac, kind, name,
              &complete)
      != 4)
    {
      version = 1;
      if (sscanf (text, "berth-awsvpc 1\nmac %17s\nkind %7s %15s\nmeta %15s\ncomplete %d", mac,
                  kind, name, meta, &complete)
              != 5
          || (strcmp (meta, "-") != 0 && inet_pton (AF_INET, meta, &ignored) != 1))
        return 0;
    }
  berr *e = NULL;
  if (net_parse_mac (mac, r->mac, &e) < 0)
    {
      berr_free (&e);
      return 0;
    }
  r->kind = strcmp (kind, "moved") == 0 ? NET_ENI_MOVED : NET_ENI_MACVLAN;
  snprintf (r->name, sizeof r->name, "%s", name);
  r->complete = complete == 1;
  if ((strcmp (kind, "moved") != 0 && strcmp (kind, "macvlan") != 0)
      || (r->kind == NET_ENI_MOVED && strcmp (name, "-") == 0)
      || net_awsvpc_record_format (r, version, meta, again, sizeof again) >= (int)sizeof again
      || strlen (again) != len || strcmp (again, text) != 0)
    return 0;
  return version;
}

/* 1 and *r when the task has a record, 0 when not. */
static int record_read (const struct net_awsvpc_config *cfg, const char *key,
                        struct net_awsvpc_record *r, berr **err)
{
  _cleanup_free_ char *path = record_path (cfg, key), *text = NULL;
  size_t len = 0;
  if (path == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  if (bfs_read_all (AT_FDCWD, path, 4096, &text, &len, err) < 0)
    {
      if (berr_errno (*err) != ENOENT)
        return -1;
      berr_free (err);
      return 0;
    }
  if (net_awsvpc_record_parse (text, len, r) == 0)
    return berr_make (err, EINVAL,
                      "corrupt awsvpc record `%s`: not in the format of version 2 (or 1)", path);
  return 1;
}

static int record_remove (const struct net_awsvpc_config *cfg, const char *key, berr **err)
{
  _cleanup_free_ char *path = record_path (cfg, key);
  if (path == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  if (unlink (path) < 0 && errno != ENOENT)
    return berr_sys (err, "remove `%s`", path);
  return 0;
}

/* Clears *err and returns 0 when the failure was one of the given errnos ("already gone"). */
static int tolerate (int r, berr **err, int e1, int e2)
{
  if (r < 0 && (berr_errno (*err) == e1 || berr_errno (*err) == e2))
    {
      berr_free (err);
      return 0;
    }
  return r;
}

/* ---- teardown ---- */

/* The host's namespace as an fd a link can be moved into. */
static int host_fd (const struct net_awsvpc_config *cfg, berr **err)
{
  int fd = cfg->host_netns_fd >= 0 ? fcntl (cfg->host_netns_fd, F_DUPFD_CLOEXEC, 3)
                                   : open ("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return berr_sys (err, "open the host's network namespace");
  return fd;
}

/* A moved ENI goes back to the host under its name. (A macvlan needs nothing: it dies with the
 * namespace.) */
static int eni_release (const struct net_awsvpc_config *cfg, const char *key,
                        const struct net_awsvpc_record *rec, berr **err)
{
  if (rec->kind != NET_ENI_MOVED)
    return 0;
  _cleanup_close_ int nsfd = net_netns_open (cfg->run_dir, key, err);
  if (nsfd < 0)
    return tolerate (nsfd, err, ENOENT, ENOENT); /* no namespace, nothing in it */
  int r;
  net_nl *tnl = NULL;
  if (net_nl_open (nsfd, &tnl, err) < 0)
    return -1;
  int idx = net_link_find_by_mac (tnl, rec->mac, NULL, err);
  if (idx >= 0)
    {
      _cleanup_close_ int hfd = host_fd (cfg, err);
      /* Moving closes the link and flushes its addresses: it comes back down and empty. */
      r = hfd < 0 ? -1 : net_link_move (tnl, idx, hfd, rec->name, err);
    }
  else
    r = tolerate (idx, err, ENODEV, ENODEV);
  net_nl_close (tnl);
  return r;
}

/* Everything but a moved ENI lives in the task's namespace (a macvlan, and in version 1 the
 * task end of the metadata veth, whose host end and route go with its peer): unpinning the
 * namespace lets the kernel destroy it all in its batched namespace cleanup, off the caller's
 * path. Deleting each link here instead would wait for RCU under the RTNL lock, stalling every
 * other network change on the host for tens of milliseconds per link (docs/networking.md). */
static int teardown_recorded (const struct net_awsvpc_config *cfg, const char *key,
                              const struct net_awsvpc_record *rec, berr **err)
{
  if (eni_release (cfg, key, rec, err) < 0 || net_netns_delete (cfg->run_dir, key, err) < 0
      || record_remove (cfg, key, err) < 0)
    return -1;
  return 0;
}

int net_awsvpc_teardown (const struct net_awsvpc_config *cfg, const char *task_key, berr **err)
{
  if (!net_netns_name_valid (task_key))
    return berr_make (err, EINVAL, "awsvpc: invalid task key `%.70s`", task_key ? task_key : "");
  struct net_awsvpc_record rec;
  int have = record_read (cfg, task_key, &rec, err);
  if (have <= 0)
    return have < 0 ? berr_wrap (err, "tear down awsvpc for `%s`", task_key) : 0;
  if (teardown_recorded (cfg, task_key, &rec, err) < 0)
    return berr_wrap (err, "tear down awsvpc for `%s`", task_key);
  return 0;
}

/* ---- setup ---- */

/* Puts the ENI into nsfd as eth0: the host's link with its MAC, else a macvlan on the parent,
 * made directly in the task's namespace. */
static int eni_place (const struct net_awsvpc_config *cfg, net_nl *hnl,
                      const struct net_awsvpc_record *rec, int nsfd, berr **err)
{
  int idx;
  if (rec->kind == NET_ENI_MOVED)
    {
      if ((idx = net_link_index (hnl, rec->name, err)) < 0)
        return -1;
      return net_link_move (hnl, idx, nsfd, "eth0", err);
    }
  int parent = net_link_index (hnl, cfg->parent, err);
  if (parent < 0 || net_link_add_macvlan_in (hnl, "eth0", parent, rec->mac, nsfd, err) < 0)
    return berr_wrap (err, "macvlan on `%s`", cfg->parent);
  return 0;
}

/* Brings eth0 up. A macvlan whose MAC an earlier one on the same parent still holds (in a
 * namespace the kernel is still destroying) is EADDRINUSE for a moment: wait for it, briefly. */
static int eth0_up (net_nl *tnl, int e, berr **err)
{
  for (int waited_ms = 0;; waited_ms += 10)
    {
      if (net_link_set_up (tnl, e, true, err) == 0)
        return 0;
      if (berr_errno (*err) != EADDRINUSE || waited_ms >= 2000)
        return -1;
      berr_free (err);
      usleep (10000);
    }
}

static int eni_configure (net_nl *tnl, const struct net_eni *eni, berr **err)
{
  int e = net_link_index (tnl, "eth0", err);
  if (e < 0 || eth0_up (tnl, e, err) < 0)
    return -1;
  for (size_t i = 0; i < eni->n_addrs; i++)
    if (net_addr_add (tnl, e, eni->addrs[i], eni->prefixlen, err) < 0)
      return -1;
  return net_route_add_default (tnl, eni->gateway, e, err);
}

static int write_task_files (const char *task_dir, const struct net_eni *eni, berr **err)
{
  _cleanup_close_ int dfd = open (task_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return berr_sys (err, "open task directory `%s`", task_dir);
  _cleanup_free_ char *resolv = net_eni_resolv_conf (eni), *host = net_eni_hostname_file (eni);
  if (resolv == NULL || host == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  if (bfs_write_atomic_volatile (dfd, "resolv.conf", resolv, strlen (resolv), 0644, err) < 0
      || bfs_write_atomic_volatile (dfd, "hostname", host, strlen (host), 0644, err) < 0)
    return -1;
  return 0;
}

/* Everything after the record names what will be made. */
static int build (const struct net_awsvpc_config *cfg, const char *key, const struct net_eni *eni,
                  struct net_awsvpc_record *rec, net_nl *hnl, const char *task_dir, berr **err)
{
  net_nl *tnl = NULL;
  _cleanup_close_ int nsfd = -1;
  int r = net_netns_create (cfg->run_dir, key, err);
  if (r == 0 && (nsfd = net_netns_open (cfg->run_dir, key, err)) < 0)
    r = -1;
  if (r == 0)
    r = net_nl_open (nsfd, &tnl, err);
  if (r == 0 && (eni_place (cfg, hnl, rec, nsfd, err) < 0 || eni_configure (tnl, eni, err) < 0))
    r = berr_wrap (err, "ENI");
  net_nl_close (tnl);
  if (r == 0 && cfg->block_imds)
    r = net_block_imds (nsfd, err);
  if (r == 0 && task_dir != NULL)
    r = write_task_files (task_dir, eni, err);
  if (r == 0)
    {
      rec->complete = true;
      r = record_write (cfg, key, rec, err);
    }
  return r;
}

/* Decides how the ENI is placed and records it before anything exists, then builds. */
static int setup_fresh (const struct net_awsvpc_config *cfg, const char *key,
                        const struct net_eni *eni, const char *task_dir, berr **err)
{
  struct net_awsvpc_record rec = { .kind = NET_ENI_MOVED };
  memcpy (rec.mac, eni->mac, 6);
  net_nl *hnl = NULL;
  if (net_nl_open (cfg->host_netns_fd, &hnl, err) < 0)
    return -1;
  int r = net_link_find_by_mac (hnl, eni->mac, rec.name, err);
  if (r < 0 && berr_errno (*err) == ENODEV && cfg->parent != NULL)
    {
      berr_free (err);
      rec.kind = NET_ENI_MACVLAN;
      r = 0;
    }
  if (r >= 0)
    r = record_write (cfg, key, &rec, err);
  if (r == 0)
    r = build (cfg, key, eni, &rec, hnl, task_dir, err);
  net_nl_close (hnl);
  return r;
}

static bool pinned (const struct net_awsvpc_config *cfg, const char *key)
{
  berr *e = NULL;
  int fd = net_netns_open (cfg->run_dir, key, &e);
  berr_free (&e);
  if (fd >= 0)
    close (fd);
  return fd >= 0;
}

int net_awsvpc_setup (const struct net_awsvpc_config *cfg, const char *task_key,
                      const struct net_eni *eni, const char *task_dir, char **netns_path,
                      berr **err)
{
  *netns_path = NULL;
  if (!net_netns_name_valid (task_key))
    return berr_make (err, EINVAL, "awsvpc: invalid task key `%.70s`", task_key ? task_key : "");
  if (eni->n_addrs == 0 || eni->prefixlen < 1 || eni->prefixlen > 30)
    return berr_make (err, EINVAL, "awsvpc: the ENI needs an address and a gateway");
  struct net_awsvpc_record rec;
  int have = bfs_mkdirs (cfg->state_dir, 0700, err);
  if (have == 0)
    have = record_read (cfg, task_key, &rec, err);
  if (have < 0)
    return berr_wrap (err, "set up awsvpc for `%s`", task_key);
  if (have && rec.complete && !pinned (cfg, task_key))
    rec.complete = false; /* the namespace is gone (unpinned by hand): build it again */
  if (have && (!rec.complete || memcmp (rec.mac, eni->mac, 6) != 0))
    {
      /* An interrupted setup (or one for another ENI): undo it and start again. */
      if (teardown_recorded (cfg, task_key, &rec, err) < 0)
        return berr_wrap (err, "set up awsvpc for `%s`: undo the interrupted setup", task_key);
      have = 0;
    }
  if (!have && setup_fresh (cfg, task_key, eni, task_dir, err) < 0)
    {
      /* Leave nothing behind; if even that fails the record stays for a retry or reconcile. */
      berr *uerr = NULL;
      if (record_read (cfg, task_key, &rec, &uerr) > 0)
        teardown_recorded (cfg, task_key, &rec, &uerr);
      berr_free (&uerr);
      return berr_wrap (err, "set up awsvpc for `%s`", task_key);
    }
  *netns_path = net_netns_path (cfg->run_dir, task_key);
  if (*netns_path == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  return 0;
}

/* ---- reconcile ---- */

static bool in_list (const char *const *v, const char *s)
{
  for (; v != NULL && *v != NULL; v++)
    if (strcmp (*v, s) == 0)
      return true;
  return false;
}

/* Task keys with a record, newly allocated NULL-terminated. */
static int recorded_keys (const struct net_awsvpc_config *cfg, char ***out, berr **err)
{
  size_t n = 0;
  char **v = calloc (1, sizeof *v);
  DIR *d = opendir (cfg->state_dir);
  if (v == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  *out = v;
  if (d == NULL)
    return errno == ENOENT ? 0 : berr_sys (err, "list `%s`", cfg->state_dir);
  struct dirent *de;
  size_t sl = strlen (RECORD_SUFFIX);
  while ((de = readdir (d)) != NULL)
    {
      size_t len = strlen (de->d_name);
      if (len <= sl || strcmp (de->d_name + len - sl, RECORD_SUFFIX) != 0)
        continue;
      char **nv = realloc (v, (n + 2) * sizeof *nv);
      if (nv == NULL || (nv[n] = strndup (de->d_name, len - sl)) == NULL)
        {
          closedir (d);
          *out = nv ? nv : v;
          return berr_make (err, ENOMEM, "out of memory");
        }
      v = *out = nv;
      v[++n] = NULL;
    }
  closedir (d);
  return 0;
}

/* The metadata address file of version 1, if any. */
static int remove_old_meta_ipam (const struct net_awsvpc_config *cfg, berr **err)
{
  _cleanup_free_ char *path = NULL;
  if (asprintf (&path, "%s/" OLD_META_IPAM_FILE, cfg->state_dir) < 0)
    return berr_make (err, ENOMEM, "out of memory");
  if (unlink (path) < 0 && errno != ENOENT)
    return berr_sys (err, "remove `%s`", path);
  return 0;
}

int net_awsvpc_reconcile (const struct net_awsvpc_config *cfg, const char *const *live_keys,
                          berr **err)
{
  char **keys = NULL;
  int r = recorded_keys (cfg, &keys, err);
  berr *first = NULL;
  for (size_t i = 0; r == 0 && keys[i]; i++)
    {
      if (in_list (live_keys, keys[i]))
        continue;
      berr *e = NULL;
      /* One task that cannot be torn down must not keep the others' leftovers. */
      if (net_awsvpc_teardown (cfg, keys[i], &e) < 0 && first == NULL)
        first = e;
      else
        berr_free (&e);
    }
  for (size_t i = 0; keys && keys[i]; i++)
    free (keys[i]);
  free (keys);
  if (r == 0)
    r = remove_old_meta_ipam (cfg, err);
  if (r == 0 && first != NULL)
    {
      berr_free (err);
      *err = first;
      return berr_wrap (err, "awsvpc reconcile");
    }
  berr_free (&first);
  return r < 0 ? berr_wrap (err, "awsvpc reconcile") : 0;
}
