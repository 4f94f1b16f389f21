/*
 * imconf C shim: the FFI contract between Kamailio and the Rust crate.
 *
 * Only flat C types live here (string views, plain structs, opaque handles);
 * bindgen reads this header and nothing else. The .c files of this folder are
 * the only code that includes Kamailio headers: each wraps one macro or inline
 * API of Kamailio (parser, tm, shm, locks, timers, RPC, logging).
 *
 * Functions named shim_* are implemented in C and called from Rust.
 * Functions named rs_* are implemented in Rust (#[no_mangle]) and called from C.
 */
#ifndef IMCONF_SHIM_H
#define IMCONF_SHIM_H

#include <stddef.h>
#include <stdint.h>

/* A view of bytes owned by someone else (a SIP message, a Rust value). */
typedef struct shim_str
{
	const char *s;
	int len;
} shim_str_t;

/* ---- module descriptor (Rust owns the exported `exports` symbol) ---- */

/* Mirror of Kamailio's struct module_exports; shim_layout.c static-asserts the layout. */
typedef struct shim_module_exports
{
	const char *name;
	unsigned int dlflags;
	const void *cmds;
	const void *params;
	const void *rpc_methods;
	const void *pv_items;
	void *response_f;
	int (*init_mod_f)(void);
	int (*init_child_f)(int rank);
	void (*destroy_mod_f)(void);
} shim_module_exports_t;

/* Version strings and lifecycle functions referenced by Rust's `exports`. */
extern const char shim_ser_full_version[];
extern const char shim_ser_compile_flags[];
int shim_mod_init(void);
int shim_child_init(int rank);
void shim_mod_destroy(void);
#define SHIM_MODULE_INTERFACE_VER 4

/* ---- the tables Kamailio reads ----
 * Built in Rust from one declaration (src/exports.rs: script functions, KEMI, RPC commands;
 * src/core/params.rs: parameters). Mirrors of Kamailio's param_export_t, cmd_export_t,
 * rpc_export_t and sr_kemi_t: shim_layout.c static-asserts every layout and
 * constant against the headers the shim is compiled with. Functions are `void *` here. */
#define SHIM_PARAM_STRING 1u /* PARAM_STRING: Kamailio stores a char * */
#define SHIM_PARAM_INT 2u    /* PARAM_INT: an int */
typedef struct shim_param_export
{
	const char *name;
	unsigned int type;
	void *param_pointer;
} shim_param_export_t;

#define SHIM_VAR_PARAM_NO (-128)
#define SHIM_REQUEST_ROUTE 1u
#define SHIM_ANY_ROUTE 0xFFFFFFFFu
typedef struct shim_cmd_export
{
	const char *name;
	void *function; /* int (*)(msg, char *, char *), or (msg, int argc, action_u_t *vals) */
	int param_no;
	void *fixup;      /* int (*)(void **param, int param_no) */
	void *free_fixup; /* the same */
	unsigned int flags;
} shim_cmd_export_t;

#define SHIM_RET_ARRAY 1u
typedef struct shim_rpc_export
{
	const char *name;
	void *function; /* void (*)(rpc_t *rpc, void *ctx) */
	const char *const *doc_str;
	unsigned int flags;
} shim_rpc_export_t;

#define SHIM_KEMIP_NONE 0
#define SHIM_KEMIP_INT 1
#define SHIM_KEMIP_STR 2
#define SHIM_KEMI_PARAMS_MAX 6
typedef struct shim_kemi_export
{
	shim_str_t mname;
	shim_str_t fname;
	int rtype;
	void *func; /* int (*)(sip_msg_t *msg, str *p1, ...) */
	int ptypes[SHIM_KEMI_PARAMS_MAX];
} shim_kemi_export_t;

/* ---- logging ---- */
enum shim_log_level
{
	SHIM_L_ERR = -1,
	SHIM_L_WARN = 0,
	SHIM_L_NOTICE = 1,
	SHIM_L_INFO = 2,
	SHIM_L_DBG = 3
};
int shim_log_enabled(int level);
/* prefix and func are NUL-terminated; msg is a view */
void shim_log(int level, const char *prefix, const char *func, const char *msg, int len);

/* ---- shared memory and cross-process locks ---- */
void *shim_shm_malloc(size_t size);
void shim_shm_free(void *p);
/* bytes of shm in use by the whole server, and free */
unsigned long shim_shm_used(void);
unsigned long shim_shm_free_size(void);

/* gen_lock_t storage embedded in Rust shm structs; shim_sys.c static-asserts it fits */
#define SHIM_LOCK_SIZE 64
#define SHIM_LOCK_ALIGN 8
int shim_lock_init(void *lock);
/* While this process holds any of these locks, SIGTERM and SIGINT wait (shim_sys.c): a child
 * never exits with a slot locked. */
