/* End-to-end tests of tasks: the real aws CLI -> berth-control -> a berth-agent process ->
 * containers (tests/support/e2e.h), each test in its own network and mount namespaces. Run and
 * stop, essential containers, dependsOn, health checks, exit codes, network modes, bad images
 * and definitions, re-registration after an agent restart, task role credentials and metadata
 * from inside the containers. */
#include "lib/cleanup.h"
#include "lib/json.h"
#include "tests/support/e2e.h"
#include "tests/support/support.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static ts_e2e e;

static void setup (void)
{
  ts_e2e_setup (&e, NULL);
}

static void teardown (void)
{
  ts_e2e_teardown (&e);
}

/* A container that runs until SIGTERM, then exits 0. */
#define SLEEPER(name, extra)                                                                       \
  "{\"name\":\"" name "\",\"image\":\"" TS_E2E_IMAGE "\",\"memory\":32,"                           \
  "\"command\":[\"sh\",\"-c\",\"trap 'exit 0' TERM; while :; do busybox sleep 1; done\"]" extra    \
  "}"
/* A container running a shell command line (no double quotes in it). */
#define SHELL(name, cmd, extra)                                                                    \
  "{\"name\":\"" name "\",\"image\":\"" TS_E2E_IMAGE "\",\"memory\":32,"                           \
  "\"command\":[\"sh\",\"-c\",\"" cmd "\"]" extra "}"

static bool stopped (const cJSON *t, void *arg)
{
  (void)arg;
  return strcmp (ts_json_str (t, "lastStatus"), "STOPPED") == 0;
}

START_TEST (test_run_task_reaches_running_and_stop_task_stops_it_with_the_reason)
{
  _cleanup_free_ char *td = ts_e2e_register (&e, "sleeper", "", "[" SLEEPER ("main", "") "]");
  _cleanup_free_ char *task = ts_e2e_run (&e, td);
  ts_e2e_cli_wait_running (&e, task);
  _cleanup_json_ cJSON *running = ts_e2e_describe (&e, task);
  ck_assert_str_eq (ts_json_str (running, "lastStatus"), "RUNNING");
  ck_assert_str_eq (ts_json_str (ts_e2e_container (running, "main"), "lastStatus"), "RUNNING");
  ts_e2e_stop_task (&e, task, "e2e: asked to stop");
  _cleanup_json_ cJSON *t = ts_e2e_wait (&e, task, stopped, NULL, 90);
  ck_assert_str_eq (ts_json_str (t, "desiredStatus"), "STOPPED");
  ck_assert_str_eq (ts_json_str (t, "stoppedReason"), "e2e: asked to stop");
  const cJSON *c = ts_e2e_container (t, "main");
  ck_assert_str_eq (ts_json_str (c, "lastStatus"), "STOPPED");
  ck_assert_int_eq (ts_e2e_int (c, "exitCode", -1), 0); /* its TERM trap */
  ts_e2e_resources r;
  ts_e2e_count_resources (&e, &r);
  ck_assert_int_eq (r.shims, 0);
}
END_TEST

static bool side_exited_main_running (const cJSON *t, void *arg)
{
  (void)arg;
  const cJSON *side = ts_e2e_container (t, "side");
  return strcmp (ts_json_str (side, "lastStatus"), "STOPPED") == 0
         && strcmp (ts_json_str (ts_e2e_container (t, "main"), "lastStatus"), "RUNNING") == 0;
}

START_TEST (test_a_non_essential_container_exiting_leaves_the_task_running)
{
  _cleanup_free_ char *td = ts_e2e_register (
      &e, "nonessential", "",
      "[" SLEEPER ("main", "") "," SHELL ("side", "exit 4", ",\"essential\":false") "]");
  _cleanup_free_ char *task = ts_e2e_run (&e, td);
  _cleanup_json_ cJSON *t = ts_e2e_wait (&e, task, side_exited_main_running, NULL, 90);
  ck_assert_str_eq (ts_json_str (t, "lastStatus"), "RUNNING");
  ck_assert_int_eq (ts_e2e_int (ts_e2e_container (t, "side"), "exitCode", -1), 4);
  /* still running a moment later: the report of the exit did not stop it */
  _cleanup_json_ cJSON *again = ts_e2e_describe (&e, task);
  ck_assert_str_eq (ts_json_str (again, "lastStatus"), "RUNNING");
  ck_assert_str_eq (ts_json_str (again, "desiredStatus"), "RUNNING");
}
END_TEST

