/* Integration tests of the berth-agent program: exit codes (0 clean, 5 terminal), --check-config
 * output without secrets, sd_notify READY and WATCHDOG, SIGTERM, identity checks. */
#include "agent/agent.h"
#include "lib/cleanup.h"
#include "tests/support/cp.h"
#include "tests/support/script.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECRET "s3cr3t-never-printed-0123456789abcdefgh"

/* Each test runs in its own network namespace, and every agent it starts keeps its volatile state
 * and images here: the daemon sets up its bridge and task state at start. */
static char *scratch, *e_state, *e_images;

static void setup (void)
{
  ts_private_net ();
  scratch = ts_mkdtemp ("agent-daemon-run");
  ck_assert_int_ge (asprintf (&e_state, "BERTH_STATE_DIR=%s/run", scratch), 0);
  ck_assert_int_ge (asprintf (&e_images, "BERTH_IMAGE_DIR=%s/images", scratch), 0);
}

static void teardown (void)
{
  ts_rmtree (scratch);
  free (scratch);
  free (e_state);
  free (e_images);
}

/* Runs berth-agent with a clean environment plus env (a shell word list); returns its exit code
 * and its output in *out. */
static int agent (char **out, const char *env, const char *args)
{
  _cleanup_free_ char *bin = ts_bin ("berth-agent"), *cmd = NULL;
  int status;
  ck_assert_int_ge (asprintf (&cmd, "env -i PATH=/usr/bin:/bin HOME=/nonexistent %s %s %s %s %s",
                              e_state, e_images, env, bin, args),
                    0);
  ck_assert_int_eq (ts_sh (cmd, out, &status), 0);
  return ts_exit_code (status);
}

static char *write_config (const char *dir, const char *text)
{
  char *path = NULL;
  ck_assert_int_ge (asprintf (&path, "%s/ecs.config", dir), 0);
  FILE *f = fopen (path, "we");
  ck_assert_ptr_nonnull (f);
  fputs (text, f);
  ck_assert_int_eq (fclose (f), 0);
  return path;
}

START_TEST (test_check_config_prints_the_effective_config_without_secrets)
{
  _cleanup_free_ char *dir = ts_mkdtemp ("agent-daemon"), *out = NULL, *args = NULL;
  _cleanup_free_ char *cfg = write_config (dir, "ECS_CLUSTER=web\nECS_LOGLEVEL=warn\n");
  ck_assert_int_ge (asprintf (&args, "--config %s --check-config", cfg), 0);
  int rc = agent (&out,
                  "ECS_LOGLEVEL=debug AWS_ACCESS_KEY_ID=BKAGDAEMONTEST000001 "
                  "AWS_SECRET_ACCESS_KEY=" SECRET " AWS_SESSION_TOKEN=" SECRET "tok",
                  args);
  ck_assert_msg (rc == 0, "exit %d: %s", rc, out);
  ck_assert_ptr_nonnull (strstr (out, "ECS_CLUSTER=web\t# file\n"));
  ck_assert_ptr_nonnull (strstr (out, "ECS_LOGLEVEL=debug\t# environment\n"));
  ck_assert_ptr_nonnull (strstr (out, "ECS_CONTAINER_STOP_TIMEOUT=30s\t# default\n"));
  ck_assert_ptr_nonnull (strstr (out, "credentials: environment, access key BKAG..."));
  ck_assert_ptr_null (strstr (out, "s3cr3t"));
  ck_assert_ptr_null (strstr (out, "DAEMONTEST"));
  ts_rmtree (dir);
}
END_TEST

START_TEST (test_bad_configuration_exits_5_naming_the_key)
{
  _cleanup_free_ char *dir = ts_mkdtemp ("agent-daemon"), *out = NULL, *args = NULL;
  _cleanup_free_ char *cfg = write_config (dir, "ECS_CLUSTER=web\nECS_RESERVED_PORTS=[22,x]\n");
  ck_assert_int_ge (asprintf (&args, "--config %s", cfg), 0);
  ck_assert_int_eq (agent (&out, "", args), AGENT_EXIT_TERMINAL);
  ck_assert_ptr_nonnull (strstr (out, "ECS_RESERVED_PORTS"));
  free (out);
  ck_assert_int_eq (agent (&out, "ECS_IMAGE_PULL_BEHAVIOR=never", "--config /dev/null"),
                    AGENT_EXIT_TERMINAL);
  ck_assert_ptr_nonnull (strstr (out, "ECS_IMAGE_PULL_BEHAVIOR (from the environment)"));
  free (out);
  ck_assert_int_eq (agent (&out, "", "--config /nonexistent/ecs.config --check-config"),
                    AGENT_EXIT_TERMINAL);
  ck_assert_ptr_nonnull (strstr (out, "/nonexistent/ecs.config"));
  free (out);
  ck_assert_int_eq (agent (&out, "", "--no-such-option"), AGENT_EXIT_TERMINAL);
  free (out);
  ck_assert_int_eq (agent (&out, "", "--version"), 0);
  ck_assert_ptr_nonnull (strstr (out, "berth-agent " AGENT_VERSION));
  ts_rmtree (dir);
}
END_TEST

