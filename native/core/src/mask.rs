//! Masking of volatile output before a result is fingerprinted.
//!
//! A tool's answer often carries noise that changes on every run although nothing happened:
//! request ids, timestamps, elapsed times. Left in, that noise would make every answer look new and
//! hide a loop. [`mask_volatile`] replaces, in one pass and without regexes:
//!
//! * UUIDs (`123e4567-e89b-12d3-a456-426614174000`) by `<uuid>`,
//! * ISO-8601 date-times (`2024-05-01T12:30:00Z`, `2024-05-01 12:30:00.123+02:00`) by `<time>`;
//!   a bare date is kept, since a sweep over dates is real progress,
//! * hex ids of 8 or more digits mixing letters and digits (`9f86d081`, `0x7ffd5a3c`) by `<hex>`,
//! * durations (`1.23s`, `350ms`, `12 µs`, `0.5 seconds`) by `<dur>`.
//!
//! So `42 passed in 1.20s` and `42 passed in 1.35s` are the same answer.

use alloc::borrow::Cow;
use alloc::vec::Vec;

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Length of a run of bytes from `s[i..]` satisfying `f`.
fn run(s: &[u8], i: usize, f: impl Fn(u8) -> bool) -> usize {
    s[i..].iter().take_while(|&&b| f(b)).count()
}

fn digits(s: &[u8], i: usize, n: usize) -> bool {
    s.len() >= i + n && s[i..i + n].iter().all(u8::is_ascii_digit)
}

fn uuid_at(s: &[u8], i: usize) -> usize {
    const GROUPS: [usize; 5] = [8, 4, 4, 4, 12];
    let mut j = i;
    for (g, &n) in GROUPS.iter().enumerate() {
        if s.len() < j + n || !s[j..j + n].iter().all(|&b| is_hex(b)) {
            return 0;
        }
        j += n;
        if g < 4 {
            if s.get(j) != Some(&b'-') {
                return 0;
            }
            j += 1;
        }
    }
    if s.get(j).is_some_and(|&b| is_word(b)) {
        return 0;
    }
    j - i
}

/// `YYYY-MM-DD[T ]HH:MM[:SS[.fff]][Z|±HH[:]MM]`; the time part is required.
fn datetime_at(s: &[u8], i: usize) -> usize {
    if !(digits(s, i, 4) && s.get(i + 4) == Some(&b'-') && digits(s, i + 5, 2))
        || !(s.get(i + 7) == Some(&b'-') && digits(s, i + 8, 2))
    {
        return 0;
    }
    let mut j = i + 10;
    if !matches!(s.get(j), Some(b'T') | Some(b' ') | Some(b't')) || !digits(s, j + 1, 2) {
        return 0;
    }
    j += 3;
    if s.get(j) != Some(&b':') || !digits(s, j + 1, 2) {
        return 0;
    }
    j += 3;
    if s.get(j) == Some(&b':') && digits(s, j + 1, 2) {
        j += 3;
        if matches!(s.get(j), Some(b'.') | Some(b',')) && digits(s, j + 1, 1) {
            j += 1 + run(s, j + 1, |b| b.is_ascii_digit());
        }
    }
    match s.get(j) {
        Some(b'Z') | Some(b'z') => j += 1,
        Some(b'+') | Some(b'-') if digits(s, j + 1, 2) => {
            j += 3;
            if s.get(j) == Some(&b':') && digits(s, j + 1, 2) {
                j += 3;
            } else if digits(s, j, 2) {
                j += 2;
            }
        }
        _ => {}
    }
    j - i
}

fn hex_id_at(s: &[u8], i: usize) -> usize {
    let prefix = if s[i] == b'0' && matches!(s.get(i + 1), Some(b'x') | Some(b'X')) { 2 } else { 0 };
    let n = run(s, i + prefix, is_hex);
    if n < 8 || s.get(i + prefix + n).is_some_and(|&b| is_word(b)) {
        return 0;
    }
    let body = &s[i + prefix..i + prefix + n];
    let has_digit = body.iter().any(u8::is_ascii_digit);
    let has_letter = body.iter().any(u8::is_ascii_alphabetic);
    if (has_digit && has_letter) || (prefix == 2 && has_digit) {
        prefix + n
    } else {
        0
    }
}