START_TEST (test_an_essential_container_exiting_stops_the_task)
{
  _cleanup_free_ char *td = ts_e2e_register (
      &e, "essential", "",
      "[" SLEEPER ("other", "") "," SHELL ("main", "busybox sleep 1; exit 3", "") "]");
  _cleanup_free_ char *task = ts_e2e_run (&e, td);
  _cleanup_json_ cJSON *t = ts_e2e_wait (&e, task, stopped, NULL, 90);
  ck_assert_int_eq (ts_e2e_int (ts_e2e_container (t, "main"), "exitCode", -1), 3);
  const cJSON *other = ts_e2e_container (t, "other");
  ck_assert_str_eq (ts_json_str (other, "lastStatus"), "STOPPED");
  ck_assert_int_eq (ts_e2e_int (other, "exitCode", -1), 0); /* stopped with SIGTERM */
  ck_assert_str_eq (ts_json_str (t, "stopCode"), "EssentialContainerExited");
  ck_assert_ptr_nonnull (strstr (ts_json_str (t, "stoppedReason"), "ssential container"));
}
END_TEST

/* first (SUCCESS) -> second (COMPLETE) -> third (SUCCESS) -> check, which exits 0 only if the
 * shared task-scoped volume shows that order; long is a START dependency of check. */
START_TEST (test_depends_on_start_complete_and_success_order_the_containers)
{
#define APPEND(n) "echo " n " >> /shared/order"
#define MOUNT ",\"mountPoints\":[{\"sourceVolume\":\"shared\",\"containerPath\":\"/shared\"}]"
#define NE ",\"essential\":false"
  const char *defs = "[" SHELL ("first", "busybox sleep 1; " APPEND ("first"), NE MOUNT) "," SHELL (
      "second", APPEND ("second") "; exit 5",
      NE MOUNT
      ",\"dependsOn\":[{\"containerName\":\"first\",\"condition\":"
      "\"SUCCESS\"}]") "," SHELL ("third", APPEND ("third"),
                                  NE MOUNT
                                  ",\"dependsOn\":[{\"containerName\":"
                                  "\"second\",\"condition\":\"COMPLETE\"}"
                                  "]") "," SLEEPER ("long",
                                                    NE MOUNT) "," SHELL ("check",
                                                                         "test \\\"$(busybox tr "
                                                                         "'\\\\n' ' ' < "
                                                                         "/shared/order)\\\" = "
                                                                         "'first second third '",
                                                                         MOUNT
                                                                         ",\"dependsOn\":[{"
                                                                         "\"containerName\":"
                                                                         "\"third\",\"condition\":"
                                                                         "\"SUCCESS\"},"
                                                                         "{\"containerName\":"
                                                                         "\"long\",\"condition\":"
                                                                         "\"START\"}]") "]";
  _cleanup_free_ char *td
      = ts_e2e_register (&e, "depends", "--volumes '[{\"name\":\"shared\"}]'", defs);
  _cleanup_free_ char *task = ts_e2e_run (&e, td);
  _cleanup_json_ cJSON *t = ts_e2e_wait (&e, task, stopped, NULL, 120);
  _cleanup_free_ char *text = cJSON_Print (t);
  ck_assert_msg (ts_e2e_int (ts_e2e_container (t, "check"), "exitCode", -1) == 0, "%s", text);
  ck_assert_int_eq (ts_e2e_int (ts_e2e_container (t, "first"), "exitCode", -1), 0);
  ck_assert_int_eq (ts_e2e_int (ts_e2e_container (t, "second"), "exitCode", -1), 5);
  ck_assert_int_eq (ts_e2e_int (ts_e2e_container (t, "third"), "exitCode", -1), 0);
}
END_TEST

START_TEST (test_a_success_dependency_that_fails_never_starts_the_dependent)
{
  const char *defs = "[" SHELL ("first", "exit 2", NE) "," SHELL (
      "after", "exit 0",
      ",\"dependsOn\":[{\"containerName\":\"first\",\"condition\":\"SUCCESS\"}]") "]";
  _cleanup_free_ char *td = ts_e2e_register (&e, "depfail", "", defs);
  _cleanup_free_ char *task = ts_e2e_run (&e, td);
  _cleanup_json_ cJSON *t = ts_e2e_wait (&e, task, stopped, NULL, 90);
  _cleanup_free_ char *text = cJSON_Print (t);
  ck_assert_int_eq (ts_e2e_int (ts_e2e_container (t, "first"), "exitCode", -1), 2);
  /* never ran: no exit code */
  ck_assert_msg (ts_e2e_int (ts_e2e_container (t, "after"), "exitCode", -1) == -1, "%s", text);
}
END_TEST

