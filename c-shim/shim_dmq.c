/*
 * imconf shim: the cluster bus over Kamailio's dmq module (enable_dmq, docs/cluster.md).
 * imconf registers the DMQ peer "imconf"; its KDMQ requests carry the text bodies of
 * src/core/cluster.rs. Incoming ones reach rs_dmq_receive in the dmq worker process.
 */
#include "core/dprint.h"
#include "core/ip_addr.h"
#include "core/parser/msg_parser.h"
#include "core/parser/parse_content.h"
#include "core/sr_module.h"
#include "modules/dmq/bind_dmq.h"

#include "shim.h"

static dmq_api_t dmqb;
static dmq_peer_t *imconf_peer;
static str content_type = str_init("application/x-imconf-cluster");
static str reason_ok = str_init("OK");
static str reason_bad = str_init("Bad Request");
static str reason_forbidden = str_init("Forbidden");
static str reason_error = str_init("Server Internal Error");
/* responses are not waited for: a lost message is repaired by the next sync (docs/cluster.md) */
static dmq_resp_cback_t no_response_cb = {NULL, NULL};

static int peer_callback(struct sip_msg *msg, peer_reponse_t *resp, dmq_node_t *node)
{
	shim_str_t body = {NULL, 0};
	/* the sender's address as raw bytes (4 or 16) and port: formatted by imconf only when it
	 * logs a refusal, not for every message */
	shim_str_t src_ip = {(const char *)msg->rcv.src_ip.u.addr, (int)msg->rcv.src_ip.len};
	int code;

	if(msg->content_length == NULL && parse_headers(msg, HDR_CONTENTLENGTH_F, 0) < 0) {
		code = 400;
	} else {
		body.s = get_body(msg);
		body.len = body.s ? get_content_length(msg) : 0;
		code = rs_dmq_receive(body, src_ip, msg->rcv.src_port, node);
	}
	resp->resp_code = code;
	resp->reason = code < 300 ? reason_ok
							: (code == 403 ? reason_forbidden
										 : (code < 500 ? reason_bad : reason_error));
	return 0;
}

/* dmq calls it once the node list has come from the notification address: time to sync.
 * After 6.1 (master, 6.2.0-dev) dmq passes the node the list came from; imconf does not need it. */
#if VERSIONVAL >= 6002000
static int peer_ready(dmq_node_t *node)
#else
static int peer_ready(void)
#endif
{
	rs_dmq_ready();
	return 0;
}

int shim_dmq_bind(void)
{
	dmq_peer_t peer;

	if(dmq_load_api(&dmqb) < 0)
		return -1;
	memset(&peer, 0, sizeof(peer));
	peer.peer_id.s = "imconf";
	peer.peer_id.len = 6;
	peer.description.s = "imconf conference state";
	peer.description.len = 23;
	peer.callback = peer_callback;
	peer.init_callback = peer_ready;
	imconf_peer = dmqb.register_dmq_peer(&peer);
	return imconf_peer ? 0 : -1;
}

int shim_dmq_broadcast(shim_str_t body)
{
	str b = {(char *)body.s, body.len};

	if(imconf_peer == NULL)
		return -1;
	return dmqb.bcast_message(imconf_peer, &b, NULL, &no_response_cb, 1, &content_type) < 0
			? -1 : 0;
}

int shim_dmq_send(void *node, shim_str_t body)
{
	str b = {(char *)body.s, body.len};

	if(imconf_peer == NULL || node == NULL)
		return -1;
	return dmqb.send_message(imconf_peer, &b, (dmq_node_t *)node, &no_response_cb, 1,
				   &content_type) < 0 ? -1 : 0;
}

int shim_dmq_node_uri(void *node, shim_str_t *uri)
{
	dmq_node_t *n = (dmq_node_t *)node;

	if(n == NULL || n->orig_uri.s == NULL || n->orig_uri.len <= 0)
		return -1;
	uri->s = n->orig_uri.s;
	uri->len = n->orig_uri.len;
	return 0;
}

int shim_dmq_send_uri(shim_str_t uri, shim_str_t body)
{
	str u = {(char *)uri.s, uri.len};
	str b = {(char *)body.s, body.len};
	dmq_node_t *node;

	if(imconf_peer == NULL || dmqb.find_dmq_node_uri == NULL)
		return -1;
	node = dmqb.find_dmq_node_uri(&u);
	if(node == NULL)
		return -1;
	return dmqb.send_message(imconf_peer, &b, node, &no_response_cb, 1, &content_type) < 0
			? -1 : 0;
}

/* dmq has no API for its own node: its server_address modparam is read by name (a str
 * parameter since before 5.6). */
int shim_dmq_self_uri(shim_str_t *uri)
{
	struct sr_module *dmq = find_module_by_name("dmq");
	modparam_t type = 0;
	str *s;

	if(dmq == NULL)
		return -1;
	s = (str *)find_param_export(dmq, "server_address", PARAM_STR, &type);
	if(s == NULL || !(type & PARAM_STR) || s->s == NULL || s->len <= 0)
		return -1;
	uri->s = s->s;
	uri->len = s->len;
	return 0;
}
