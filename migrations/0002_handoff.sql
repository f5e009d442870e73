-- Human hand-off: agents, their sessions, tickets and the audit log.

CREATE TABLE agents (
    id             TEXT PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    created_at     TEXT NOT NULL
);

CREATE TABLE agent_tokens (
    token_hash  TEXT PRIMARY KEY,       -- sha256 of the bearer token
    agent_id    TEXT NOT NULL REFERENCES agents(id),
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);

CREATE TABLE tickets (
    id               TEXT PRIMARY KEY,
    code             TEXT NOT NULL UNIQUE,  -- short code the customer can quote
    conversation_id  TEXT NOT NULL REFERENCES conversations(id),
    customer_id      TEXT NOT NULL REFERENCES customers(id),
    priority         TEXT NOT NULL,         -- P1 | P2 | P3
    department       TEXT NOT NULL,
    status           TEXT NOT NULL,         -- new | in_progress | waiting_customer | resolved | closed
    reason           TEXT NOT NULL,
    intent           TEXT NOT NULL,
    summary          TEXT NOT NULL,
    context          TEXT NOT NULL,         -- JSON: entities, retrieval candidates
    assignee         TEXT REFERENCES agents(id),
    sla_due_at       TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    resolved_at      TEXT,
    csat             INTEGER,
    csat_comment     TEXT
);
CREATE INDEX tickets_by_status ON tickets (status, priority, sla_due_at);

CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    agent_id    TEXT NOT NULL,
    ticket_id   TEXT,
    action      TEXT NOT NULL,
    detail      TEXT,
    created_at  TEXT NOT NULL
);
