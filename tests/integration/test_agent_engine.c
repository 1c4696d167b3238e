/* Integration tests of berth-agent's task engine with real parts: an image store with a busybox
 * image imported from a tarball (tests/fixtures/mkimages.sh), berth-shim and berth-runtime
 * running real containers, the agent store on disk, and berth-control for the reports. Tasks are
 * injected into the store in the ACS shape, as the channel will. */
#include "agent/agent.h"
#include "images/images.h"
#include "lib/cleanup.h"
#include "lib/clock.h"
#include "lib/json.h"
#include "lib/strv.h"
#include "net/net.h"
#include "runtime/runtime.h"
#include "tests/support/cp.h"
#include "tests/support/engine.h"
#include "tests/support/netenv.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define IMAGE TS_ENG_IMAGE
#define ARN_PREFIX TS_ENG_ARN_PREFIX

static ts_eng f;
TS_ENG_FIXTURES (f)

static void inject_mem (const char *arn, const char *containers, const char *memory)
{
  ts_eng_inject_full (&f, arn, "none", containers, memory);
}

START_TEST (test_task_runs_then_stops_with_its_exit_code_in_the_outbox)
{
  const char *arn = ARN_PREFIX "run1";
  ts_eng_open (&f);
  ts_eng_inject (&f, arn, "none",
                 "[{\"name\":\"app\",\"image\":\"" IMAGE "\",\"essential\":true,"
                 "\"command\":[\"sh\",\"-c\",\"busybox sleep 1; exit 3\"],\"memory\":64}]");
  ts_eng_run_until (&f, arn, "RUNNING", 10000);
  pid_t pid;
  int code;
  ck_assert_int_eq (agent_engine_container_info (f.eng, arn, "app", &pid, &code), 0);
  ck_assert_int_gt (pid, 0);
  ck_assert_int_eq (kill (pid, 0), 0);
  ts_eng_run_until (&f, arn, "STOPPED", 10000);
  _cleanup_json_ cJSON *ob = ts_eng_outbox (&f, arn);
  ck_assert_int_eq (cJSON_GetArraySize (ob), 2);
  const cJSON *r0 = cJSON_GetArrayItem (ob, 0), *r1 = cJSON_GetArrayItem (ob, 1);
  ck_assert_str_eq (ts_json_str (r0, "status"), "RUNNING");
  ck_assert_str_eq (ts_json_str (ts_eng_container_of (r0, "app"), "status"), "RUNNING");
  ck_assert_str_eq (ts_json_str (r1, "status"), "STOPPED");
  ck_assert_int_eq (ts_eng_exit_code_of (r1, "app"), 3);
  ck_assert (strncmp (ts_json_str (ts_eng_container_of (r1, "app"), "imageDigest"), "sha256:", 7)
             == 0);
  ck_assert (cJSON_IsNumber (cJSON_GetObjectItem (r1, "pullStartedAt")));
  ck_assert (cJSON_IsNumber (cJSON_GetObjectItem (r1, "executionStoppedAt")));
}
END_TEST

START_TEST (test_container_starts_wait_for_a_free_slot_under_the_cap)
{
  const char *arns[] = { ARN_PREFIX "cap1", ARN_PREFIX "cap2", ARN_PREFIX "cap3" };
  f.max_creates = 1;
  ts_eng_open (&f);
  for (size_t i = 0; i < 3; i++)
    ts_eng_inject (&f, arns[i], "none",
                   "[{\"name\":\"c\",\"image\":\"" IMAGE "\",\"essential\":true,"
                   "\"command\":[\"busybox\",\"sleep\",\"100\"]}]");
  unsigned most = 0, running = 0;
  for (int round = 0; round < 4000 && running < 3; round++)
    {
      ts_eng_run_for (&f, 5);
      unsigned now = agent_engine_starts_in_flight (f.eng);
      most = now > most ? now : most;
      running = 0;
      for (size_t i = 0; i < 3; i++)
        running += ts_eng_status_is (&f, arns[i], "RUNNING");
    }
  ck_assert_uint_eq (running, 3);
  ck_assert_uint_eq (most, 1);
}
END_TEST

