-- The LLM-written hand-off summary (the extractive one stays in `summary`).
ALTER TABLE tickets ADD COLUMN ai_summary TEXT;