START_TEST (test_reserved_memory_above_the_host_exits_5)
{
  _cleanup_free_ char *dir = ts_mkdtemp ("agent-daemon"), *out = NULL, *env = NULL;
  ck_assert_int_ge (asprintf (&env, "ECS_DATADIR=%s/data ECS_RESERVED_MEMORY=1000000000", dir), 0);
  ck_assert_int_eq (agent (&out, env, "--config /dev/null"), AGENT_EXIT_TERMINAL);
  ck_assert_ptr_nonnull (strstr (out, "ECS_RESERVED_MEMORY"));
  ts_rmtree (dir);
}
END_TEST

START_TEST (test_stored_identity_in_another_cluster_exits_5)
{
  _cleanup_free_ char *dir = ts_mkdtemp ("agent-daemon"), *out = NULL, *env = NULL, *db = NULL;
  _cleanup_berr_ berr *err = NULL;
  agent_store *s;
  ck_assert_int_ge (asprintf (&db, "%s/agent.db", dir), 0);
  ck_assert_int_eq (agent_store_open (db, &s, &err), 0);
  ck_assert_int_eq (agent_store_set_identity (s, "other", "arn:x:container-instance/other/1", &err),
                    0);
  agent_store_close (s);
  ck_assert_int_ge (asprintf (&env, "ECS_DATADIR=%s ECS_CLUSTER=web", dir), 0);
  ck_assert_int_eq (agent (&out, env, "--config /dev/null"), AGENT_EXIT_TERMINAL);
  ck_assert_ptr_nonnull (strstr (out, "registered in cluster `other`"));
  ts_rmtree (dir);
}
END_TEST

START_TEST (test_registration_refused_for_good_ends_the_daemon_with_5)
{
  ts_cp cp;
  ts_cp_setup (&cp);
  _cleanup_free_ char *out = NULL, *env = NULL;
  ck_assert_int_ge (asprintf (&env,
                              "ECS_DATADIR=%s/agent ECS_BACKEND_HOST=http://127.0.0.1:%d "
                              "AWS_ACCESS_KEY_ID=BKAGNOTKNOWN00000001 AWS_SECRET_ACCESS_KEY=x",
                              cp.dir, cp.port),
                    0);
  ck_assert_int_eq (agent (&out, env, "--config /dev/null"), AGENT_EXIT_TERMINAL);
  ck_assert_ptr_nonnull (strstr (out, "RegisterContainerInstance: UnrecognizedClientException"));
  ts_cp_teardown (&cp);
}
END_TEST

/* Every descriptor of pid above stderr has O_CLOEXEC (fdinfo's octal flags carry 02000000);
 * returns how many were checked. */
static int check_cloexec (pid_t pid)
{
  char path[64];
  int checked = 0;
  snprintf (path, sizeof path, "/proc/%d/fd", (int)pid);
  DIR *d = opendir (path);
  ck_assert_ptr_nonnull (d);
  for (struct dirent *e; (e = readdir (d));)
    {
      int fd = atoi (e->d_name);
      if (e->d_name[0] == '.' || fd <= 2)
        continue;
      char info[64], link[64], target[256] = "";
      snprintf (info, sizeof info, "/proc/%d/fdinfo/%d", (int)pid, fd);
      snprintf (link, sizeof link, "/proc/%d/fd/%d", (int)pid, fd);
      _cleanup_free_ char *text = ts_read_file (info);
      if (text == NULL)
        continue; /* closed meanwhile */
      ck_assert_int_ge (readlink (link, target, sizeof target - 1), 0);
      unsigned long flags = strtoul (strstr (text, "flags:") + 6, NULL, 8);
      ck_assert_msg (flags & 02000000, "fd %d (%s) lacks O_CLOEXEC", fd, target);
      checked++;
    }
  closedir (d);
  return checked;
}