void shim_lock_get(void *lock);
void shim_lock_release(void *lock);
/* 0: taken; otherwise held by someone else (not waited for) */
int shim_lock_try(void *lock);

/* ---- database (srdb1), persistence with db_url (shim_db.c) ---- */
/* Binds the DB module serving `url` (mod_init; its module must be loaded). 0 ok, -1 error. */
int shim_db_bind(const char *url);
/* A connection of this process (after shim_db_bind), or NULL. */
void *shim_db_open(const char *url);
void shim_db_close(void *conn);
/* Runs one SQL statement, discarding any rows. 0 ok, -1 error (logged by the DB module). */
int shim_db_exec(void *conn, shim_str_t sql);
/* One typed column value (at most 16 columns per call). */
enum shim_db_type
{
	SHIM_DB_NULL = 0,
	SHIM_DB_BIGINT = 1,
	SHIM_DB_STR = 2,
	SHIM_DB_BLOB = 3
};
typedef struct shim_db_val
{
	int type;
	long long n;
	shim_str_t s;
} shim_db_val_t;
/* INSERT one row. 0 ok, -1 error. */
int shim_db_insert(void *conn, const char *table, const char *const *cols,
		const shim_db_val_t *vals, int n);
/* DELETE the rows whose columns equal `vals` (n == 0: every row). 0 ok, -1 error. */
int shim_db_delete(void *conn, const char *table, const char *const *cols,
		const shim_db_val_t *vals, int n);
/* SELECT `cols` of every row, calling `row` once per row; the values live during that call. */
typedef void (*shim_db_row_cb)(void *ctx, const shim_db_val_t *vals, int n);
int shim_db_select(void *conn, const char *table, const char *const *cols, int ncols,
		shim_db_row_cb row, void *ctx);

/* ---- cluster bus over dmq, with enable_dmq (shim_dmq.c) ---- */
/* Binds dmq and registers the DMQ peer "imconf" (mod_init; dmq must be loaded). 0 ok, -1 error. */
int shim_dmq_bind(void);
/* Sends body to every active peer node. 0 sent, -1 error. */
int shim_dmq_broadcast(shim_str_t body);
/* Sends body to one node: the handle rs_dmq_receive was given (valid during that call). */
int shim_dmq_send(void *node, shim_str_t body);
/* The URI dmq knows that node by (its orig_uri), into *uri: valid during that call. 0 ok. */
int shim_dmq_node_uri(void *node, shim_str_t *uri);
/* Sends body to the dmq node known by uri (shim_dmq_node_uri). 0 ok, -1 unknown or error. */
int shim_dmq_send_uri(shim_str_t uri, shim_str_t body);
/* This node's own dmq URI (dmq's server_address modparam), into *uri: valid while Kamailio runs.
 * 0 ok, -1 unknown. */
int shim_dmq_self_uri(shim_str_t *uri);

/* ---- fan-out processes (shim_fanout.c, issue 18) ---- */

/* Wakes one fan-out process for hash slot `slot`; -1 when none can be (no processes, or the
 * queue of wakes is full): the caller then sends the queued NOTIFYs itself. */
int shim_fanout_wake(unsigned int slot);

/* ---- the SUBSCRIBE being handled ---- */
typedef struct shim_header
{
	shim_str_t name;
	shim_str_t body;
} shim_header_t;

typedef struct shim_request
{
	shim_str_t method;
	shim_str_t ruri;
	shim_str_t call_id;
	shim_str_t from_uri;
	shim_str_t from_tag;
	shim_str_t to_uri;
	shim_str_t to_tag;
	shim_str_t contact;      /* first Contact URI, empty when absent */
	shim_str_t record_route; /* all Record-Route entries, in order, comma separated */
	shim_str_t socket;       /* the listening socket it arrived on, "proto:ip:port" */
	unsigned int cseq;
	int header_count;        /* entries written to the caller's array */
	int header_total;        /* headers in the message (may exceed the array) */
} shim_request_t;

enum shim_request_status
{
	SHIM_REQ_OK = 0,
	SHIM_REQ_BAD = -1,      /* unparsable mandatory header: answer 400 */
	SHIM_REQ_INTERNAL = -2  /* out of pkg memory or similar: answer 500 */
};
/* Parses msg and fills req and up to max headers; views live until shim_request_release(). */
int shim_request_view(void *msg, shim_request_t *req, shim_header_t *headers, int max);
void shim_request_release(shim_request_t *req);

/* Replies statelessly through sl, without headers of ours. 1 sent, -1 error. */
int shim_reply_stateless(void *msg, int code, shim_str_t reason);
/* Replies with our To-tag; headers are CRLF-terminated lines. In the request's tm transaction
 * if the script made one (t_newtran), else statelessly through sl: imconf answers
 * retransmissions from its own state (R22, issue 18). 1 sent, -1 error. */
