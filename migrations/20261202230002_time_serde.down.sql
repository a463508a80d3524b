DROP FUNCTION time_serde(timestamptz);
