/* Integration tests of berth-agent's registration flow over real HTTP on loopback. berth-control
 * has no RegisterContainerInstance yet, so a scripted server (libmicrohttpd) answers with the
 * ECS shapes in a set order and records what the agent sent; the agent side is all real. */
#include "agent/agent.h"
#include "lib/cleanup.h"
#include "tests/support/cp.h"
#include "tests/support/script.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INSTANCE_ARN "arn:aws:ecs:us-east-1:000000000000:container-instance/web/0123"

typedef struct fixture
{
  char *dir;
  char *env[3];
  agent_config cfg;
  agent_host_facts facts;
  agent_store *store;
  agent_credprov *creds;
  sd_event *ev;
  agent_http *http;
  agent_registrar *reg;
  bool finished;
  int exit_status;
  char arn[256];
  char error[1024];
} fixture;

static void fixture_open (fixture *f, int port)
{
  _cleanup_berr_ berr *err = NULL;
  _cleanup_free_ char *text = NULL, *db = NULL;
  memset (f, 0, sizeof *f);
  f->dir = ts_mkdtemp ("agent-reg");
  ck_assert_int_ge (asprintf (&text,
                              "ECS_CLUSTER=web\nECS_BACKEND_HOST=http://127.0.0.1:%d\n"
                              "ECS_INSTANCE_ATTRIBUTES={\"stack\":\"prod\"}\n",
                              port),
                    0);
  ck_assert_int_eq (agent_config_parse (text, strlen (text), NULL, &f->cfg, &err), 0);
  f->facts = (agent_host_facts){
    .cpus = 2, .mem_total_mib = 4096, .arch = "x86_64", .os_family = "debian_12"
  };
  ck_assert_int_ge (asprintf (&db, "%s/agent.db", f->dir), 0);
  ck_assert_int_eq (agent_store_open (db, &f->store, &err), 0);
  f->env[0] = "AWS_ACCESS_KEY_ID=BKAGREGISTRARTEST001";
  f->env[1] = "AWS_SECRET_ACCESS_KEY=secret";
  ck_assert_int_eq (agent_credprov_new (f->env, &f->creds, &err), 0);
  ck_assert_int_eq (sd_event_new (&f->ev), 0);
  agent_http_opts o
      = { .endpoint = f->cfg.backend_host, .region = f->cfg.region, .creds = f->creds };
  ck_assert_int_eq (agent_http_new (f->ev, &o, &f->http, &err), 0);
}

static void fixture_close (fixture *f)
{
  agent_registrar_free (f->reg);
  agent_http_free (f->http);
  sd_event_unref (f->ev);
  agent_credprov_free (f->creds);
  agent_store_close (f->store);
  agent_config_free (&f->cfg);
  ts_rmtree (f->dir);
  free (f->dir);
}

static void on_done (const agent_registration *r, void *userdata)
{
  fixture *f = userdata;
  f->finished = true;
  f->exit_status = r->exit_status;
  snprintf (f->arn, sizeof f->arn, "%s", r->instance_arn ? r->instance_arn : "");
  snprintf (f->error, sizeof f->error, "%s", r->error ? r->error : "");
}

