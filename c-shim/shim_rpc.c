/*
 * imconf shim: RPC argument reading and reply building (the rpc_t API is variadic).
 */
#include "core/str.h"
#include "core/rpc.h"

#include "shim.h"

int shim_rpc_next_str(void *r, void *ctx, shim_str_t *out)
{
	rpc_t *rpc = (rpc_t *)r;
	str s = STR_NULL;
	/* '*': the argument is optional; '.': convert an integer sent by kamcmd to a string */
	if(rpc->scan(ctx, "*.S", &s) < 1)
		return 0;
	out->s = s.s;
	out->len = s.len;
	return 1;
}

void shim_rpc_fault(void *r, void *ctx, int code, shim_str_t msg)
{
	rpc_t *rpc = (rpc_t *)r;
	rpc->fault(ctx, code, "%.*s", msg.len, msg.s);
}

void *shim_rpc_add_struct(void *r, void *ctx)
{
	rpc_t *rpc = (rpc_t *)r;
	void *st = NULL;
	if(rpc->add(ctx, "{", &st) < 0)
		return NULL;
	return st;
}

int shim_rpc_struct_str(void *r, void *st, const char *name, shim_str_t val)
{
	rpc_t *rpc = (rpc_t *)r;
	str s = {(char *)val.s, val.len};
	return rpc->struct_add(st, "S", name, &s);
}

int shim_rpc_struct_int(void *r, void *st, const char *name, long long val)
{
	rpc_t *rpc = (rpc_t *)r;
	/* 'd' is the one integer type every RPC transport (binrpc, jsonrpc, xmlrpc) supports */
	int v = val > 2147483647LL ? 2147483647 : (val < -2147483647LL ? -2147483647 : (int)val);
	return rpc->struct_add(st, "d", name, v);
}

int shim_rpc_add_str(void *r, void *ctx, shim_str_t val)
{
	rpc_t *rpc = (rpc_t *)r;
	str s = {(char *)val.s, val.len};
	return rpc->add(ctx, "S", &s);
}
