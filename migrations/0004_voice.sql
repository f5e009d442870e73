-- Hotline calls: the recognition ladder's state and what speech recognition heard.

CREATE TABLE calls (
    call_id     TEXT PRIMARY KEY,
    caller      TEXT NOT NULL,
    front_end   TEXT NOT NULL,      -- twilio | api
    state       TEXT NOT NULL,      -- JSON: re-prompts, pending confirmation, turn number
    heard       TEXT NOT NULL,      -- JSON array: {text, confidence, alternatives, dtmf, at}
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX calls_by_caller ON calls (caller, created_at);
