/* awsvpc: a pinned namespace per task holding its ENI as eth0 (an EC2-attached link moved in, or
 * a macvlan made on-prem) and a point-to-point link to the host for 169.254.170.2. A record per
 * task, written before anything is made, lets teardown undo exactly and reconcile find leftovers
 * after a restart. Design: docs/networking.md, "awsvpc". */
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

#define TASK_META_LINK "berth-meta"
#define RECORD_SUFFIX ".awsvpc"
#define META_IPAM_FILE "metadata-ipam"

enum eni_kind
{
  ENI_MOVED,   /* the host had a link with the MAC: it goes back on teardown */
  ENI_MACVLAN, /* made by Berth on the parent: deleted on teardown */
};

/* What setup made for one task (the file <state_dir>/<task_key>.awsvpc). */
struct record
{
  uint8_t mac[6];
  enum eni_kind kind;
  char name[IFNAMSIZ]; /* the moved link's name in the host */
  struct in_addr meta; /* task end of the metadata link; 0 when none */
  bool complete;
};

/* The host end of a task's metadata link: prefix + 8 hex digits of the FNV-1a hash of the task
 * key, within IFNAMSIZ and the same after a restart. "bmd*" is what the metadata firewall
 * matches. */
static void host_link_name (const char *prefix, const char *key, char name[IFNAMSIZ])
{
  uint32_t h = 2166136261u;
  for (const char *p = key; *p; p++)
    h = (h ^ (uint8_t)*p) * 16777619u;
  snprintf (name, IFNAMSIZ, "%s%08x", prefix, h);
}

static char *record_path (const struct net_awsvpc_config *cfg, const char *key)
{
  char *p = NULL;
  if (asprintf (&p, "%s/%s" RECORD_SUFFIX, cfg->state_dir, key) < 0)
    return NULL;
  return p;
}

