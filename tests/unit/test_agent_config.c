/* Unit tests of berth-agent's configuration (file syntax, environment overrides, every key's
 * validation) and of its credentials chain (file parsing, environment first, rotation). */
#include "agent/agent.h"
#include "lib/cleanup.h"
#include "tests/support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse (const char *text, char *const *env, agent_config *cfg, berr **err)
{
  return agent_config_parse (text, strlen (text), env, cfg, err);
}

/* Requires the text to be refused with a message containing want. */
static void refuses (const char *text, char *const *env, const char *want)
{
  agent_config cfg;
  _cleanup_berr_ berr *err = NULL;
  ck_assert_msg (parse (text, env, &cfg, &err) < 0, "accepted: %s", text);
  ck_assert_msg (strstr (err->msg, want), "`%s`: message `%s` lacks `%s`", text, err->msg, want);
}

START_TEST (test_defaults_match_the_ecs_agent)
{
  agent_config cfg;
  _cleanup_berr_ berr *err = NULL;
  ck_assert_int_eq (parse ("", NULL, &cfg, &err), 0);
  ck_assert_str_eq (cfg.cluster, "default");
  ck_assert_str_eq (cfg.region, "us-east-1");
  ck_assert_uint_eq (cfg.n_reserved_ports, 5);
  ck_assert_uint_eq (cfg.reserved_ports[0], 22);
  ck_assert_uint_eq (cfg.reserved_ports[4], 51679);
  ck_assert_uint_eq (cfg.n_reserved_ports_udp, 0);
  ck_assert_uint_eq (cfg.container_stop_timeout_us, 30000000);
  ck_assert_uint_eq (cfg.container_start_timeout_us, 180000000);
  ck_assert_uint_eq (cfg.task_cleanup_wait_us, 3ULL * 3600 * 1000000);
  ck_assert_uint_eq (cfg.image_cleanup_interval_us, 30ULL * 60 * 1000000);
  ck_assert_uint_eq (cfg.num_images_delete_per_cycle, 5);
  ck_assert_int_eq (cfg.image_pull_behavior, AGENT_PULL_DEFAULT);
  ck_assert_int_eq (cfg.log_level, BLOG_INFO);
  ck_assert (cfg.dynamic_port_min >= 1 && cfg.dynamic_port_min <= cfg.dynamic_port_max);
  ck_assert_str_eq (cfg.logging_drivers[0], "json-file");
  ck_assert_str_eq (cfg.sources[0], "default");
  agent_config_free (&cfg);
}
END_TEST