static bool health_known (const cJSON *t, void *arg)
{
  (void)arg;
  return strcmp (ts_json_str (ts_e2e_container (t, "good"), "healthStatus"), "HEALTHY") == 0
         && strcmp (ts_json_str (ts_e2e_container (t, "bad"), "healthStatus"), "UNHEALTHY") == 0;
}

START_TEST (test_health_checks_show_in_describe_tasks)
{
#define HC(cmd)                                                                                    \
  ",\"healthCheck\":{\"command\":[\"CMD-SHELL\",\"" cmd "\"],\"interval\":5,\"timeout\":3,"        \
  "\"retries\":1,\"startPeriod\":0}"
  const char *defs = "[" SLEEPER ("good", HC ("test -d /tmp")) "," SLEEPER (
      "bad", NE HC ("test -f /nonexistent")) "]";
  _cleanup_free_ char *td = ts_e2e_register (&e, "health", "", defs);
  _cleanup_free_ char *task = ts_e2e_run (&e, td);
  _cleanup_json_ cJSON *t = ts_e2e_wait (&e, task, health_known, NULL, 120);
  ck_assert_str_eq (ts_json_str (t, "lastStatus"), "RUNNING");
}
END_TEST

START_TEST (test_exit_codes_of_every_container_are_reported)
{
  const char *defs = "[" SHELL ("zero", "exit 0", NE) "," SHELL ("three", "exit 3", NE) "," SHELL (
      "big", "exit 142",
      NE) "," SHELL ("max", "exit 255",
                     NE) "," SHELL ("last", "exit 7",
                                    ",\"dependsOn\":[{\"containerName\":\"zero\",\"condition\":"
                                    "\"COMPLETE\"},"
                                    "{\"containerName\":\"three\",\"condition\":\"COMPLETE\"},"
                                    "{\"containerName\":\"big\",\"condition\":\"COMPLETE\"},"
                                    "{\"containerName\":\"max\",\"condition\":\"COMPLETE\"}"
                                    "]") "]";
  _cleanup_free_ char *td = ts_e2e_register (&e, "exits", "", defs);
  _cleanup_free_ char *task = ts_e2e_run (&e, td);
  _cleanup_json_ cJSON *t = ts_e2e_wait (&e, task, stopped, NULL, 120);
  _cleanup_free_ char *text = cJSON_Print (t);
  ck_assert_msg (ts_e2e_int (ts_e2e_container (t, "last"), "exitCode", -1) == 7, "%s", text);
  ck_assert_int_eq (ts_e2e_int (ts_e2e_container (t, "zero"), "exitCode", -1), 0);
  ck_assert_int_eq (ts_e2e_int (ts_e2e_container (t, "three"), "exitCode", -1), 3);
  ck_assert_int_eq (ts_e2e_int (ts_e2e_container (t, "big"), "exitCode", -1), 142);
  ck_assert_int_eq (ts_e2e_int (ts_e2e_container (t, "max"), "exitCode", -1), 255);
}
END_TEST

/* The container's exit code says what it saw of the network. */
static void run_network_probe (const char *mode, const char *probe)
{
  char args[64], defs[1024];
  snprintf (args, sizeof args, "--network-mode %s", mode);
  snprintf (defs, sizeof defs,
            "[{\"name\":\"probe\",\"image\":\"" TS_E2E_IMAGE "\",\"memory\":32,"
            "\"command\":[\"sh\",\"-c\",\"%s\"]}]",
            probe);
  _cleanup_free_ char *td = ts_e2e_register (&e, mode, args, defs);
  _cleanup_free_ char *task = ts_e2e_run (&e, td);
  _cleanup_json_ cJSON *t = ts_e2e_wait (&e, task, stopped, NULL, 90);
  _cleanup_free_ char *text = cJSON_Print (t);
  ck_assert_msg (ts_e2e_int (ts_e2e_container (t, "probe"), "exitCode", -1) == 0, "%s: %s", mode,
                 text);
}