/* Starts registration and runs the loop until it finishes; returns the seconds it took. */
static double register_until_done (fixture *f, int timeout_s)
{
  _cleanup_berr_ berr *err = NULL;
  struct timespec t0, t1;
  clock_gettime (CLOCK_MONOTONIC, &t0);
  agent_registrar_opts o = {
    .ev = f->ev, .http = f->http, .store = f->store, .cfg = &f->cfg, .facts = &f->facts, .seed = 7
  };
  ck_assert_msg (agent_registrar_start (&o, on_done, f, &f->reg, &err) == 0, "%s",
                 err ? err->msg : "");
  while (!f->finished)
    {
      clock_gettime (CLOCK_MONOTONIC, &t1);
      ck_assert_msg (t1.tv_sec - t0.tv_sec < timeout_s, "registration still running");
      ck_assert_int_ge (sd_event_run (f->ev, 100000), 0);
    }
  clock_gettime (CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
}

static const char *registered_body (void)
{
  return "{\"containerInstance\":{\"containerInstanceArn\":\"" INSTANCE_ARN "\","
         "\"attributes\":[{\"name\":\"ecs.os-type\",\"value\":\"linux\"}]}}";
}

static void check_identity (fixture *f, const char *arn)
{
  agent_identity id;
  _cleanup_berr_ berr *err = NULL;
  ck_assert_int_eq (agent_store_get_identity (f->store, &id, &err), 0);
  ck_assert_str_eq (id.cluster, "web");
  ck_assert_str_eq (id.container_instance_arn, arn);
  agent_identity_clear (&id);
}

START_TEST (test_missing_cluster_is_created_then_registration_retried)
{
  ts_answer a[] = { { 400, "{\"__type\":\"ClusterNotFoundException\",\"message\":\"Cluster not "
                           "found.\"}" },
                    { 200, "{\"cluster\":{\"clusterName\":\"web\"}}" },
                    { 200, registered_body () } };
  ts_script s;
  ts_script_start (&s, a, 3, NULL, NULL);
  fixture f;
  fixture_open (&f, s.port);
  register_until_done (&f, 20);
  ck_assert_msg (f.exit_status == 0, "%s", f.error);
  ck_assert_str_eq (f.arn, INSTANCE_ARN);
  ck_assert_uint_eq (s.calls, 3);
  ck_assert_str_eq (s.targets[0], AGENT_ECS_TARGET_PREFIX "RegisterContainerInstance");
  ck_assert_str_eq (s.targets[1], AGENT_ECS_TARGET_PREFIX "CreateCluster");
  ck_assert_str_eq (s.targets[2], AGENT_ECS_TARGET_PREFIX "RegisterContainerInstance");
  ck_assert_str_eq (s.bodies[1], "{\"clusterName\":\"web\"}");
  ck_assert_uint_eq (agent_registrar_attempts (f.reg), 2);
  /* The document really is the registration document, with a fresh token per call. */
  cJSON *first = cJSON_Parse (s.bodies[0]), *second = cJSON_Parse (s.bodies[2]);
  ck_assert_str_eq (ts_json_str (first, "cluster"), "web");
  ck_assert_ptr_nonnull (strstr (s.bodies[0], "\"stack\""));
  ck_assert_str_ne (ts_json_str (first, "clientToken"), ts_json_str (second, "clientToken"));
  cJSON_Delete (first);
  cJSON_Delete (second);
  check_identity (&f, INSTANCE_ARN);
  fixture_close (&f);
  ts_script_stop (&s);
}
END_TEST

START_TEST (test_server_errors_retry_with_backoff_and_client_errors_are_terminal)
{
  ts_answer retry[] = { { 500, "{\"__type\":\"ServerException\",\"message\":\"busy\"}" },
                        { 200, registered_body () } };
  ts_script s;
  ts_script_start (&s, retry, 2, NULL, NULL);
  fixture f;
  fixture_open (&f, s.port);
  double took = register_until_done (&f, 20);
  ck_assert_msg (f.exit_status == 0, "%s", f.error);
  ck_assert_uint_eq (s.calls, 2);
  /* The first registration delay is 3 s +-20%. */
  ck_assert_msg (took >= 2.3 && took < 6.0, "took %.2f s", took);
  fixture_close (&f);
  ts_script_stop (&s);

  ts_answer bad[] = { { 400, "{\"__type\":\"ClientException\",\"message\":\"bad attribute\"}" } };
  ts_script_start (&s, bad, 1, NULL, NULL);
  fixture_open (&f, s.port);
  register_until_done (&f, 10);
  ck_assert_int_eq (f.exit_status, AGENT_EXIT_TERMINAL);
  ck_assert_ptr_nonnull (strstr (f.error, "ClientException: bad attribute"));
  ck_assert_uint_eq (s.calls, 1);
  fixture_close (&f);
  ts_script_stop (&s);
}
END_TEST

START_TEST (test_reregistration_sends_the_stored_instance_arn)
{
  ts_answer a[] = { { 200, registered_body () } };
  ts_script s;
  ts_script_start (&s, a, 1, NULL, NULL);
  fixture f;
  fixture_open (&f, s.port);
  _cleanup_berr_ berr *err = NULL;
  ck_assert_int_eq (agent_store_set_identity (f.store, "web", INSTANCE_ARN, &err), 0);
  register_until_done (&f, 10);
  ck_assert_int_eq (f.exit_status, 0);
  cJSON *body = cJSON_Parse (s.bodies[0]);
  ck_assert_str_eq (ts_json_str (body, "containerInstanceArn"), INSTANCE_ARN);
  cJSON_Delete (body);
  fixture_close (&f);
  ts_script_stop (&s);
}
END_TEST

START_TEST (test_a_cluster_the_key_may_not_create_is_terminal)
{
  ts_answer a[] = { { 400, "{\"__type\":\"ClusterNotFoundException\",\"message\":\"no\"}" },
                    { 400, "{\"__type\":\"AccessDeniedException\",\"message\":\"admin only\"}" } };
  ts_script s;
  ts_script_start (&s, a, 2, NULL, NULL);
  fixture f;
  fixture_open (&f, s.port);
  register_until_done (&f, 10);
  ck_assert_int_eq (f.exit_status, AGENT_EXIT_TERMINAL);
  ck_assert_ptr_nonnull (strstr (f.error, "CreateCluster: AccessDeniedException"));
  ck_assert_uint_eq (s.calls, 2);
  fixture_close (&f);
  ts_script_stop (&s);
}
END_TEST

START_TEST (test_freeing_the_registrar_mid_call_cancels_it)
{
  ts_answer a[] = { { 200, registered_body () } };
  ts_script s;
  ts_script_start (&s, a, 1, NULL, NULL);
  fixture f;
  fixture_open (&f, s.port);
  _cleanup_berr_ berr *err = NULL;
  agent_registrar_opts o = {
    .ev = f.ev, .http = f.http, .store = f.store, .cfg = &f.cfg, .facts = &f.facts, .seed = 1
  };
  ck_assert_int_eq (agent_registrar_start (&o, on_done, &f, &f.reg, &err), 0);
  ck_assert_uint_eq (agent_http_in_flight (f.http), 1);
  agent_registrar_free (f.reg);
  f.reg = NULL;
  ck_assert_uint_eq (agent_http_in_flight (f.http), 0);
  for (int i = 0; i < 5; i++)
    sd_event_run (f.ev, 50000);
  ck_assert (!f.finished);
  fixture_close (&f);
  ts_script_stop (&s);
}
END_TEST

/* Against the real berth-control: a key it does not know is a terminal client error. */
START_TEST (test_registration_with_an_unknown_key_is_terminal_against_berth_control)
{
  ts_cp cp;
  ts_cp_setup (&cp);
  fixture f;
  fixture_open (&f, cp.port);
  register_until_done (&f, 20);
  ck_assert_int_eq (f.exit_status, AGENT_EXIT_TERMINAL);
  ck_assert_ptr_nonnull (strstr (f.error, "UnrecognizedClientException"));
  fixture_close (&f);
  ts_cp_teardown (&cp);
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("agent-registrar");
  TCase *tc = tcase_create ("core");
  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_missing_cluster_is_created_then_registration_retried);
  tcase_add_test (tc, test_server_errors_retry_with_backoff_and_client_errors_are_terminal);
  tcase_add_test (tc, test_reregistration_sends_the_stored_instance_arn);
  tcase_add_test (tc, test_a_cluster_the_key_may_not_create_is_terminal);
  tcase_add_test (tc, test_freeing_the_registrar_mid_call_cancels_it);
  tcase_add_test (tc, test_registration_with_an_unknown_key_is_terminal_against_berth_control);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
