/* Image references: the forms users write parse to the right canonical reference, with the
 * Docker defaults (or configured ones), and every malformed one fails with an error naming why. */
#include "images/images.h"
#include "lib/cleanup.h"

#include "tests/support/support.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DIGEST "sha256:" HEX
#define HUB "registry-1.docker.io/"

static const struct
{
  const char *in, *canonical;
} good_refs[] = {
  { "busybox", HUB "library/busybox:latest" },
  { "busybox:1.36", HUB "library/busybox:1.36" },
  { "docker.io/busybox", HUB "library/busybox:latest" },
  { "docker.io/library/busybox:1.36", HUB "library/busybox:1.36" },
  { "index.docker.io/library/nginx:1.25", HUB "library/nginx:1.25" },
  { "registry-1.docker.io/nginx", HUB "library/nginx:latest" },
  { "team/app", HUB "team/app:latest" },
  { "registry:5000/team/app@" DIGEST, "registry:5000/team/app@" DIGEST },
  { "public.registry/library/nginx:latest", "public.registry/library/nginx:latest" },
  { "public.registry/nginx", "public.registry/nginx:latest" },
  { "localhost/app", "localhost/app:latest" },
  { "localhost:5000/a/b/c:v1.2.3-rc_1", "localhost:5000/a/b/c:v1.2.3-rc_1" },
  { "127.0.0.1:5000/app:x", "127.0.0.1:5000/app:x" },
  { "nginx:1.25@" DIGEST, HUB "library/nginx:1.25@" DIGEST },
  { "nginx@" DIGEST, HUB "library/nginx@" DIGEST },
  { "my-registry.example.com/ns/app-name__x.y_z",
    "my-registry.example.com/ns/app-name__x.y_z:latest" },
  { "a--b/c---d", HUB "a--b/c---d:latest" },
  { "Registry.Example.COM/app", "Registry.Example.COM/app:latest" },
  { "UPPERHOST/app", "UPPERHOST/app:latest" },
  { "registry:5000", HUB "library/registry:5000" },
  { "app:_Tag.With-All_9", HUB "library/app:_Tag.With-All_9" },
  { "a/b/c/d/e", HUB "a/b/c/d/e:latest" },
  { "0/1", HUB "0/1:latest" },
};

static const struct
{
  const char *in, *error;
} bad_refs[] = {
  { "", "invalid reference ``: empty" },
  { "Busybox", "invalid reference `Busybox`: repository name must be lowercase" },
  { "team/App", "repository name must be lowercase" },
  { "busybox:", "invalid reference `busybox:`: tag is empty" },
  { "busybox:-x", "tag must start with a letter, digit or '_'" },
  { "busybox:.x", "tag must start" },
  { "busybox:a+b", "tag may contain only" },
  { "busybox:a b", "tag may contain only" },
  { "busybox@sha256:abc", "digest must be `sha256:` and 64 lowercase hex digits" },
  { "busybox@sha256:" HEX "0", "64 lowercase hex" },
  { "busybox@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
    "64 lowercase hex" },
  { "busybox@sha512:" HEX HEX, "digest algorithm is not supported (only sha256 is)" },
  { "busybox@" HEX, "digest must be `sha256:<64 hex digits>`" },
  { "busybox:tag@", "digest must be" },
  { "busybox@" DIGEST "@" DIGEST, "64 lowercase hex" },
  { "@" DIGEST, "repository name is missing" },
  { ":tag", "repository name is missing" },
  { "a//b", "has an empty path component" },
  { "/busybox", "empty" },
  { "busybox/", "has an empty path component" },
  { "reg.io/", "has an empty path component" },
  { "a_-b", "must start and end with [a-z0-9]" },
  { "a___b", "must start and end with [a-z0-9]" },
  { "a..b", "must start and end with [a-z0-9]" },
  { "-a", "must start and end" },
  { "a.", "must start and end" },
  { "a-", "must start and end" },
  { "busy box", "must start and end" },
  { "b\xc3\xbc"
    "sybox",
    "must start and end" },
  { "registry:0/app", "registry port must be a number in 1-65535" },
  { "registry:99999/app", "registry port must be a number in 1-65535" },
  { "registry:/app", "registry port" },
  { "registry:50x0/app", "registry port" },
  { "busybox:a/b", "registry port" },
  { "reg_istry.com/app", "registry host may contain only letters, digits, '-' and '.'" },
  { "-reg.com/app", "label starting or ending with '-'" },
  { "reg..com/app", "empty label" },
  { ":5000/app", "registry host is empty" },
};