START_TEST (test_host_network_mode_sees_the_hosts_links)
{
  run_network_probe ("host", "busybox grep -q e2e-host /proc/net/dev");
}
END_TEST

START_TEST (test_none_network_mode_has_only_loopback)
{
  run_network_probe ("none", "! busybox grep -q e2e-host /proc/net/dev && "
                             "test $(busybox grep -c : /proc/net/dev) = 1 && "
                             "busybox grep -q lo: /proc/net/dev");
}
END_TEST

static bool web_running (const cJSON *t, void *arg)
{
  (void)arg;
  const cJSON *nb = cJSON_GetObjectItem (ts_e2e_container (t, "web"), "networkBindings");
  return strcmp (ts_json_str (t, "lastStatus"), "RUNNING") == 0 && cJSON_GetArraySize (nb) == 1;
}

START_TEST (test_bridge_mode_publishes_a_dynamic_host_port_on_the_hosts_address)
{
  _cleanup_free_ char *td = ts_e2e_register (
      &e, "web", "--network-mode bridge",
      "[{\"name\":\"web\",\"image\":\"" TS_E2E_WEB_IMAGE "\",\"memory\":32,"
      "\"portMappings\":[{\"containerPort\":8080,\"hostPort\":0,\"protocol\":\"tcp\"}]}]");
  _cleanup_free_ char *task = ts_e2e_run (&e, td);
  _cleanup_json_ cJSON *t = ts_e2e_wait (&e, task, web_running, NULL, 90);
  const cJSON *nb = cJSON_GetArrayItem (
      cJSON_GetObjectItem (ts_e2e_container (t, "web"), "networkBindings"), 0);
  int port = ts_e2e_int (nb, "hostPort", 0);
  ck_assert_int_gt (port, 0);
  ck_assert_int_eq (ts_e2e_int (nb, "containerPort", 0), 8080);
  ts_e2e_resources r;
  ts_e2e_count_resources (&e, &r);
  ck_assert_int_eq (r.ipam, 1);
  ck_assert_int_ge (r.dnat, 1);
  /* httpd may still be binding: a few tries */
  _cleanup_free_ char *out = NULL;
  char cmd[256];
  snprintf (cmd, sizeof cmd,
            "for i in $(seq 50); do curl -fsS --max-time 2 http://%s:%d/ && exit 0; sleep 0.2; "
            "done; exit 1",
            TS_E2E_HOST_ADDR, port);
  int st;
  ck_assert_int_eq (ts_sh (cmd, &out, &st), 0);
  ck_assert_msg (ts_exit_code (st) == 0 && strstr (out, "Hello from a Berth task"), "%s", out);
  ts_e2e_stop_task (&e, task, "done");
  _cleanup_json_ cJSON *s = ts_e2e_wait (&e, task, stopped, NULL, 90);
  /* the address and the port go back at STOPPED */
  ts_e2e_count_resources (&e, &r);
  ck_assert_int_eq (r.ipam, 0);
  ck_assert_int_eq (r.dnat, 0);
}
END_TEST

static void setup_awsvpc (void)
{
  ts_e2e_setup_subnets (&e, "ECS_ENABLE_TASK_ENI=true\nBERTH_ENI_PARENT=" TS_E2E_ENI_PARENT "\n",
                        "[{\"subnetId\":\"subnet-e2e\",\"cidr\":\"10.214.0.0/24\","
                        "\"gateway\":\"10.214.0.1\"}]");
  /* the "VPC" side of the ENI parent: the gateway's address, so the test reaches the ENI */
  ts_sh_ok ("ip addr add 10.214.0.1/24 dev e2e-eni-peer");
}

static bool eni_running (const cJSON *t, void *arg)
{
  (void)arg;
  const cJSON *ni = cJSON_GetObjectItem (ts_e2e_container (t, "web"), "networkInterfaces");
  return strcmp (ts_json_str (t, "lastStatus"), "RUNNING") == 0 && cJSON_GetArraySize (ni) == 1;
}