START_TEST (test_essential_container_exit_stops_the_task_with_its_stop_signal)
{
  const char *arn = ARN_PREFIX "ess1";
  ts_eng_open (&f);
  ts_eng_inject (&f, arn, "none",
                 "[{\"name\":\"web\",\"image\":\"" IMAGE "\",\"essential\":true,"
                 "\"command\":[\"sh\",\"-c\",\"trap 'exit 42' TERM; busybox sleep 100 & wait\"]},"
                 "{\"name\":\"job\",\"image\":\"" IMAGE "\",\"essential\":true,"
                 "\"command\":[\"sh\",\"-c\",\"busybox sleep 1; exit 0\"]}]");
  ts_eng_run_until (&f, arn, "RUNNING", 10000);
  ts_eng_run_until (&f, arn, "STOPPED", 10000);
  _cleanup_json_ cJSON *ob = ts_eng_outbox (&f, arn);
  const cJSON *last = cJSON_GetArrayItem (ob, cJSON_GetArraySize (ob) - 1);
  ck_assert_str_eq (ts_json_str (last, "status"), "STOPPED");
  ck_assert_int_eq (ts_eng_exit_code_of (last, "job"), 0);
  ck_assert_int_eq (ts_eng_exit_code_of (last, "web"), 42); /* SIGTERM, handled: no SIGKILL */
}
END_TEST

START_TEST (test_depends_on_success_and_start_order_the_containers)
{
  const char *arn = ARN_PREFIX "dep1";
  ts_eng_open (&f);
  ts_eng_inject (&f, arn, "none",
                 "[{\"name\":\"side\",\"image\":\"" IMAGE "\",\"essential\":false,"
                 "\"dependsOn\":[{\"containerName\":\"app\",\"condition\":\"START\"}],"
                 "\"command\":[\"busybox\",\"sleep\",\"100\"]},"
                 "{\"name\":\"app\",\"image\":\"" IMAGE "\","
                 "\"dependsOn\":[{\"containerName\":\"init\",\"condition\":\"SUCCESS\"}],"
                 "\"command\":[\"busybox\",\"sleep\",\"100\"]},"
                 "{\"name\":\"init\",\"image\":\"" IMAGE "\",\"essential\":false,"
                 "\"command\":[\"sh\",\"-c\",\"busybox sleep 1\"]}]");
  pid_t pid = 0, side = 0;
  int code = -1, ignored;
  for (int i = 0; i < 500 && pid == 0; i++)
    {
      sd_event_run (f.ev, 20000);
      agent_engine_container_info (f.eng, arn, "app", &pid, &ignored);
      agent_engine_container_info (f.eng, arn, "side", &side, &ignored);
      ck_assert_int_eq (side, 0); /* never before app */
    }
  const char *why = NULL;
  ck_assert_msg (pid > 0, "app never started: %s %s", agent_engine_task_known (f.eng, arn, &why),
                 why ? why : "");
  agent_engine_container_info (f.eng, arn, "init", &side, &code);
  ck_assert_int_eq (code, 0); /* app started only once init had succeeded */
  ts_eng_run_until (&f, arn, "RUNNING", 10000);
  agent_engine_container_info (f.eng, arn, "side", &side, &ignored);
  ck_assert_int_gt (side, 0);
}
END_TEST

START_TEST (test_failed_success_dependency_stops_the_task_without_starting_the_dependent)
{
  const char *arn = ARN_PREFIX "dep2";
  const char *reason = NULL;
  ts_eng_open (&f);
  ts_eng_inject (&f, arn, "none",
                 "[{\"name\":\"app\",\"image\":\"" IMAGE "\","
                 "\"dependsOn\":[{\"containerName\":\"init\",\"condition\":\"SUCCESS\"}],"
                 "\"command\":[\"busybox\",\"sleep\",\"100\"]},"
                 "{\"name\":\"init\",\"image\":\"" IMAGE "\",\"essential\":false,"
                 "\"command\":[\"sh\",\"-c\",\"exit 5\"]}]");
  ts_eng_run_until (&f, arn, "STOPPED", 10000);
  agent_engine_task_known (f.eng, arn, &reason);
  ck_assert_ptr_nonnull (reason);
  ck_assert_msg (strstr (reason, "DependencyConditionNotSatisfied") != NULL, "%s", reason);
  ck_assert_int_eq (ts_eng_code_of (&f, arn, "app"), -1); /* never ran */
}
END_TEST

