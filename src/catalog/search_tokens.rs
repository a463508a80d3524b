//! Terms of several words, found by word (migration 20261203120001): the
//! conditions a product whose `search_text` contains the term must meet on
//! its tokens, for the GIN index `products_search_tokens_idx`.
//!
//! A token is a maximal run of ASCII letters and digits; only tokens with a
//! letter are indexed. When a text contains the term, a token of the term
//! with a separator on both sides is a whole token of the text, the first one
//! (separator after it only) is the end of one, the last one (separator
//! before it only) is the start of one. The first and the last are expanded
//! to the tokens of the vocabulary (`search_tokens`) that end / start with
//! them; the product must carry one token of each set. Necessary, not
//! sufficient: the caller still applies the LIKE.

use sqlx::PgPool;

/// A set wider than this is dropped rather than sent to the index ("a" starts
/// thousands of tokens; the other conditions and the LIKE still decide).
const MAX_SET: usize = 64;

/// How the term bounds one of its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// Separators on both sides: a whole token of the text.
    Whole,
    /// A separator after it only (the term's first token): a token's end.
    End,
    /// A separator before it only (the term's last token): a token's start.
    Start,
}

/// The term's indexed tokens (those with a letter), each with how it is
/// bounded and its place among all the term's tokens (digit runs included):
/// two with consecutive places are adjacent in any text containing the term.
/// A term without a separator has none: it is one token bounded on neither
/// side, which could be anywhere inside a token.
fn placed_tokens(term: &str) -> Vec<(usize, Bound, &str)> {
    let pieces: Vec<&str> = term.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    let last = pieces.len() - 1;
    let mut place = 0;
    let mut out = Vec::new();
    for (i, &t) in pieces.iter().enumerate() {
        if t.is_empty() {
            continue;
        }
        place += 1;
        if !t.bytes().any(|b| b.is_ascii_lowercase()) {
            continue;
        }
        let bound = match (i > 0, i < last) {
            (true, true) => Bound::Whole,
            (false, true) => Bound::End,
            (true, false) => Bound::Start,
            (false, false) => continue,
        };
        out.push((place, bound, t));
    }
    out
}

/// The first string after every string starting with `prefix` in byte order
/// (`prefix` is ASCII letters and digits, so its last byte + 1 is ASCII).
fn range_end(prefix: &str) -> String {
    let mut end = prefix.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    String::from_utf8(end).expect("ASCII stays ASCII")
}

/// What the word indexes can look up for a term of several words.
#[derive(Debug, Default)]
pub struct Words {
    /// One token set per condition: a product must carry a token of each
    /// (`products_search_tokens_idx`); an empty set means no product can match.
    pub sets: Vec<Vec<String>>,
    /// The pairs (`product_search_pairs`) one of which a product containing
    /// the term carries, from the term's first two adjacent tokens; None when
    /// it has no two or their sets are too wide.
    pub pairs: Option<Vec<String>>,
}

/// Pairs beyond this many are not looked up (each is one probe of the index).
const MAX_PAIRS: usize = 256;