START_TEST (test_awsvpc_task_answers_on_its_eni_address)
{
  _cleanup_free_ char *td
      = ts_e2e_register (&e, "eni", "--network-mode awsvpc",
                         "[{\"name\":\"web\",\"image\":\"" TS_E2E_WEB_IMAGE "\",\"memory\":32,"
                         "\"portMappings\":[{\"containerPort\":8080,\"protocol\":\"tcp\"}]}]");
  _cleanup_json_ cJSON *r
      = ts_cp_aws_ok (&e.cp,
                      "run-task --cluster %s --task-definition %s --network-configuration "
                      "'awsvpcConfiguration={subnets=[subnet-e2e]}'",
                      e.cluster, td);
  _cleanup_free_ char *task
      = strdup (ts_json_str (cJSON_GetArrayItem (cJSON_GetObjectItem (r, "tasks"), 0), "taskArn"));
  _cleanup_json_ cJSON *t = ts_e2e_wait (&e, task, eni_running, NULL, 90);
  const cJSON *ni = cJSON_GetArrayItem (
      cJSON_GetObjectItem (ts_e2e_container (t, "web"), "networkInterfaces"), 0);
  const char *ip = ts_json_str (ni, "privateIpv4Address");
  ck_assert_msg (strncmp (ip, "10.214.0.", 9) == 0, "address %s", ip);
  _cleanup_free_ char *out = NULL;
  char cmd[256];
  snprintf (cmd, sizeof cmd,
            "for i in $(seq 50); do curl -fsS --max-time 2 http://%s:8080/ && exit 0; sleep 0.2; "
            "done; exit 1",
            ip);
  int st;
  ck_assert_int_eq (ts_sh (cmd, &out, &st), 0);
  ck_assert_msg (ts_exit_code (st) == 0 && strstr (out, "Hello from a Berth task"), "%s", out);
  ts_e2e_stop_task (&e, task, "done");
  _cleanup_json_ cJSON *s = ts_e2e_wait (&e, task, stopped, NULL, 90);
  ck_assert_int_eq (ts_e2e_int (ts_e2e_container (s, "web"), "exitCode", -1), 0);
}
END_TEST

START_TEST (test_a_missing_image_stops_the_task_with_cannot_pull_container_error)
{
  _cleanup_free_ char *td = ts_e2e_register (
      &e, "missing", "",
      "[{\"name\":\"main\",\"image\":\"127.0.0.1:1/berth/none:v1\",\"memory\":32}]");
  _cleanup_free_ char *task = ts_e2e_run (&e, td);
  _cleanup_json_ cJSON *t = ts_e2e_wait (&e, task, stopped, NULL, 90);
  _cleanup_free_ char *text = cJSON_Print (t);
  const cJSON *c = ts_e2e_container (t, "main");
  ck_assert_msg (strstr (ts_json_str (t, "stoppedReason"), "CannotPullContainerError")
                     || strstr (ts_json_str (c, "reason"), "CannotPullContainerError"),
                 "%s", text);
  ck_assert_int_eq (ts_e2e_int (c, "exitCode", -1), -1);
}
END_TEST

START_TEST (test_bad_definitions_fail_or_stop_and_the_agent_carries_on)
{
  /* more memory than the instance has: refused at placement */
  _cleanup_free_ char *huge = ts_e2e_register (
      &e, "huge", "", "[{\"name\":\"main\",\"image\":\"" TS_E2E_IMAGE "\",\"memory\":100000000}]");
  _cleanup_json_ cJSON *r
      = ts_cp_aws_ok (&e.cp, "run-task --cluster %s --task-definition %s", e.cluster, huge);
  _cleanup_free_ char *rtext = cJSON_Print (r);
  ck_assert_msg (cJSON_GetArraySize (cJSON_GetObjectItem (r, "tasks")) == 0, "%s", rtext);
  ck_assert_ptr_nonnull (strstr (rtext, "RESOURCE:MEMORY"));
  /* an entry point that does not exist: the agent cannot start it */
  _cleanup_free_ char *noexec
      = ts_e2e_register (&e, "noexec", "",
                         "[{\"name\":\"main\",\"image\":\"" TS_E2E_IMAGE "\",\"memory\":32,"
                         "\"entryPoint\":[\"/no/such/program\"]}]");
  _cleanup_free_ char *task = ts_e2e_run (&e, noexec);
  _cleanup_json_ cJSON *t = ts_e2e_wait (&e, task, stopped, NULL, 90);
  _cleanup_free_ char *text = cJSON_Print (t);
  const cJSON *c = ts_e2e_container (t, "main");
  ck_assert_msg (strstr (ts_json_str (c, "reason"), "CannotStartContainerError")
                     || ts_e2e_int (c, "exitCode", -1) == 127,
                 "%s", text);
  /* the agent still runs tasks */
  _cleanup_free_ char *good
      = ts_e2e_register (&e, "good", "", "[" SHELL ("main", "exit 0", "") "]");
  _cleanup_free_ char *ok = ts_e2e_run (&e, good);
  _cleanup_json_ cJSON *g = ts_e2e_wait (&e, ok, stopped, NULL, 90);
  ck_assert_int_eq (ts_e2e_int (ts_e2e_container (g, "main"), "exitCode", -1), 0);
  ck_assert_int_eq (kill (e.agent, 0), 0);
}
END_TEST