START_TEST (test_stop_escalates_to_sigkill_after_the_stop_timeout)
{
  const char *arn = ARN_PREFIX "kill1";
  ts_eng_open (&f);
  /* sh as pid 1 without a handler ignores SIGTERM */
  ts_eng_inject (&f, arn, "none",
                 "[{\"name\":\"app\",\"image\":\"" IMAGE "\",\"stopTimeout\":1,"
                 "\"command\":[\"sh\",\"-c\",\"while true; do busybox sleep 1; done\"]}]");
  ts_eng_run_until (&f, arn, "RUNNING", 10000);
  int64_t t0 = bclock_mono_ns ();
  ts_eng_desire_stopped (&f, arn);
  ts_eng_run_until (&f, arn, "STOPPED", 10000);
  int64_t took_ms = (bclock_mono_ns () - t0) / 1000000;
  ck_assert_msg (took_ms >= 900 && took_ms < 5000, "stopped after %lld ms", (long long)took_ms);
  _cleanup_json_ cJSON *ob = ts_eng_outbox (&f, arn);
  ck_assert_int_eq (ts_eng_exit_code_of (cJSON_GetArrayItem (ob, 1), "app"), 137);
}
END_TEST

START_TEST (test_bad_image_stops_with_cannot_pull_and_the_engine_carries_on)
{
  const char *bad = ARN_PREFIX "bad1", *good = ARN_PREFIX "good1";
  const char *reason = NULL;
  ts_eng_open (&f);
  ts_eng_inject (&f, bad, "none", "[{\"name\":\"app\",\"image\":\"127.0.0.1:1/no/such:v1\"}]");
  ts_eng_run_until (&f, bad, "STOPPED", 15000);
  agent_engine_task_known (f.eng, bad, &reason);
  _cleanup_json_ cJSON *ob = ts_eng_outbox (&f, bad);
  ck_assert_int_eq (cJSON_GetArraySize (ob), 1);
  const char *creason
      = ts_json_str (ts_eng_container_of (cJSON_GetArrayItem (ob, 0), "app"), "reason");
  ck_assert_msg (strncmp (creason, "CannotPullContainerError: ", 26) == 0, "%s", creason);
  ts_eng_inject (&f, good, "none",
                 "[{\"name\":\"app\",\"image\":\"" IMAGE
                 "\",\"command\":[\"sh\",\"-c\",\"exit 0\"]}]");
  ts_eng_run_until (&f, good, "STOPPED", 10000);
  _cleanup_json_ cJSON *ob2 = ts_eng_outbox (&f, good);
  ck_assert_int_eq (cJSON_GetArraySize (ob2), 2);
  ck_assert_int_eq (ts_eng_exit_code_of (cJSON_GetArrayItem (ob2, 1), "app"), 0);
}
END_TEST

START_TEST (test_unrunnable_tasks_stop_with_resource_errors)
{
  const char *big = ARN_PREFIX "big1", *br = ARN_PREFIX "br1";
  const char *reason = NULL;
  ts_eng_open (&f);
  inject_mem (big, "[{\"name\":\"app\",\"image\":\"" IMAGE "\"}]", "4194304");
  ts_eng_run_until (&f, big, "STOPPED", 5000);
  agent_engine_task_known (f.eng, big, &reason);
  ck_assert_msg (strstr (reason, "memory") != NULL, "%s", reason);
  ts_eng_inject (&f, br, "awsvpc", "[{\"name\":\"app\",\"image\":\"" IMAGE "\"}]");
  ts_eng_run_until (&f, br, "STOPPED", 5000);
  agent_engine_task_known (f.eng, br, &reason);
  ck_assert_msg (strncmp (reason, "ResourceInitializationError: ", 29) == 0, "%s", reason);
}
END_TEST

