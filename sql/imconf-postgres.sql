-- imconf persistence tables (db_url), PostgreSQL. imconf creates them on first start if missing.
-- owner: the node whose rows these are (db_node_name, empty for a node alone), so that the
-- nodes of a cluster can share one database (docs/persistence.md).
CREATE TABLE IF NOT EXISTS imconf_sessions (
    owner VARCHAR(255) NOT NULL DEFAULT '',
    session_uri VARCHAR(255) NOT NULL,
    kind VARCHAR(16) NOT NULL,
    group_uri VARCHAR(255),
    state BYTEA NOT NULL,
    PRIMARY KEY (owner, session_uri)
);
-- a dialog has one row whoever holds it: the node that takes a subscription over replaces it
CREATE TABLE IF NOT EXISTS imconf_subscriptions (
    owner VARCHAR(255) NOT NULL DEFAULT '',
    call_id VARCHAR(255) NOT NULL,
    local_tag VARCHAR(64) NOT NULL,
    session_uri VARCHAR(255) NOT NULL,
    subscriber VARCHAR(255) NOT NULL,
    expires BIGINT NOT NULL,
    state BYTEA NOT NULL,
    PRIMARY KEY (call_id, local_tag)
);
CREATE TABLE IF NOT EXISTS imconf_meta (
    name VARCHAR(64) PRIMARY KEY NOT NULL,
    value VARCHAR(255) NOT NULL
);