START_TEST (test_an_agent_restarted_after_kill_9_keeps_its_instance_and_its_task)
{
  _cleanup_free_ char *arn = ts_e2e_instance_arn (&e);
  _cleanup_free_ char *td = ts_e2e_register (&e, "kept", "", "[" SLEEPER ("main", "") "]");
  _cleanup_free_ char *task = ts_e2e_run (&e, td);
  _cleanup_json_ cJSON *t = ts_e2e_wait_status (&e, task, "RUNNING", 90);
  int st = ts_e2e_agent_signal (&e, SIGKILL);
  ck_assert (WIFSIGNALED (st));
  ts_e2e_agent_start (&e);
  ts_e2e_wait_connected (&e);
  _cleanup_free_ char *again = ts_e2e_instance_arn (&e);
  ck_assert_str_eq (again, arn);
  /* the container kept running under its shim, and the restarted agent stops it */
  _cleanup_json_ cJSON *r = ts_e2e_describe (&e, task);
  ck_assert_str_eq (ts_json_str (r, "lastStatus"), "RUNNING");
  ts_e2e_stop_task (&e, task, "after restart");
  _cleanup_json_ cJSON *s = ts_e2e_wait (&e, task, stopped, NULL, 90);
  ck_assert_int_eq (ts_e2e_int (ts_e2e_container (s, "main"), "exitCode", -1), 0);
}
END_TEST

/* Task role credentials: berth-control maps the role to these keys (--task-roles). */
#define ROLE_ARN "arn:aws:iam::000000000000:role/e2e-app"
#define ROLE_KEY "AKIAE2EROLE000000001"
#define ROLE_SECRET "e2e-role-secret-never-elsewhere-000000000"
static char *roles_file;
static const char *roles_args[3];

static void setup_roles (void)
{
  roles_file = ts_mkdtemp ("e2e-roles");
  char *path = NULL;
  ck_assert_int_ge (asprintf (&path, "%s/roles", roles_file), 0);
  FILE *f = fopen (path, "we");
  ck_assert_ptr_nonnull (f);
  fprintf (f, "[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n", ROLE_ARN, ROLE_KEY,
           ROLE_SECRET);
  ck_assert_int_eq (fclose (f), 0);
  ck_assert_int_eq (chmod (path, 0600), 0);
  roles_args[0] = "--task-roles";
  roles_args[1] = path;
  ts_cp_set_extra_args (roles_args);
  ts_e2e_setup (&e, NULL);
  ts_cp_set_extra_args (NULL);
}

static void teardown_roles (void)
{
  ts_e2e_teardown (&e);
  ts_rmtree (roles_file);
}

/* Runs cmd (no single quotes) in a task's container with berth-runtime exec; its output. */
static char *exec_in (const char *task, const char *name, const char *cmd)
{
  _cleanup_free_ char *rt = ts_bin ("berth-runtime"), *line = NULL;
  char *out = NULL;
  int st;
  ck_assert_int_ge (asprintf (&line, "%s --root %s/runtime exec %s-%s /bin/sh -c '%s' 2>&1", rt,
                              e.state, strrchr (task, '/') + 1, name, cmd),
                    0);
  ck_assert_int_eq (ts_sh (line, &out, &st), 0);
  return out;
}

static bool web_up (const cJSON *t, void *arg)
{
  (void)arg;
  return strcmp (ts_json_str (t, "lastStatus"), "RUNNING") == 0;
}

/* restartPolicy end to end. Debian's aws CLI predates the member, so the definition is
 * registered with a signed call as a newer SDK sends it; the task runs through the aws CLI. The
 * essential container exits (3) after the shortest restartAttemptPeriod berth-control allows,
 * is restarted in place (its root filesystem, with /n, stays), and the task stays RUNNING; task
 * metadata v4 counts the restart. */