START_TEST (test_a_task_waits_for_host_memory_instead_of_overcommitting)
{
  const char *a = ARN_PREFIX "mem1", *b = ARN_PREFIX "mem2";
  f.host_mem_mib = 100;
  ts_eng_open (&f);
  inject_mem (a,
              "[{\"name\":\"app\",\"image\":\"" IMAGE "\","
              "\"command\":[\"busybox\",\"sleep\",\"100\"]}]",
              "80");
  ts_eng_run_until (&f, a, "RUNNING", 10000);
  inject_mem (b,
              "[{\"name\":\"app\",\"image\":\"" IMAGE "\","
              "\"command\":[\"busybox\",\"sleep\",\"100\"]}]",
              "50");
  ts_eng_run_for (&f, 1000);
  ck_assert_str_eq (agent_engine_task_known (f.eng, b, NULL), "PENDING");
  ts_eng_desire_stopped (&f, a);
  ts_eng_run_until (&f, a, "STOPPED", 10000);
  ts_eng_run_until (&f, b, "RUNNING", 10000);
}
END_TEST

START_TEST (test_spec_merges_image_and_definition_env_workdir_hosts_and_dns)
{
  const char *arn = ARN_PREFIX "spec1";
  ts_eng_open (&f);
  ts_eng_inject (&f, arn, "none",
                 "[{\"name\":\"app\",\"image\":\"" IMAGE "\",\"workingDirectory\":\"/etc\","
                 "\"hostname\":\"given-name\","
                 "\"environment\":[{\"name\":\"GREETING\",\"value\":\"hi\"}],"
                 "\"extraHosts\":[{\"hostname\":\"db.internal\",\"ipAddress\":\"10.1.2.3\"}],"
                 "\"dnsServers\":[\"10.0.0.53\"],\"dnsSearchDomains\":[\"corp.example\"],"
                 "\"command\":[\"sh\",\"-c\",\"cat /etc/hosts /etc/resolv.conf; "
                 "echo \\\"env $GREETING $FOO $ECS_CONTAINER_METADATA_URI_V4\\\"; echo cwd $(pwd); "
                 "echo uts $(busybox hostname)\"]}]");
  ts_eng_run_until (&f, arn, "STOPPED", 10000);
  _cleanup_free_ char *path = ts_eng_cat (f.state, "/shims/spec1-app/container.log");
  _cleanup_free_ char *log = ts_read_file (path);
  ck_assert_ptr_nonnull (log);
  ck_assert_msg (strstr (log, "10.1.2.3\\tdb.internal"), "%s", log);
  ck_assert_msg (strstr (log, "nameserver 10.0.0.53"), "%s", log);
  ck_assert_msg (strstr (log, "search corp.example"), "%s", log);
  /* image Env (FOO=bar) kept, the definition's appended, the metadata URI set */
  ck_assert_msg (strstr (log, "env hi bar http://169.254.170.2/v4/spec1-app"), "%s", log);
  ck_assert_msg (strstr (log, "cwd /etc"), "%s", log);
  ck_assert_msg (strstr (log, "uts given-name"), "%s", log); /* the definition's hostname */
}
END_TEST

/* ---- reports to berth-control ---- */

#define RESOURCES                                                                                  \
  "'[{\"name\":\"CPU\",\"type\":\"INTEGER\",\"integerValue\":1024},"                               \
  "{\"name\":\"MEMORY\",\"type\":\"INTEGER\",\"integerValue\":2048},"                              \
  "{\"name\":\"PORTS\",\"type\":\"STRINGSET\",\"stringSetValue\":[]},"                             \
  "{\"name\":\"PORTS_UDP\",\"type\":\"STRINGSET\",\"stringSetValue\":[]}]'"

#define APP_DEF                                                                                    \
  "{\"name\":\"app\",\"image\":\"" IMAGE "\",\"memory\":64,\"essential\":true,"                    \
  "\"command\":[\"sh\",\"-c\",\"busybox sleep 1; exit 3\"]}"

