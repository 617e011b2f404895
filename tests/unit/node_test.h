/*
 * node_test.h: opening a durable node (api/node.h) in a unit test
 * (test_node, test_net, the test_repl_* programs). node_test_config fills a
 * small configuration on a data directory (quiet, two shards and one port,
 * room for 4096 events and bookings, 1024 customers and keys, rings of 64)
 * that each test then adjusts; node_test_open opens it, or says why not on
 * stderr and returns NULL.
 */
#ifndef BOOKD_TEST_NODE_H
#define BOOKD_TEST_NODE_H

#include "node.h"

#include <stdio.h>

static inline void node_test_config(struct node_config *cfg, const char *dir)
{
	node_config_default(cfg);
	cfg->data_dir = dir;
	cfg->quiet = true;
	cfg->core.shard_count = 2;
	cfg->core.port_count = 1;
	cfg->core.event_count_max = 4096;
	cfg->core.booking_count_max = 4096;
	cfg->core.customer_count_max = 1024;
	cfg->core.idem_count_max = 1024;
	cfg->core.ring_size = 64;
}

static inline node *node_test_open(const struct node_config *cfg)
{
	char err[256];
	node *n = NULL;

	if (node_open(cfg, &n, err, sizeof(err)) != 0) {
		fprintf(stderr, "node_open: %s\n", err);
		return NULL;
	}
	return n;
}

#endif
