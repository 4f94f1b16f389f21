/*
 * imconf shim: in-dialog NOTIFYs through tm, and their completion callback.
 * The callback parameter is an integer token, never a pointer: tm runs the
 * callback in whichever process sees the final response (a worker or a timer).
 */
#include <string.h>

#include "core/dprint.h"
#include "core/mem/mem.h"
#include "core/parser/parse_rr.h"
#include "core/socket_info.h"
#include "core/resolve.h"
#include "core/ut.h"
#include "modules/tm/dlg.h"

#include "shim.h"
#include "shim_int.h"

static str notify_method = str_init("NOTIFY");

static str as_str(shim_str_t v)
{
	str s = {(char *)v.s, v.len};
	return s;
}

static void shim_notify_cb(struct cell *t, int type, struct tmcb_params *ps)
{
	uint64_t token = (uint64_t)(uintptr_t)(*ps->param);
	rs_notify_completed(token, ps->code);
}

static struct socket_info *find_socket(shim_str_t sock)
{
	char buf[256];
	char *host_s;
	int host_len, port, proto;
	str host;

	if(sock.len <= 0 || sock.len >= (int)sizeof(buf))
		return NULL;
	memcpy(buf, sock.s, sock.len);
	buf[sock.len] = '\0';
	if(parse_phostport(buf, &host_s, &host_len, &port, &proto) < 0)
		return NULL;
	host.s = host_s;
	host.len = host_len;
	return grep_sock_info(&host, (unsigned short)port, (unsigned short)proto);
}

int shim_send_notify(const shim_notify_t *n)
{
	dlg_t dlg;
	uac_req_t uac_r;
	str hdrs = as_str(n->headers);
	str body = as_str(n->body);
	int ret;

	memset(&dlg, 0, sizeof(dlg));
	dlg.id.call_id = as_str(n->call_id);
	dlg.id.loc_tag = as_str(n->local_tag);
	dlg.id.rem_tag = as_str(n->remote_tag);
	dlg.loc_uri = as_str(n->local_uri);
	dlg.rem_uri = as_str(n->remote_uri);
	dlg.rem_target = n->remote_target.len > 0 ? as_str(n->remote_target) : dlg.rem_uri;
	/* tm increments loc_seq before building the request (R40: our own counter, kept in shm) */
	dlg.loc_seq.value = n->cseq - 1;
	dlg.loc_seq.is_set = 1;
	dlg.state = DLG_CONFIRMED;
	if(n->route_set.len > 0) {
		if(parse_rr_body((char *)n->route_set.s, n->route_set.len, &dlg.route_set) < 0) {
			LM_ERR("bad stored route set\n");
			return -1;
		}
	}
	dlg.send_sock = find_socket(n->socket);

	set_uac_req(&uac_r, &notify_method, &hdrs, body.len > 0 ? &body : NULL, &dlg,
			TMCB_LOCAL_COMPLETED, shim_notify_cb, (void *)(uintptr_t)n->token);
	ret = shim_tmb.t_request_within(&uac_r);
	if(dlg.route_set)
		free_rr(&dlg.route_set);
	return ret < 0 ? -1 : 0;
}