static bool reports_are (unsigned n)
{
  return agent_engine_reports_sent (f.eng) == n;
}

START_TEST (test_reports_reach_berth_control_in_order_after_it_comes_back)
{
  ts_cp cp;
  berr *err = NULL;
  char arn[512], creds_env[600];
  ts_cp_setup (&cp);
  cJSON_Delete (ts_cp_aws_ok (&cp, "create-cluster --cluster-name c"));
  cJSON_Delete (ts_cp_aws_ok (&cp, "register-task-definition --family bb --network-mode none "
                                   "--container-definitions '[" APP_DEF "]'"));
  cJSON *j
      = ts_cp_aws_ok (&cp, "register-container-instance --cluster c --profile agent "
                           "--total-resources " RESOURCES " --version-info agentVersion=0.1.0");
  cJSON_Delete (j);
  j = ts_cp_aws_ok (&cp, "run-task --cluster c --task-definition bb");
  snprintf (arn, sizeof arn, "%s",
            ts_json_str (cJSON_GetArrayItem (cJSON_GetObjectItem (j, "tasks"), 0), "taskArn"));
  cJSON_Delete (j);
  ck_assert_int_gt (strlen (arn), 0);
  /* the agent's side: its own key, signed calls over loopback */
  snprintf (creds_env, sizeof creds_env, "AWS_SHARED_CREDENTIALS_FILE=%s/credentials", cp.dir);
  char *envp[] = { creds_env, "AWS_PROFILE=agent", NULL };
  ts_eng_ok (agent_credprov_new (envp, &f.creds, &err), &err);
  char url[64];
  snprintf (url, sizeof url, "http://127.0.0.1:%d", cp.port);
  agent_http_opts ho = { .endpoint = url, .region = "us-east-1", .creds = f.creds };
  ts_eng_ok (agent_http_new (f.ev, &ho, &f.http, &err), &err);
  ts_eng_open (&f);
  /* berth-control goes away: the task runs and stops, its reports wait in the outbox */
  ts_cp_signal (&cp, SIGKILL);
  ts_eng_inject (&f, arn, "none", "[" APP_DEF "]");
  ts_eng_run_until (&f, arn, "STOPPED", 10000);
  ts_eng_run_for (&f, 500);
  ck_assert_uint_eq (agent_engine_reports_sent (f.eng), 0);
  ts_cp_start (&cp);
  for (int i = 0; i < 1500 && !reports_are (2); i++)
    sd_event_run (f.ev, 20000);
  ck_assert_uint_eq (agent_engine_reports_sent (f.eng), 2);
  j = ts_cp_aws_ok (&cp, "describe-tasks --cluster c --tasks %s", arn);
  const cJSON *t = cJSON_GetArrayItem (cJSON_GetObjectItem (j, "tasks"), 0);
  ck_assert_str_eq (ts_json_str (t, "lastStatus"), "STOPPED");
  const cJSON *c = cJSON_GetArrayItem (cJSON_GetObjectItem (t, "containers"), 0);
  ck_assert_str_eq (ts_json_str (c, "lastStatus"), "STOPPED");
  ck_assert_int_eq (cJSON_GetObjectItem (c, "exitCode")->valueint, 3);
  ck_assert (strncmp (ts_json_str (c, "imageDigest"), "sha256:", 7) == 0);
  cJSON_Delete (j);
  /* accepted reports are never sent again */
  ts_eng_run_for (&f, 1500);
  ck_assert_uint_eq (agent_engine_reports_sent (f.eng), 2);
  _cleanup_json_ cJSON *ob = ts_eng_outbox (&f, arn);
  ck_assert_int_eq (cJSON_GetArraySize (ob), 0);
  agent_engine_free (f.eng);
  f.eng = NULL;
  ts_cp_teardown (&cp);
}
END_TEST

/* ---- bridge mode, in a "host" namespace of the test's own ---- */

