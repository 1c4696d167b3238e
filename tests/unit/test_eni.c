/* The ENI description of an awsvpc task (net/eni.c): the ACS shape parsed and validated, and the
 * resolv.conf and hostname made from it. */
#include "net/net.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char full[]
    = "{\"attachmentArn\":\"arn:aws:ecs:us-west-2:1:attachment/a\",\"ec2Id\":\"eni-1\","
      "\"macAddress\":\"0A:1b:2c:3d:4e:5f\",\"ipv4Addresses\":[{\"privateAddress\":\"10.0.1.6\","
      "\"primary\":false},{\"privateAddress\":\"10.0.1.5\",\"primary\":true}],"
      "\"subnetGatewayIpv4Address\":\"10.0.1.1/24\",\"domainNameServers\":[\"10.0.0.2\"],"
      "\"domainName\":[\"us-west-2.compute.internal\",\"corp.example\"],"
      "\"privateDnsName\":\"ip-10-0-1-5.us-west-2.compute.internal\"}";

static char *ip (struct in_addr a)
{
  static char buf[INET_ADDRSTRLEN];
  inet_ntop (AF_INET, &a, buf, sizeof buf);
  return buf;
}

START_TEST (test_acs_eni_parses_with_the_primary_address_first)
{
  struct net_eni e;
  berr *err = NULL;
  ck_assert_int_eq (net_eni_from_json (full, strlen (full), &e, &err), 0);
  ck_assert_int_eq (e.mac[0], 0x0a);
  ck_assert_int_eq (e.mac[5], 0x5f);
  ck_assert_uint_eq (e.n_addrs, 2);
  ck_assert_str_eq (ip (e.addrs[0]), "10.0.1.5");
  ck_assert_str_eq (ip (e.addrs[1]), "10.0.1.6");
  ck_assert_str_eq (ip (e.gateway), "10.0.1.1");
  ck_assert_uint_eq (e.prefixlen, 24);
  ck_assert_uint_eq (e.n_dns, 1);
  ck_assert_uint_eq (e.n_search, 2);
  ck_assert_str_eq (e.hostname, "ip-10-0-1-5.us-west-2.compute.internal");
  char *rc = net_eni_resolv_conf (&e), *hn = net_eni_hostname_file (&e);
  ck_assert_str_eq (rc, "# written by Berth from the task's ENI\nnameserver 10.0.0.2\n"
                        "search us-west-2.compute.internal corp.example\n");
  ck_assert_str_eq (hn, "ip-10-0-1-5.us-west-2.compute.internal\n");
  free (rc);
  free (hn);
}
END_TEST

START_TEST (test_minimal_eni_has_no_dns_and_hostname_localhost)
{
  const char j[] = "{\"macAddress\":\"02:00:00:00:00:01\",\"ipv4Addresses\":[{\"privateAddress\":"
                   "\"192.168.0.9\"}],\"subnetGatewayIpv4Address\":\"192.168.0.1/28\"}";
  struct net_eni e;
  berr *err = NULL;
  ck_assert_int_eq (net_eni_from_json (j, strlen (j), &e, &err), 0);
  char *rc = net_eni_resolv_conf (&e), *hn = net_eni_hostname_file (&e);
  ck_assert_str_eq (rc, "# written by Berth from the task's ENI\n");
  ck_assert_str_eq (hn, "localhost\n");
  free (rc);
  free (hn);
}
END_TEST

/* Each invalid description is EINVAL with a message naming what is wrong. */
static void refused (const char *json, const char *needle)
{
  struct net_eni e;
  berr *err = NULL;
  ck_assert_int_lt (net_eni_from_json (json, strlen (json), &e, &err), 0);
  ck_assert_ptr_nonnull (err);
  ck_assert_msg (strstr (err->msg, needle) != NULL, "`%s` lacks `%s`", err->msg, needle);
  berr_free (&err);
}

#define ENI(addrs, gw, extra)                                                                      \
  "{\"macAddress\":\"02:00:00:00:00:01\",\"ipv4Addresses\":" addrs                                 \
  ",\"subnetGatewayIpv4Address\":\"" gw "\"" extra "}"
#define ONE "[{\"privateAddress\":\"10.0.0.9\"}]"

START_TEST (test_invalid_enis_are_refused_naming_the_problem)
{
  refused (ENI (ONE, "10.0.0.1", ""), "subnetGatewayIpv4Address");
  refused (ENI (ONE, "10.0.0.1/31", ""), "subnetGatewayIpv4Address");
  refused (ENI (ONE, "10.0.0.1/024", ""), "subnetGatewayIpv4Address");
  refused (ENI ("[{\"privateAddress\":\"10.1.0.9\"}]", "10.0.0.1/24", ""), "not a host");
  refused (ENI ("[{\"privateAddress\":\"10.0.0.1\"}]", "10.0.0.1/24", ""), "not a host");
  refused (ENI ("[]", "10.0.0.1/24", ""), "empty");
  refused (ENI ("[{\"privateAddress\":\"10.0.0.9\",\"primary\":true},{\"privateAddress\":"
                "\"10.0.0.8\",\"primary\":true}]",
                "10.0.0.1/24", ""),
           "more than one primary");
  refused (ENI ("[{\"privateAddress\":\"10.0.0.9\"},{\"privateAddress\":\"10.0.0.9\"}]",
                "10.0.0.1/24", ""),
           "twice");
  refused (ENI (ONE, "10.0.0.1/24", ",\"domainName\":[\"a.example\\nnameserver 6.6.6.6\"]"),
           "domainName");
  refused (ENI (ONE, "10.0.0.1/24", ",\"domainName\":[\"a..example\"]"), "domainName");
  refused (ENI (ONE, "10.0.0.1/24", ",\"privateDnsName\":\"x y\"]"), "ENI");
  refused (ENI (ONE, "10.0.0.1/24", ",\"privateDnsName\":\"bad name\""), "privateDnsName");
  refused (ENI (ONE, "10.0.0.1/24", ",\"domainNameServers\":[\"8.8.8\"]"), "domainNameServers");
  refused ("{\"macAddress\":\"02:00:00:00:00\",\"ipv4Addresses\":" ONE
           ",\"subnetGatewayIpv4Address\":\"10.0.0.1/24\"}",
           "macAddress");
  refused ("[1]", "expected an object");
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("eni");
  TCase *tc = tcase_create ("eni");
  tcase_add_test (tc, test_acs_eni_parses_with_the_primary_address_first);
  tcase_add_test (tc, test_minimal_eni_has_no_dns_and_hostname_localhost);
  tcase_add_test (tc, test_invalid_enis_are_refused_naming_the_problem);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
