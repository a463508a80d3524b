DROP INDEX IF EXISTS search_tokens_trgm_idx;