static struct ts_netenv env = {
  .prefix = "berth-engbr",
  .snapshot = "nft list table ip berth 2>/dev/null; echo ---; ip -o link show | cut -d: -f2",
};

static void br_suite_begin (void)
{
  eng_suite_setup ();
  ts_netenv_suite_begin (&env);
}

static void br_suite_end (void)
{
  ts_netenv_suite_end (&env);
  eng_suite_teardown ();
}

static void br_setup (void)
{
  eng_setup ();
  ts_netenv_test_begin (&env);
  ts_eng_bridge (&f, &env);
}

static void br_teardown (void)
{
  eng_teardown ();
  ts_netenv_test_end (&env);
}

/* Sends an HTTP request to addr:port from the host namespace; the response (newly allocated). */
static char *http_get (const char *addr, uint16_t port, const char *path)
{
  berr *err = NULL;
  int s = net_socket_in_netns (f.host_ns, AF_INET, SOCK_STREAM, &err);
  ck_assert_msg (s >= 0, "socket: %s", err ? err->msg : "");
  struct timeval tv = { 2, 0 };
  setsockopt (s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons (port) };
  inet_pton (AF_INET, addr, &to.sin_addr);
  char req[256], *buf = calloc (1, 4096);
  size_t n = 0;
  ssize_t r;
  snprintf (req, sizeof req, "GET %s HTTP/1.0\r\n\r\n", path);
  if (connect (s, (struct sockaddr *)&to, sizeof to) == 0 && write (s, req, strlen (req)) > 0)
    while (n < 4095 && (r = read (s, buf + n, 4095 - n)) > 0)
      n += (size_t)r;
  close (s);
  return buf;
}

START_TEST (test_bridge_host_port_0_is_reported_in_network_bindings_and_answers)
{
  const char *arn = ARN_PREFIX "br2";
  f.cfg.task_cleanup_wait_us = 200000;
  ts_eng_open (&f);
  ts_eng_inject (&f, arn, "bridge",
                 "[{\"name\":\"web\",\"image\":\"" IMAGE "\","
                 "\"portMappings\":[{\"containerPort\":80,\"hostPort\":0}],"
                 "\"command\":[\"busybox\",\"httpd\",\"-f\",\"-p\",\"80\",\"-h\",\"/etc\"]}]");
  ts_eng_run_until (&f, arn, "RUNNING", 10000);
  _cleanup_json_ cJSON *ob = ts_eng_outbox (&f, arn);
  ck_assert_int_eq (cJSON_GetArraySize (ob), 1);
  const cJSON *b = cJSON_GetArrayItem (
      cJSON_GetObjectItem (ts_eng_container_of (cJSON_GetArrayItem (ob, 0), "web"),
                           "networkBindings"),
      0);
  ck_assert_ptr_nonnull (b);
  int port = cJSON_GetObjectItem (b, "hostPort")->valueint;
  struct net_port_range dyn = net_bridge_dynamic_range (f.bridge);
  ck_assert_msg (port >= dyn.lo && port <= dyn.hi, "host port %d", port);
  ck_assert_int_eq (cJSON_GetObjectItem (b, "containerPort")->valueint, 80);
  ck_assert_str_eq (ts_json_str (b, "protocol"), "tcp");
  char gw[INET_ADDRSTRLEN];
  struct in_addr g = net_bridge_gateway (f.bridge);
  inet_ntop (AF_INET, &g, gw, sizeof gw);
  char *resp = NULL;
  for (int i = 0; i < 30; i++)
    {
      free (resp);
      resp = http_get (gw, (uint16_t)port, "/marker");
      if (strstr (resp, "base"))
        break;
      usleep (100000);
    }
  ck_assert_msg (strstr (resp, "200") && strstr (resp, "base"), "response: %s", resp);
  free (resp);
  /* stop, report, clean up: the endpoint, the rootfs and the task go */
  ts_eng_desire_stopped (&f, arn);
  ts_eng_run_until (&f, arn, "STOPPED", 10000);
  cJSON_Delete (ts_eng_outbox (&f, arn));
  ts_eng_run_for (&f, 1500);
  ck_assert_str_eq (agent_engine_task_known (f.eng, arn, NULL), "NONE");
  berr *err = NULL;
  agent_task_rec r = { 0 };
  ck_assert_int_lt (agent_store_get_task (f.store, arn, &r, &err), 0);
  berr_free (&err);
  _cleanup_free_ char *rootfs = ts_eng_cat (f.img_root, "/containers/br2-web");
  ck_assert_int_ne (access (rootfs, F_OK), 0);
  resp = http_get (gw, (uint16_t)port, "/marker");
  ck_assert_msg (strstr (resp, "base") == NULL, "still answers: %s", resp);
  free (resp);
}
END_TEST

