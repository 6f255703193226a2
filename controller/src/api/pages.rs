//! AIP-158 pagination for every list: page sizes with a default and a ceiling, and
//! page tokens that are opaque (URL-safe base64), stable (they name the last item
//! returned, a keyset, not an offset, so items changing while a client pages
//! neither repeat nor go missing) and tied to the request they continue (a token
//! used with another filter is refused, naming `page_token`).

use crate::api::errors::bad_request;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tonic::Status;

/// What a token carries: the request it continues and where the last page ended.
#[derive(serde::Serialize, serde::Deserialize)]
struct Token<K> {
    /// A fingerprint of the request's filter.
    filter: String,
    after: K,
}

/// A request's filter as a short fingerprint (the token must not grow with it).
fn fingerprint(filter: &impl std::fmt::Debug) -> String {
    let digest = Sha256::digest(format!("{filter:?}").as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The token continuing after `after` with the same `filter`.
pub(crate) fn token<K: Serialize>(filter: &impl std::fmt::Debug, after: K) -> String {
    let json = serde_json::to_vec(&Token { filter: fingerprint(filter), after }).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// Where a page starts: `None` for the first page (an empty token), else the key
/// the previous page ended at. A token that is not one of ours, or was made for
/// another filter, is refused naming `page_token`.
pub(crate) fn after<K: DeserializeOwned>(token: &str, filter: &impl std::fmt::Debug) -> Result<Option<K>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || bad_request("page_token", "is not a token this list gave (ask again without one)".into());
    let bytes = URL_SAFE_NO_PAD.decode(token.as_bytes()).map_err(|_| invalid())?;
    let token: Token<K> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if token.filter != fingerprint(filter) {
        return Err(bad_request("page_token", "was made for another filter: send the same filter as the first page".into()));
    }
    Ok(Some(token.after))
}

/// A page size: 0 means `default`, above `max` is coerced to `max` (AIP-158), and a
/// negative size is refused naming the field.
pub(crate) fn size(page_size: i32, default: usize, max: usize) -> Result<usize, Status> {
    match usize::try_from(page_size) {
        Ok(0) => Ok(default),
        Ok(n) => Ok(n.min(max)),
        Err(_) => Err(bad_request("page_size", format!("{page_size} is negative"))),
    }
}

/// The first `size` items of `items` (already sorted and past the token) and the
/// token for the rest, if there is more.
pub(crate) fn page<T, K: Serialize>(mut items: Vec<T>, size: usize, filter: &impl std::fmt::Debug, key: impl Fn(&T) -> K) -> (Vec<T>, String) {
    if items.len() <= size {
        return (items, String::new());
    }
    items.truncate(size);
    let next = items.last().map_or_else(String::new, |last| token(filter, key(last)));
    (items, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_strangers() {
        let filter = ("HepB", 3);
        let t = token(&filter, ("2027-01-31", "(01)1(21)A"));
        assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{t}");
        let key: Option<(String, String)> = after(&t, &filter).expect("ours");
        assert_eq!(key, Some(("2027-01-31".into(), "(01)1(21)A".into())));
        assert_eq!(after::<(String, String)>("", &filter).expect("first page"), None);
        let other = after::<(String, String)>(&t, &("BCG", 3)).expect_err("another filter");
        assert!(other.message().contains("another filter"), "{}", other.message());
        for junk in ["%%%", "bm90IGpzb24", "e30"] {
            let e = after::<(String, String)>(junk, &filter).expect_err(junk);
            assert!(e.message().starts_with("page_token:"), "{}", e.message());
        }
    }

    #[test]
    fn sizes_default_coerce_and_refuse_negatives() {
        assert_eq!(size(0, 100, 1000).expect("default"), 100);
        assert_eq!(size(5, 100, 1000).expect("as asked"), 5);
        assert_eq!(size(i32::MAX, 100, 1000).expect("coerced"), 1000);
        assert!(size(-1, 100, 1000).is_err());
    }

    #[test]
    fn a_page_ends_with_a_token_only_when_more_follow() {
        let (first, next) = page(vec![1, 2, 3], 2, &"f", |n| *n);
        assert_eq!(first, vec![1, 2]);
        assert_eq!(after::<i32>(&next, &"f").expect("token"), Some(2));
        let (all, none) = page(vec![1, 2], 2, &"f", |n| *n);
        assert_eq!((all, none), (vec![1, 2], String::new()));
    }
}
