/*
 * imconf shim: the SUBSCRIBE being handled: a view of its fields for Rust,
 * the transaction that absorbs retransmissions, and the stateful reply (R22).
 */
#include <string.h>

#include "core/dprint.h"
#include "core/mem/mem.h"
#include "core/parser/msg_parser.h"
#include "core/parser/parse_from.h"
#include "core/parser/parse_to.h"
#include "core/parser/contact/parse_contact.h"
#include "core/parser/parse_rr.h"
#include "core/parser/parse_uri.h"
#include "core/socket_info.h"
#include "core/error.h"
#include "core/data_lump_rpl.h"
#include "modules/sl/sl.h"

#include "shim.h"
#include "shim_int.h"

static shim_str_t view(str s)
{
	shim_str_t v = {s.s, s.len};
	if(v.s == NULL)
		v.len = 0;
	return v;
}

int shim_request_view(void *m, shim_request_t *req, shim_header_t *headers, int max)
{
	struct sip_msg *msg = (struct sip_msg *)m;
	struct hdr_field *hf;
	struct to_body *from, *to;
	str rr = STR_NULL;
	int n = 0;

	memset(req, 0, sizeof(*req));
	if(parse_headers(msg, HDR_EOH_F, 0) < 0)
		return SHIM_REQ_BAD;
	if(msg->first_line.type != SIP_REQUEST)
		return SHIM_REQ_BAD;
	/* R14: an unparsable Request-URI is answered 400 (tm's t_newtran checked it before imconf
	 * replied statelessly, issue 18) */
	if(parse_sip_msg_uri(msg) < 0)
		return SHIM_REQ_BAD;
	req->method = view(msg->first_line.u.request.method);
	req->ruri = view(msg->first_line.u.request.uri);
	if(msg->new_uri.s != NULL && msg->new_uri.len > 0)
		req->ruri = view(msg->new_uri);

	if(msg->callid == NULL || msg->callid->body.len == 0)
		return SHIM_REQ_BAD;
	req->call_id = view(msg->callid->body);
	if(msg->cseq == NULL || msg->cseq->parsed == NULL)
		return SHIM_REQ_BAD;
	if(str2int(&get_cseq(msg)->number, &req->cseq) < 0)
		return SHIM_REQ_BAD;

	if(parse_from_header(msg) < 0)
		return SHIM_REQ_BAD;
	from = get_from(msg);
	req->from_uri = view(from->uri);
	req->from_tag = view(from->tag_value);
	if(msg->to == NULL || msg->to->parsed == NULL)
		return SHIM_REQ_BAD;
	to = get_to(msg);
	req->to_uri = view(to->uri);
	req->to_tag = view(to->tag_value);

	if(msg->contact != NULL) {
		if(parse_contact(msg->contact) < 0)
			return SHIM_REQ_BAD;
		contact_body_t *cb = (contact_body_t *)msg->contact->parsed;
		if(cb != NULL && cb->contacts != NULL)
			req->contact = view(cb->contacts->uri);
	}

	if(msg->record_route != NULL) {
		/* order 0: as received, which is the route set of the UAS side (RFC 3261 12.1.1) */
		if(print_rr_body(msg->record_route, &rr, 0, 0) != 0)
			return SHIM_REQ_INTERNAL;
		req->record_route = view(rr);
	}
	if(msg->rcv.bind_address != NULL)
		req->socket = view(msg->rcv.bind_address->sock_str);

	for(hf = msg->headers; hf != NULL; hf = hf->next) {
		if(n < max) {
			headers[n].name = view(hf->name);
			headers[n].body = view(hf->body);
			n++;
		}
		req->header_total++;
	}
	req->header_count = n;
	return SHIM_REQ_OK;
}

void shim_request_release(shim_request_t *req)
{
	if(req->record_route.s != NULL)
		pkg_free((char *)req->record_route.s);
	req->record_route.s = NULL;
	req->record_route.len = 0;
}

/* sl is bound on first use, in whichever process needs it: 0 not tried, 1 bound, -1 absent */
static sl_api_t shim_slb;
static int shim_sl_state = 0;

static int sl_bound(void)
{
	if(shim_sl_state == 0)
		shim_sl_state = sl_load_api(&shim_slb) == 0 ? 1 : -1;
	return shim_sl_state > 0;
}

int shim_reply_stateless(void *m, int code, shim_str_t reason)
{
	struct sip_msg *msg = (struct sip_msg *)m;
	str r = {(char *)reason.s, reason.len};

	if(!sl_bound())
		return -1;
	if(shim_slb.sreply(msg, code, &r) < 0) {
		LM_ERR("failed to send the stateless %d reply\n", code);
		return -1;
	}
	return 1;
}

int shim_reply(void *m, int code, shim_str_t reason, shim_str_t headers, shim_str_t to_tag)
{
	struct sip_msg *msg = (struct sip_msg *)m;
	struct cell *t;
	unsigned int hash_index, label;
	str r = {(char *)reason.s, reason.len};
	str h = {(char *)headers.s, headers.len};
	str tag = {(char *)to_tag.s, to_tag.len};

	t = shim_tmb.t_gett();
	if(t == NULL || t == T_UNDEFINED) {
		/* no transaction: sl, our header lines as a reply lump (copied by core) */
		if(!sl_bound())
			return -1;
		if(h.len > 0 && add_lump_rpl(msg, h.s, h.len, LUMP_RPL_HDR) == 0) {
			LM_ERR("no pkg memory for the reply's header lines\n");
			return -1;
		}
		if(shim_slb.dreply(msg, code, &r, &tag) < 0) {
			LM_ERR("failed to send the stateless %d reply\n", code);
			return -1;
		}
		return 1;
	}
	if(shim_tmb.t_get_trans_ident(msg, &hash_index, &label) < 0) {
		LM_ERR("SUBSCRIBE has no transaction to reply in\n");
		return -1;
	}
	/* t_reply_with_body() drops one reference: take one first (t_lookup_ident refs) */
	if(shim_tmb.t_lookup_ident(&t, hash_index, label) < 0) {
		LM_ERR("transaction of the SUBSCRIBE not found\n");
		return -1;
	}
	if(shim_tmb.t_reply_with_body(t, code, &r, NULL, &h, &tag) < 0) {
		LM_ERR("failed to send the %d reply\n", code);
		return -1;
	}
	return 1;
}