START_TEST (test_restart_policy_restarts_an_essential_container_and_the_task_stays_running)
{
  char *out = NULL;
  long st = ts_cp_call (
      &e.cp, "admin", "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition",
      "{\"family\":\"restarts\",\"networkMode\":\"bridge\",\"containerDefinitions\":[{\"name\":"
      "\"app\",\"image\":\"" TS_E2E_IMAGE "\",\"memory\":32,\"essential\":true,"
      "\"restartPolicy\":{\"enabled\":true,\"restartAttemptPeriod\":60},\"command\":[\"sh\","
      "\"-c\",\"test -f /n && exec busybox sleep 600; touch /n; busybox sleep 61; exit 3\"]}]}",
      &out);
  ck_assert_msg (st == 200, "%ld %s", st, out ? out : "");
  free (out);
  _cleanup_free_ char *task = ts_e2e_run (&e, "restarts");
  cJSON_Delete (ts_e2e_wait_status (&e, task, "RUNNING", 90));
  char *meta = NULL;
  for (int i = 0; i < 150; i++)
    {
      free (meta);
      meta = exec_in (task, "app", "wget -qO- $ECS_CONTAINER_METADATA_URI_V4");
      if (strstr (meta, "\"RestartCount\":1"))
        break;
      sleep (1);
    }
  ck_assert_msg (strstr (meta, "\"RestartCount\":1"), "%s", meta);
  free (meta);
  _cleanup_json_ cJSON *t = ts_e2e_describe (&e, task);
  ck_assert_str_eq (ts_json_str (t, "lastStatus"), "RUNNING");
  ck_assert_str_eq (ts_json_str (ts_e2e_container (t, "app"), "lastStatus"), "RUNNING");
  ts_e2e_stop_task (&e, task, "restart test done");
  cJSON_Delete (ts_e2e_wait (&e, task, stopped, NULL, 90));
}
END_TEST