START_TEST (test_file_syntax_follows_systemd_environment_files)
{
  agent_config cfg;
  _cleanup_berr_ berr *err = NULL;
  const char *text = "# comment\n"
                     "; another comment\n"
                     "\n"
                     "   ECS_CLUSTER = \"web-1\"   \n"
                     "ECS_INSTANCE_ATTRIBUTES='{\"zone\": \"a b\"}'\n"
                     "ECS_LOGLEVEL=debug\r\n"
                     "AWS_DEFAULT_REGION=\"eu-\\\"x\"\n"
                     "AWS_DEFAULT_REGION=eu-west-3\n" /* the last assignment wins */
                     "SOME_OTHER_TOOL=whatever";
  ck_assert_msg (parse (text, NULL, &cfg, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_str_eq (cfg.cluster, "web-1");
  ck_assert_uint_eq (cfg.n_instance_attributes, 1);
  ck_assert_str_eq (cfg.instance_attributes[0].name, "zone");
  ck_assert_str_eq (cfg.instance_attributes[0].value, "a b");
  ck_assert_int_eq (cfg.log_level, BLOG_DEBUG);
  ck_assert_str_eq (cfg.region, "eu-west-3");
  ck_assert_str_eq (cfg.sources[0], "file");
  agent_config_free (&cfg);

  refuses ("ECS_CLUSTER=\"web", NULL, "line 1: unterminated");
  refuses ("\nECS_CLUSTER=\"web\" x", NULL, "line 2: text after the closing quote");
  refuses ("ECS_CLUSTER web", NULL, "line 1: expected KEY=VALUE");
  refuses ("1ECS=x", NULL, "not a variable name");
}
END_TEST

START_TEST (test_environment_overrides_the_file)
{
  agent_config cfg;
  _cleanup_berr_ berr *err = NULL;
  char *env[] = { "ECS_CLUSTER=from-env", "ECS_RESERVED_MEMORY=256", "UNRELATED=1", NULL };
  ck_assert_int_eq (parse ("ECS_CLUSTER=from-file\nECS_RESERVED_MEMORY=1\n", env, &cfg, &err), 0);
  ck_assert_str_eq (cfg.cluster, "from-env");
  ck_assert_uint_eq (cfg.reserved_memory_mib, 256);
  ck_assert_str_eq (cfg.sources[0], "environment");
  agent_config_free (&cfg);
  /* A bad environment value says where it came from. */
  char *bad[] = { "ECS_DISABLE_METRICS=yes", NULL };
  refuses ("", bad, "ECS_DISABLE_METRICS (from the environment): `yes` is not a boolean");
}
END_TEST

START_TEST (test_unknown_ecs_keys_warn_and_unknown_berth_keys_fail)
{
  agent_config cfg;
  _cleanup_berr_ berr *err = NULL;
  ck_assert_int_eq (parse ("ECS_ENABLE_SPOT_INSTANCE_DRAINING=true\n", NULL, &cfg, &err), 0);
  agent_config_free (&cfg);
  refuses ("\n\nBERTH_ENI_LIMTI=4\n", NULL, "line 3: unknown key BERTH_ENI_LIMTI");
}
END_TEST

START_TEST (test_every_key_names_itself_when_its_value_is_bad)
{
  static const struct
  {
    const char *line, *want;
  } cases[] = {
    { "ECS_CLUSTER=bad name", "ECS_CLUSTER" },
    { "ECS_CLUSTER=arn:aws:ecs:us-east-1:1:service/x", "not a cluster ARN" },
    { "ECS_BACKEND_HOST=ftp://x", "not an http:// or https:// URL" },
    { "ECS_BACKEND_HOST=http://", "has no host" },
    { "ECS_BACKEND_HOST=http://192.0.2.1:8420", "allowed only to loopback" },
    { "AWS_DEFAULT_REGION=us_east", "not a region name" },
    { "ECS_RESERVED_MEMORY=-1", "not a non-negative integer" },
    { "ECS_RESERVED_PORTS=[22, 70000]", "ECS_RESERVED_PORTS" },
    { "ECS_RESERVED_PORTS=22", "not a JSON array of ports" },
    { "ECS_RESERVED_PORTS_UDP=[\"53\"]", "ECS_RESERVED_PORTS_UDP" },
    { "ECS_DATADIR=relative/dir", "not an absolute path" },
    { "ECS_LOGLEVEL=loud", "not one of crit, error, warn, info, debug" },
    { "ECS_ENABLE_TASK_ENI=yes", "ECS_ENABLE_TASK_ENI" },
    { "ECS_AWSVPC_BLOCK_IMDS=2", "ECS_AWSVPC_BLOCK_IMDS" },
    { "ECS_CONTAINER_STOP_TIMEOUT=30", "not a duration" },
    { "ECS_CONTAINER_STOP_TIMEOUT=0s", "out of range" },
    { "ECS_CONTAINER_START_TIMEOUT=-3m", "not a duration" },
    { "ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION=30s", "out of range (60-" },
    { "ECS_INSTANCE_ATTRIBUTES={\"a\": 1}", "attribute `a`" },
    { "ECS_INSTANCE_ATTRIBUTES=[1]", "not a JSON object" },
    { "ECS_ENABLE_TASK_IAM_ROLE=on", "ECS_ENABLE_TASK_IAM_ROLE" },
    { "ECS_DISABLE_PRIVILEGED=off", "ECS_DISABLE_PRIVILEGED" },
    { "ECS_AVAILABLE_LOGGING_DRIVERS=[\"awslogs\"]", "awslogs: Berth supports" },
    { "ECS_IMAGE_CLEANUP_INTERVAL=1m", "ECS_IMAGE_CLEANUP_INTERVAL" },
    { "ECS_IMAGE_MINIMUM_CLEANUP_AGE=soon", "ECS_IMAGE_MINIMUM_CLEANUP_AGE" },
    { "ECS_NUM_IMAGES_DELETE_PER_CYCLE=0", "out of range" },
    { "ECS_DYNAMIC_HOST_PORT_RANGE=60000-50000", "not a port range" },
    { "ECS_DYNAMIC_HOST_PORT_RANGE=1-2-3", "not a port range" },
    { "ECS_IMAGE_PULL_BEHAVIOR=never", "not one of default, always, once, prefer-cached" },
    { "ECS_DISABLE_METRICS=nope", "ECS_DISABLE_METRICS" },
    { "ECS_EXTERNAL=maybe", "ECS_EXTERNAL" },
    { "ECS_TASK_PIDS_LIMIT=4194305", "out of range" },
    { "BERTH_CA_FILE=/nonexistent/ca.pem", "BERTH_CA_FILE" },
    { "BERTH_ALLOW_INSECURE_BACKEND=sure", "BERTH_ALLOW_INSECURE_BACKEND" },
    { "BERTH_ENI_LIMIT=5000", "out of range" },
    { "BERTH_ENI_PARENT=a-very-long-interface-name", "not an interface name" },
    { "BERTH_BRIDGE_NAME=", "not an interface name" },
    { "BERTH_BRIDGE_SUBNET=10.0.0.0/33", "not an IPv4 subnet" },
    { "BERTH_BRIDGE_SUBNET=10.0.0.300/16", "not an IPv4 subnet" },
    { "BERTH_LOG_MAX_SIZE=10x", "unknown size suffix" },
    { "BERTH_LOG_MAX_FILES=0", "out of range" },
    { "BERTH_STATE_DIR=run/berth", "not an absolute path" },
    { "BERTH_IMAGE_DIR=images", "not an absolute path" },
    { "BERTH_TELEMETRY_INTERVAL=100ms", "out of range" },
    { "BERTH_OFFLINE_WATCHDOG=forever", "BERTH_OFFLINE_WATCHDOG" },
    { "BERTH_INTROSPECTION_PORT=65536", "BERTH_INTROSPECTION_PORT" },
  };
  for (size_t i = 0; i < ARRAY_SIZE (cases); i++)
    {
      char key[64];
      snprintf (key, sizeof key, "%.*s", (int)strcspn (cases[i].line, "="), cases[i].line);
      refuses (cases[i].line, NULL, key);
      refuses (cases[i].line, NULL, cases[i].want);
    }
  /* Every key in the table has a case above. */
  for (size_t k = 0; k < agent_config_key_count (); k++)
    {
      bool seen = false;
      for (size_t i = 0; i < ARRAY_SIZE (cases); i++)
        seen |= strncmp (cases[i].line, agent_config_key_name (k),
                         strlen (agent_config_key_name (k)))
                    == 0
                && cases[i].line[strlen (agent_config_key_name (k))] == '=';
      ck_assert_msg (seen, "no bad-value case for %s", agent_config_key_name (k));
    }
}
END_TEST

START_TEST (test_good_values_of_the_structured_keys_parse)
{
  agent_config cfg;
  _cleanup_berr_ berr *err = NULL;
  const char *text = "ECS_CLUSTER=arn:aws:ecs:us-east-1:000000000000:cluster/prod\n"
                     "ECS_BACKEND_HOST=http://192.0.2.1:8420/\n"
                     "BERTH_ALLOW_INSECURE_BACKEND=true\n"
                     "ECS_RESERVED_PORTS=[]\n"
                     "ECS_RESERVED_PORTS_UDP=[53, 161]\n"
                     "ECS_DYNAMIC_HOST_PORT_RANGE=20000-29999\n"
                     "ECS_AVAILABLE_LOGGING_DRIVERS=[\"journald\", \"none\"]\n"
                     "ECS_IMAGE_PULL_BEHAVIOR=prefer-cached\n"
                     "ECS_CLUSTER=\n" /* empty means default */
                     "BERTH_LOG_MAX_SIZE=512k\n"
                     "ECS_ENABLE_TASK_ENI=TRUE\n"
                     "BERTH_OFFLINE_WATCHDOG=1.5m\n";
  ck_assert_msg (parse (text, NULL, &cfg, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_str_eq (cfg.cluster, "default");
  ck_assert_uint_eq (cfg.n_reserved_ports, 0);
  ck_assert_uint_eq (cfg.n_reserved_ports_udp, 2);
  ck_assert_uint_eq (cfg.reserved_ports_udp[1], 161);
  ck_assert_uint_eq (cfg.dynamic_port_min, 20000);
  ck_assert_uint_eq (cfg.dynamic_port_max, 29999);
  ck_assert_str_eq (cfg.logging_drivers[0], "journald");
  ck_assert_ptr_null (cfg.logging_drivers[2]);
  ck_assert_int_eq (cfg.image_pull_behavior, AGENT_PULL_PREFER_CACHED);
  ck_assert_uint_eq (cfg.log_max_size, 512 * 1024);
  ck_assert (cfg.enable_task_eni);
  ck_assert_uint_eq (cfg.offline_watchdog_us, 90000000);
  agent_config_free (&cfg);
}
END_TEST

START_TEST (test_durations_use_go_syntax)
{
  static const struct
  {
    const char *s;
    uint64_t us;
  } good[] = { { "0", 0 },
               { "3h", 3ULL * 3600000000 },
               { "30m", 1800000000 },
               { "1h30m", 5400000000 },
               { "500ms", 500000 },
               { "1.5s", 1500000 },
               { ".5s", 500000 },
               { "2m3.25s", 123250000 },
               { "1500us", 1500 },
               { "1500\xc2\xb5s", 1500 },
               { "2000000ns", 2000 },
               { "+10s", 10000000 } };
  for (size_t i = 0; i < ARRAY_SIZE (good); i++)
    {
      uint64_t us = 1;
      _cleanup_berr_ berr *err = NULL;
      ck_assert_msg (agent_parse_duration (good[i].s, &us, &err) == 0, "%s", good[i].s);
      ck_assert_msg (us == good[i].us, "%s: %llu", good[i].s, (unsigned long long)us);
    }
  static const char *const bad[] = { "",    "10",     "s",     "1x",
                                     "-1s", "1h 30m", "1..5s", "99999999999999999999h",
                                     "3d",  "1.s.",   "." };
  for (size_t i = 0; i < ARRAY_SIZE (bad); i++)
    {
      uint64_t us;
      _cleanup_berr_ berr *err = NULL;
      ck_assert_msg (agent_parse_duration (bad[i], &us, &err) < 0, "accepted `%s`", bad[i]);
    }
}
END_TEST

START_TEST (test_load_distinguishes_missing_default_from_missing_explicit_file)
{
  agent_config cfg;
  _cleanup_berr_ berr *err = NULL;
  ck_assert_int_eq (agent_config_load ("/nonexistent/ecs.config", true, NULL, &cfg, &err), 0);
  agent_config_free (&cfg);
  ck_assert_int_lt (agent_config_load ("/nonexistent/ecs.config", false, NULL, &cfg, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "/nonexistent/ecs.config"));
}
END_TEST

/* ---- credentials ---- */

START_TEST (test_credentials_file_profile_is_selected)
{
  const char *text = "[default]\naws_access_key_id = DEFKEY\naws_secret_access_key=defsecret\n"
                     "# comment\n[ agent ]\n  aws_access_key_id=AGENTKEY  \n"
                     "aws_secret_access_key = agent/secret+x\nregion = us-east-1\n"
                     "aws_session_token=tok\n[other]\naws_access_key_id=OTHER\n";
  agent_creds c;
  _cleanup_berr_ berr *err = NULL;
  ck_assert_int_eq (agent_creds_parse (text, strlen (text), "agent", &c, &err), 0);
  ck_assert_str_eq (c.access_key_id, "AGENTKEY");
  ck_assert_str_eq (c.secret_access_key, "agent/secret+x");
  ck_assert_str_eq (c.session_token, "tok");
  agent_creds_clear (&c);
  ck_assert_int_eq (agent_creds_parse (text, strlen (text), "default", &c, &err), 0);
  ck_assert_str_eq (c.access_key_id, "DEFKEY");
  ck_assert_ptr_null (c.session_token);
  agent_creds_clear (&c);
  ck_assert_int_lt (agent_creds_parse (text, strlen (text), "missing", &c, &err), 0);
  ck_assert_int_eq (berr_errno (err), ENOENT);
  berr_free (&err);
  ck_assert_int_lt (agent_creds_parse (text, strlen (text), "other", &c, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "lacks"));
  ck_assert_ptr_null (strstr (err->msg, "OTHER"));
  berr_free (&err);
  const char *bad = "[x\naws_access_key_id=a\n";
  ck_assert_int_lt (agent_creds_parse (bad, strlen (bad), "x", &c, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "line 1"));
}
END_TEST

START_TEST (test_environment_credentials_come_first)
{
  char *env[] = { "AWS_ACCESS_KEY_ID=ENVKEY", "AWS_SECRET_ACCESS_KEY=envsecret",
                  "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", NULL };
  agent_credprov *p;
  const agent_creds *c;
  _cleanup_berr_ berr *err = NULL;
  ck_assert_int_eq (agent_credprov_new (env, &p, &err), 0);
  ck_assert_int_eq (agent_credprov_get (p, &c, &err), 0);
  ck_assert_str_eq (c->access_key_id, "ENVKEY");
  ck_assert_str_eq (c->source, "environment");
  agent_credprov_free (p);
}
END_TEST

static void write_file (const char *path, const char *text)
{
  _cleanup_free_ char *tmp = NULL;
  ck_assert_int_ge (asprintf (&tmp, "%s.tmp", path), 0);
  FILE *f = fopen (tmp, "we");
  ck_assert_ptr_nonnull (f);
  fputs (text, f);
  ck_assert_int_eq (fclose (f), 0);
  ck_assert_int_eq (rename (tmp, path), 0);
}

START_TEST (test_rotated_credentials_file_is_reread)
{
  _cleanup_free_ char *dir = ts_mkdtemp ("agent-creds"), *path = NULL, *envf = NULL;
  ck_assert_int_ge (asprintf (&path, "%s/credentials", dir), 0);
  ck_assert_int_ge (asprintf (&envf, "AWS_SHARED_CREDENTIALS_FILE=%s", path), 0);
  char *env[] = { envf, "AWS_PROFILE=agent", NULL };
  write_file (path, "[agent]\naws_access_key_id=OLD\naws_secret_access_key=s1\n");
  agent_credprov *p;
  const agent_creds *c;
  _cleanup_berr_ berr *err = NULL;
  ck_assert_int_eq (agent_credprov_new (env, &p, &err), 0);
  ck_assert_int_eq (agent_credprov_get (p, &c, &err), 0);
  ck_assert_str_eq (c->access_key_id, "OLD");
  ck_assert_str_eq (c->source, path);
  write_file (path, "[agent]\naws_access_key_id=NEW\naws_secret_access_key=s2\n");
  ck_assert_int_eq (agent_credprov_get (p, &c, &err), 0);
  ck_assert_str_eq (c->access_key_id, "NEW");
  ck_assert_str_eq (c->secret_access_key, "s2");
  /* A broken rotation is an error, not a silent use of stale keys. */
  write_file (path, "[agent]\naws_access_key_id=HALF\n");
  ck_assert_int_lt (agent_credprov_get (p, &c, &err), 0);
  ck_assert_ptr_null (strstr (err->msg, "HALF"));
  agent_credprov_free (p);
  ts_rmtree (dir);
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("agent-config");
  TCase *tc = tcase_create ("core");
  tcase_add_test (tc, test_defaults_match_the_ecs_agent);
  tcase_add_test (tc, test_file_syntax_follows_systemd_environment_files);
  tcase_add_test (tc, test_environment_overrides_the_file);
  tcase_add_test (tc, test_unknown_ecs_keys_warn_and_unknown_berth_keys_fail);
  tcase_add_test (tc, test_every_key_names_itself_when_its_value_is_bad);
  tcase_add_test (tc, test_good_values_of_the_structured_keys_parse);
  tcase_add_test (tc, test_durations_use_go_syntax);
  tcase_add_test (tc, test_load_distinguishes_missing_default_from_missing_explicit_file);
  tcase_add_test (tc, test_credentials_file_profile_is_selected);
  tcase_add_test (tc, test_environment_credentials_come_first);
  tcase_add_test (tc, test_rotated_credentials_file_is_reread);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
