/* Registry fixtures for the images tests: Debian's docker-registry on 127.0.0.1 (plain, htpasswd
 * basic auth, bearer tokens from a test issuer), skopeo pushes, and a counting, throttling
 * HTTP relay. Everything listens on loopback only. */
#ifndef BERTH_TESTS_SUPPORT_IMGREG_H
#define BERTH_TESTS_SUPPORT_IMGREG_H

#include <stdbool.h>
#include <sys/types.h>

/* Builds an OCI layout in $1/oci from /bin/busybox: tag v1 (this arch), tag multi (an index
 * for arm64 and this arch), tag small (a one-file layer); writes host.digest, small.digest. */
extern const char TS_REG_BUSYBOX_LAYOUT_SH[];
/* A self-signed issuer key pair ($1/cert.pem, key.pem) and one RS256 JWT for test/busybox
 * (pull, push) in $1/token.json; see docs/images.md. */
extern const char TS_REG_TOKEN_SH[];

/* Writes text to base/name and runs `sh base/name base`, failing the test unless it exits 0. */
void ts_reg_script (const char *base, const char *name, const char *text);
/* Starts docker-registry on 127.0.0.1:port with storage in base/store-<name> and its log in
 * base/<name>.log; auth is "none", "basic" (base/htpasswd) or "bearer" (the issuer on
 * issuer_port, base/cert.pem). Returns once /v2/ answers. */
pid_t ts_reg_start (const char *base, const char *name, int port, const char *auth,
                    int issuer_port);
/* Like ts_reg_start (no auth) but over TLS on addr:port, with a self-signed certificate for
 * IP addr made here: base/<name>.crt (the CA file to trust) and base/<name>.key. */
pid_t ts_reg_start_tls (const char *base, const char *name, const char *addr, int port);
/* The token issuer: answers every request with base/token-once.json (then removed) or
 * base/token.json and logs "<request line> basic=<0|1>" per request to base/issuer.log. */
pid_t ts_reg_start_issuer (const char *base, int *port);
/* Requests the issuer has answered so far. */
int ts_reg_issuer_requests (const char *base);
/* skopeo copy oci:<layout>:<tag> docker://127.0.0.1:<port>/<repo>:<tag> (--all for indexes). */
void ts_reg_push (const char *layout, int port, const char *creds, const char *tag,
                  const char *repo, bool all);
/* SIGTERM to the process group of pid (fixtures run in their own group), then reaps pid. */
void ts_reg_stop (pid_t pid);

/* A relay on 127.0.0.1 to 127.0.0.1:target_port, one process (and one request) per connection,
 * that sends the responses on at most bytes_per_s (0: unthrottled) and appends to log_path
 * "+ <request line>" when a request arrives and "- <request line>" just before the last byte
 * of its response goes out (or when the connection ends without one). While log_path.cut
 * exists, the next blob response longer than 64 KiB is cut there (and the file removed). */
pid_t ts_relay_start (int target_port, long bytes_per_s, const char *log_path, int *port);
/* From a relay log: how many requests had a request line containing needle, and the most
 * of them that were open at once. */
void ts_relay_count (const char *log_path, const char *needle, int *total, int *max_open);

#endif
