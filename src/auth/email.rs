//! The one normal form of an e-mail address, for lookups and throttle keys.
//!
//! NFKC folds compatibility forms (full-width letters, ligatures) into one
//! spelling, then Rust's Unicode lower-casing. Only this function lower-cases
//! e-mails: PostgreSQL's `lower()` depends on the database's locale (`İ`
//! becomes `i̇` in one and stays in another), so the database stores and
//! compares the result (`users.email_normalized`) and never folds case itself.

use unicode_normalization::UnicodeNormalization;

pub fn normalize(email: &str) -> String {
    email.trim().nfkc().collect::<String>().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn spellings_of_one_address_agree() {
        assert_eq!(normalize(" Ann@Example.COM "), "ann@example.com");
        // Full-width letters are the same address.
        assert_eq!(normalize("ａｎｎ@example.com"), "ann@example.com");
        // Dotted capital I: one key, whatever the case it was typed in.
        assert_eq!(normalize("İ@x.io"), normalize("i̇@x.io"));
        assert_eq!(normalize("ﬁ@x.io"), "fi@x.io");
    }
}
