-- Accounts: one row per person. Identifiers are stored normalised (lower-case
-- name and email, E.164 phone), so plain UNIQUE indexes are case-insensitive.
CREATE TABLE accounts (
    name TEXT PRIMARY KEY NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    email TEXT UNIQUE,
    phone TEXT UNIQUE,
    groups TEXT NOT NULL DEFAULT '[]',
    password TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'active',
    status_reason TEXT NOT NULL DEFAULT '',
    credentials_version INTEGER NOT NULL DEFAULT 0,
    totp TEXT NOT NULL DEFAULT '',
    totp_enrolled_at INTEGER NOT NULL DEFAULT 0,
    factors_version INTEGER NOT NULL DEFAULT 0,
    rev INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL DEFAULT 0
);

-- Unused backup codes (keyed hashes); a use is one DELETE, so one wins.
CREATE TABLE backup_codes (
    name TEXT NOT NULL REFERENCES accounts(name) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    PRIMARY KEY (name, code_hash)
);

-- Append-only log of what happened to an account.
CREATE TABLE account_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    client TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX account_events_name ON account_events (name, id);

-- Change feed for gateways sharing one SQLite file: polled by sequence number.
CREATE TABLE account_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    at INTEGER NOT NULL
);