/* ---- kill -9 of the agent ---- */

/* The agent in a child process: runs the task until both containers run, then says so and keeps
 * looping until it is killed. */
static void agent_child (const char *arn, int ready_fd)
{
  sd_event_unref (f.ev);
  if (sd_event_new (&f.ev) < 0)
    _exit (1);
  ts_eng_open (&f);
  ts_eng_inject (&f, arn, "none",
                 "[{\"name\":\"web\",\"image\":\"" IMAGE
                 "\",\"command\":[\"busybox\",\"sleep\",\"100\"]},"
                 "{\"name\":\"short\",\"image\":\"" IMAGE "\",\"essential\":false,"
                 "\"command\":[\"sh\",\"-c\",\"busybox sleep 2; exit 7\"]}]");
  for (int i = 0; i < 1000 && !ts_eng_status_is (&f, arn, "RUNNING"); i++)
    sd_event_run (f.ev, 20000);
  char c = ts_eng_status_is (&f, arn, "RUNNING") ? 'y' : 'n';
  if (write (ready_fd, &c, 1) != 1)
    _exit (1);
  for (;;)
    sd_event_run (f.ev, 100000);
}

static pid_t stored_pid (const char *arn, const char *name)
{
  berr *err = NULL;
  agent_container_rec *cr = NULL;
  size_t n = 0;
  pid_t pid = 0;
  ts_eng_ok (agent_store_list_containers (f.store, arn, &cr, &n, &err), &err);
  for (size_t i = 0; i < n; i++)
    {
      if (strcmp (cr[i].name, name) == 0)
        {
          cJSON *b = cJSON_Parse (cr[i].body);
          pid = (pid_t)cJSON_GetNumberValue (cJSON_GetObjectItem (b, "pid"));
          cJSON_Delete (b);
        }
      agent_container_rec_clear (&cr[i]);
    }
  free (cr);
  return pid;
}