/// The words of a lower-cased term the indexes can look up, or None when
/// fewer than two token conditions are usable: one condition alone may be a
/// token most products carry ("seed 0001"), which the trigram index answers
/// better.
pub async fn words(db: &PgPool, term: &str) -> Result<Option<Words>, sqlx::Error> {
    let placed = placed_tokens(term);
    if placed.len() < 2 {
        return Ok(None);
    }
    let start = placed
        .iter()
        .find(|(_, b, _)| *b == Bound::Start)
        .map(|(_, _, t)| *t);
    let end: Option<String> = placed
        .iter()
        .find(|(_, b, _)| *b == Bound::End)
        .map(|(_, _, t)| t.chars().rev().collect());
    // One round trip for both expansions; MAX_SET + 1 rows tell "too wide".
    let (starting, ending): (Vec<String>, Vec<String>) = sqlx::query_as(
        "SELECT ARRAY(SELECT token FROM search_tokens WHERE token >= $1 AND token < $2
                      ORDER BY token LIMIT $5),
                ARRAY(SELECT token FROM search_tokens
                      WHERE reverse(token) >= $3 AND reverse(token) < $4
                      ORDER BY reverse(token) LIMIT $5)",
    )
    .bind(start)
    .bind(start.map(range_end))
    .bind(end.as_deref())
    .bind(end.as_deref().map(range_end))
    .bind(MAX_SET as i64 + 1)
    .fetch_one(db)
    .await?;
    let set_of = |bound: Bound, token: &str| match bound {
        Bound::Whole => vec![token.to_owned()],
        Bound::Start => starting.clone(),
        Bound::End => ending.clone(),
    };
    let sets: Vec<Vec<String>> = placed
        .iter()
        .map(|&(_, bound, token)| set_of(bound, token))
        .filter(|set| set.len() <= MAX_SET)
        .collect();
    if sets.len() < 2 {
        return Ok(None);
    }
    let pairs = placed
        .windows(2)
        .find(|w| w[1].0 == w[0].0 + 1)
        .map(|w| (set_of(w[0].1, w[0].2), set_of(w[1].1, w[1].2)))
        .filter(|(a, b)| a.len().max(b.len()) <= MAX_SET && a.len() * b.len() <= MAX_PAIRS)
        .map(|(a, b)| {
            a.iter()
                .flat_map(|x| b.iter().map(move |y| format!("{x} {y}")))
                .collect()
        });
    Ok(Some(Words { sets, pairs }))
}

/// Whether no product can contain the lower-cased `term`, known from the
/// vocabulary alone: a term of ASCII letters and digits with a letter lies
/// inside one indexed token of any text containing it, so if no token
/// contains it, nothing does. False when the term is not of that kind.
pub async fn in_no_token(db: &PgPool, term: &str) -> Result<bool, sqlx::Error> {
    let plain = term.bytes().all(|b| b.is_ascii_alphanumeric())
        && term.bytes().any(|b| b.is_ascii_lowercase());
    if !plain {
        return Ok(false);
    }
    sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM search_tokens WHERE token LIKE $1)")
        .bind(super::repo::like_pattern(term))
        .fetch_one(db)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(term: &str) -> Vec<(Bound, &str)> {
        placed_tokens(term)
            .into_iter()
            .map(|(_, b, t)| (b, t))
            .collect()
    }

    #[test]
    fn places_tell_which_tokens_are_adjacent() {
        let places = |term| -> Vec<usize> { placed_tokens(term).iter().map(|t| t.0).collect() };
        assert_eq!(places("copper hinge"), [1, 2]);
        assert_eq!(places("copper  hinge"), [1, 2]);
        // "12" stands between: copper and hinge are not adjacent.
        assert_eq!(places("copper 12 hinge"), [1, 3]);
        assert_eq!(places("-copper hinge 12mm"), [1, 2, 3]);
    }

    #[test]
    fn each_token_is_bounded_by_where_the_term_has_separators() {
        assert_eq!(
            tokens("copper hinge"),
            vec![(Bound::End, "copper"), (Bound::Start, "hinge")]
        );
        assert_eq!(
            tokens("brass m6 hex bolt"),
            vec![
                (Bound::End, "brass"),
                (Bound::Whole, "m6"),
                (Bound::Whole, "hex"),
                (Bound::Start, "bolt")
            ]
        );
        // A leading or trailing separator bounds the outer tokens too.
        assert_eq!(
            tokens("(copper hinge)"),
            vec![(Bound::Whole, "copper"), (Bound::Whole, "hinge")]
        );
        // Digit runs are not indexed; non-ASCII letters separate.
        assert_eq!(
            tokens("hinge 12 x"),
            vec![(Bound::End, "hinge"), (Bound::Start, "x")]
        );
        assert_eq!(
            tokens("crème brûlée"),
            vec![
                (Bound::End, "cr"),
                (Bound::Whole, "me"),
                (Bound::Whole, "br"),
                (Bound::Whole, "l"),
                (Bound::Start, "e")
            ]
        );
        // One token bounded on neither side: anywhere inside a token.
        assert!(tokens("hinge").is_empty());
    }

    #[test]
    fn a_range_end_is_past_every_longer_token() {
        assert_eq!(range_end("hinge"), "hingf");
        assert_eq!(range_end("m9"), "m:");
        assert!("hinges".as_bytes() < range_end("hinge").as_bytes());
    }
}
