-- The one normal form of each e-mail (NFKC + Unicode lower-case), computed by
-- the service (src/auth/email.rs) and compared by equality: PostgreSQL's
-- lower() depends on the database's locale and must not decide who is who.
-- Logins and throttle counters are keyed on it.
ALTER TABLE users ADD COLUMN email_normalized text;

-- Rows written by SQL that does not know the column (seed scripts, tests,
-- older replicas during a rolling deploy) get the database's approximation,
-- which equals the service's for ASCII; the service rewrites non-ASCII ones at
-- start-up (auth::repo::renormalize_emails).
CREATE FUNCTION users_fill_email_normalized() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.email_normalized IS NULL
       OR (TG_OP = 'UPDATE' AND NEW.email IS DISTINCT FROM OLD.email
           AND NEW.email_normalized IS NOT DISTINCT FROM OLD.email_normalized) THEN
        NEW.email_normalized := lower(normalize(btrim(NEW.email), NFKC));
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER users_fill_email_normalized BEFORE INSERT OR UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_fill_email_normalized();

UPDATE users SET email_normalized = lower(normalize(btrim(email), NFKC));
ALTER TABLE users ALTER COLUMN email_normalized SET NOT NULL;
CREATE UNIQUE INDEX users_email_normalized_key ON users (email_normalized);
