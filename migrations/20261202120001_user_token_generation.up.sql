-- Bumped whenever a user's existing access tokens must stop working (password
-- change, deactivation). Access tokens carry the generation they were issued
-- under; the principal cache refuses older ones. Tokens issued before this
-- column existed carry none and count as generation 0.
ALTER TABLE users ADD COLUMN token_generation integer NOT NULL DEFAULT 0;
