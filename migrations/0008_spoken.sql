-- What a caller heard for a bot message on the hotline (the spoken wording: numbers
-- as words, choices read out), where it differs from the chat text.
ALTER TABLE messages ADD COLUMN spoken TEXT;
