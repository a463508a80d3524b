DROP TRIGGER users_fill_email_normalized ON users;
DROP FUNCTION users_fill_email_normalized();
DROP INDEX users_email_normalized_key;
ALTER TABLE users DROP COLUMN email_normalized;
