/* Internals of net/ shared by its files and its tests and fuzz targets; not a public API. */
#ifndef BERTH_NET_INTERNAL_H
#define BERTH_NET_INTERNAL_H

#include "lib/error.h"

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One allocation: an address (host byte order) and its owner. */
struct net_ipam_entry
{
  uint32_t ip;
  char *owner;
};

/* The content of an IPAM state file. */
struct net_ipam_state
{
  uint32_t net; /* network address, host byte order */
  unsigned prefixlen;
  uint32_t gateway;
  struct net_ipam_entry *v;
  size_t n;
};

/* Parses and fully validates a state file (untrusted: it may be torn or edited by hand). On
 * success st owns its entries (net_ipam_state_clear frees them). */
int net_ipam_parse (const char *text, size_t len, struct net_ipam_state *st, berr **err);
/* The file text for st (newly allocated, NUL-terminated). */
char *net_ipam_format (const struct net_ipam_state *st, size_t *len);
void net_ipam_state_clear (struct net_ipam_state *st);
/* Owners are 1-512 printable ASCII characters without spaces. */
int net_ipam_owner_valid (const char *owner);
/* Parses "a.b.c.d/len" into a network address (host order) that must be aligned to len. */
int net_ipam_parse_subnet (const char *s, uint32_t *net, unsigned *len, berr **err);

/* ---- nftables (net/nft_parse.c) ---- */
#include "net/net.h"

/* One rule of Berth's table that carries a comment. */
struct net_nft_rule
{
  char chain[32];
  uint64_t handle;
  char *comment;
};

/* Parses `nft -j list table` output (libnftables JSON, untrusted as far as this parser goes):
 * every rule of table ip berth with a comment, newly allocated (net_nft_rules_free). */
int net_nft_parse_listing (const char *json, size_t len, struct net_nft_rule **rules, size_t *n,
                           berr **err);
void net_nft_rules_free (struct net_nft_rule *rules, size_t n);

enum net_nft_kind
{
  NET_NFT_KIND_PORT,
  NET_NFT_KIND_MASQ,
  NET_NFT_KIND_BLOCK,
};
union net_nft_item
{
  struct net_nft_port port;
  struct net_nft_masq masq;
  struct net_nft_block block;
};
/* Comments Berth writes: "berth:port:<owner>:<tcp|udp>:<host port>:<addr>:<port>",
 * "berth:masq:<subnet>:<bridge>", "berth:block:<subnet>:<dst>". Decoding is strict: only the
 * exact text format would write is accepted (so decode(format(x)) == x and back). */
int net_nft_comment_parse (const char *s, enum net_nft_kind *kind, union net_nft_item *item,
                           berr **err);
/* Writes the comment for item into buf (at least NET_NFT_COMMENT_MAX + 1 bytes). */
#define NET_NFT_COMMENT_MAX 127
void net_nft_comment_format (enum net_nft_kind kind, const union net_nft_item *item, char *buf);
/* Canonical "a.b.c.d/len" of a subnet string, or EINVAL. */
int net_nft_subnet_canon (const char *s, char out[19], berr **err);
bool net_nft_bridge_valid (const char *name);
/* The namespace fd the context acts in, -1 for the opener's. */
int net_nft_netns (const net_nft *nft);
/* Runs nft commands (text) in one transaction; the library's error text goes into err. */
int net_nft_run (net_nft *nft, const char *cmds, const char *what, berr **err);

/* ---- awsvpc task records (net/awsvpc.c) ---- */
enum net_eni_kind
{
  NET_ENI_MOVED,   /* the host had a link with the MAC: it goes back on teardown */
  NET_ENI_MACVLAN, /* made by Berth on the parent: dies with the namespace */
};

/* What setup made for one task (the file <state_dir>/<task_key>.awsvpc). */
struct net_awsvpc_record
{
  uint8_t mac[6];
  enum net_eni_kind kind;
  char name[IFNAMSIZ]; /* the moved link's name in the host */
  bool complete;
};

/* The record's text into text (size bytes; 256 is enough); returns its length. Version 2 is what
 * Berth writes; version 1 (with a "meta <address>" line, meta, naming the task end of the
 * per-task metadata link earlier versions made) is only read, so that their tasks are still torn
 * down. */
int net_awsvpc_record_format (const struct net_awsvpc_record *r, int version, const char *meta,
                              char *text, size_t size);
/* Parses len bytes of text (NUL-terminated after them) strictly: only the exact text
 * net_awsvpc_record_format gives for what was read is accepted. Returns the version (2 or 1), or
 * 0 when the text is not a record. */
int net_awsvpc_record_parse (const char *text, size_t len, struct net_awsvpc_record *r);

#endif
