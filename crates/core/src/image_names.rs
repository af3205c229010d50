//! Which entries of a VM directory are a volume's images (docs/design.md §2).
//!
//! Why: a remove batch finds a volume's images by listing its VM directory under the
//! volume's lock, so it removes exactly what is there, and never a file whose name
//! only looks like one. The rule is ts/store/names.ts `parseImageName`: the clean,
//! dirty, precache and import images, numbered revisions (out of range only as temp
//! files), kept bases and partial receives, and temp files of any of them
//! (`<image>~<random>`). Pure byte matching, no syscalls.

/// Highest revision number the pool makes (ts/store/names.ts `MAX_REVISION`).
const MAX_REVISION: u64 = (1 << 53) - 2;

/// Whether `name`, an entry of a VM directory, is an image of the volume whose
/// images are named `base…`: exactly when ts/store/names.ts `parseImageName(name)`
/// gives this base (and, for a revision out of range, only as a temp file), as
/// the pool names them. A temp file is `<image>~<random>`.
pub fn is_image_of(base: &[u8], name: &[u8]) -> bool {
    let (stem, temp) = match name.iter().position(|&c| c == b'~') {
        Some(m) if m + 1 == name.len() => return false,
        Some(m) => (&name[..m], true),
        None => (name, false),
    };
    // `<base>.img.<rev>@<YYYY-MM-DDTHH:MM:SS>Z` and `<base>.img.(base|partial)@<32 hex>`:
    // the part after the last `.img.` has no dot, so only the last one can match.
    if let Some(i) = stem.windows(5).rposition(|w| w == b".img.") {
        let (b, tail) = (&stem[..i], &stem[i + 5..]);
        if !b.is_empty() {
            if let Some(rev) = revision_number(tail) {
                return b == base && (rev.is_some() || temp);
            }
            if kept_base(tail) {
                return b == base;
            }
        }
    }
    // Longest suffix first: `-dirty.img` also ends in `.img`.
    for suffix in [
        &b"-dirty.img"[..],
        b"-precache.img",
        b"-import.img",
        b".img",
    ] {
        if stem.len() > suffix.len() && stem.ends_with(suffix) {
            return &stem[..stem.len() - suffix.len()] == base;
        }
    }
    false
}

/// `<rev>@<YYYY-MM-DDTHH:MM:SS>Z`: `Some(Some(rev))` in range, `Some(None)` out of
/// range (more than 16 digits or above MAX_REVISION), `None` when it is not one.
fn revision_number(tail: &[u8]) -> Option<Option<u64>> {
    let at = tail.iter().position(|&c| c == b'@')?;
    let (digits, stamp) = (&tail[..at], &tail[at + 1..]);
    let ok_digits =
        matches!(digits.first(), Some(b'1'..=b'9')) && digits.iter().all(u8::is_ascii_digit);
    let pattern = b"dddd-dd-ddTdd:dd:ddZ";
    let ok_stamp = stamp.len() == pattern.len()
        && stamp.iter().zip(pattern).all(|(&c, &p)| {
            if p == b'd' {
                c.is_ascii_digit()
            } else {
                c == p
            }
        });
    if !ok_digits || !ok_stamp {
        return None;
    }
    if digits.len() > 16 {
        return Some(None);
    }
    let n = digits
        .iter()
        .fold(0u64, |n, &c| n * 10 + u64::from(c - b'0'));
    Some((n <= MAX_REVISION).then_some(n))
}

/// `(base|partial)@<32 lowercase hex>`.
fn kept_base(tail: &[u8]) -> bool {
    let hex = tail
        .strip_prefix(b"base@")
        .or_else(|| tail.strip_prefix(b"partial@"));
    hex.is_some_and(|h| h.len() == 32 && h.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_of_a_volume_by_name() {
        let yes = |n: &str| is_image_of(b"root", n.as_bytes());
        for n in [
            "root.img",
            "root-dirty.img",
            "root-precache.img",
            "root-import.img",
            "root.img.1@2026-12-06T16:46:28Z",
            "root.img.9007199254740990@2026-12-06T16:46:28Z",
            "root.img.base@0123456789abcdef0123456789abcdef",
            "root.img.partial@0123456789abcdef0123456789abcdef",
            "root.img~a1b2",
            "root-dirty.img~x",
            "root.img.99999999999999999@2026-12-06T16:46:28Z~t",
        ] {
            assert!(yes(n), "{n}");
        }
        for n in [
            "root",
            "root~",
            "root.img~",
            "private.img",
            "root-x.img",
            "xroot.img",
            ".img",
            "root-dirty.img.img",
            "root.img.0@2026-12-06T16:46:28Z",
            "root.img.1@2026-12-06T16:46:28",
            "root.img.1@2026-12-06 16:46:28Z",
            "root.img.9007199254740991@2026-12-06T16:46:28Z",
            "root.img.99999999999999999@2026-12-06T16:46:28Z",
            "root.img.base@0123456789ABCDEF0123456789abcdef",
            "root.img.base@0123",
        ] {
            assert!(!yes(n), "{n}");
        }
        // A base that is itself longer: `root-dirty.img` is `root`'s, never `root-dirty`'s.
        assert!(!is_image_of(b"root-dirty", b"root-dirty.img"));
        assert!(is_image_of(b"a.img.b", b"a.img.b.img"));
    }
}
