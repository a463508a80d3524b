-- A timestamp as the `time` crate's compact serde form of an OffsetDateTime
-- in UTC, the form the API's product events carry (`serde_json::to_value`):
-- [year, day of year, hour, minute, second, nanosecond, 0, 0, 0]. For event
-- payloads built in SQL (`catalog::repo::PRODUCT_EVENT_JSON`, the CSV import).
CREATE FUNCTION time_serde(t timestamptz) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_build_array(
        extract(year FROM u)::int, extract(doy FROM u)::int, extract(hour FROM u)::int,
        extract(minute FROM u)::int, floor(extract(second FROM u))::int,
        (extract(microseconds FROM u)::bigint % 1000000) * 1000, 0, 0, 0)
    FROM (SELECT t AT TIME ZONE 'UTC' AS u) s
$$;
