-- Messaging platforms: the page / OA an identity writes to, the outbox of every
-- message pushed to a platform, refreshed platform tokens, merged customers.

ALTER TABLE identities ADD COLUMN account TEXT;        -- Messenger page id / Zalo OA id
ALTER TABLE customers ADD COLUMN merged_into TEXT;     -- set when linked into another customer

-- One row per outbound message that must be pushed to a platform. Written in the
-- same transaction as the message; the worker sends, retries with backoff, and
-- records the outcome.
CREATE TABLE outbox (
    message_id       TEXT PRIMARY KEY REFERENCES messages(id),
    conversation_id  TEXT NOT NULL REFERENCES conversations(id),
    channel          TEXT NOT NULL,
    status           TEXT NOT NULL,      -- pending | sent | failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT,
    platform_id      TEXT,               -- the platform's id for the sent message
    created_at       TEXT NOT NULL,
    sent_at          TEXT
);
CREATE INDEX outbox_pending ON outbox (status, next_attempt_at);

CREATE TABLE channel_tokens (
    channel        TEXT PRIMARY KEY,
    access_token   TEXT NOT NULL,
    refresh_token  TEXT,
    updated_at     TEXT NOT NULL
);
