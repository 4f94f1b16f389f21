/*
 * imconf shim: what the KEMI exports (KSR.imconf.* in Lua, Python, ... scripts) need of C.
 * The table itself is built in Rust from the one declaration of the script functions
 * (src/exports.rs) and added from mod_register, which Rust defines.
 */
#include <stddef.h>

#include "core/kemi.h"
#include "core/dprint.h"
#include "core/route.h"
#include "core/parser/msg_parser.h"

#include "shim.h"
#include "shim_int.h"

void shim_msg_ref(void *m, shim_msg_ref_t *ref)
{
	sip_msg_t *msg = m;
	ref->id = msg->id;
	ref->pid = msg->pid;
}

int shim_is_request_route(void *m)
{
	sip_msg_t *msg = m;
	return is_route_type(REQUEST_ROUTE) && msg->first_line.type == SIP_REQUEST;
}

int shim_kemi_register(const shim_kemi_export_t *table)
{
	/* Kamailio keeps the pointer: the table is a Rust static */
	return sr_kemi_modules_add((sr_kemi_t *)table) < 0 ? -1 : 0;
}