START_TEST (test_kill_9_of_the_agent_readopts_running_containers_and_reports_exits_once)
{
  const char *arn = ARN_PREFIX "restart1";
  int p[2];
  char c = 0;
  ck_assert_int_eq (pipe2 (p, O_CLOEXEC), 0);
  pid_t child = fork ();
  ck_assert_int_ge (child, 0);
  if (child == 0)
    {
      close (p[0]);
      agent_child (arn, p[1]);
      _exit (0);
    }
  close (p[1]);
  ck_assert_int_eq (read (p[0], &c, 1), 1);
  ck_assert_int_eq (c, 'y');
  ck_assert_int_eq (kill (child, SIGKILL), 0);
  ck_assert_int_eq (waitpid (child, NULL, 0), child);
  close (p[0]);
  /* "short" exits while no agent runs: its shim records it */
  _cleanup_free_ char *st_path = ts_eng_cat (f.state, "/shims/restart1-short/state.json");
  bool exited = false;
  for (int i = 0; i < 1000 && !exited; i++)
    {
      _cleanup_free_ char *st = ts_read_file (st_path);
      exited = st && strstr (st, "\"status\":\"stopped\"");
      if (!exited)
        usleep (10000);
    }
  ck_assert (exited);
  berr *err = NULL;
  ts_eng_ok (agent_store_open (f.store_path, &f.store, &err), &err);
  pid_t web = stored_pid (arn, "web");
  ck_assert_int_gt (web, 0);
  ck_assert_int_eq (kill (web, 0), 0);
  ts_eng_open (&f);
  ts_eng_run_for (&f, 200);
  ck_assert_int_eq (ts_eng_pid_of (&f, arn, "web"), web); /* the same process, re-adopted */
  ck_assert_int_eq (ts_eng_code_of (&f, arn, "short"), 7);
  ck_assert_str_eq (agent_engine_task_known (f.eng, arn, NULL), "RUNNING");
  _cleanup_json_ cJSON *ob = ts_eng_outbox (&f, arn);
  /* RUNNING once (before the kill), then the container change; nothing twice */
  ck_assert_int_eq (cJSON_GetArraySize (ob), 2);
  ck_assert_str_eq (ts_json_str (cJSON_GetArrayItem (ob, 0), "status"), "RUNNING");
  ck_assert_int_eq (ts_eng_exit_code_of (cJSON_GetArrayItem (ob, 1), "short"), 7);
  ck_assert_str_eq (
      ts_json_str (ts_eng_container_of (cJSON_GetArrayItem (ob, 1), "short"), "status"), "STOPPED");
  /* and the re-adopted one is still watched: stopping the task stops it */
  ts_eng_desire_stopped (&f, arn);
  ts_eng_run_until (&f, arn, "STOPPED", 10000);
  ck_assert_int_ne (kill (web, 0), 0);
  /* a second restart reports nothing new */
  agent_engine_free (f.eng);
  f.eng = NULL;
  ts_eng_open (&f);
  ts_eng_run_for (&f, 200);
  _cleanup_json_ cJSON *ob2 = ts_eng_outbox (&f, arn);
  ck_assert_int_eq (cJSON_GetArraySize (ob2), 1); /* only the STOPPED one */
  _cleanup_json_ cJSON *ob3 = ts_eng_outbox (&f, arn);
  ck_assert_int_eq (cJSON_GetArraySize (ob3), 0);
}
END_TEST

int main (void)
{
  if (!ts_is_root ())
    {
      printf ("test_agent_engine: needs root (containers, mounts)\n");
      return 0;
    }
  Suite *s = suite_create ("agent_engine");
  TCase *tc = tcase_create ("engine");
  tcase_set_timeout (tc, 120);
  tcase_add_unchecked_fixture (tc, eng_suite_setup, eng_suite_teardown);
  tcase_add_checked_fixture (tc, eng_setup, eng_teardown);
  tcase_add_test (tc, test_task_runs_then_stops_with_its_exit_code_in_the_outbox);
  tcase_add_test (tc, test_container_starts_wait_for_a_free_slot_under_the_cap);
  tcase_add_test (tc, test_essential_container_exit_stops_the_task_with_its_stop_signal);
  tcase_add_test (tc, test_depends_on_success_and_start_order_the_containers);
  tcase_add_test (tc, test_failed_success_dependency_stops_the_task_without_starting_the_dependent);
  tcase_add_test (tc, test_stop_escalates_to_sigkill_after_the_stop_timeout);
  tcase_add_test (tc, test_bad_image_stops_with_cannot_pull_and_the_engine_carries_on);
  tcase_add_test (tc, test_unrunnable_tasks_stop_with_resource_errors);
  tcase_add_test (tc, test_a_task_waits_for_host_memory_instead_of_overcommitting);
  tcase_add_test (tc, test_spec_merges_image_and_definition_env_workdir_hosts_and_dns);
  tcase_add_test (tc, test_reports_reach_berth_control_in_order_after_it_comes_back);
  tcase_add_test (tc, test_kill_9_of_the_agent_readopts_running_containers_and_reports_exits_once);
  suite_add_tcase (s, tc);
  TCase *br = tcase_create ("bridge");
  tcase_set_timeout (br, 120);
  tcase_add_unchecked_fixture (br, br_suite_begin, br_suite_end);
  tcase_add_checked_fixture (br, br_setup, br_teardown);
  tcase_add_test (br, test_bridge_host_port_0_is_reported_in_network_bindings_and_answers);
  suite_add_tcase (s, br);
  return ts_run_suite (s);
}
