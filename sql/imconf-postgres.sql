-- imconf persistence tables (db_url), PostgreSQL. imconf creates them on first start if missing.
CREATE TABLE IF NOT EXISTS imconf_sessions (
    session_uri VARCHAR(255) PRIMARY KEY NOT NULL,
    kind VARCHAR(16) NOT NULL,
    group_uri VARCHAR(255),
    state BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS imconf_subscriptions (
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
