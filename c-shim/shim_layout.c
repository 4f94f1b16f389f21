/*
 * imconf shim: the compile-time checks that the mirrors of c-shim/shim.h (which Rust fills:
 * src/kam/exports.rs, src/kam/params.rs) have the layout and constants of Kamailio's own types,
 * in the headers of the Kamailio the module is built for. A Kamailio that changes one fails the
 * build here, not at run time.
 */
#include <stddef.h>

#include "core/sr_module.h"
#include "core/rpc.h"
#include "core/route.h"
#include "core/kemi.h"

#include "shim.h"
#include "shim_int.h"

/* clang-format off */
/* the module descriptor */
_Static_assert(SHIM_MODULE_INTERFACE_VER == MODULE_INTERFACE_VER, "interface version");
_Static_assert(sizeof(shim_module_exports_t) == sizeof(struct module_exports), "exports size");
_Static_assert(offsetof(shim_module_exports_t, cmds) == offsetof(struct module_exports, cmds), "cmds");
_Static_assert(offsetof(shim_module_exports_t, params) == offsetof(struct module_exports, params), "params");
_Static_assert(offsetof(shim_module_exports_t, rpc_methods) == offsetof(struct module_exports, rpc_methods), "rpc");
_Static_assert(offsetof(shim_module_exports_t, pv_items) == offsetof(struct module_exports, pv_items), "pv");
_Static_assert(offsetof(shim_module_exports_t, response_f) == offsetof(struct module_exports, response_f), "resp");
_Static_assert(offsetof(shim_module_exports_t, init_mod_f) == offsetof(struct module_exports, init_mod_f), "init");
_Static_assert(offsetof(shim_module_exports_t, init_child_f) == offsetof(struct module_exports, init_child_f), "child");
_Static_assert(offsetof(shim_module_exports_t, destroy_mod_f) == offsetof(struct module_exports, destroy_mod_f), "destroy");

_Static_assert(sizeof(shim_param_export_t) == sizeof(param_export_t), "param_export_t");
SHIM_SAME_FIELD(shim_param_export_t, param_export_t, name);
SHIM_SAME_FIELD(shim_param_export_t, param_export_t, type);
SHIM_SAME_FIELD(shim_param_export_t, param_export_t, param_pointer);
_Static_assert(SHIM_PARAM_STRING == PARAM_STRING && SHIM_PARAM_INT == PARAM_INT, "PARAM_*");
_Static_assert(sizeof(shim_cmd_export_t) == sizeof(cmd_export_t), "cmd_export_t");
SHIM_SAME_FIELD(shim_cmd_export_t, cmd_export_t, name);
SHIM_SAME_FIELD(shim_cmd_export_t, cmd_export_t, function);
SHIM_SAME_FIELD(shim_cmd_export_t, cmd_export_t, param_no);
SHIM_SAME_FIELD(shim_cmd_export_t, cmd_export_t, fixup);
SHIM_SAME_FIELD(shim_cmd_export_t, cmd_export_t, free_fixup);
SHIM_SAME_FIELD(shim_cmd_export_t, cmd_export_t, flags);
_Static_assert(SHIM_VAR_PARAM_NO == VAR_PARAM_NO, "VAR_PARAM_NO");
_Static_assert(SHIM_REQUEST_ROUTE == REQUEST_ROUTE && SHIM_ANY_ROUTE == ANY_ROUTE, "routes");
_Static_assert(sizeof(shim_rpc_export_t) == sizeof(rpc_export_t), "rpc_export_t");
SHIM_SAME_FIELD(shim_rpc_export_t, rpc_export_t, name);
SHIM_SAME_FIELD(shim_rpc_export_t, rpc_export_t, function);
SHIM_SAME_FIELD(shim_rpc_export_t, rpc_export_t, doc_str);
SHIM_SAME_FIELD(shim_rpc_export_t, rpc_export_t, flags);
_Static_assert(SHIM_RET_ARRAY == RET_ARRAY, "RET_ARRAY");

/* the KEMI table */
_Static_assert(sizeof(shim_kemi_export_t) == sizeof(sr_kemi_t), "sr_kemi_t");
SHIM_SAME_FIELD(shim_kemi_export_t, sr_kemi_t, mname);
SHIM_SAME_FIELD(shim_kemi_export_t, sr_kemi_t, fname);
SHIM_SAME_FIELD(shim_kemi_export_t, sr_kemi_t, rtype);
SHIM_SAME_FIELD(shim_kemi_export_t, sr_kemi_t, func);
SHIM_SAME_FIELD(shim_kemi_export_t, sr_kemi_t, ptypes);
_Static_assert(sizeof(shim_str_t) == sizeof(str), "str");
_Static_assert(offsetof(shim_str_t, s) == offsetof(str, s) && offsetof(shim_str_t, len) == offsetof(str, len), "str");
_Static_assert(SHIM_KEMIP_NONE == SR_KEMIP_NONE && SHIM_KEMIP_INT == SR_KEMIP_INT
		&& SHIM_KEMIP_STR == SR_KEMIP_STR && SHIM_KEMI_PARAMS_MAX == SR_KEMI_PARAMS_MAX, "SR_KEMIP_*");
/* clang-format on */