/// A number followed by a time unit: `1.2s`, `350ms`, `12 µs`, `3 seconds`.
fn duration_at(s: &[u8], i: usize) -> usize {
    let mut j = i + run(s, i, |b| b.is_ascii_digit());
    if j == i {
        return 0;
    }
    if s.get(j) == Some(&b'.') && digits(s, j + 1, 1) {
        j += 1 + run(s, j + 1, |b| b.is_ascii_digit());
    }
    let spaced = s.get(j) == Some(&b' ');
    let k = if spaced { j + 1 } else { j };
    const UNITS: [&[u8]; 12] = [
        b"milliseconds", b"microseconds", b"seconds", b"second", b"secs", b"sec", b"ms", b"us",
        "\u{b5}s".as_bytes(), "\u{3bc}s".as_bytes(), b"ns", b"s",
    ];
    for unit in UNITS {
        // A lone `s` right after a number is a unit only when unspaced (`3 s` is too ambiguous).
        if spaced && unit == b"s" {
            continue;
        }
        if s[k..].starts_with(unit) && !s.get(k + unit.len()).is_some_and(|&b| is_word(b)) {
            return k + unit.len() - i;
        }
    }
    0
}

/// Replaces volatile substrings of `text` by fixed placeholders. Borrows when nothing changed.
pub fn mask_volatile(text: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0; // bytes of `text` already in `out`
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        let at_boundary = i == 0 || !is_word(text[i - 1]);
        if !at_boundary || !(b.is_ascii_alphanumeric()) {
            i += 1;
            continue;
        }
        let (n, placeholder): (usize, &[u8]) = if b.is_ascii_digit() {
            let n = datetime_at(text, i);
            if n > 0 {
                (n, b"<time>")
            } else {
                let n = uuid_at(text, i);
                if n > 0 {
                    (n, b"<uuid>")
                } else {
                    let n = hex_id_at(text, i);
                    if n > 0 { (n, b"<hex>") } else { (duration_at(text, i), b"<dur>") }
                }
            }
        } else if is_hex(b) {
            let n = uuid_at(text, i);
            if n > 0 { (n, b"<uuid>") } else { (hex_id_at(text, i), b"<hex>") }
        } else {
            (0, b"")
        };
        if n == 0 {
            // Skip the rest of this word: masks only start at a word boundary.
            i += 1 + run(text, i + 1, is_word);
            continue;
        }
        let buf = out.get_or_insert_with(|| Vec::with_capacity(text.len()));
        buf.extend_from_slice(&text[copied..i]);
        buf.extend_from_slice(placeholder);
        i += n;
        copied = i;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut buf) => {
            buf.extend_from_slice(&text[copied..]);
            Cow::Owned(buf)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn m(s: &str) -> alloc::string::String {
        alloc::string::String::from_utf8(mask_volatile(s.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn masks_each_kind() {
        assert_eq!(m("42 passed in 1.20s"), "42 passed in <dur>");
        assert_eq!(m("took 350ms, then 2 seconds"), "took <dur>, then <dur>");
        assert_eq!(m("id 123e4567-e89b-12d3-a456-426614174000."), "id <uuid>.");
        assert_eq!(m("at 2024-05-01T12:30:00.123Z ok"), "at <time> ok");
        assert_eq!(m("at 2024-05-01 12:30:00+02:00"), "at <time>");
        assert_eq!(m("commit 9f86d081884c7d65 done"), "commit <hex> done");
        assert_eq!(m("ptr 0x7ffd5a3c"), "ptr <hex>");
    }

    #[test]
    fn keeps_what_is_not_volatile() {
        for s in ["date 2024-05-01", "order 12345678", "deadbeefcafe", "page 3 of 10", "v1.2.3", "3 s", "fixes #42"] {
            assert_eq!(m(s), s, "{s}");
        }
        assert!(matches!(mask_volatile(b"nothing here"), Cow::Borrowed(_)));
    }

    /// Fragments that make up volatile text and its near misses, so that generated inputs match often.
    const FRAGMENTS: &[&str] = &[
        "2024-05-01", "2024-05-0", "T12:30:00", "T12:30", " 12:30", "t01:02", ":45", ".123", ",5", ".", "Z", "z",
        "+02:00", "-0530", "+02", "123e4567-e89b-12d3-a456-426614174000", "123e4567-", "e89b-", "426614174000",
        "0x7ffd5a3c", "0X", "0x", "9f86d081", "deadbeef", "12345678", "cafe", "350", "1.20", "0.5", "42", "7",
        "ms", "s", " s", "µs", "μs", "us", "ns", "sec", "secs", " second", " seconds", " milliseconds",
        "microseconds", "_", "a", "x", "g", "A", "F", " ", "-", ":", "\n", "\"", ",", "µ", "μ", "é",
    ];

    /// Text built from [`FRAGMENTS`], random ASCII and random bytes (non-UTF-8 included).
    fn volatile_text() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            6 => prop::sample::select(FRAGMENTS).prop_map(|f| f.as_bytes().to_vec()),
            2 => "[0-9a-fA-F:.+ -]{1,12}".prop_map(String::into_bytes),
            1 => any::<u8>().prop_map(|b| vec![b]),
        ];
        prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn agrees_with_the_reference(text in volatile_text()) {
            prop_assert_eq!(mask_volatile(&text), reference::mask_volatile(&text));
        }
    }
}

/// The first version, kept verbatim as the reference the scan above must agree with, byte for byte.
#[cfg(test)]
mod reference {
    use alloc::borrow::Cow;
    use alloc::vec::Vec;

    fn is_hex(b: u8) -> bool {
        b.is_ascii_hexdigit()
    }

    fn is_word(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b == b'_'
    }

    /// Length of a run of bytes from `s[i..]` satisfying `f`.
    fn run(s: &[u8], i: usize, f: impl Fn(u8) -> bool) -> usize {
        s[i..].iter().take_while(|&&b| f(b)).count()
    }

    fn digits(s: &[u8], i: usize, n: usize) -> bool {
        s.len() >= i + n && s[i..i + n].iter().all(u8::is_ascii_digit)
    }

    fn uuid_at(s: &[u8], i: usize) -> usize {
        const GROUPS: [usize; 5] = [8, 4, 4, 4, 12];
        let mut j = i;
        for (g, &n) in GROUPS.iter().enumerate() {
            if s.len() < j + n || !s[j..j + n].iter().all(|&b| is_hex(b)) {
                return 0;
            }
            j += n;
            if g < 4 {
                if s.get(j) != Some(&b'-') {
                    return 0;
                }
                j += 1;
            }
        }
        if s.get(j).is_some_and(|&b| is_word(b)) {
            return 0;
        }
        j - i
    }

    /// `YYYY-MM-DD[T ]HH:MM[:SS[.fff]][Z|±HH[:]MM]`; the time part is required.
    fn datetime_at(s: &[u8], i: usize) -> usize {
        if !(digits(s, i, 4) && s.get(i + 4) == Some(&b'-') && digits(s, i + 5, 2))
            || !(s.get(i + 7) == Some(&b'-') && digits(s, i + 8, 2))
        {
            return 0;
        }
        let mut j = i + 10;
        if !matches!(s.get(j), Some(b'T') | Some(b' ') | Some(b't')) || !digits(s, j + 1, 2) {
            return 0;
        }
        j += 3;
        if s.get(j) != Some(&b':') || !digits(s, j + 1, 2) {
            return 0;
        }
        j += 3;
        if s.get(j) == Some(&b':') && digits(s, j + 1, 2) {
            j += 3;
            if matches!(s.get(j), Some(b'.') | Some(b',')) && digits(s, j + 1, 1) {
                j += 1 + run(s, j + 1, |b| b.is_ascii_digit());
            }
        }
        match s.get(j) {
            Some(b'Z') | Some(b'z') => j += 1,
            Some(b'+') | Some(b'-') if digits(s, j + 1, 2) => {
                j += 3;
                if s.get(j) == Some(&b':') && digits(s, j + 1, 2) {
                    j += 3;
                } else if digits(s, j, 2) {
                    j += 2;
                }
            }
            _ => {}
        }
        j - i
    }

    fn hex_id_at(s: &[u8], i: usize) -> usize {
        let prefix = if s[i] == b'0' && matches!(s.get(i + 1), Some(b'x') | Some(b'X')) { 2 } else { 0 };
        let n = run(s, i + prefix, is_hex);
        if n < 8 || s.get(i + prefix + n).is_some_and(|&b| is_word(b)) {
            return 0;
        }
        let body = &s[i + prefix..i + prefix + n];
        let has_digit = body.iter().any(u8::is_ascii_digit);
        let has_letter = body.iter().any(u8::is_ascii_alphabetic);
        if (has_digit && has_letter) || (prefix == 2 && has_digit) {
            prefix + n
        } else {
            0
        }
    }

    /// A number followed by a time unit: `1.2s`, `350ms`, `12 µs`, `3 seconds`.
    fn duration_at(s: &[u8], i: usize) -> usize {
        let mut j = i + run(s, i, |b| b.is_ascii_digit());
        if j == i {
            return 0;
        }
        if s.get(j) == Some(&b'.') && digits(s, j + 1, 1) {
            j += 1 + run(s, j + 1, |b| b.is_ascii_digit());
        }
        let spaced = s.get(j) == Some(&b' ');
        let k = if spaced { j + 1 } else { j };
        const UNITS: [&[u8]; 12] = [
            b"milliseconds", b"microseconds", b"seconds", b"second", b"secs", b"sec", b"ms", b"us",
            "\u{b5}s".as_bytes(), "\u{3bc}s".as_bytes(), b"ns", b"s",
        ];
        for unit in UNITS {
            // A lone `s` right after a number is a unit only when unspaced (`3 s` is too ambiguous).
            if spaced && unit == b"s" {
                continue;
            }
            if s[k..].starts_with(unit) && !s.get(k + unit.len()).is_some_and(|&b| is_word(b)) {
                return k + unit.len() - i;
            }
        }
        0
    }

    /// Replaces volatile substrings of `text` by fixed placeholders. Borrows when nothing changed.
    pub fn mask_volatile(text: &[u8]) -> Cow<'_, [u8]> {
        let mut out: Option<Vec<u8>> = None;
        let mut copied = 0; // bytes of `text` already in `out`
        let mut i = 0;
        while i < text.len() {
            let b = text[i];
            let at_boundary = i == 0 || !is_word(text[i - 1]);
            if !at_boundary || !(b.is_ascii_alphanumeric()) {
                i += 1;
                continue;
            }
            let (n, placeholder): (usize, &[u8]) = if b.is_ascii_digit() {
                let n = datetime_at(text, i);
                if n > 0 {
                    (n, b"<time>")
                } else {
                    let n = uuid_at(text, i);
                    if n > 0 {
                        (n, b"<uuid>")
                    } else {
                        let n = hex_id_at(text, i);
                        if n > 0 { (n, b"<hex>") } else { (duration_at(text, i), b"<dur>") }
                    }
                }
            } else if is_hex(b) {
                let n = uuid_at(text, i);
                if n > 0 { (n, b"<uuid>") } else { (hex_id_at(text, i), b"<hex>") }
            } else {
                (0, b"")
            };
            if n == 0 {
                // Skip the rest of this word: masks only start at a word boundary.
                i += 1 + run(text, i + 1, is_word);
                continue;
            }
            let buf = out.get_or_insert_with(|| Vec::with_capacity(text.len()));
            buf.extend_from_slice(&text[copied..i]);
            buf.extend_from_slice(placeholder);
            i += n;
            copied = i;
        }
        match out {
            None => Cow::Borrowed(text),
            Some(mut buf) => {
                buf.extend_from_slice(&text[copied..]);
                Cow::Owned(buf)
            }
        }
    }
}
