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

const TIME: &[u8] = b"<time>";
const UUID: &[u8] = b"<uuid>";
const HEX: &[u8] = b"<hex>";
const DUR: &[u8] = b"<dur>";

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn is_hex_letter(b: u8) -> bool {
    matches!(b, b'a'..=b'f' | b'A'..=b'F')
}

fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

/// ASCII letters, digits and `_`: a mask starts only where a word starts.
fn is_word(b: u8) -> bool {
    WORD[b as usize]
}

/// [`is_word`] as a table: one load instead of three range tests.
const WORD: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric() || b as u8 == b'_';
        b += 1;
    }
    table
};

/// The end of the run of bytes satisfying `f` from `s[i..]`.
fn run_end(s: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    while i < s.len() && f(s[i]) {
        i += 1;
    }
    i
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
    let date = digits(s, i, 4)
        && s.get(i + 4) == Some(&b'-')
        && digits(s, i + 5, 2)
        && s.get(i + 7) == Some(&b'-')
        && digits(s, i + 8, 2);
    if !date {
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
            j = run_end(s, j + 1, is_digit);
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

/// 8 or more hex digits from `body` (after the `0x` at `i`, if any) mixing letters and digits, or
/// digits alone after `0x`.
fn hex_id_at(s: &[u8], i: usize, body: usize) -> usize {
    let end = run_end(s, body, is_hex);
    if end - body < 8 || s.get(end).is_some_and(|&b| is_word(b)) {
        return 0;
    }
    let has_digit = s[body..end].iter().any(u8::is_ascii_digit);
    let has_letter = s[body..end].iter().any(u8::is_ascii_alphabetic);
    if has_digit && (has_letter || body > i) {
        end - i
    } else {
        0
    }
}

/// A number (digits from `i` to `j`, then maybe a fraction) followed by a time unit: `1.2s`,
/// `350ms`, `12 µs`, `3 seconds`.
fn duration_at(s: &[u8], i: usize, mut j: usize) -> usize {
    if s.get(j) == Some(&b'.') && s.get(j + 1).is_some_and(|&b| is_digit(b)) {
        j = run_end(s, j + 1, is_digit);
    }
    let spaced = s.get(j) == Some(&b' ');
    let k = if spaced { j + 1 } else { j };
    match s.get(k) {
        // An ASCII unit is a whole word; the first byte tells most numbers they have none.
        Some(b'm' | b'u' | b'n' | b's') => {
            let end = run_end(s, k, is_word);
            match &s[k..end] {
                b"milliseconds" | b"microseconds" | b"seconds" | b"second" | b"secs" | b"sec" => end - i,
                b"ms" | b"us" | b"ns" => end - i,
                // A lone `s` is a unit only when unspaced (`3 s` is too ambiguous).
                b"s" if !spaced => end - i,
                _ => 0,
            }
        }
        // `µs` and `μs`: the micro sign and the Greek mu, in UTF-8 (not word bytes).
        Some(0xC2 | 0xCE) => {
            let unit = &s[k..];
            let micro = unit.starts_with("\u{b5}s".as_bytes()) || unit.starts_with("\u{3bc}s".as_bytes());
            if micro && !s.get(k + 3).is_some_and(|&b| is_word(b)) {
                k + 3 - i
            } else {
                0
            }
        }
        _ => 0,
    }
}

/// A mask starting with a digit. The byte after the digits tells which masks can still match, in
/// the order of precedence: date-time, UUID, hex id, duration.
fn at_digit(s: &[u8], i: usize) -> (usize, &'static [u8]) {
    let j = run_end(s, i + 1, is_digit);
    match s.get(j) {
        // A date-time starts with a 4-digit year and `-`, a UUID with 8 hex digits and `-`.
        Some(b'-') if j - i == 4 => (datetime_at(s, i), TIME),
        Some(b'-') if j - i == 8 => (uuid_at(s, i), UUID),
        // `0x` can only start a hex id.
        Some(b'x' | b'X') if j - i == 1 && s[i] == b'0' => (hex_id_at(s, i, i + 2), HEX),
        // Digits then hex letters: a UUID or a hex id (no unit starts with a hex letter).
        Some(b'a'..=b'f' | b'A'..=b'F') => at_hex(s, i),
        // A fraction or a unit: a duration (digits alone make no hex id).
        Some(b'.' | b' ' | b'm' | b'u' | b'n' | b's' | 0xC2 | 0xCE) => (duration_at(s, i, j), DUR),
        _ => (0, DUR),
    }
}

/// A mask starting with hex digits that are not all decimal: a UUID or a hex id, both starting
/// with 8 hex digits.
fn at_hex(s: &[u8], i: usize) -> (usize, &'static [u8]) {
    let end = run_end(s, i, is_hex);
    if end - i < 8 {
        return (0, HEX);
    }
    if end - i == 8 && s.get(end) == Some(&b'-') {
        let n = uuid_at(s, i);
        if n > 0 {
            return (n, UUID);
        }
    }
    (hex_id_at(s, i, i), HEX)
}

/// The first digit or `-` in `s[i..]`, looked for 8 bytes at a time.
fn next_digit_or_dash(s: &[u8], mut i: usize) -> Option<usize> {
    while let Some(chunk) = s.get(i..i + 8) {
        let found = digits_or_dashes(u64::from_le_bytes(chunk.try_into().unwrap()));
        if found != 0 {
            return Some(i + found.trailing_zeros() as usize / 8);
        }
        i += 8;
    }
    s[i..].iter().position(|&b| b.is_ascii_digit() || b == b'-').map(|k| i + k)
}

/// The high bit of each byte of `x` that is a digit or `-`, the first byte being the lowest.
///
/// This tests 8 bytes with a dozen word operations instead of a test and a branch per byte. Each
/// byte is compared on its low 7 bits by adding a constant that sets its high bit past a bound: a
/// 7-bit value plus at most 0x80 stays below 0x100, so no byte carries into the next one. Bytes of
/// 0x80 and above are dropped at the end.
fn digits_or_dashes(x: u64) -> u64 {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    let low = x & !HIGH;
    let from_0 = low + ONES * (0x80 - b'0' as u64); // high bit set from `0` up
    let past_9 = low + ONES * (0x80 - b'9' as u64 - 1); // high bit set past `9`
    let not_dash = (low ^ (ONES * b'-' as u64)) + ONES * 0x7F; // high bit set unless `-`
    ((from_0 & !past_9) | !not_dash) & !x & HIGH
}

/// Replaces volatile substrings of `text` by fixed placeholders. Borrows when nothing changed.
///
/// Masks start at a word boundary, and every mask holds a digit or a `-` (a UUID may have no
/// digit), with only hex letters before the first of them. So the scan jumps from one digit or `-`
/// to the next, 8 bytes at a time, and tries only where the hex letters just before it start: text
/// without digits or `-` costs a few operations per 8 bytes.
pub fn mask_volatile(text: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0; // bytes of `text` already in `out`
    let mut i = 0; // no mask starts before `i`
    while let Some(q) = next_digit_or_dash(text, i) {
        // Where the hex letters just before `q` start: the one place in `i..=q` a mask can start,
        // if it is a word start.
        let mut p = q;
        while p > i && is_hex_letter(text[p - 1]) {
            p -= 1;
        }
        let (n, placeholder) = match text[p] {
            _ if p > 0 && is_word(text[p - 1]) => (0, DUR),
            b'0'..=b'9' => at_digit(text, p),
            b'a'..=b'f' | b'A'..=b'F' => at_hex(text, p),
            _ => (0, DUR), // a `-`
        };
        if n > 0 {
            let buf = out.get_or_insert_with(|| Vec::with_capacity(text.len()));
            buf.extend_from_slice(&text[copied..p]);
            buf.extend_from_slice(placeholder);
            i = p + n;
            copied = i;
        } else if text[q] == b'-' {
            i = q + 1; // what follows a `-` may start a mask
        } else {
            // The rest of the digit's word holds no word start.
            i = run_end(text, q + 1, is_word);
        }
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

    #[test]
    fn masks_what_starts_before_the_first_digit() {
        assert_eq!(m("id deadbeef-cafe-babe-face-feedfacecafe ok"), "id <uuid> ok");
        assert_eq!(m("sha abcdef0123456789, x-2024-05-01T12:30:00Z"), "sha <hex>, x-<time>");
        assert_eq!(m("UA100 v2 ab12 1.5ms"), "UA100 v2 ab12 <dur>");
    }

    /// Fragments of volatile text and of near misses.
    const FRAGMENTS: &[&str] = &[
        "2024-05-01", "2024-05-0", "T12:30:00", "T12:30", " 12:30", "t01:02", ":45", ".123", ",5", ".", "Z", "z",
        "+02:00", "-0530", "+02", "123e4567-e89b-12d3-a456-426614174000", "123e4567-", "e89b-", "426614174000",
        "0x7ffd5a3c", "0X", "0x", "9f86d081", "deadbeef", "12345678", "cafe", "350", "1.20", "0.5", "42", "7",
        "ms", "s", " s", "µs", "μs", "us", "ns", "sec", "secs", " second", " seconds", " milliseconds",
        "microseconds", "_", "a", "x", "g", "A", "F", " ", "-", ":", "\n", "\"", ",", "µ", "μ", "é",
    ];

    /// Text made of pieces that match often, near misses, and random bytes (non-UTF-8 included).
    fn volatile_text() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            8 => prop::sample::select(FRAGMENTS).prop_map(String::from),
            // Date-times, exact and loose.
            2 => concat!(
                "[0-9]{4}-[0-9]{2}-[0-9]{2}",
                "([Tt _][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]{1,4})?)?([Zz]|[+-][0-9]{2}:?([0-9]{2})?)?)?"
            ),
            2 => concat!(
                "[0-9]{3,5}-[0-9]{1,3}-[0-9]{1,3}",
                "[Tt _]?[0-9]{1,3}(:[0-9]{1,3}){0,3}([.,][0-9]{0,2})?([Zz+-][0-9:]{0,5})?"
            ),
            // UUIDs, exact (some of hex letters only) and loose.
            2 => "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
            1 => "[a-fA-F]{8}-[a-f]{4}-[A-F]{4}-[a-f]{4}-[a-f]{12}",
            1 => "[0-9]{8}-[0-9a-f]{4}-[0-9]{4}-[0-9a-f]{4}-[0-9]{12}",
            2 => "[0-9a-fA-F]{7,9}(-[0-9a-fA-F]{3,5}){0,4}-?[0-9a-fA-F]{0,13}",
            // Hex ids and durations.
            1 => "(0[xX])?[0-9a-fA-F]{6,12}",
            1 => "0[xX][0-9]{6,10}|[0-9]{1,8}[a-fA-F]{1,8}",
            4 => concat!(
                "[0-9]{1,4}([.,][0-9]{0,3})? ?",
                "(milliseconds|microseconds|seconds|second|secs|sec|ms|us|µs|μs|ns|s|m|msec)[a-z0-9_]?"
            ),
            // Separators and words.
            3 => "[ \n,;:\"'(){}=/_.a-zA-Z0-9-]{1,4}",
        ];
        let piece = prop_oneof![
            10 => piece.prop_map(String::into_bytes),
            1 => prop::collection::vec(any::<u8>(), 1..3),
        ];
        prop::collection::vec(piece, 0..16).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 512 }))]

        #[test]
        fn agrees_with_the_reference(text in volatile_text()) {
            let (new, old) = (mask_volatile(&text), reference::mask_volatile(&text));
            prop_assert_eq!(&new, &old);
            prop_assert_eq!(matches!(new, Cow::Borrowed(_)), matches!(old, Cow::Borrowed(_)));
        }
    }
}

/// The first version, kept as the reference the scan above must agree with, byte for byte: its
/// scan, hex ids and durations verbatim; the date-time and UUID recognizers, which did not change,
/// are shared.
#[cfg(test)]
#[allow(clippy::nonminimal_bool)] // kept as it was written
mod reference {
    use alloc::borrow::Cow;
    use alloc::vec::Vec;

    use super::{datetime_at, digits, uuid_at};

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
