/* Registry fixtures for the images tests (tests/support/imgreg.h): docker-registry, the token
 * issuer, skopeo pushes and a counting, throttling relay, all on 127.0.0.1. */
#include "tests/support/imgreg.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char TS_REG_BUSYBOX_LAYOUT_SH[]
    = "set -e; B=$1; HOST=$(dpkg --print-architecture); cd $B\n"
      "mkdir -p rootfs/bin small oci/blobs/sha256\n"
      "cp /bin/busybox rootfs/bin/busybox\n"
      "echo hello > small/hello\n"
      "tar --numeric-owner -C rootfs -cf - . | gzip -n > layer.tgz\n"
      "tar --numeric-owner -C small -cf - . | gzip -n > small.tgz\n"
      "put() { d=$(sha256sum \"$1\" | cut -d' ' -f1); cp \"$1\" oci/blobs/sha256/$d; echo $d; }\n"
      "M=application/vnd.oci.image.manifest.v1+json\n"
      "mk() { # arch layerfile -> manifest digest:size\n"
      "  L=$(put $2); LS=$(stat -c %s $2); D=$(gzip -dc $2 | sha256sum | cut -d' ' -f1)\n"
      "  printf '{\"architecture\":\"%s\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"/bin/sh\"]},"
      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:%s\"]}}' $1 $D > cfg.json\n"
      "  C=$(put cfg.json); CS=$(stat -c %s cfg.json)\n"
      "  printf '{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":"
      "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:%s\",\"size\":%s},"
      "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
      "\"digest\":\"sha256:%s\",\"size\":%s}]}' $M $C $CS $L $LS > man.json\n"
      "  echo $(put man.json):$(stat -c %s man.json); }\n"
      "H=$(mk $HOST layer.tgz); O=$(mk arm64v8x layer.tgz); S=$(mk $HOST small.tgz)\n"
      "ent() { printf '{\"mediaType\":\"%s\",\"digest\":\"sha256:%s\",\"size\":%s%s}' $1 "
      "${2%:*} ${2#*:} \"$3\"; }\n"
      "printf '{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
      "\"manifests\":[%s,%s]}' \"$(ent $M $O ',\"platform\":{\"os\":\"linux\",\"architecture\":"
      "\"arm64\",\"variant\":\"v8\"}')\" \"$(ent $M $H ',\"platform\":{\"os\":\"linux\","
      "\"architecture\":\"'$HOST'\"}')\" > idx.json\n"
      "I=$(put idx.json):$(stat -c %s idx.json)\n"
      "n() { printf ',\"annotations\":{\"org.opencontainers.image.ref.name\":\"%s\"}' $1; }\n"
      "printf '{\"schemaVersion\":2,\"manifests\":[%s,%s,%s]}' \"$(ent $M $H \"$(n v1)\")\" "
      "\"$(ent application/vnd.oci.image.index.v1+json $I \"$(n multi)\")\" "
      "\"$(ent $M $S \"$(n small)\")\" > oci/index.json\n"
      "echo '{\"imageLayoutVersion\":\"1.0.0\"}' > oci/oci-layout\n"
      "echo ${H%:*} > host.digest; echo ${S%:*} > small.digest\n";

const char TS_REG_TOKEN_SH[]
    = "set -e; cd $1\n"
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2 "
      "-subj /CN=berth-issuer 2>/dev/null\n"
      "kid=$(openssl x509 -in cert.pem -pubkey -noout | openssl pkey -pubin -outform DER | "
      "openssl dgst -sha256 -binary | head -c 30 | base32 | tr -d = | "
      "sed 's/.\\{4\\}/&:/g; s/:$//')\n"
      "u() { base64 -w0 | tr '+/' '-_' | tr -d =; }\n"
      "h=$(printf '{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}' $kid | u)\n"
      "n=$(date +%s)\n"
      "c=$(printf '{\"iss\":\"berth-issuer\",\"sub\":\"alice\",\"aud\":\"berth-test\","
      "\"exp\":%d,\"nbf\":%d,\"iat\":%d,\"jti\":\"j1\",\"access\":[{\"type\":"
      "\"repository\",\"name\":\"test/busybox\",\"actions\":[\"pull\",\"push\"]}]}' "
      "$((n+3600)) $((n-60)) $((n-60)) | u)\n"
      "sig=$(printf %s.%s $h $c | openssl dgst -sha256 -sign key.pem -binary | u)\n"
      "printf '{\"token\":\"%s.%s.%s\",\"expires_in\":300}' $h $c $sig > token.json\n";

