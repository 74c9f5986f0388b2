//! Cursor paging for lists: a page of items, and the opaque cursor of the
//! next page when there is one. A cursor is the key of the last item of a
//! page, hex-encoded so that it travels in a URL as it is.

use crate::error::AppError;

/// A page of a list and where the next one starts.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// The page size asked for, checked: 1 to `max`, `default` when absent.
pub fn limit(asked: Option<u32>, default: u32, max: u32) -> Result<u32, AppError> {
    let limit = asked.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(AppError::invalid(
            "BAD_LIMIT",
            format!("limit: da 1 a {max}"),
        ))
    }
}

/// Cuts the `limit + 1` items fetched to a page, with the cursor of the
/// next one made from the last item's key parts.
pub fn page<T>(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> Vec<String>) -> Page<T> {
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|last| encode(&key(last)))
    } else {
        None
    };
    Page { items, next }
}

/// The key parts of a cursor, as `parts` of them.
pub fn decode(cursor: &str, parts: usize) -> Result<Vec<String>, AppError> {
    let bad = bad_cursor;
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| {
            cursor
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let out: Vec<String> = text.split('\u{1f}').map(str::to_string).collect();
    if out.len() == parts {
        Ok(out)
    } else {
        Err(bad())
    }
}

/// A cursor incasso did not give out.
pub fn bad_cursor() -> AppError {
    AppError::invalid("BAD_CURSOR", "cursor: non è un cursore dato da incasso")
}

fn encode(parts: &[String]) -> String {
    crate::keys::hex(parts.join("\u{1f}").as_bytes())
}

/// A page of a list the store gives whole: a registry (the Enti, an
/// Ente's stations, offices, services, accertamenti, keys, layouts) is
/// bounded by the size of an Ente, so it is read at once and cut here,
/// yet paged as every list is. Ordered by `key` (of `parts` parts), which
/// the cursor continues after.
pub fn of_whole<T>(
    mut items: Vec<T>,
    cursor: Option<&str>,
    limit: u32,
    parts: usize,
    key: impl Fn(&T) -> Vec<String>,
) -> Result<Page<T>, AppError> {
    items.sort_by_cached_key(&key);
    if let Some(c) = cursor {
        let after = decode(c, parts)?;
        items.retain(|i| key(i) > after);
    }
    items.truncate(limit as usize + 1);
    Ok(page(items, limit, key))
}

/// The default and largest page of a registry: the first page holds a
/// whole registry of any Ente we know, as before paging.
pub const REGISTRY_PAGE: (u32, u32) = (1_000, 10_000);
