-- Agent accounts: usernames are case-insensitive (stored lower-case; `Lan` and `lan`
-- are one account) and an account can be disabled (it cannot sign in, and its tokens
-- stop working). Existing names are lower-cased where that joins no two accounts;
-- such a pair keeps its names (`cskh agent list` shows both, and the one signed in
-- as the lower-case name can be kept while the other is disabled).
ALTER TABLE agents ADD COLUMN disabled_at TEXT;
UPDATE agents SET username = lower(username)
 WHERE username <> lower(username)
   AND NOT EXISTS (SELECT 1 FROM agents other
                   WHERE other.id <> agents.id AND lower(other.username) = lower(agents.username));
