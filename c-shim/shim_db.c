/*
 * imconf shim: Kamailio's database API (srdb1) for persistence (db_url). Any DB module that
 * implements raw queries works; the statements come from Rust (sql/imconf-*.sql).
 */
#include <string.h>

#include "core/dprint.h"
#include "lib/srdb1/db.h"

#include "shim.h"

static db_func_t shim_dbf;

int shim_db_bind(const char *url)
{
	str u = {(char *)url, (int)strlen(url)};

	if(db_bind_mod(&u, &shim_dbf) < 0)
		return -1;
	if(!DB_CAPABILITY(shim_dbf, DB_CAP_RAW_QUERY)) {
		LM_ERR("the database module of %s has no raw queries\n", url);
		return -1;
	}
	return 0;
}

void *shim_db_open(const char *url)
{
	str u = {(char *)url, (int)strlen(url)};
	return shim_dbf.init(&u);
}

void shim_db_close(void *conn)
{
	if(conn)
		shim_dbf.close((db1_con_t *)conn);
}

int shim_db_exec(void *conn, shim_str_t sql)
{
	str q = {(char *)sql.s, sql.len};
	db1_res_t *res = NULL;

	/* a result is asked for: some modules (db_sqlite) only run the statement when storing it */
	if(shim_dbf.raw_query((db1_con_t *)conn, &q, &res) < 0)
		return -1;
	if(res)
		shim_dbf.free_result((db1_con_t *)conn, res);
	return 0;
}

#define SHIM_DB_MAX_COLS 16

static int use_table(void *conn, const char *table)
{
	str t = {(char *)table, (int)strlen(table)};
	return shim_dbf.use_table((db1_con_t *)conn, &t);
}

/* Column names and typed values in srdb1's form; keys point into `names`. */
static int to_db(const char *const *cols, const shim_db_val_t *vals, int n, str *names,
		db_key_t *keys, db_val_t *dv)
{
	int i;

	if(n < 1 || n > SHIM_DB_MAX_COLS)
		return -1;
	memset(dv, 0, n * sizeof(db_val_t));
	for(i = 0; i < n; i++) {
		names[i].s = (char *)cols[i];
		names[i].len = (int)strlen(cols[i]);
		keys[i] = &names[i];
		switch(vals[i].type) {
			case SHIM_DB_NULL:
				VAL_TYPE(&dv[i]) = DB1_STR;
				VAL_NULL(&dv[i]) = 1;
				break;
			case SHIM_DB_BIGINT:
				VAL_TYPE(&dv[i]) = DB1_BIGINT;
				VAL_BIGINT(&dv[i]) = vals[i].n;
				break;
			case SHIM_DB_STR:
				VAL_TYPE(&dv[i]) = DB1_STR;
				VAL_STR(&dv[i]).s = (char *)vals[i].s.s;
				VAL_STR(&dv[i]).len = vals[i].s.len;
				break;
			case SHIM_DB_BLOB:
				VAL_TYPE(&dv[i]) = DB1_BLOB;
				VAL_BLOB(&dv[i]).s = (char *)vals[i].s.s;
				VAL_BLOB(&dv[i]).len = vals[i].s.len;
				break;
			default:
				return -1;
		}
	}
	return 0;
}

int shim_db_insert(void *conn, const char *table, const char *const *cols,
		const shim_db_val_t *vals, int n)
{
	str names[SHIM_DB_MAX_COLS];
	db_key_t keys[SHIM_DB_MAX_COLS];
	db_val_t dv[SHIM_DB_MAX_COLS];

	if(to_db(cols, vals, n, names, keys, dv) < 0 || use_table(conn, table) < 0)
		return -1;
	return shim_dbf.insert((db1_con_t *)conn, keys, dv, n) < 0 ? -1 : 0;
}

int shim_db_delete(void *conn, const char *table, const char *const *cols,
		const shim_db_val_t *vals, int n)
{
	str names[SHIM_DB_MAX_COLS];
	db_key_t keys[SHIM_DB_MAX_COLS];
	db_val_t dv[SHIM_DB_MAX_COLS];

	if(n == 0) { /* every row */
		if(use_table(conn, table) < 0)
			return -1;
		return shim_dbf.delete((db1_con_t *)conn, NULL, NULL, NULL, 0) < 0 ? -1 : 0;
	}
	if(to_db(cols, vals, n, names, keys, dv) < 0 || use_table(conn, table) < 0)
		return -1;
	return shim_dbf.delete((db1_con_t *)conn, keys, NULL, dv, n) < 0 ? -1 : 0;
}

/* A value read back, whatever type the DB module chose for it. */
static void from_db(const db_val_t *v, shim_db_val_t *out)
{
	memset(out, 0, sizeof(*out));
	if(VAL_NULL(v)) {
		out->type = SHIM_DB_NULL;
		return;
	}
	switch(VAL_TYPE(v)) {
		case DB1_INT:
			out->type = SHIM_DB_BIGINT;
			out->n = VAL_INT(v);
			break;
		case DB1_UINT:
			out->type = SHIM_DB_BIGINT;
			out->n = VAL_UINT(v);
			break;
		case DB1_BIGINT:
			out->type = SHIM_DB_BIGINT;
			out->n = VAL_BIGINT(v);
			break;
		case DB1_UBIGINT:
			out->type = SHIM_DB_BIGINT;
			out->n = (long long)VAL_UBIGINT(v);
			break;
		case DB1_STRING:
			out->type = SHIM_DB_STR;
			out->s.s = VAL_STRING(v);
			out->s.len = VAL_STRING(v) ? (int)strlen(VAL_STRING(v)) : 0;
			break;
		case DB1_STR:
			out->type = SHIM_DB_STR;
			out->s.s = VAL_STR(v).s;
			out->s.len = VAL_STR(v).len;
			break;
		case DB1_BLOB:
			out->type = SHIM_DB_BLOB;
			out->s.s = VAL_BLOB(v).s;
			out->s.len = VAL_BLOB(v).len;
			break;
		default:
			out->type = SHIM_DB_NULL;
	}
}

int shim_db_select(void *conn, const char *table, const char *const *cols, int ncols,
		shim_db_row_cb row, void *ctx)
{
	str names[SHIM_DB_MAX_COLS];
	db_key_t keys[SHIM_DB_MAX_COLS];
	shim_db_val_t out[SHIM_DB_MAX_COLS];
	db1_res_t *res = NULL;
	int i, j;

	if(ncols < 1 || ncols > SHIM_DB_MAX_COLS || use_table(conn, table) < 0)
		return -1;
	for(i = 0; i < ncols; i++) {
		names[i].s = (char *)cols[i];
		names[i].len = (int)strlen(cols[i]);
		keys[i] = &names[i];
	}
	if(shim_dbf.query((db1_con_t *)conn, NULL, NULL, NULL, keys, 0, ncols, NULL, &res) < 0)
		return -1;
	if(res == NULL)
		return 0;
	for(i = 0; i < RES_ROW_N(res); i++) {
		db_row_t *r = &RES_ROWS(res)[i];
		int n = ROW_N(r) < ncols ? ROW_N(r) : ncols;
		for(j = 0; j < n; j++)
			from_db(&ROW_VALUES(r)[j], &out[j]);
		for(; j < ncols; j++)
			out[j].type = SHIM_DB_NULL;
		row(ctx, out, ncols);
	}
	shim_dbf.free_result((db1_con_t *)conn, res);
	return 0;
}