START_TEST (test_tasks_read_their_own_credentials_and_metadata_and_nothing_of_another_task)
{
  _cleanup_free_ char *td
      = ts_e2e_register (&e, "roles", "--network-mode bridge --task-role-arn " ROLE_ARN,
                         "[{\"name\":\"web\",\"image\":\"" TS_E2E_WEB_IMAGE "\",\"memory\":32}]");
  _cleanup_free_ char *a = ts_e2e_run (&e, td), *b = ts_e2e_run (&e, td);
  cJSON_Delete (ts_e2e_wait (&e, a, web_up, NULL, 90));
  cJSON_Delete (ts_e2e_wait (&e, b, web_up, NULL, 90));
  /* Each container was given its relative URI and its metadata URI. */
  _cleanup_free_ char *uri_a
      = exec_in (a, "web", "printf %s \"$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI\"");
  _cleanup_free_ char *uri_b
      = exec_in (b, "web", "printf %s \"$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI\"");
  ck_assert_msg (strncmp (uri_a, "/v2/credentials/", 16) == 0, "%s", uri_a);
  ck_assert_str_ne (uri_a, uri_b);
  /* Its own credentials, as berth-control issued them from --task-roles. */
  _cleanup_free_ char *own = exec_in (a, "web",
                                      "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- "
                                      "http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI "
                                      "&& exit 0; sleep 0.5; done");
  ck_assert_msg (strstr (own, ROLE_KEY) && strstr (own, ROLE_SECRET) && strstr (own, ROLE_ARN),
                 "%s", own);
  /* Task B asking for A's credentials id gets nothing of them. */
  char probe[512];
  snprintf (probe, sizeof probe, "wget -qO- http://169.254.170.2%s; echo rc=$?", uri_a);
  _cleanup_free_ char *cross = exec_in (b, "web", probe);
  ck_assert_msg (strstr (cross, ROLE_SECRET) == NULL && strstr (cross, ROLE_KEY) == NULL
                     && strstr (cross, "rc=0") == NULL,
                 "%s", cross);
  /* Metadata: A's task document names A; B asking for A's container id gets nothing. */
  _cleanup_free_ char *meta = exec_in (a, "web", "wget -qO- $ECS_CONTAINER_METADATA_URI_V4/task");
  ck_assert_msg (strstr (meta, a) != NULL && strstr (meta, b) == NULL, "%s", meta);
  snprintf (probe, sizeof probe, "wget -qO- http://169.254.170.2/v4/%s-web/task; echo rc=$?",
            strrchr (a, '/') + 1);
  _cleanup_free_ char *cross_meta = exec_in (b, "web", probe);
  ck_assert_msg (strstr (cross_meta, a) == NULL && strstr (cross_meta, "rc=0") == NULL, "%s",
                 cross_meta);
  /* An agent killed and started again has lost the credentials it held in memory; its
   * re-registration has berth-control send them again, so the task can read them at once. */
  int st = ts_e2e_agent_signal (&e, SIGKILL);
  ck_assert (WIFSIGNALED (st));
  ts_e2e_agent_start (&e);
  ts_e2e_wait_connected (&e);
  _cleanup_free_ char *again
      = exec_in (a, "web",
                 "for i in $(seq 40); do wget -qO- "
                 "http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI && exit 0; "
                 "sleep 0.5; done");
  ck_assert_msg (strstr (again, ROLE_KEY) && strstr (again, ROLE_SECRET), "%s", again);
  /* No secret in either daemon's log. */
  _cleanup_free_ char *agent_log = ts_read_file (e.log), *cp_log = NULL, *cp_log_path = NULL;
  ck_assert_int_ge (asprintf (&cp_log_path, "%s/log", e.cp.dir), 0);
  cp_log = ts_read_file (cp_log_path);
  ck_assert_ptr_null (strstr (agent_log ? agent_log : "", ROLE_SECRET));
  ck_assert_ptr_null (strstr (cp_log ? cp_log : "", ROLE_SECRET));
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("e2e-tasks");
  TCase *tc = tcase_create ("core");
  tcase_set_timeout (tc, 300);
  tcase_add_unchecked_fixture (tc, ts_e2e_suite_setup, ts_e2e_suite_teardown);
  tcase_add_checked_fixture (tc, setup, teardown);
  TS_E2E_ADD (tc, test_run_task_reaches_running_and_stop_task_stops_it_with_the_reason);
  TS_E2E_ADD (tc, test_a_non_essential_container_exiting_leaves_the_task_running);
  TS_E2E_ADD (tc, test_an_essential_container_exiting_stops_the_task);
  TS_E2E_ADD (tc, test_depends_on_start_complete_and_success_order_the_containers);
  TS_E2E_ADD (tc, test_a_success_dependency_that_fails_never_starts_the_dependent);
  TS_E2E_ADD (tc, test_health_checks_show_in_describe_tasks);
  TS_E2E_ADD (tc, test_exit_codes_of_every_container_are_reported);
  TS_E2E_ADD (tc, test_host_network_mode_sees_the_hosts_links);
  TS_E2E_ADD (tc, test_none_network_mode_has_only_loopback);
  TS_E2E_ADD (tc, test_bridge_mode_publishes_a_dynamic_host_port_on_the_hosts_address);
  TS_E2E_ADD (tc, test_a_missing_image_stops_the_task_with_cannot_pull_container_error);
  TS_E2E_ADD (tc, test_bad_definitions_fail_or_stop_and_the_agent_carries_on);
  TS_E2E_ADD (tc, test_an_agent_restarted_after_kill_9_keeps_its_instance_and_its_task);
  TS_E2E_ADD (tc, test_restart_policy_restarts_an_essential_container_and_the_task_stays_running);
  suite_add_tcase (s, tc);
  TCase *vpc = tcase_create ("awsvpc");
  tcase_set_timeout (vpc, 300);
  tcase_add_unchecked_fixture (vpc, ts_e2e_suite_setup, ts_e2e_suite_teardown);
  tcase_add_checked_fixture (vpc, setup_awsvpc, teardown);
  TS_E2E_ADD (vpc, test_awsvpc_task_answers_on_its_eni_address);
  suite_add_tcase (s, vpc);
  TCase *roles = tcase_create ("roles");
  tcase_set_timeout (roles, 300);
  tcase_add_unchecked_fixture (roles, ts_e2e_suite_setup, ts_e2e_suite_teardown);
  tcase_add_checked_fixture (roles, setup_roles, teardown_roles);
  TS_E2E_ADD (roles,
              test_tasks_read_their_own_credentials_and_metadata_and_nothing_of_another_task);
  suite_add_tcase (s, roles);
  return ts_run_suite (s);
}