/* Receives one sd_notify datagram (NUL-terminated) within timeout_ms; false on timeout. */
static bool notify_recv (int fd, char *buf, size_t size, int timeout_ms)
{
  struct pollfd p = { .fd = fd, .events = POLLIN };
  if (poll (&p, 1, timeout_ms) != 1)
    return false;
  ssize_t n = recv (fd, buf, size - 1, 0);
  ck_assert_int_gt (n, 0);
  buf[n] = '\0';
  return true;
}

START_TEST (test_daemon_notifies_ready_feeds_the_watchdog_and_exits_0_on_sigterm)
{
  _cleanup_free_ char *dir = ts_mkdtemp ("agent-daemon"), *bin = ts_bin ("berth-agent");
  _cleanup_free_ char *sock = NULL, *datadir = NULL, *db = NULL, *e_sock = NULL, *e_dir = NULL;
  _cleanup_free_ char *e_host = NULL;
  ck_assert_int_ge (asprintf (&sock, "%s/notify", dir), 0);
  ck_assert_int_ge (asprintf (&datadir, "%s/data", dir), 0);
  ck_assert_int_ge (asprintf (&db, "%s/agent.db", datadir), 0);
  ck_assert_int_ge (asprintf (&e_sock, "NOTIFY_SOCKET=%s", sock), 0);
  ck_assert_int_ge (asprintf (&e_dir, "ECS_DATADIR=%s", datadir), 0);
  /* A server that accepts and never answers: registration stays in flight while the daemon
   * runs. */
  int silent = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t salen = sizeof sa;
  ck_assert_int_eq (bind (silent, (struct sockaddr *)&sa, sizeof sa), 0);
  ck_assert_int_eq (listen (silent, 4), 0);
  ck_assert_int_eq (getsockname (silent, (struct sockaddr *)&sa, &salen), 0);
  ck_assert_int_ge (asprintf (&e_host, "ECS_BACKEND_HOST=http://127.0.0.1:%d", ntohs (sa.sin_port)),
                    0);
  int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  snprintf (a.sun_path, sizeof a.sun_path, "%s", sock);
  ck_assert_int_eq (bind (fd, (struct sockaddr *)&a, sizeof a), 0);
  pid_t pid = fork ();
  ck_assert_int_ge (pid, 0);
  if (pid == 0)
    {
      char *env[] = { e_sock,
                      e_dir,
                      e_host,
                      e_state,
                      e_images,
                      "WATCHDOG_USEC=400000",
                      "PATH=/usr/bin:/bin",
                      "AWS_ACCESS_KEY_ID=A",
                      "AWS_SECRET_ACCESS_KEY=B",
                      NULL };
      char *argv[] = { bin, "--config", "/dev/null", NULL };
      /* Only what a service manager would pass: not the test framework's descriptors. */
      close_range (3, ~0U, 0);
      execve (bin, argv, env);
      _exit (127);
    }
  char msg[512];
  bool ready = false;
  int watchdogs = 0;
  for (int i = 0; i < 50 && (!ready || watchdogs < 2); i++)
    {
      if (!notify_recv (fd, msg, sizeof msg, 2000))
        break;
      ready |= strstr (msg, "READY=1") != NULL;
      watchdogs += ready && strstr (msg, "WATCHDOG=1") != NULL;
    }
  ck_assert_msg (ready, "no READY=1");
  ck_assert_int_ge (watchdogs, 2);
  /* The loop, the store and the registration connection in flight (to a server that accepts and
   * never answers): none may leak into a child the agent will exec. */
  ck_assert_int_ge (check_cloexec (pid), 6);
  struct stat st;
  ck_assert_int_eq (stat (db, &st), 0);
  ck_assert_int_eq (st.st_mode & 0777, 0600);
  ck_assert_int_eq (stat (datadir, &st), 0);
  ck_assert_int_eq (st.st_mode & 0777, 0700);
  ck_assert_int_eq (kill (pid, SIGTERM), 0);
  int status;
  ck_assert_int_eq (waitpid (pid, &status, 0), pid);
  ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 0, "status %#x", status);
  bool stopping = false;
  while (notify_recv (fd, msg, sizeof msg, 0))
    stopping |= strstr (msg, "STOPPING=1") != NULL;
  ck_assert (stopping);
  close (fd);
  close (silent);
  ts_rmtree (dir);
}
END_TEST

