//! Persistence with `db_url` (issue 7, docs/persistence.md). Built so far: the database is
//! bound in mod_init and the tables are created when missing. Write-back and restore follow.
use crate::core::persist::{schema_for, statements};
use crate::kam::db::{self, Conn};
use crate::kinfo;

/// mod_init: binds the database and creates the tables if missing. An error names `db_url`.
pub fn init(url: &str) -> Result<(), String> {
    db::bind(url)
        .map_err(|e| format!("modparam \"db_url\": {url}: {e} (load its db_* module first)"))?;
    let Some(schema) = schema_for(url) else {
        kinfo!(
            "db_url {url}: create the tables of sql/imconf-postgres.sql (or -sqlite.sql) yourself"
        );
        return Ok(());
    };
    let conn = Conn::open(url).map_err(|e| format!("modparam \"db_url\": {url}: {e}"))?;
    for stmt in statements(schema) {
        conn.exec(&stmt)
            .map_err(|e| format!("modparam \"db_url\": {url}: creating the tables: {e}"))?;
    }
    kinfo!("persistence tables ready in {url}");
    Ok(())
}