static int record_write (const struct net_awsvpc_config *cfg, const char *key,
                         const struct record *r, berr **err)
{
  char text[256], ip[INET_ADDRSTRLEN] = "-", name[IFNAMSIZ + 8];
  const uint8_t *m = r->mac;
  if (r->meta.s_addr != 0)
    inet_ntop (AF_INET, &r->meta, ip, sizeof ip);
  snprintf (name, sizeof name, "%s", r->kind == ENI_MOVED ? r->name : "-");
  int n = snprintf (text, sizeof text,
                    "berth-awsvpc 1\nmac %02x:%02x:%02x:%02x:%02x:%02x\nkind %s %s\nmeta %s\n"
                    "complete %d\n",
                    m[0], m[1], m[2], m[3], m[4], m[5], r->kind == ENI_MOVED ? "moved" : "macvlan",
                    name, ip, r->complete);
  _cleanup_close_ int dfd = open (cfg->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return berr_sys (err, "open `%s`", cfg->state_dir);
  char file[96];
  snprintf (file, sizeof file, "%s" RECORD_SUFFIX, key);
  return bfs_write_atomic_volatile (dfd, file, text, (size_t)n, 0644, err);
}

/* 1 and *r when the task has a record, 0 when not. */
static int record_read (const struct net_awsvpc_config *cfg, const char *key, struct record *r,
                        berr **err)
{
  _cleanup_free_ char *path = record_path (cfg, key), *text = NULL;
  if (path == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  if (bfs_read_all (AT_FDCWD, path, 4096, &text, NULL, err) < 0)
    {
      if (berr_errno (*err) != ENOENT)
        return -1;
      berr_free (err);
      return 0;
    }
  char mac[18], kind[8], name[IFNAMSIZ], ip[INET_ADDRSTRLEN];
  int complete;
  memset (r, 0, sizeof *r);
  if (sscanf (text, "berth-awsvpc 1\nmac %17s\nkind %7s %15s\nmeta %15s\ncomplete %d", mac, kind,
              name, ip, &complete)
          != 5
      || net_parse_mac (mac, r->mac, err) < 0
      || (strcmp (ip, "-") != 0 && inet_pton (AF_INET, ip, &r->meta) != 1)
      || (strcmp (kind, "moved") != 0 && strcmp (kind, "macvlan") != 0))
    {
      berr_free (err);
      return berr_make (err, EINVAL, "corrupt awsvpc record `%s`", path);
    }
  r->kind = strcmp (kind, "moved") == 0 ? ENI_MOVED : ENI_MACVLAN;
  snprintf (r->name, sizeof r->name, "%s", name);
  r->complete = complete == 1;
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

static int meta_ipam (const struct net_awsvpc_config *cfg, net_ipam **ipam, berr **err)
{
  _cleanup_free_ char *path = NULL;
  if (asprintf (&path, "%s/" META_IPAM_FILE, cfg->state_dir) < 0)
    return berr_make (err, ENOMEM, "out of memory");
  const char *subnet = cfg->metadata_subnet ? cfg->metadata_subnet : NET_METADATA_LINK_SUBNET;
  return net_ipam_open (path, subnet, NULL, ipam, err);
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
                        const struct record *rec, berr **err)
{
  if (rec->kind != ENI_MOVED)
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

static int delete_host_link (net_nl *hnl, const char *name, berr **err)
{
  int idx = net_link_index (hnl, name, err);
  if (idx < 0)
    return tolerate (idx, err, ENODEV, ENODEV);
  return tolerate (net_link_delete (hnl, idx, err), err, ENODEV, ENODEV);
}

/* Everything but a moved ENI lives in the task's namespace or is the peer of a link there (the
 * metadata veth, whose host end takes its route along): unpinning the namespace lets the kernel
 * destroy it all in its batched namespace cleanup, off the caller's path. Deleting each link
 * here instead would wait for RCU under the RTNL lock, stalling every other network change on
 * the host for tens of milliseconds per link (docs/networking.md). */
static int teardown_recorded (const struct net_awsvpc_config *cfg, const char *key,
                              const struct record *rec, berr **err)
{
  net_ipam *ipam = NULL;
  int r = eni_release (cfg, key, rec, err);
  if (r == 0)
    r = net_netns_delete (cfg->run_dir, key, err);
  /* By task key, whatever the record says: a crash between the reservation and the record
   * naming its address leaves a record without one. */
  if (r == 0)
    {
      r = meta_ipam (cfg, &ipam, err);
      if (r == 0)
        r = net_ipam_release (ipam, key, err) < 0 ? -1 : 0;
      net_ipam_free (ipam);
    }
  if (r == 0)
    r = record_remove (cfg, key, err);
  return r;
}

int net_awsvpc_teardown (const struct net_awsvpc_config *cfg, const char *task_key, berr **err)
{
  if (!net_netns_name_valid (task_key))
    return berr_make (err, EINVAL, "awsvpc: invalid task key `%.70s`", task_key ? task_key : "");
  struct record rec;
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
static int eni_place (const struct net_awsvpc_config *cfg, net_nl *hnl, const struct record *rec,
                      int nsfd, berr **err)
{
  int idx;
  if (rec->kind == ENI_MOVED)
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

/* Waits (up to a second) until the kernel has made the link usable: a veth's carrier comes up
 * asynchronously after both ends are up, and until then packets are dropped, so a task's first
 * request to 169.254.170.2 would wait for a TCP retransmission (1 s). */
static int wait_running (net_nl *nl, int ifindex, berr **err)
{
  unsigned flags = 0;
  for (int us = 20, waited = 0; waited < 1000000; waited += us, us = us < 5000 ? us * 2 : us)
    {
      if (net_link_flags (nl, ifindex, &flags, err) < 0)
        return -1;
      if (flags & IFF_RUNNING)
        return 0;
      usleep ((useconds_t)us);
    }
  return 0; /* not fatal: the first packets are retransmitted */
}

/* The host's route to the task end. The address was released by a task whose namespace the
 * kernel may still be destroying, with the route through its link: that route goes first. */
static int host_route (net_nl *hnl, struct in_addr meta, int h, berr **err)
{
  if (net_route_add_link (hnl, meta, 32, h, err) == 0)
    return 0;
  if (berr_errno (*err) != EEXIST)
    return -1;
  berr_free (err);
  if (tolerate (net_route_del_link (hnl, meta, 32, 0, err), err, ESRCH, ENOENT) < 0)
    return -1;
  return net_route_add_link (hnl, meta, 32, h, err);
}

/* The veth bmd<hash> (host, unnumbered, route to the task end's /32) <-> berth-meta (task,
 * the /32, route to 169.254.170.2 through it). */
static int meta_link (net_nl *hnl, net_nl *tnl, const char *key, struct in_addr meta, int nsfd,
                      berr **err)
{
  char bmd[IFNAMSIZ];
  host_link_name ("bmd", key, bmd);
  struct in_addr md;
  inet_pton (AF_INET, NET_METADATA_ADDR, &md);
  int h, t;
  if (net_link_add_veth (hnl, bmd, TASK_META_LINK, nsfd, err) < 0)
    {
      /* The host end of this task's earlier link, whose namespace the kernel is still
       * destroying (a setup retried at once after its undo): delete it now. */
      if (berr_errno (*err) != EEXIST)
        return berr_wrap (err, "metadata link");
      berr_free (err);
      if (delete_host_link (hnl, bmd, err) < 0
          || net_link_add_veth (hnl, bmd, TASK_META_LINK, nsfd, err) < 0)
        return berr_wrap (err, "metadata link");
    }
  if ((h = net_link_index (hnl, bmd, err)) < 0 || net_link_set_up (hnl, h, true, err) < 0
      || host_route (hnl, meta, h, err) < 0 || (t = net_link_index (tnl, TASK_META_LINK, err)) < 0
      || net_addr_add (tnl, t, meta, 32, err) < 0 || net_link_set_up (tnl, t, true, err) < 0
      || net_route_add_link (tnl, md, 32, t, err) < 0 || wait_running (hnl, h, err) < 0
      || wait_running (tnl, t, err) < 0)
    return berr_wrap (err, "metadata link");
  return 0;
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
                  struct record *rec, net_nl *hnl, const char *task_dir, berr **err)
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
  if (r == 0 && cfg->metadata_link)
    r = meta_link (hnl, tnl, key, rec->meta, nsfd, err);
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

/* Decides how the ENI is placed and reserves the metadata address, recording each before it
 * exists, then builds. */
static int setup_fresh (const struct net_awsvpc_config *cfg, const char *key,
                        const struct net_eni *eni, const char *task_dir, berr **err)
{
  struct record rec = { .kind = ENI_MOVED };
  memcpy (rec.mac, eni->mac, 6);
  net_nl *hnl = NULL;
  net_ipam *ipam = NULL;
  if (net_nl_open (cfg->host_netns_fd, &hnl, err) < 0)
    return -1;
  int r = net_link_find_by_mac (hnl, eni->mac, rec.name, err);
  if (r < 0 && berr_errno (*err) == ENODEV && cfg->parent != NULL)
    {
      berr_free (err);
      rec.kind = ENI_MACVLAN;
      r = 0;
    }
  if (r >= 0)
    r = record_write (cfg, key, &rec, err);
  if (r == 0 && cfg->metadata_link)
    {
      r = meta_ipam (cfg, &ipam, err);
      if (r == 0)
        r = net_ipam_allocate (ipam, key, &rec.meta, err);
      if (r == 0)
        r = record_write (cfg, key, &rec, err);
      net_ipam_free (ipam);
    }
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
  struct record rec;
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

/* Host ends of metadata links (bmd + hash) that no record accounts for. */
static int sweep_links (const struct net_awsvpc_config *cfg, char **keys, berr **err)
{
  net_nl *hnl = NULL;
  char **names = NULL;
  int r = net_nl_open (cfg->host_netns_fd, &hnl, err);
  if (r == 0)
    r = net_link_list (hnl, &names, err);
  for (size_t i = 0; r == 0 && names[i]; i++)
    {
      const char *nm = names[i];
      if (strlen (nm) != 11 || strncmp (nm, "bmd", 3) != 0
          || strspn (nm + 3, "0123456789abcdef") != 8)
        continue;
      bool owned = false;
      for (char **k = keys; *k && !owned; k++)
        {
          char want[IFNAMSIZ];
          host_link_name ("bmd", *k, want);
          owned = strcmp (want, nm) == 0;
        }
      if (!owned)
        r = delete_host_link (hnl, nm, err);
    }
  for (size_t i = 0; names && names[i]; i++)
    free (names[i]);
  free (names);
  net_nl_close (hnl);
  return r;
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
    {
      char **left = NULL;
      r = recorded_keys (cfg, &left, err);
      if (r == 0)
        r = sweep_links (cfg, left, err);
      for (size_t i = 0; left && left[i]; i++)
        free (left[i]);
      free (left);
    }
  if (r == 0 && first != NULL)
    {
      berr_free (err);
      *err = first;
      return berr_wrap (err, "awsvpc reconcile");
    }
  berr_free (&first);
  return r < 0 ? berr_wrap (err, "awsvpc reconcile") : 0;
}
