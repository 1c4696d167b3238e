/* rootfs: times "root filesystem ready for a cached image (overlay mounted)" for bench/rootfs.sh:
 * Berth's img_rootfs_create side by side with the same overlay made by `mount -t overlay` run
 * from a shell, interleaved, and prints median and p99 of each and their ratio. A third row is
 * img_rootfs_create with .sync (the in-use record fsynced before the mount).
 *
 *   rootfs STORE_DIR ROOTFS_DIR ITERATIONS RESULTS_FILE
 *
 * The image is made once (untimed) in a fresh store at STORE_DIR: a copy of ROOTFS_DIR (the
 * busybox rootfs) as the bottom layer and two small layers on top, like a small app image. */
#include "images/images.h"

#include <errno.h>
#include <openssl/evp.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define LAYERS 3

static int64_t now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die (const char *what, berr **err)
{
  fprintf (stderr, "rootfs bench: %s: %s\n", what, err && *err ? (*err)->msg : strerror (errno));
  exit (1);
}

static void sha (const char *s, size_t n, char out[72])
{
  unsigned char d[32];
  unsigned len = 0;
  EVP_Digest (s, n, d, &len, EVP_sha256 (), NULL);
  strcpy (out, "sha256:");
  for (int i = 0; i < 32; i++)
    sprintf (out + 7 + 2 * i, "%02x", d[i]);
}

/* Commits layer i (digest from its name) with the shell command cmd run in its directory. */
static void put_layer (struct img_sink *k, int i, const char *cmd, char digest[72])
{
  char name[32], *dir = NULL, *sh = NULL;
  void *lock = NULL;
  berr *err = NULL;
  snprintf (name, sizeof name, "bench-layer-%d", i);
  sha (name, strlen (name), digest);
  if (k->layer_stage (k->cls, digest, &dir, &lock, &err) < 0)
    die ("stage", &err);
  if (asprintf (&sh, "cd %s && %s", dir, cmd) < 0 || system (sh) != 0)
    die ("fill layer", NULL);
  struct img_unpack_result r = { 0 };
  strcpy (r.blob_digest, digest);
  if (k->layer_commit (k->cls, lock, digest, dir, &r, &err) < 0)
    die ("commit", &err);
  free (sh);
  free (dir);
}

static void put_image (struct img_sink *k, char layers[LAYERS][72])
{
  char config[2048], manifest[4096], cd[72], md[72], descs[1024] = "", ids[512] = "";
  for (int i = 0; i < LAYERS; i++)
    {
      snprintf (ids + strlen (ids), sizeof ids - strlen (ids), "%s\"%s\"", i ? "," : "", layers[i]);
      snprintf (descs + strlen (descs), sizeof descs - strlen (descs),
                "%s{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\","
                "\"size\":1}",
                i ? "," : "", layers[i]);
    }
  snprintf (config, sizeof config,
            "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
            "\"diff_ids\":[%s]}}",
            ids);
  sha (config, strlen (config), cd);
  snprintf (manifest, sizeof manifest,
            "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
            "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"
            "\"%s\",\"size\":%zu},\"layers\":[%s]}",
            cd, strlen (config), descs);
  sha (manifest, strlen (manifest), md);
  berr *err = NULL;
  if (k->image_commit (k->cls, "bench/app:1", md, manifest, strlen (manifest), config,
                       strlen (config), &err)
      < 0)
    die ("image commit", &err);
}

/* The peer: the same overlay (same lower, fresh upper/work) made by mount(8), spawned and
 * waited for as a shell would; the directories are made first, as Berth makes them. */
static int64_t peer_once (const char *store, char layers[LAYERS][72], int i)
{
  char dir[512], up[600], wk[600], mg[600], opts[4096];
  snprintf (dir, sizeof dir, "%s/peer-%d", store, i);
  snprintf (up, sizeof up, "%s/upper", dir);
  snprintf (wk, sizeof wk, "%s/work", dir);
  snprintf (mg, sizeof mg, "%s/merged", dir);
  int n = snprintf (opts, sizeof opts, "lowerdir=");
  for (int l = LAYERS - 1; l >= 0; l--)
    n += snprintf (opts + n, sizeof opts - (size_t)n, "%s%s/layers/%s/root",
                   l == LAYERS - 1 ? "" : ":", store, layers[l] + 7);
  snprintf (opts + n, sizeof opts - (size_t)n, ",upperdir=%s,workdir=%s", up, wk);
  char *argv[] = { "mount", "-t", "overlay", "overlay", "-o", opts, mg, NULL };
  int64_t t0 = now_ns ();
  pid_t pid;
  int status;
  if (mkdir (dir, 0700) < 0 || mkdir (up, 0755) < 0 || mkdir (wk, 0755) < 0 || mkdir (mg, 0755) < 0
      || posix_spawnp (&pid, "mount", NULL, NULL, argv, environ) != 0
      || waitpid (pid, &status, 0) != pid || !WIFEXITED (status) || WEXITSTATUS (status) != 0)
    die ("mount -t overlay", NULL);
  int64_t t = now_ns () - t0;
  if (umount2 (mg, MNT_DETACH) < 0)
    die ("umount peer", NULL);
  char rm[600];
  snprintf (rm, sizeof rm, "rm -rf %s", dir);
  if (system (rm) != 0)
    die ("rm peer", NULL);
  return t;
}

