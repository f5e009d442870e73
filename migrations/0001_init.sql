-- Customers, their channel identities, conversations, every message and every bot
-- decision. Times are RFC 3339 UTC strings.

CREATE TABLE customers (
    id          TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL,
    name        TEXT,
    phone       TEXT,           -- verified phone only
    email       TEXT            -- verified e-mail only
);

CREATE TABLE identities (
    channel          TEXT NOT NULL,
    channel_user_id  TEXT NOT NULL,
    customer_id      TEXT NOT NULL REFERENCES customers(id),
    created_at       TEXT NOT NULL,
    PRIMARY KEY (channel, channel_user_id)
);

CREATE TABLE conversations (
    id               TEXT PRIMARY KEY,
    customer_id      TEXT NOT NULL REFERENCES customers(id),
    channel          TEXT NOT NULL,
    channel_user_id  TEXT NOT NULL,
    status           TEXT NOT NULL,      -- bot | handoff | closed
    state            TEXT NOT NULL,      -- dialogue state (JSON)
    handoff_reason   TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX conversations_by_identity ON conversations (channel, channel_user_id, created_at);

CREATE TABLE messages (
    id                  TEXT PRIMARY KEY,
    conversation_id     TEXT NOT NULL REFERENCES conversations(id),
    direction           TEXT NOT NULL,   -- in | out
    author              TEXT NOT NULL,   -- customer | bot | agent
    text                TEXT NOT NULL,
    quick_replies       TEXT,            -- JSON array of strings
    channel             TEXT NOT NULL,
    channel_message_id  TEXT,
    created_at          TEXT NOT NULL
);
CREATE UNIQUE INDEX messages_inbound_once
    ON messages (channel, channel_message_id)
    WHERE direction = 'in' AND channel_message_id IS NOT NULL;
CREATE INDEX messages_by_conversation ON messages (conversation_id, created_at);

-- One row per answered inbound message: what the bot understood and decided, and the
-- exact response, so a retried delivery gets the same answer.
CREATE TABLE turns (
    message_id       TEXT PRIMARY KEY REFERENCES messages(id),
    conversation_id  TEXT NOT NULL REFERENCES conversations(id),
    intent           TEXT NOT NULL,
    decision         TEXT,               -- retrieval decision (JSON) when retrieval ran
    handoff_reason   TEXT,
    response         TEXT NOT NULL,      -- the API response (JSON)
    created_at       TEXT NOT NULL
);

CREATE TABLE orders (
    code   TEXT PRIMARY KEY,
    phone  TEXT,
    body   TEXT NOT NULL
);