int shim_reply(void *msg, int code, shim_str_t reason, shim_str_t headers, shim_str_t to_tag);

/* ---- NOTIFY through tm ---- */
typedef struct shim_notify
{
	shim_str_t call_id;
	shim_str_t local_tag;
	shim_str_t remote_tag;
	shim_str_t local_uri;
	shim_str_t remote_uri;
	shim_str_t remote_target;
	shim_str_t route_set;
	shim_str_t socket;
	unsigned int cseq; /* the CSeq number this NOTIFY carries */
	shim_str_t headers;
	shim_str_t body;
	uint64_t token;    /* handed back to rs_notify_completed */
} shim_notify_t;
/* 0: tm took it (rs_notify_completed will follow); -1: not sent (no callback will come). */
int shim_send_notify(const shim_notify_t *n);

/* ---- RPC ---- */
/* Reads the next positional argument as a string (integers converted). 1 read, 0 none left. */
int shim_rpc_next_str(void *rpc, void *ctx, shim_str_t *out);
void shim_rpc_fault(void *rpc, void *ctx, int code, shim_str_t msg);
/* Adds a struct to the reply and returns its handle (NULL on error). */
void *shim_rpc_add_struct(void *rpc, void *ctx);
int shim_rpc_struct_str(void *rpc, void *st, const char *name, shim_str_t val);
int shim_rpc_struct_int(void *rpc, void *st, const char *name, long long val);
int shim_rpc_add_str(void *rpc, void *ctx, shim_str_t val);

/* ---- script functions, KEMI and RPC (the calls the tables above lead to) ---- */
/* The SIP message a script function runs for (Kamailio's msg->id, msg->pid): the values of
 * imconf_participant_extra() belong to one message. */
typedef struct shim_msg_ref
{
	unsigned int id;
	int pid;
} shim_msg_ref_t;
/* Most arguments of any script function or RPC command (imconf_participant: 12). A native cfg
 * passes at most 6 to one call and KEMI at most SR_KEMI_PARAMS_MAX (6); arguments 7-12 of
 * imconf_participant come from imconf_participant_extra() on those paths (src/module/extra.rs). */
#define SHIM_MAX_ARGS 12
/* imconf_participant_extra(privacy, nick, disconnection_method, disconnection_reason, contact,
 * when) */
#define SHIM_PARTICIPANT_EXTRA_ARGS 6

/* A script function's `argc` parameters (action_u_t *vals, fixed by shim_fixup_args) evaluated
 * into views valid until the next evaluation, and the message they belong to. 0 ok, -1 error. */
int shim_eval_args(void *msg, int argc, void *vals, shim_str_t *out, shim_msg_ref_t *ref);
/* The fixup of a function taking at most `max` parameters, each a string with variables. */
int shim_fixup_args(void **param, int param_no, int max);
int shim_fixup_free_args(void **param, int param_no);
/* The message a KEMI function runs for. */
void shim_msg_ref(void *msg, shim_msg_ref_t *ref);
/* 1 when msg is a request handled in a request route (imconf_handle_subscribe's KEMI check). */
int shim_is_request_route(void *msg);
/* Adds the KEMI table (KSR.imconf.*); called from mod_register. 0 ok, -1 error. */
int shim_kemi_register(const shim_kemi_export_t *table);

/* ---- entry points implemented in Rust ---- */

int rs_mod_init(void);
int rs_child_init(int rank);
void rs_mod_destroy(void);
int rs_handle_subscribe(void *msg);
/* A KDMQ request for peer "imconf" (dmq worker process) from src_ip (the address bytes, 4 or
 * 16) and src_port (for logs); returns the response code. */
int rs_dmq_receive(shim_str_t body, shim_str_t src_ip, unsigned short src_port, void *node);
/* dmq has this node's peer list: request a full sync. */
void rs_dmq_ready(void);
void rs_notify_completed(uint64_t token, int code);
void rs_timer_tick(void);
/* A fan-out process was woken for hash slot `slot` (shim_fanout.c). */
void rs_fanout_work(unsigned int slot);
/* fanout_workers: how many fan-out processes mod_init registers (0: none). */
int rs_fanout_workers(void);
/* The timer process's interval in ms (the validated timer_interval_ms). */
int rs_timer_interval_ms(void);
/* Kamailio statistics (shim_stats.c): the name of counter `id` (NULL past the last one; the same
 * names as imconf.stats) and its current value, computed from the same counters as imconf.stats. */
/* How many counters shim_stats.c can register with Kamailio (imconf's are checked against it
 * when the crate compiles). */
#define SHIM_STATS_MAX 48
const char *rs_stat_name(int id);
long rs_stat_value(int id);

#endif