static int64_t berth_once (struct img_store *s, int i, bool sync)
{
  char id[32], *path = NULL;
  berr *err = NULL;
  struct img_rootfs_opts o = { .sync = sync };
  snprintf (id, sizeof id, "bench-%s%d", sync ? "s" : "", i);
  int64_t t0 = now_ns ();
  if (img_rootfs_create (s, "bench/app:1", id, &o, &path, &err) < 0)
    die ("img_rootfs_create", &err);
  int64_t t = now_ns () - t0;
  if (img_rootfs_remove (s, id, &err) < 0)
    die ("img_rootfs_remove", &err);
  free (path);
  return t;
}

static int cmp64 (const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double pct_ms (const int64_t *v, int n, int p)
{
  int k = (p * n + 99) / 100;
  return v[k < 1 ? 0 : k - 1] / 1e6;
}

int main (int argc, char **argv)
{
  if (argc != 5)
    {
      fprintf (stderr, "usage: rootfs STORE_DIR ROOTFS_DIR ITERATIONS RESULTS_FILE\n");
      return 2;
    }
  const char *store = argv[1];
  int iters = atoi (argv[3]);
  struct img_store *s = NULL;
  struct img_sink k;
  berr *err = NULL;
  if (iters < 2 || img_store_open (store, &s, &err) < 0)
    die ("open store", &err);
  img_store_sink (s, &k);
  char layers[LAYERS][72], cmd[600];
  snprintf (cmd, sizeof cmd, "cp -a %s/. .", argv[2]);
  put_layer (&k, 0, cmd, layers[0]);
  put_layer (&k, 1, "mkdir -p app etc && echo 1 > app/version && echo app > etc/hostname",
             layers[1]);
  put_layer (&k, 2, "mkdir -p app && head -c 65536 /dev/urandom > app/data", layers[2]);
  put_image (&k, layers);

  int64_t *b = calloc ((size_t)iters, sizeof *b), *p = calloc ((size_t)iters, sizeof *p);
  int64_t *y = calloc ((size_t)iters, sizeof *y);
  berth_once (s, -1, false); /* warm the page cache and the dentries for all */
  peer_once (store, layers, -1);
  for (int i = 0; i < iters; i++)
    {
      b[i] = berth_once (s, i, false);
      p[i] = peer_once (store, layers, i);
      y[i] = berth_once (s, i, true);
    }
  qsort (b, (size_t)iters, sizeof *b, cmp64);
  qsort (p, (size_t)iters, sizeof *p, cmp64);
  qsort (y, (size_t)iters, sizeof *y, cmp64);
  double ym = pct_ms (y, iters, 50), y99 = pct_ms (y, iters, 99);
  double bm = pct_ms (b, iters, 50), b99 = pct_ms (b, iters, 99);
  double pm = pct_ms (p, iters, 50), p99 = pct_ms (p, iters, 99);
  printf ("   %-38s %10s %8s %8s\n", "method", "median ms", "p99 ms", "x peer");
  printf ("   %-38s %10.3f %8.3f %8.2f\n", "berth img_rootfs_create", bm, b99, bm / pm);
  printf ("   %-38s %10.3f %8.3f %8.2f\n", "mkdir + `mount -t overlay` (peer)", pm, p99, 1.0);
  printf ("   %-38s %10.3f %8.3f %8.2f\n", "berth img_rootfs_create, .sync = true", ym, y99,
          ym / pm);
  printf ("   verdict: %s - berth median %.3f ms (target < 2 ms), %.2f x the peer's\n",
          bm < 2.0 ? "PASS" : "MISS", bm, bm / pm);
  FILE *f = fopen (argv[4], "a");
  if (f)
    {
      fprintf (f, "rootfs.iterations %d\nrootfs.layers %d\n", iters, LAYERS);
      fprintf (f, "rootfs.berth.median_ms %.3f\nrootfs.berth.p99_ms %.3f\n", bm, b99);
      fprintf (f, "rootfs.peer.median_ms %.3f\nrootfs.peer.p99_ms %.3f\n", pm, p99);
      fprintf (f, "rootfs.berth_sync.median_ms %.3f\nrootfs.berth_sync.p99_ms %.3f\n", ym, y99);
      fclose (f);
    }
  free (b);
  free (p);
  free (y);
  img_store_close (s);
  return 0;
}