START_TEST (test_good_reference_parses_to_its_canonical_form)
{
  struct img_ref r;
  berr *err = NULL;
  const char *in = good_refs[_i].in;
  if (img_ref_parse (in, NULL, &r, &err) < 0)
    ck_abort_msg ("`%s` rejected: %s", in, err->msg);
  _cleanup_free_ char *s = img_ref_format (&r);
  ck_assert_str_eq (s, good_refs[_i].canonical);
  /* The canonical form is a fixed point. */
  struct img_ref again;
  ck_assert_int_eq (img_ref_parse (s, NULL, &again, &err), 0);
  _cleanup_free_ char *s2 = img_ref_format (&again);
  ck_assert_str_eq (s2, s);
  img_ref_clear (&again);
  img_ref_clear (&r);
  ck_assert_ptr_null (r.registry);
}
END_TEST

START_TEST (test_bad_reference_is_rejected_with_a_message_saying_why)
{
  struct img_ref r;
  berr *err = NULL;
  const char *in = bad_refs[_i].in;
  int rc = img_ref_parse (in, NULL, &r, &err);
  if (rc == 0)
    {
      _cleanup_free_ char *s = img_ref_format (&r);
      ck_abort_msg ("`%s` accepted as %s", in, s);
    }
  ck_assert_int_lt (rc, 0);
  ck_assert_ptr_nonnull (err);
  if (strstr (err->msg, bad_refs[_i].error) == NULL)
    ck_abort_msg ("`%s`: error `%s` does not say `%s`", in, err->msg, bad_refs[_i].error);
  ck_assert_msg (strncmp (err->msg, "invalid reference `", 19) == 0, "%s", err->msg);
  ck_assert_ptr_null (r.registry);
  ck_assert_ptr_null (r.repository);
  berr_free (&err);
}
END_TEST

START_TEST (test_fields_of_a_reference_with_registry_port_and_digest)
{
  struct img_ref r;
  berr *err = NULL;
  ck_assert_int_eq (img_ref_parse ("registry:5000/team/app@" DIGEST, NULL, &r, &err), 0);
  ck_assert_str_eq (r.registry, "registry:5000");
  ck_assert_str_eq (r.repository, "team/app");
  ck_assert_ptr_null (r.tag);
  ck_assert_str_eq (r.digest, DIGEST);
  img_ref_clear (&r);

  ck_assert_int_eq (img_ref_parse ("busybox:1.36@" DIGEST, NULL, &r, &err), 0);
  ck_assert_str_eq (r.tag, "1.36");
  ck_assert_str_eq (r.digest, DIGEST);
  img_ref_clear (&r);

  ck_assert_int_eq (img_ref_parse ("busybox", NULL, &r, &err), 0);
  ck_assert_str_eq (r.registry, "registry-1.docker.io");
  ck_assert_str_eq (r.repository, "library/busybox");
  ck_assert_str_eq (r.tag, "latest");
  ck_assert_ptr_null (r.digest);
  img_ref_clear (&r);
}
END_TEST

static char *parse_fmt (const char *in, const struct img_ref_defaults *d)
{
  struct img_ref r;
  berr *err = NULL;
  if (img_ref_parse (in, d, &r, &err) < 0)
    ck_abort_msg ("`%s` rejected: %s", in, err->msg);
  char *s = img_ref_format (&r);
  img_ref_clear (&r);
  return s;
}

