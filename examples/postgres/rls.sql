-- Row-level security keyed on the identity Gatehouse sets in every transaction.
-- Run as the owner of the resource's database (the role in the vault secret's DSN).
-- Inside each request Gatehouse calls set_config(..., true) for:
--   gatehouse.user         the person (the token's subject)
--   gatehouse.groups       their groups, comma-separated
--   gatehouse.app          the app named by the token ('' when ad hoc)
--   gatehouse.environment  the environment
-- Callers can never set these themselves: SET / set_config / RESET of gatehouse.* is refused.

CREATE TABLE notes (
    id    serial PRIMARY KEY,
    owner text NOT NULL DEFAULT current_setting('gatehouse.user'),
    body  text NOT NULL
);

ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
-- FORCE: the policy applies to the table's owner too, which is the role Gatehouse connects as.
ALTER TABLE notes FORCE ROW LEVEL SECURITY;

-- Each person sees and writes only their own notes.
CREATE POLICY notes_own ON notes
    USING (owner = current_setting('gatehouse.user', true))
    WITH CHECK (owner = current_setting('gatehouse.user', true));

-- Members of the 'leads' group also read everyone's notes.
CREATE POLICY notes_leads_read ON notes FOR SELECT
    USING ('leads' = ANY (string_to_array(current_setting('gatehouse.groups', true), ',')));
