/* The reader of Berth's nftables table: the JSON listing parser and the strict rule comments that
 * reconcile relies on (tests/fuzz/fuzz_nft_list.c fuzzes the same code). */
#include "net/internal.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

START_TEST (test_listing_keeps_commented_rules_of_berths_table_only)
{
  const char *json
      = "{\"nftables\": [{\"metainfo\": {\"json_schema_version\": 1}},"
        " {\"table\": {\"family\": \"ip\", \"name\": \"berth\", \"handle\": 1}},"
        " {\"rule\": {\"family\": \"ip\", \"table\": \"berth\", \"chain\": \"prerouting\","
        " \"handle\": 5, \"expr\": []}},"
        " {\"rule\": {\"family\": \"ip\", \"table\": \"other\", \"chain\": \"publish\","
        " \"handle\": 6, \"comment\": \"berth:port:a:tcp:1:10.0.0.1:2\"}},"
        " {\"rule\": {\"family\": \"inet\", \"table\": \"berth\", \"chain\": \"publish\","
        " \"handle\": 7, \"comment\": \"berth:port:a:tcp:1:10.0.0.1:2\"}},"
        " {\"rule\": {\"family\": \"ip\", \"table\": \"berth\", \"chain\": \"publish\","
        " \"handle\": 8, \"comment\": \"berth:port:a:tcp:1:10.0.0.1:2\"}}]}";
  struct net_nft_rule *r;
  size_t n;
  berr *e = NULL;
  ck_assert_int_eq (net_nft_parse_listing (json, strlen (json), &r, &n, &e), 0);
  ck_assert_uint_eq (n, 1);
  ck_assert_str_eq (r[0].chain, "publish");
  ck_assert_uint_eq (r[0].handle, 8);
  ck_assert_str_eq (r[0].comment, "berth:port:a:tcp:1:10.0.0.1:2");
  net_nft_rules_free (r, n);
}
END_TEST

START_TEST (test_malformed_listings_are_refused_with_a_reason)
{
  const char *bad[] = {
    "",
    "[]",
    "{\"nftables\": {}}",
    "{\"nftables\": [{\"rule\": 1}]}",
    "{\"nftables\": [{\"rule\": {\"family\": \"ip\", \"table\": \"berth\", \"chain\": \"x\"}}]}",
    "{\"nftables\": [{\"rule\": {\"family\": \"ip\", \"table\": \"berth\", \"chain\": \"x\","
    " \"handle\": 0}}]}",
    "{\"nftables\": [{\"rule\": {\"family\": \"ip\", \"table\": \"berth\", \"chain\": \"x\","
    " \"handle\": 1, \"comment\": 5}}]}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    {
      struct net_nft_rule *r;
      size_t n;
      berr *e = NULL;
      ck_assert_msg (net_nft_parse_listing (bad[i], strlen (bad[i]), &r, &n, &e) < 0, "took %s",
                     bad[i]);
      ck_assert_ptr_nonnull (e);
      berr_free (&e);
    }
}
END_TEST

START_TEST (test_comments_decode_strictly_and_format_back_identically)
{
  const char *good[] = {
    "berth:port:task-1_a.b:tcp:8080:172.30.0.2:80",
    "berth:port:t:udp:65535:10.0.0.1:1",
    "berth:masq:172.30.0.0/24:bbr0",
    "berth:block:172.30.0.0/24:169.254.169.254",
  };
  for (size_t i = 0; i < sizeof good / sizeof *good; i++)
    {
      enum net_nft_kind k;
      union net_nft_item it;
      char back[NET_NFT_COMMENT_MAX + 1];
      berr *e = NULL;
      ck_assert_msg (net_nft_comment_parse (good[i], &k, &it, &e) == 0, "%s", good[i]);
      net_nft_comment_format (k, &it, back);
      ck_assert_str_eq (back, good[i]);
    }
  const char *bad[] = {
    "berth:port:t:TCP:80:10.0.0.1:80",   "berth:port:t:tcp:080:10.0.0.1:80",
    "berth:port:t:tcp:0:10.0.0.1:80",    "berth:port:t:tcp:65536:10.0.0.1:80",
    "berth:port:t:tcp:80:10.0.0.01:80",  "berth:port:t:tcp:80:10.0.0.1:",
    "berth:port::tcp:80:10.0.0.1:80",    "berth:port:a b:tcp:80:10.0.0.1:80",
    "berth:port:t:tcp:80:10.0.0.1:80:9", "berth:masq:172.30.0.1/24:bbr0",
    "berth:masq:172.30.0.0/24:",         "berth:masq:172.30.0.0/24:a-very-long-bridge",
    "berth:block:172.30.0.0/24:1.2.3",   "berth:other:x",
    "port:t:tcp:80:10.0.0.1:80",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    {
      enum net_nft_kind k;
      union net_nft_item it;
      berr *e = NULL;
      ck_assert_msg (net_nft_comment_parse (bad[i], &k, &it, &e) < 0, "took %s", bad[i]);
      ck_assert_int_eq (berr_errno (e), EINVAL);
      berr_free (&e);
    }
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("nft_parse");
  TCase *tc = tcase_create ("nft_parse");
  tcase_add_test (tc, test_listing_keeps_commented_rules_of_berths_table_only);
  tcase_add_test (tc, test_malformed_listings_are_refused_with_a_reason);
  tcase_add_test (tc, test_comments_decode_strictly_and_format_back_identically);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