/* BERTH_OFFLINE_WATCHDOG=2s against a control plane that answers 500 to every registration:
 * the first answer comes at once, the retry about 3 s later, so the agent is cut off for about
 * a second in between. The watchdog must stop being fed then, and resume after the answer. */
START_TEST (test_watchdog_starves_while_the_control_plane_is_silent_and_resumes)
{
  ts_answer busy[] = { { 500, "{\"__type\":\"ServerException\",\"message\":\"busy\"}" } };
  ts_script srv;
  ts_script_start (&srv, busy, 1, NULL, NULL);
  _cleanup_free_ char *dir = ts_mkdtemp ("agent-daemon"), *bin = ts_bin ("berth-agent");
  _cleanup_free_ char *sock = NULL, *e_sock = NULL, *e_dir = NULL, *e_host = NULL;
  ck_assert_int_ge (asprintf (&sock, "%s/notify", dir), 0);
  ck_assert_int_ge (asprintf (&e_sock, "NOTIFY_SOCKET=%s", sock), 0);
  ck_assert_int_ge (asprintf (&e_dir, "ECS_DATADIR=%s/data", dir), 0);
  ck_assert_int_ge (asprintf (&e_host, "ECS_BACKEND_HOST=http://127.0.0.1:%d", srv.port), 0);
  int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  snprintf (a.sun_path, sizeof a.sun_path, "%s", sock);
  ck_assert_int_eq (bind (fd, (struct sockaddr *)&a, sizeof a), 0);
  pid_t pid = fork ();
  ck_assert_int_ge (pid, 0);
  if (pid == 0)
    {
      char *env[] = { e_sock,
                      e_dir,
                      e_host,
                      e_state,
                      e_images,
                      "WATCHDOG_USEC=200000",
                      "BERTH_OFFLINE_WATCHDOG=2s",
                      "AWS_ACCESS_KEY_ID=A",
                      "AWS_SECRET_ACCESS_KEY=B",
                      NULL };
      char *argv[] = { bin, "--config", "/dev/null", NULL };
      close_range (3, ~0U, 0);
      execve (bin, argv, env);
      _exit (127);
    }
  /* 0: feeding, 1: starved, 2: fed again. */
  int phase = 0, fed[3] = { 0 };
  char msg[512], trace[4096] = "";
  for (int i = 0; i < 400 && (phase < 2 || fed[2] < 2); i++)
    {
      if (!notify_recv (fd, msg, sizeof msg, 8000))
        break;
      for (char *nl = strchr (msg, '\n'); nl; nl = strchr (nl, '\n'))
        *nl = '|';
      size_t tl = strlen (trace);
      snprintf (trace + tl, sizeof trace - tl, "%.40s; ", msg);
      if (strstr (msg, "STATUS=control plane unreachable"))
        phase = 1;
      else if (strstr (msg, "STATUS=control plane reachable"))
        phase = 2;
      else if (strstr (msg, "WATCHDOG=1"))
        fed[phase]++;
    }
  kill (pid, SIGTERM);
  int status;
  ck_assert_int_eq (waitpid (pid, &status, 0), pid);
  ck_assert_msg (phase == 2 && fed[1] == 0, "phase %d (fed %d/%d/%d): %s", phase, fed[0], fed[1],
                 fed[2], trace);
  ck_assert_int_ge (fed[0], 3);
  ck_assert_int_eq (fed[1], 0);
  ck_assert_int_ge (fed[2], 2);
  ck_assert_int_ge (srv.calls, 2);
  ck_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  close (fd);
  ts_script_stop (&srv);
  ts_rmtree (dir);
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("agent-daemon");
  TCase *tc = tcase_create ("core");
  tcase_set_timeout (tc, 60);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_check_config_prints_the_effective_config_without_secrets);
  tcase_add_test (tc, test_bad_configuration_exits_5_naming_the_key);
  tcase_add_test (tc, test_reserved_memory_above_the_host_exits_5);
  tcase_add_test (tc, test_stored_identity_in_another_cluster_exits_5);
  tcase_add_test (tc, test_registration_refused_for_good_ends_the_daemon_with_5);
  tcase_add_test (tc, test_daemon_notifies_ready_feeds_the_watchdog_and_exits_0_on_sigterm);
  tcase_add_test (tc, test_watchdog_starves_while_the_control_plane_is_silent_and_resumes);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