void ts_reg_script (const char *base, const char *name, const char *text)
{
  char path[4096];
  snprintf (path, sizeof path, "%s/%s", base, name);
  FILE *f = fopen (path, "we");
  ck_assert_ptr_nonnull (f);
  fputs (text, f);
  fclose (f);
  ts_sh_ok ("sh %s %s", path, base);
}

/* Dies with its parent and lets go of the test's output: a fixture left behind by a failing
 * test must neither run on nor keep tests/run.sh waiting for the end of that output. */
static void fixture_child (void)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0)
    {
      dup2 (null, 1);
      dup2 (null, 2);
      close (null);
    }
}

/* Forks a child in its own process group (so ts_reg_stop reaches what it forks too). */
static pid_t fork_group (void)
{
  pid_t pid = fork ();
  ck_assert_int_ge (pid, 0);
  if (pid == 0)
    {
      setpgid (0, 0);
      signal (SIGTERM, SIG_DFL); /* not Check's handler, which kills the whole group */
      fixture_child ();
    }
  else
    setpgid (pid, pid);
  return pid;
}

/* Runs docker-registry on cfg (log in base/<name>.log) and waits until url answers. */
static pid_t spawn_registry (const char *base, const char *name, const char *cfg, const char *url)
{
  pid_t pid = fork_group ();
  if (pid == 0)
    {
      char log[4200];
      snprintf (log, sizeof log, "%s/%s.log", base, name);
      int fd = open (log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      dup2 (fd, 1);
      dup2 (fd, 2);
      execl ("/usr/bin/docker-registry", "docker-registry", "serve", cfg, (char *)NULL);
      _exit (127);
    }
  ts_sh_ok ("for i in $(seq 100); do curl -ks -o /dev/null %s && exit 0; sleep 0.1; done; "
            "exit 1",
            url);
  return pid;
}

pid_t ts_reg_start (const char *base, const char *name, int port, const char *auth, int issuer_port)
{
  char cfg[4096];
  snprintf (cfg, sizeof cfg, "%s/%s.yml", base, name);
  FILE *f = fopen (cfg, "we");
  ck_assert_ptr_nonnull (f);
  fprintf (f,
           "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
           "    rootdirectory: %s/store-%s\nhttp:\n  addr: 127.0.0.1:%d\n",
           base, name, port);
  if (strcmp (auth, "basic") == 0)
    fprintf (f, "auth:\n  htpasswd:\n    realm: berth-test\n    path: %s/htpasswd\n", base);
  if (strcmp (auth, "bearer") == 0)
    fprintf (f,
             "auth:\n  token:\n    realm: http://127.0.0.1:%d/token\n    service: berth-test\n"
             "    issuer: berth-issuer\n    rootcertbundle: %s/cert.pem\n",
             issuer_port, base);
  fclose (f);
  char url[256];
  snprintf (url, sizeof url, "http://127.0.0.1:%d/v2/", port);
  return spawn_registry (base, name, cfg, url);
}

pid_t ts_reg_start_tls (const char *base, const char *name, const char *addr, int port)
{
  char cfg[4096], url[256];
  ts_sh_ok ("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout %s.key -out %s.crt "
            "-days 2 -subj /CN=berth-registry -addext subjectAltName=IP:%s 2>/dev/null",
            base, name, name, addr);
  snprintf (cfg, sizeof cfg, "%s/%s.yml", base, name);
  FILE *f = fopen (cfg, "we");
  ck_assert_ptr_nonnull (f);
  fprintf (f,
           "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
           "    rootdirectory: %s/store-%s\nhttp:\n  addr: %s:%d\n  tls:\n"
           "    certificate: %s/%s.crt\n    key: %s/%s.key\n",
           base, name, addr, port, base, name, base, name);
  fclose (f);
  snprintf (url, sizeof url, "https://%s:%d/v2/", addr, port);
  return spawn_registry (base, name, cfg, url);
}

static int listen_loopback (int *port)
{
  int s = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof a;
  ck_assert_int_ge (s, 0);
  ck_assert_int_eq (bind (s, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq (listen (s, 64), 0);
  ck_assert_int_eq (getsockname (s, (struct sockaddr *)&a, &len), 0);
  *port = ntohs (a.sin_port);
  return s;
}

static void append_line (const char *path, const char *line)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd >= 0)
    {
      (void)!write (fd, line, strlen (line)); /* one write: lines of processes do not mix */
      close (fd);
    }
}

static void issuer_answer (const char *base, int c)
{
  char req[8192], path[4096], line[8500];
  size_t n = 0;
  while (n < sizeof req - 1)
    {
      ssize_t r = read (c, req + n, sizeof req - 1 - n);
      if (r <= 0)
        break;
      n += (size_t)r;
      req[n] = 0;
      if (strstr (req, "\r\n\r\n"))
        break;
    }
  req[n] = 0;
  snprintf (path, sizeof path, "%s/token-once.json", base);
  char *body = ts_read_file (path);
  if (body)
    unlink (path);
  else
    {
      snprintf (path, sizeof path, "%s/token.json", base);
      body = ts_read_file (path);
    }
  snprintf (line, sizeof line, "%.*s basic=%d\n", (int)strcspn (req, "\r\n"), req,
            strcasestr (req, "\nAuthorization: Basic ") != NULL);
  snprintf (path, sizeof path, "%s/issuer.log", base);
  append_line (path, line);
  dprintf (c,
           "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
           "Connection: close\r\n\r\n%s",
           body ? strlen (body) : 0, body ? body : "");
  free (body);
}

pid_t ts_reg_start_issuer (const char *base, int *port)
{
  int s = listen_loopback (port);
  pid_t pid = fork_group ();
  if (pid == 0)
    for (;;)
      {
        int c = accept4 (s, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
          continue;
        issuer_answer (base, c);
        close (c);
      }
  close (s);
  return pid;
}

int ts_reg_issuer_requests (const char *base)
{
  char p[4096];
  snprintf (p, sizeof p, "%s/issuer.log", base);
  char *log = ts_read_file (p);
  int n = 0;
  for (char *c = log; c && *c; c++)
    n += *c == '\n';
  free (log);
  return n;
}

void ts_reg_push (const char *layout, int port, const char *creds, const char *tag,
                  const char *repo, bool all)
{
  ts_sh_ok ("skopeo --insecure-policy copy -q %s --dest-tls-verify=false %s%s oci:%s:%s "
            "docker://127.0.0.1:%d/%s:%s",
            all ? "--all" : "", creds ? "--dest-creds " : "", creds ? creds : "", layout, tag, port,
            repo, tag);
}

void ts_reg_stop (pid_t pid)
{
  if (pid <= 0)
    return;
  if (kill (-pid, SIGTERM) < 0)
    kill (pid, SIGTERM);
  waitpid (pid, NULL, 0);
}

/* ---- relay ------------------------------------------------------------------------------- */

static void sleep_us (long us)
{
  struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };
  while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
    ;
}

static int write_all (int fd, const char *p, size_t n)
{
  while (n > 0)
    {
      ssize_t w = write (fd, p, n);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        return -1;
      p += w;
      n -= (size_t)w;
    }
  return 0;
}

/* Bytes of the response left after this chunk: its Content-Length minus the body bytes seen
 * (the headers arrive in the first chunk from docker-registry), or -1 when unknown. */
static long long response_left (const char *buf, size_t n, long long left)
{
  if (left >= 0)
    return left - (long long)n;
  const char *end = memmem (buf, n, "\r\n\r\n", 4);
  const char *cl = memmem (buf, n, "\nContent-Length:", 16);
  if (end == NULL || cl == NULL || cl > end)
    return -1;
  long long len = strtoll (cl + 16, NULL, 10);
  return len - (long long)(n - (size_t)(end + 4 - buf));
}

/* Copies both ways until either side is done; responses at most rate bytes/s. The "-" line is
 * written before the last byte of the response goes out, so a request is never shown open
 * after the client could have moved on. */
static void relay_pump (int c, int u, long rate, const char *log_path, char *line)
{
  struct pollfd fds[2] = { { .fd = c, .events = POLLIN }, { .fd = u, .events = POLLIN } };
  char buf[16384], cut[4200];
  long long left = -1, sent = 0;
  bool closed = false, blob = strstr (line, "/blobs/") != NULL;
  snprintf (cut, sizeof cut, "%s.cut", log_path);
  for (;;)
    {
      if (poll (fds, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }
      if (fds[0].revents)
        {
          ssize_t n = read (c, buf, sizeof buf);
          if (n <= 0 || write_all (u, buf, (size_t)n) < 0)
            break; /* the client went away */
        }
      if (fds[1].revents)
        {
          ssize_t n
              = read (u, buf, rate > 0 && rate < (long)sizeof buf ? (size_t)rate : sizeof buf);
          if (n <= 0)
            break;
          if (rate > 0)
            sleep_us ((long)((double)n * 1e6 / (double)rate));
          left = response_left (buf, (size_t)n, left);
          if (left == 0 && !closed)
            {
              line[0] = '-';
              append_line (log_path, line);
              closed = true;
            }
          if (write_all (c, buf, (size_t)n) < 0)
            break;
          sent += n;
          /* One blob response (whoever removes the marker) is cut after 64 KiB. */
          if (blob && sent >= 65536 && !closed && unlink (cut) == 0)
            break;
        }
    }
  if (!closed)
    {
      line[0] = '-';
      append_line (log_path, line);
    }
}

static void relay_conn (int c, int target_port, long rate, const char *log_path)
{
  struct sockaddr_in a = { .sin_family = AF_INET,
                           .sin_addr.s_addr = htonl (INADDR_LOOPBACK),
                           .sin_port = htons ((uint16_t)target_port) };
  int u = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (u < 0 || connect (u, (struct sockaddr *)&a, sizeof a) < 0)
    _exit (1);
  char first[8192], line[4200];
  ssize_t n = read (c, first, sizeof first - 1);
  if (n <= 0)
    _exit (0);
  first[n] = 0;
  int len = (int)strcspn (first, "\r\n");
  if (len > 4000)
    len = 4000;
  snprintf (line, sizeof line, "+ %.*s\n", len, first);
  append_line (log_path, line);
  if (write_all (u, first, (size_t)n) == 0)
    relay_pump (c, u, rate, log_path, line);
  else
    {
      line[0] = '-';
      append_line (log_path, line);
    }
  _exit (0);
}

pid_t ts_relay_start (int target_port, long bytes_per_s, const char *log_path, int *port)
{
  int s = listen_loopback (port);
  pid_t pid = fork_group ();
  if (pid == 0)
    {
      signal (SIGCHLD, SIG_IGN); /* connection processes reap themselves */
      for (;;)
        {
          int c = accept4 (s, NULL, NULL, SOCK_CLOEXEC);
          if (c < 0)
            continue;
          pid_t h = fork ();
          if (h == 0)
            {
              prctl (PR_SET_PDEATHSIG, SIGKILL);
              close (s);
              relay_conn (c, target_port, bytes_per_s, log_path);
            }
          close (c);
        }
    }
  close (s);
  return pid;
}

void ts_relay_count (const char *log_path, const char *needle, int *total, int *max_open)
{
  char *log = ts_read_file (log_path);
  int open_now = 0;
  *total = *max_open = 0;
  for (char *l = log; l && *l;)
    {
      char *nl = strchr (l, '\n');
      if (nl)
        *nl = 0;
      if (strstr (l, needle) && l[0] == '+')
        {
          (*total)++;
          if (++open_now > *max_open)
            *max_open = open_now;
        }
      else if (strstr (l, needle) && l[0] == '-')
        open_now--;
      l = nl ? nl + 1 : l + strlen (l);
    }
  free (log);
}
