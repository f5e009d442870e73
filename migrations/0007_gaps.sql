-- Operators' decisions on proposed knowledge entries (knowledge gaps).
CREATE TABLE gap_decisions (
    cluster_id  TEXT PRIMARY KEY,
    decision    TEXT NOT NULL,      -- accepted | rejected
    entry_id    TEXT,
    created_at  TEXT NOT NULL
);
