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