START_TEST (test_configured_default_registry_and_namespace_apply_to_short_names)
{
  struct img_ref_defaults mirror = { .registry = "mirror.local:5000", .namespace = "library" };
  _cleanup_free_ char *a = parse_fmt ("busybox", &mirror);
  ck_assert_str_eq (a, "mirror.local:5000/library/busybox:latest");
  _cleanup_free_ char *b = parse_fmt ("mirror.local:5000/busybox:1", &mirror);
  ck_assert_str_eq (b, "mirror.local:5000/library/busybox:1");
  /* Docker Hub keeps its library/ namespace whatever the default is. */
  _cleanup_free_ char *c = parse_fmt ("docker.io/busybox", &mirror);
  ck_assert_str_eq (c, HUB "library/busybox:latest");
  /* Any other registry gets no namespace. */
  _cleanup_free_ char *e = parse_fmt ("other.io/busybox", &mirror);
  ck_assert_str_eq (e, "other.io/busybox:latest");

  struct img_ref_defaults flat = { .registry = "reg.internal", .namespace = "" };
  _cleanup_free_ char *f = parse_fmt ("busybox", &flat);
  ck_assert_str_eq (f, "reg.internal/busybox:latest");
  struct img_ref_defaults alias = { .registry = "docker.io", .namespace = NULL };
  _cleanup_free_ char *h = parse_fmt ("busybox", &alias);
  ck_assert_str_eq (h, HUB "library/busybox:latest");
  struct img_ref_defaults ns = { .registry = NULL, .namespace = "team" };
  _cleanup_free_ char *g = parse_fmt ("app", &ns);
  ck_assert_str_eq (g, HUB "team/app:latest");
}
END_TEST

START_TEST (test_length_limits_of_name_and_tag)
{
  char buf[600];
  struct img_ref r;
  berr *err = NULL;
  /* A 255-character name ("x.io/" + 250) is the longest allowed. */
  strcpy (buf, "x.io/");
  memset (buf + 5, 'a', 250);
  buf[255] = '\0';
  ck_assert_int_eq (img_ref_parse (buf, NULL, &r, &err), 0);
  img_ref_clear (&r);
  strcat (buf, "a");
  ck_assert_int_lt (img_ref_parse (buf, NULL, &r, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "name is longer than 255 characters"));
  berr_free (&err);

  /* The limit holds for the normalised name, so the canonical form always parses again. */
  memset (buf, 'a', 230);
  buf[230] = '\0';
  ck_assert_int_lt (img_ref_parse (buf, NULL, &r, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "name is longer than 255 characters"));
  berr_free (&err);

  strcpy (buf, "app:");
  memset (buf + 4, 't', 128);
  buf[132] = '\0';
  ck_assert_int_eq (img_ref_parse (buf, NULL, &r, &err), 0);
  ck_assert_uint_eq (strlen (r.tag), 128);
  img_ref_clear (&r);
  strcat (buf, "t");
  ck_assert_int_lt (img_ref_parse (buf, NULL, &r, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "tag is longer than 128 characters"));
  berr_free (&err);

  memset (buf, 'a', sizeof buf - 1);
  buf[sizeof buf - 1] = '\0';
  ck_assert_int_lt (img_ref_parse (buf, NULL, &r, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "longer than any valid one"));
  berr_free (&err);
}
END_TEST

START_TEST (test_digest_validation_accepts_only_sha256_lowercase_hex)
{
  ck_assert (img_digest_valid (DIGEST));
  ck_assert (!img_digest_valid (NULL));
  ck_assert (!img_digest_valid (""));
  ck_assert (!img_digest_valid ("sha256:"));
  ck_assert (!img_digest_valid (HEX));
  ck_assert (!img_digest_valid ("sha256:" HEX "a"));
  ck_assert (
      !img_digest_valid ("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"));
  ck_assert (!img_digest_valid (
      "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeF"));
  ck_assert (!img_digest_valid (
      "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg"));
  ck_assert (!img_digest_valid ("sha512:" HEX));
  ck_assert (!img_digest_valid ("SHA256:" HEX));
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("images_ref");
  TCase *tc = tcase_create ("ref");
  tcase_add_loop_test (tc, test_good_reference_parses_to_its_canonical_form, 0,
                       (int)ARRAY_SIZE (good_refs));
  tcase_add_loop_test (tc, test_bad_reference_is_rejected_with_a_message_saying_why, 0,
                       (int)ARRAY_SIZE (bad_refs));
  tcase_add_test (tc, test_fields_of_a_reference_with_registry_port_and_digest);
  tcase_add_test (tc, test_configured_default_registry_and_namespace_apply_to_short_names);
  tcase_add_test (tc, test_length_limits_of_name_and_tag);
  tcase_add_test (tc, test_digest_validation_accepts_only_sha256_lowercase_hex);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
