-- A term of ASCII letters and digits with a letter lies inside one token of
-- any text containing it, so when no token of the vocabulary contains it, no
-- product does: the search goes straight to spelling correction instead of
-- walking the list and asking the catalog's trigram indexes
-- (src/catalog/search_tokens.rs `in_no_token`). The vocabulary is small (a
-- few thousand tokens), so its trigram index answers that in well under a
-- millisecond.
CREATE INDEX search_tokens_trgm_idx ON search_tokens USING gin (token gin_trgm_ops);
