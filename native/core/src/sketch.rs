//! Similarity sketches: "almost the same call" and "almost the same answer" in constant time.
//!
//! Exact fingerprints ([`crate::canon`]) miss an agent that repeats its mistake in slightly
//! different words: an edit re-sent with a semicolon added, a booking re-submitted with one segment
//! dropped. A [`Sketch`] is a fixed-size summary of a text's *tokens* such that two sketches compare,
//! in constant time and without the texts, to an estimate of the texts' weighted Jaccard similarity.
//!
//! **How.** One-permutation MinHash: every token is hashed once (xxh3 of its bytes, once the scan
//! has found its end; building a sketch never allocates), the hash picks one of [`SLOTS`] buckets and each
//! bucket keeps the smallest hash it saw. Two texts' similarity is the share of buckets, among
//! those filled in either, whose minimums agree. Small texts are compared almost exactly (each
//! token has its own bucket); large ones by sampling.
//!
//! **What weighs.** A sweep (dates, ids, pages, files) changes one token per call, and must not
//! look like a near-duplicate of itself; a re-worded retry changes a few ordinary words in many.
//! So tokens that name *what* a call acts on weigh [`HEAVY`] times an ordinary word: tokens with a
//! digit (numbers, ids, dates, line ranges), paths or URLs (a `/`), file names (a short
//! extension, as in `App.tsx`) and, in a text of one line (a command line, a query), code symbols
//! (a code mark such as `_`, `$`, `@`, or a dotted name: `parse_date`, `$HOME`, `settings.DEBUG`).
//! A weight `w` is given by inserting the token `w` times under distinct salts. In
//! arguments, each token is salted with the name of the field it sits in (`date:2024-05-01`), so
//! the same word under two keys is two tokens and a key alone is no token at all.
//!
//! **What an answer names.** The sketch of a call's answer ([`Sketch::of_answer`]) keeps as its ids
//! only those of the call's own arguments that the answer repeats: `Error: item KT-4410 is out of
//! stock` names `KT-4410`. That tells a change that did not matter (the same error, about an id
//! every variation kept) from a new target.
//!
//! **Prose apart.** A re-worded summary or message changes most of its tokens while it asks the
//! same thing. A string argument that is prose ([`is_prose`]: many plain words, hardly any code)
//! gives its plain words to a second sketch ([`Builder::split`], compared at [`NEAR_PROSE`]), and
//! only its ids to the arguments' sketch. The search terms of `grep`/`rg`/`find` in a command line
//! weigh like ids ([`Builder::add_command`]).
//!
//! Tokens are maximal runs of bytes that are not white space, quotes, brackets or one of
//! `,;=|&<>` (a URL, a path, `file.pl?flag` stay whole). A backslash escape (`\n`, `\"`, `\u00e9`
//! in raw JSON text) separates tokens too.

/// Buckets in a sketch.
pub const SLOTS: usize = 32;
/// How many times more a number, id, date or path weighs than an ordinary word.
pub const HEAVY: u32 = 4;
/// Arguments at least this similar (percent) are "nearly the same" for `loop.near_duplicate`.
pub const NEAR_ARGS: u32 = 70;
/// Answers at least this similar (percent) are "nearly the same" for `loop.near_duplicate`.
pub const NEAR_RESULT: u32 = 80;
/// Prose at least this similar (percent of its content words shared, function words left out) is
/// "nearly the same" text: a re-worded summary or message (see [`Builder::prose`]).
pub const NEAR_PROSE: u32 = 50;
/// A string argument is prose when it has at least this many words, at least three in four of
/// them plain words (letters only, no digit, slash, underscore or inner dot), and hardly any
/// code marks ([`is_prose`]).
pub const PROSE_MIN_WORDS: u32 = 8;

/// A fixed-size similarity summary of a text (52 bytes). `Sketch::default()` is the sketch of no
/// tokens at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sketch {
    /// Bit `i` is set when bucket `i` received a token.
    filled: u32,
    /// A byte of each bucket's minimum hash.
    mins: [u8; SLOTS],
    /// A 128-bit Bloom filter of the heavy tokens (numbers, ids, dates, paths), unsalted; as
    /// four 32-bit words so the sketch is 52 bytes with 4-byte alignment (a session keeps two
    /// per call).
    ids: [u32; 4],
}

/// The 128 bits of a Bloom filter as two words, and back.
fn wide(ids: [u32; 4]) -> [u64; 2] {
    [ids[0] as u64 | (ids[1] as u64) << 32, ids[2] as u64 | (ids[3] as u64) << 32]
}

fn narrow(ids: [u64; 2]) -> [u32; 4] {
    [ids[0] as u32, (ids[0] >> 32) as u32, ids[1] as u32, (ids[1] >> 32) as u32]
}

impl Sketch {
    /// The size of [`Sketch::to_bytes`].
    pub const BYTES: usize = 4 + SLOTS + 16;

    /// The sketch as bytes (little-endian), for session snapshots.
    pub fn to_bytes(&self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        out[..4].copy_from_slice(&self.filled.to_le_bytes());
        out[4..4 + SLOTS].copy_from_slice(&self.mins);
        for (i, w) in self.ids.iter().enumerate() {
            out[4 + SLOTS + 4 * i..8 + SLOTS + 4 * i].copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// The sketch [`Sketch::to_bytes`] gave.
    pub fn from_bytes(b: &[u8; Self::BYTES]) -> Sketch {
        let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let mut mins = [0u8; SLOTS];
        mins.copy_from_slice(&b[4..4 + SLOTS]);
        Sketch { filled: word(0), mins, ids: [0, 1, 2, 3].map(|i| word(4 + SLOTS + 4 * i)) }
    }

    /// The estimated similarity to `other`, in percent (0..=100). Two empty sketches are 100%
    /// alike; an empty and a non-empty one 0%.
    pub fn similarity(&self, other: &Sketch) -> u32 {
        let union = (self.filled | other.filled).count_ones();
        if union == 0 {
            return 100;
        }
        // Equal bytes, eight at a time (SWAR): an empty bucket holds 0, so buckets empty in both
        // compare equal and are taken off again; a filled bucket whose byte is 0 facing an
        // empty one is a 1-in-256 miscount, well below the sketch's own error.
        const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
        const ONES: u64 = 0x0101_0101_0101_0101;
        // One 0/1 counter per byte lane, summed over the four words (at most 4 per lane), then
        // added across lanes with one multiply: the baseline x86-64 target has no `popcnt`, and
        // four software `count_ones` cost more than the comparison itself.
        let mut lanes = 0u64;
        for i in 0..SLOTS / 8 {
            let a = u64::from_le_bytes(self.mins[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            let b = u64::from_le_bytes(other.mins[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            let x = a ^ b;
            // The high bit of each byte of `zero` is set exactly when that byte of `x` is 0.
            let zero = !(((x & LOW7) + LOW7) | x | LOW7);
            lanes += zero >> 7;
        }
        let equal = (lanes.wrapping_mul(ONES) >> 56) as u32;
        let agree = equal - (SLOTS as u32 - union);
        agree * 100 / union
    }

    /// True when [`Sketch::similarity`] is at least `percent`.
    pub fn similar(&self, other: &Sketch, percent: u32) -> bool {
        self.similarity(other) >= percent
    }

    /// True when this text has a number, id, date or path that `earlier` does not have: a new
    /// target (the next date, page, file or id of a sweep), not a re-worded repeat. Certain when
    /// true; a new token whose two Bloom bits are both already set is missed.
    pub fn introduces(&self, earlier: &Sketch) -> bool {
        self.ids.iter().zip(&earlier.ids).any(|(a, b)| a & !b != 0)
    }

    /// True when no token was seen.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// The numbers, ids, dates and paths of the text, as a set (of an answer's sketch, only
    /// those its call sent: [`Sketch::of_answer`]).
    pub fn ids(&self) -> Ids {
        Ids(wide(self.ids))
    }

    /// The sketch of a plain text (a tool's result): every token, no field names.
    pub fn of_text(text: &[u8]) -> Sketch {
        let mut b = Builder::new();
        b.add_text(0, text);
        b.finish()
    }

    /// The sketch of a call's answer, given the sketch of the call's arguments: similar to
    /// others exactly as [`Sketch::of_text`]'s, but its [`Sketch::ids`] are only the ids of the
    /// arguments that the answer names (what the answer is about, see [`Ids`]; the answer's other
    /// ids are of no use, and a session keeps one such sketch per call). Only tokens of at least
    /// [`NAME_MIN_LEN`] bytes can name an id.
    pub fn of_answer(text: &[u8], args: &Sketch) -> Sketch {
        Self::of_answer_and_ids(text, args).0
    }

    /// [`Sketch::of_answer`], and every number, id, date, path or quoted string of the answer:
    /// the informative tokens that tell two otherwise similar answers apart.
    pub fn of_answer_and_ids(text: &[u8], args: &Sketch) -> (Sketch, Ids) {
        let mut b = Builder::new();
        b.call_ids = wide(args.ids);
        b.scan::<true, false>(0, text);
        let mut sketch = b.finish();
        sketch.ids = narrow(b.named);
        (sketch, Ids(b.ids))
    }
}

/// A set of numbers, ids, dates and paths (the heavy tokens of a text): a 128-bit Bloom filter,
/// two bits a token, the same for every field and for arguments and answers alike, so the ids of
/// an answer can be looked up among those of the call's arguments. A token whose bits are all set
/// by others is taken to be in the set (rarely: a few percent when the set holds ten ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ids([u64; 2]);

impl Ids {
    /// The filter's two words (for session snapshots).
    pub fn words(&self) -> [u64; 2] {
        self.0
    }

    /// The filter [`Ids::words`] gave.
    pub fn from_words(words: [u64; 2]) -> Ids {
        Ids(words)
    }

    /// The set folded to 32 bits, for telling sets apart (equal sets fold equal; unequal ones
    /// almost always differ).
    pub fn folded(&self) -> u32 {
        let h = fmix(self.0[0] ^ fmix(self.0[1] ^ K1));
        (h ^ (h >> 32)) as u32
    }

    /// True when the set holds no id.
    pub fn is_empty(&self) -> bool {
        self.0 == [0, 0]
    }

    /// The ids in both sets (a Bloom filter of at least them).
    pub fn and(&self, other: &Ids) -> Ids {
        Ids([self.0[0] & other.0[0], self.0[1] & other.0[1]])
    }

    /// The ids in either set.
    pub fn or(&self, other: &Ids) -> Ids {
        Ids([self.0[0] | other.0[0], self.0[1] | other.0[1]])
    }

    /// True when every id of this set is in `other`.
    pub fn within(&self, other: &Ids) -> bool {
        (self.0[0] & !other.0[0]) | (self.0[1] & !other.0[1]) == 0
    }
}

/// The shortest token of an answer that can name an id of the call's arguments: `1`, `16` or
/// `404` in an answer are a line, a count, an exit status or a code far more often than the
/// number the call sent, while an id (`KT-4410`, `#W2207133`, a date, a path) is distinctive.
pub const NAME_MIN_LEN: usize = 4;

/// Builds a [`Sketch`] token by token; lives on the stack.
#[derive(Debug, Clone)]
pub struct Builder {
    mins: [u64; SLOTS],
    filled: u32,
    ids: [u64; 2],
    /// The ids an answer's tokens are looked up in ([`Sketch::of_answer`]); empty otherwise.
    call_ids: [u64; 2],
    /// The answer's ids found in `call_ids`.
    named: [u64; 2],
    /// Every token of the arguments, for the [`Echo`] filter of their error.
    echo: ArgTokens,
    /// A string argument may be prose (many plain words): the arguments are sketched again with
    /// [`Builder::split`] to tell (rare; the check path only counts words).
    maybe_prose: bool,
    /// Sketching with prose apart: the plain words of prose fields go to `prose`.
    split: bool,
    /// The plain words of the prose fields (with `split`, once one is found). Taken by
    /// [`Builder::take_prose`]; not dropped with the builder, so that the check path's builders
    /// (never split) have no drop to run.
    prose: core::mem::ManuallyDrop<Option<alloc::boxed::Box<Builder>>>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;

/// A strong 64-bit finalizer (murmur3's fmix64).
fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

const fn is_separator(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c' | b'"' | b'\'' | b'`' | b'(' | b')' | b'[' | b']' | b'{' | b'}'
            | b',' | b';' | b'=' | b'|' | b'&' | b'<' | b'>'
    )
}

// Byte classes for the tokenizer, looked up once per byte instead of a chain of comparisons.
/// Ends a token: a separator or a backslash (an escape in raw JSON).
const STOP: u8 = 1;
const DIGIT: u8 = 2;
const SLASH: u8 = 4;
const ALPHA: u8 = 8;
const DOT: u8 = 16;
/// A byte that marks code or an identifier inside a token (`_`, `@`, `#`, `$`, `%`, `^`, `*`,
/// `+`, `~`): such a token is not a plain word ([`is_prose`]).
const CODE: u8 = 32;

const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if is_separator(b) || b == b'\\' {
            STOP
        } else if b.is_ascii_digit() {
            DIGIT
        } else if b == b'/' {
            SLASH
        } else if b.is_ascii_alphabetic() {
            ALPHA
        } else if b == b'.' {
            DOT
        } else if matches!(b, b'_' | b'@' | b'#' | b'$' | b'%' | b'^' | b'*' | b'+' | b'~') {
            CODE
        } else {
            0
        };
        i += 1;
    }
    t
};

/// Letters and digits (the bulk of most tokens), eight bytes at a time: how many of the eight
/// bytes of `w` (in text order) are ASCII letters or digits before the first that is not, and the
/// classes ([`DIGIT`], [`ALPHA`]) among those. Each test is a per-byte range check done on the
/// eight bytes together (SWAR).
fn alnum_prefix(w: u64) -> (usize, u8) {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const fn each(b: u8) -> u64 {
        0x0101_0101_0101_0101 * b as u64
    }
    // The high bit of each byte of the result is set when that byte of `x` (below 0x80) is in
    // `lo..=hi`: adding `0x80 - lo` sets it when the byte is at least `lo`, adding `0x7f - hi`
    // when it is above `hi`; neither sum carries into the next byte.
    fn within(x: u64, lo: u8, hi: u8) -> u64 {
        (x + each(0x80 - lo)) & !(x + each(0x7f - hi)) & HIGH
    }
    let ascii = !w & HIGH;
    let x = w & LOW7;
    let digits = within(x, b'0', b'9') & ascii;
    let letters = within(x | each(0x20), b'a', b'z') & ascii;
    let other = !(digits | letters) & HIGH;
    let (n, prefix) = match other {
        0 => (8, u64::MAX),
        _ => {
            let n = other.trailing_zeros() as usize / 8;
            (n, (1u64 << (8 * n)) - 1)
        }
    };
    let classes = if digits & prefix != 0 { DIGIT } else { 0 } | if letters & prefix != 0 { ALPHA } else { 0 };
    (n, classes)
}

/// Where the run of ASCII letters and digits at `text[i..]` stops being whole blocks of sixteen
/// bytes, and [`DIGIT`] when those blocks hold a digit (0 otherwise). Each block is tested byte
/// by byte as a reduction, which the compiler turns into a few vector instructions (SSE2:
/// compares and a `pmovmskb`). Out of line: only tokens longer than eight bytes get here, and
/// the vector constants then stay out of the tokenizer's loop.
#[inline(never)]
fn alnum_runs(text: &[u8], mut i: usize) -> (usize, u8) {
    let mut digits = false;
    while let Some(block) = text.get(i..i + 16) {
        let (mut other, mut digit) = (false, false);
        for &b in block {
            let d = b.wrapping_sub(b'0') < 10;
            other |= !d && (b | 0x20).wrapping_sub(b'a') >= 26;
            digit |= d;
        }
        if other {
            break;
        }
        digits |= digit;
        i += 16;
    }
    (i, if digits { DIGIT } else { 0 })
}

/// A token's hash.
fn token_hash(token: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(token)
}

/// Whether a text is one line: no line feed, as a byte or as the escape `\n` of raw JSON text.
fn is_one_line(text: &[u8]) -> bool {
    !text.contains(&b'\n') && !text.windows(2).any(|w| w == b"\\n")
}

/// Salt of a quoted string's whole-string token, so that `"foo"` and the word `foo` differ.
const QUOTED: u64 = 0x5157_4f54_4544_0001;
/// The longest quoted string taken as one token: longer ones are text, not a term.
pub const QUOTED_MAX: usize = 80;

/// When a quote opens a quoted string at `text[i]` (plain `"` `'` `` ` ``, or `\"` as raw JSON
/// has it), the span of its content: the quote starts a word (after the start, white space or
/// `=([{,`), the same quote closes it within [`QUOTED_MAX`] bytes on the same line, the content
/// is not empty. An apostrophe inside a word (`it's`) opens nothing.
fn quoted_at(text: &[u8], i: usize) -> Option<(usize, usize)> {
    let (quote, open_len) = match text[i] {
        b'"' | b'\'' | b'`' => (&text[i..i + 1], 1),
        b'\\' if text.get(i + 1) == Some(&b'"') => (&text[i..i + 2], 2),
        _ => return None,
    };
    let boundary = |b: u8| matches!(b, b' ' | b'\t' | b'=' | b'(' | b'[' | b'{' | b',');
    let before = if i == 0 { None } else { Some(text[i - 1]) };
    // Before a raw `\"`, the byte before the backslash; `n` of an escaped newline (`\n`) counts
    // as white space.
    let starts_word = match before {
        None => true,
        Some(b) if boundary(b) => true,
        Some(b'n') => i >= 2 && text[i - 2] == b'\\',
        _ => false,
    };
    if !starts_word {
        return None;
    }
    let start = i + open_len;
    let window = &text[start..text.len().min(start + QUOTED_MAX + open_len)];
    let k = window.windows(quote.len()).position(|w| w == quote)?;
    if k == 0 || window[..k].contains(&b'\n') || (open_len == 1 && window[..k].ends_with(b"\\")) {
        return None;
    }
    Some((start, start + k))
}

/// Salt of a shell search term's token ([`Builder::add_command`]).
const SEARCHED: u64 = 0x5345_4152_4348_0001;

/// The most common English function words: in prose they say nothing about what is asked, and
/// two unrelated messages would share them.
const STOP_WORDS: [&[u8]; 48] = [
    b"a", b"an", b"the", b"and", b"or", b"but", b"if", b"so", b"to", b"of", b"in", b"on", b"at", b"by", b"for",
    b"with", b"from", b"as", b"is", b"are", b"was", b"were", b"be", b"been", b"it", b"its", b"this", b"that", b"there",
    b"has", b"have", b"had", b"do", b"does", b"did", b"will", b"would", b"can", b"could", b"i", b"you", b"he", b"she",
    b"we", b"they", b"my", b"your", b"their",
];

/// A prose word's hash: the word in lower case without the punctuation that ends a sentence or
/// a clause (`Refund.` and `refund` are the same word); `None` for a function word
/// ([`STOP_WORDS`]).
fn prose_word_hash(word: &[u8]) -> Option<u64> {
    let mut end = word.len();
    while end > 1 && matches!(word[end - 1], b'.' | b':' | b'!' | b'?') {
        end -= 1;
    }
    let word = &word[..end];
    let mut buf = [0u8; 48];
    match buf.get_mut(..word.len()) {
        Some(low) => {
            low.copy_from_slice(word);
            low.make_ascii_lowercase();
            (!STOP_WORDS.contains(&&*low)).then(|| token_hash(low))
        }
        None => Some(token_hash(word)),
    }
}

/// True when a string argument is prose: at least [`PROSE_MIN_WORDS`] words, three in four of
/// them plain words, and at most one code mark (`{}[]=<>;|&$` and backquote, or a pair of
/// parentheses) per eight words. A summary, a message, a note, a thought; not code, not a
/// command line, not a list of ids.
pub fn is_prose(text: &[u8]) -> bool {
    // Words split as the tokenizer splits them (at separators and backslashes).
    let (mut words, mut plain) = (0u32, 0u32);
    for word in text.split(|&b| CLASS[b as usize] & STOP != 0).filter(|w| !w.is_empty()) {
        words += 1;
        // Letters only; a sentence's final `.` `:` `!` `?` and inner hyphens allowed.
        let end = word.iter().rposition(|b| !matches!(b, b'.' | b':' | b'!' | b'?')).map_or(0, |k| k + 1);
        let core = &word[..end];
        plain += (!core.is_empty() && core[0].is_ascii_alphabetic() && core.iter().all(|&b| b.is_ascii_alphabetic() || b == b'-')) as u32;
    }
    if words < PROSE_MIN_WORDS || plain * 4 < words * 3 {
        return false;
    }
    let mut marks = 0u32;
    let mut parens = 0u32;
    for &b in text {
        match b {
            b'{' | b'}' | b'[' | b']' | b'=' | b'<' | b'>' | b';' | b'|' | b'&' | b'$' | b'`' => marks += 1,
            b'(' => parens += 1,
            _ => {}
        }
    }
    (marks + parens / 2) * 8 <= words
}

/// A 1024-bit Bloom filter of every token of a call's arguments (two bits each), kept until its
/// result comes: the tokens of an error that the call's own arguments hold are *echoed* (`old_str
/// `…` did not appear`, `paid 957`) and left out of [`error_key`]. With 200 tokens, a token not
/// in the arguments is taken for an echo about one time in thirty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Echo([u64; 16]);

impl Echo {
    fn bits(token: u64) -> [(usize, u64); 2] {
        let a = (token & 1023) as usize;
        let b = ((token >> 10) & 1023) as usize;
        [(a >> 6, 1 << (a & 63)), (b >> 6, 1 << (b & 63))]
    }

    /// [`Echo::bits`] set, computed straight from the token (the same bits: bit `t & 1023` is
    /// word `(t >> 6) & 15`, bit `t & 63`): on the check path for every argument token.
    #[inline(always)]
    fn insert(&mut self, token: u64) {
        Self::set(&mut self.0, token);
    }

    #[inline(always)]
    fn set(words: &mut [u64; 16], token: u64) {
        words[(token >> 6 & 15) as usize] |= 1 << (token & 63);
        words[(token >> 16 & 15) as usize] |= 1 << (token >> 10 & 63);
    }

    #[cfg(test)]
    fn from_token(token: u64) -> Echo {
        let mut echo = Echo::default();
        echo.insert(token);
        echo
    }

    /// True when the token is (probably) among the arguments' tokens.
    pub fn contains(&self, token: u64) -> bool {
        Self::bits(token).iter().all(|&(w, bit)| self.0[w] & bit != 0)
    }

    /// Adds a number as the text it is written with (`957`), as an error would echo it.
    pub fn insert_number(&mut self, n: i128) {
        self.insert(written_hash(n));
    }
}

/// The token hash of a number as it is written (`957`, `-3`).
fn written_hash(n: i128) -> u64 {
    let mut buf = [0u8; 40];
    let mut at = buf.len();
    match u64::try_from(n.unsigned_abs()) {
        // Every JSON integer fits here: a `u64` divides by 10 with a multiply, a `u128` with a
        // library call per digit.
        Ok(mut m) => loop {
            at -= 1;
            buf[at] = b'0' + (m % 10) as u8;
            m /= 10;
            if m == 0 {
                break;
            }
        },
        Err(_) => {
            let mut m = n.unsigned_abs();
            loop {
                at -= 1;
                buf[at] = b'0' + (m % 10) as u8;
                m /= 10;
                if m == 0 {
                    break;
                }
            }
        }
    }
    if n < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    token_hash(&buf[at..])
}

/// A call's argument tokens, kept until its result comes for the [`Echo`] filter its error is
/// read with. The filter is needed only when the call fails: up to [`ArgTokens::LISTED`] tokens
/// (most calls) are listed as they come, a token hash or a number's value each, and the filter is
/// built from them by [`ArgTokens::filter`]; past that many the list becomes the filter at once.
/// Either way the filter has the same bits as inserting every token as it came.
#[derive(Debug, Clone, Copy)]
pub struct ArgTokens {
    /// The listed tokens: a token's hash, or an integer's magnitude where `numbers` has its bit
    /// (echoable as its canonical hash and as its written form);
    /// once `listed` is [`ArgTokens::FILTER`], the filter's words.
    words: [u64; ArgTokens::LISTED],
    /// How many tokens are listed, or [`ArgTokens::FILTER`].
    listed: u8,
    /// Bit `i`: `words[i]` is a number's magnitude.
    numbers: u16,
    /// Bit `i`: that number is negative.
    negative: u16,
}

impl ArgTokens {
    /// Tokens listed before the list turns into the filter.
    pub const LISTED: usize = 16;
    const FILTER: u8 = u8::MAX;

    pub fn new() -> ArgTokens {
        ArgTokens { words: [0; Self::LISTED], listed: 0, numbers: 0, negative: 0 }
    }

    /// Adds a token's hash.
    #[inline(always)]
    fn token(&mut self, token: u64) {
        let n = self.listed as usize;
        if n < Self::LISTED {
            self.words[n] = token;
            self.listed += 1;
        } else {
            self.spill();
            Echo::set(&mut self.words, token);
        }
    }

    /// Adds an integer, echoable as its canonical hash `hash` and as the text it is written
    /// with (`957`).
    #[inline(always)]
    fn number(&mut self, negative: bool, magnitude: u64, hash: u64) {
        let n = self.listed as usize;
        if n < Self::LISTED {
            self.words[n] = magnitude;
            self.numbers |= 1 << n;
            self.negative |= (negative as u16) << n;
            self.listed += 1;
        } else {
            self.spill();
            Echo::set(&mut self.words, hash);
            Echo::set(&mut self.words, written_hash(if negative { -(magnitude as i128) } else { magnitude as i128 }));
        }
    }

    /// The list made into the filter, in place.
    #[inline]
    fn spill(&mut self) {
        if self.listed != Self::FILTER {
            self.spill_list();
        }
    }

    #[cold]
    fn spill_list(&mut self) {
        self.words = self.filter().0;
        self.listed = Self::FILTER;
    }

    /// The filter of every token added.
    pub fn filter(&self) -> Echo {
        if self.listed == Self::FILTER {
            return Echo(self.words);
        }
        let mut echo = Echo::default();
        for (i, &word) in self.words[..self.listed as usize].iter().enumerate() {
            if self.numbers >> i & 1 == 0 {
                echo.insert(word);
            } else {
                let value = if self.negative >> i & 1 == 0 { word as i128 } else { -(word as i128) };
                echo.insert(crate::canon::hash_int(value));
                echo.insert_number(value);
            }
        }
        echo
    }
}

impl Default for ArgTokens {
    fn default() -> ArgTokens {
        ArgTokens::new()
    }
}

/// Two lists are equal when they give the same filter (the tokens' order does not matter).
impl PartialEq for ArgTokens {
    fn eq(&self, other: &ArgTokens) -> bool {
        self.filter() == other.filter()
    }
}

impl Eq for ArgTokens {}

/// An error, read for comparing it with the errors of other calls ([`error_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErrorKey {
    /// A hash of the error's tokens in order, those the call's arguments hold left out.
    pub key: u64,
    /// The numbers, ids, dates and paths of the error that the call's arguments hold (echoed).
    pub echoed: Ids,
    /// The error has a number, id, date or path of its own (not from the arguments): it tells
    /// the caller something (`total price is 1002`).
    pub own_ids: bool,
}

/// Reads an error for comparison with other calls' errors: two calls that failed with the same
/// message about their own differing arguments (`old_str `…` did not appear`, `paid 957`) get
/// the same key. `echo` holds the call's argument tokens (none: nothing is left out). Only the
/// first 4 KiB count.
pub fn error_key(text: &[u8], echo: Option<&Echo>) -> ErrorKey {
    let text = &text[..text.len().min(4096)];
    let mut out = ErrorKey { key: K1, ..ErrorKey::default() };
    let mut echoed = [0u64; 2];
    let mut i = 0;
    let n = text.len();
    while i < n {
        if CLASS[text[i] as usize] & STOP != 0 {
            i += match text[i] {
                b'\\' if text.get(i + 1) == Some(&b'u') => 6,
                b'\\' => 2,
                _ => 1,
            };
            continue;
        }
        let start = i;
        let mut seen = 0u8;
        while i < n && CLASS[text[i] as usize] & STOP == 0 {
            seen |= CLASS[text[i] as usize];
            i += 1;
        }
        let h = token_hash(&text[start..i]);
        let heavy = seen & (DIGIT | SLASH) != 0;
        if echo.is_some_and(|e| e.contains(h)) {
            if heavy {
                // A number sent as a JSON number has its canonical hash among the ids.
                let id = parse_int(&text[start..i]).map_or(h, crate::canon::hash_int);
                for (w, bit) in id_bits(id) {
                    echoed[w] |= bit;
                }
            }
        } else {
            out.key = fmix(out.key ^ h).wrapping_add(K2);
            out.own_ids |= heavy;
        }
    }
    out.echoed = Ids(echoed);
    out
}

/// A token that is a plain integer (`957`, `-3`), as a JSON number would be written.
fn parse_int(t: &[u8]) -> Option<i128> {
    let (neg, digits) = match t {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, t),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    let n = digits.iter().fold(0i128, |n, d| n * 10 + (d - b'0') as i128);
    Some(if neg { -n } else { n })
}

/// The two bits of a heavy token in an [`Ids`] filter: `(word, bit)`.
fn id_bits(token: u64) -> [(usize, u64); 2] {
    let h = fmix(token ^ K2);
    [h & 127, (h >> 7) & 127].map(|bit| ((bit >> 6) as usize, 1u64 << (bit & 63)))
}

impl Builder {
    /// The arguments' tokens seen so far, for [`error_key`].
    pub fn echo(&self) -> &ArgTokens {
        &self.echo
    }

    /// Adds an integer of the arguments, whose canonical hash is `hash` ([`crate::canon::hash_int`]):
    /// [`Builder::add_number`], and the number echoable both as that token and as the text it is
    /// written with ([`Echo::insert_number`]), in one entry of the list.
    #[inline(always)]
    pub fn add_int(&mut self, field: u64, negative: bool, magnitude: u64, hash: u64) {
        debug_assert_eq!(hash, crate::canon::hash_int(if negative { -(magnitude as i128) } else { magnitude as i128 }));
        self.echo.number(negative, magnitude, hash);
        self.mix::<false>(field, hash, HEAVY, 0);
    }

    pub fn new() -> Builder {
        Builder {
            mins: [u64::MAX; SLOTS],
            filled: 0,
            ids: [0; 2],
            call_ids: [0; 2],
            named: [0; 2],
            echo: ArgTokens::new(),
            maybe_prose: false,
            split: false,
            prose: core::mem::ManuallyDrop::new(None),
        }
    }

    /// A builder that keeps prose apart: a string argument that [`is_prose`] gives its plain
    /// words to a second sketch ([`Builder::prose`]) and only its numbers, ids, dates, paths and
    /// quoted strings to the arguments' sketch. So a summary or message re-worded around the
    /// same ids is compared by its words' overlap ([`NEAR_PROSE`]) and by its ids exactly.
    pub fn split() -> Builder {
        Builder { split: true, ..Builder::new() }
    }

    /// True when a string argument had many plain words: sketching again with
    /// [`Builder::split`] may find prose.
    pub fn maybe_prose(&self) -> bool {
        self.maybe_prose
    }

    /// The sketch of the prose fields' plain words (with [`Builder::split`]); `None` when no
    /// field was prose. A split builder must end with this call, which frees what it holds.
    pub fn take_prose(&mut self) -> Option<Sketch> {
        core::mem::take(&mut *self.prose).map(|p| p.finish())
    }

    /// Adds the search terms of a command line's `grep`/`rg`/`find` commands (the arguments'
    /// `command`, `cmd` or `action`, whose words [`Builder::add_text`] added): they weigh like
    /// ids, so a changed search term is a new question, quoted or not
    /// ([`crate::shell::search_terms`]).
    pub fn add_search_terms(&mut self, line: &str) {
        crate::shell::search_terms(line, |term| {
            self.add_token::<false>(SEARCHED, token_hash(term.as_bytes()), HEAVY, term.len());
        });
    }

    /// Adds one token, already hashed, `weight` times; a token of weight [`HEAVY`] also enters
    /// the Bloom filter of ids.
    pub fn add_hashed(&mut self, field: u64, token: u64, weight: u32) {
        self.add_token::<false>(field, token, weight, 0);
    }

    /// [`Builder::add_hashed`] of a token `len` bytes long; with `NAMING`, a heavy token found
    /// among `call_ids` is also added to `named` (an answer's tokens: [`Sketch::of_answer`]).
    /// Arguments are sketched without `NAMING`, at no cost on the check path.
    fn add_token<const NAMING: bool>(&mut self, field: u64, token: u64, weight: u32, len: usize) {
        if !NAMING {
            self.echo.token(token);
        }
        self.mix::<NAMING>(field, token, weight, len);
    }

    /// [`Builder::add_token`] without the echo: the sketch and the ids.
    #[inline(always)]
    fn mix<const NAMING: bool>(&mut self, field: u64, token: u64, weight: u32, len: usize) {
        if weight >= HEAVY {
            // `id_bits`, as two words.
            let h = fmix(token ^ K2);
            let mut bits = [0u64; 2];
            bits[(h >> 6 & 1) as usize] |= 1 << (h & 63);
            bits[(h >> 13 & 1) as usize] |= 1 << (h >> 7 & 63);
            self.ids[0] |= bits[0];
            self.ids[1] |= bits[1];
            // An id of the arguments that the answer names.
            if NAMING && len >= NAME_MIN_LEN && (bits[0] & !self.call_ids[0]) | (bits[1] & !self.call_ids[1]) == 0 {
                self.named[0] |= bits[0];
                self.named[1] |= bits[1];
            }
        }
        let base = token ^ field.wrapping_mul(K2);
        for salt in 0..weight as u64 {
            let h = fmix(base.wrapping_add(salt.wrapping_mul(K1)));
            let slot = (h >> 59) as usize;
            self.filled |= 1 << slot;
            if h < self.mins[slot] {
                self.mins[slot] = h;
            }
        }
    }

    /// Adds the tokens of a text found under the field whose name hashes to `field` (0: none).
    pub fn add_text(&mut self, field: u64, text: &[u8]) {
        if self.split {
            self.add_text_split(field, text);
        } else {
            self.scan::<false, false>(field, text);
        }
    }

    /// [`Builder::add_text`] with prose apart ([`Builder::split`]).
    #[cold]
    #[inline(never)]
    fn add_text_split(&mut self, field: u64, text: &[u8]) {
        if field != 0 && is_prose(text) {
            self.scan::<false, true>(field, text);
        } else {
            self.scan::<false, false>(field, text);
        }
    }

    /// [`Builder::add_text`], naming ids or not (see [`Builder::add_token`]); with `PROSE`, the
    /// words that are not ids go to the prose sketch.
    fn scan<const NAMING: bool, const PROSE: bool>(&mut self, field: u64, text: &[u8]) {
        // Tokens, and of them ids: many tokens, few ids may be prose (decided by `is_prose`).
        let (mut words, mut heavies) = (0u32, 0u32);
        // Whether the text is one line, asked at its first code symbol.
        let mut one_line = None::<bool>;
        let mut i = 0;
        let n = text.len();
        while i < n {
            let b = text[i];
            if CLASS[b as usize] & STOP != 0 {
                if let Some((start, end)) = quoted_at(text, i) {
                    // A quoted string is asked as a whole (a search term, a literal): one more
                    // token, heavy like an id, besides its words.
                    self.add_token::<NAMING>(field, token_hash(&text[start..end]) ^ QUOTED, HEAVY, end - start);
                }
                // An escape in raw JSON: `\n`, `\"`, `\u00e9` separate tokens.
                i += match b {
                    b'\\' if text.get(i + 1) == Some(&b'u') => 6,
                    b'\\' => 2,
                    _ => 1,
                };
                continue;
            }
            let start = i;
            // The classes seen in the token.
            let mut seen = 0u8;
            // Where the last dot that follows a letter is (`App.tsx`), for file and dotted names.
            let mut dot = None::<usize>;
            let mut separator = 0;
            while i < n {
                // Letters and digits eight bytes at a time, up to the first other byte.
                if let Some(word) = text.get(i..i + 8) {
                    let (k, classes) = alnum_prefix(u64::from_le_bytes(word.try_into().expect("8 bytes")));
                    seen |= classes;
                    i += k;
                    if k == 8 {
                        // A long run (an id, a hash, base64): sixteen bytes at a time.
                        let (end, digits) = alnum_runs(text, i);
                        seen |= digits;
                        i = end;
                        continue;
                    }
                }
                let class = CLASS[text[i] as usize];
                // One test per byte for both rare cases: the end of the token, and a dot.
                if class & (STOP | DOT) != 0 {
                    if class & STOP != 0 {
                        // A separator that is not an escape is passed over with the token.
                        separator = (text[i] != b'\\') as usize;
                        break;
                    }
                    if i > start && CLASS[text[i - 1] as usize] & ALPHA != 0 {
                        dot = Some(i);
                    }
                }
                seen |= class;
                i += 1;
            }
            let h = token_hash(&text[start..i]);
            // A field whose whole value is one word (`"cabin": "economy"`, a status, a name) is
            // an identifier: a changed value is another question, like a changed id.
            let whole = field != 0 && start == 0 && i == n && n <= QUOTED_MAX;
            // A plain word (letters, `-`, `:`...) weighs 1 unless it is a whole value.
            let heavy = if seen & (DIGIT | SLASH | DOT | CODE) == 0 {
                whole
            } else if seen & (DIGIT | SLASH) != 0 || whole {
                // A number, an id, a date, a path or URL.
                true
            } else {
                // A file name ends in a short extension (`App.tsx`): 1 to 4 bytes after its dot.
                // A code symbol (`parse_date`, `$HOME`, `@retry`, `settings.DEBUG`: a code mark,
                // or a longer dotted name) names what a one-line text asks about (a command
                // line, a query); in a text of many lines (code, a file's content) it is
                // content, and an edit's variations change some.
                let after_dot = dot.map_or(0, |d| i - d - 1);
                (1..=4).contains(&after_dot)
                    || (seen & CODE != 0 || after_dot > 4) && *one_line.get_or_insert_with(|| is_one_line(text))
            };
            words += 1;
            heavies += heavy as u32;
            if PROSE && !heavy {
                let prose = self.prose.get_or_insert_with(Default::default);
                if let Some(h) = prose_word_hash(&text[start..i]) {
                    prose.mix::<false>(field, h, 1, 0);
                }
            } else {
                self.add_token::<NAMING>(field, h, if heavy { HEAVY } else { 1 }, i - start);
            }
            i += separator;
        }
        if !NAMING && !PROSE && words >= PROSE_MIN_WORDS && field != 0 && heavies * 4 <= words {
            self.maybe_prose = true;
        }
    }

    /// Adds a number, already hashed canonically: it weighs like an id.
    pub fn add_number(&mut self, field: u64, hash: u64) {
        self.add_hashed(field, hash, HEAVY);
    }

    pub fn finish(&self) -> Sketch {
        let mut mins = self.mins.map(|full| full as u8);
        // Empty buckets hold 0 (see `similarity`).
        let mut empty = !self.filled;
        while empty != 0 {
            mins[empty.trailing_zeros() as usize] = 0;
            empty &= empty - 1;
        }
        Sketch { filled: self.filled, mins, ids: narrow(self.ids) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;

    fn sim(a: &str, b: &str) -> u32 {
        Sketch::of_text(a.as_bytes()).similarity(&Sketch::of_text(b.as_bytes()))
    }

    #[test]
    fn the_same_text_is_fully_similar() {
        assert_eq!(sim("edit the file please", "edit the file please"), 100);
        assert_eq!(sim("", ""), 100);
        assert_eq!(sim("", "x"), 0);
    }

    #[test]
    fn white_space_and_punctuation_do_not_matter() {
        assert_eq!(sim("a(b, c);", "a ( b , c )"), 100);
    }

    #[test]
    fn a_small_change_in_a_long_text_stays_similar() {
        let a = "const App = () => { return <div className=App><Viewer /></div> } export default App";
        let b = "const App = () => { return <div className=App><Viewer /></div>; } export default App;";
        assert!(sim(a, b) >= 90, "{}", sim(a, b));
    }

    #[test]
    fn a_changed_id_or_path_weighs_more_than_a_word() {
        let base = "curl -X POST -F file=ARGV http://host/cgi-bin/file.pl?a";
        let word = sim(base, "curl -X POST -F file=ARGC http://host/cgi-bin/file.pl?a");
        let path = sim(base, "curl -X POST -F file=ARGV http://host/cgi-bin/file.pl?b");
        assert!(path < word, "path {path} word {word}");
        assert!(sim("open page 3", "open page 4") < 50);
    }

    #[test]
    fn a_new_id_is_a_new_target_but_a_dropped_one_is_not() {
        let a = Sketch::of_text(b"book QZX417 2024-05-13 QZX588 economy");
        let fewer = Sketch::of_text(b"book QZX417 2024-05-13 economy");
        let other = Sketch::of_text(b"book QZX417 2024-05-14 QZX588 economy");
        assert!(!fewer.introduces(&a));
        assert!(other.introduces(&a));
        assert!(!Sketch::of_text(b"book QZX417 2024-05-13 QZX588 business").introduces(&a));
    }

    #[test]
    fn an_answer_names_the_ids_of_its_call_that_it_repeats() {
        let args = Sketch::of_text(b"order QX7F2A items KT-4410 KT-5521 pay card_5512");
        let answer = b"Error: item KT-4410 is out of stock (order 7 of 12)";
        let sketch = Sketch::of_answer(answer, &args);
        // As similar to others as the plain sketch; its ids are those it names.
        let plain = Sketch::of_text(answer);
        assert_eq!((sketch.filled, sketch.mins), (plain.filled, plain.mins));
        let named = sketch.ids();
        assert_eq!(named, Sketch::of_text(b"KT-4410").ids());
        assert!(named.within(&args.ids()));
        assert!(!named.within(&Sketch::of_text(b"order QX7F2A items KT-5590 KT-5521 pay card_5512").ids()));
        // An id the call did not send is not named; neither is a short number it did send.
        assert!(Sketch::of_answer(b"Error: item KT-9999 is out of stock", &args).ids().is_empty());
        let head = Sketch::of_text(b"head -n 1 notes.txt");
        assert!(Sketch::of_answer(b"exit status 1", &head).ids().is_empty());
        assert!(!Sketch::of_answer(b"cannot open notes.txt (no such file)", &head).ids().is_empty());
        // Nothing is named after arguments without ids.
        assert!(Sketch::of_answer(answer, &Sketch::of_text(b"list the open orders")).ids().is_empty());
    }

    fn split(args: &str) -> (Sketch, Option<Sketch>) {
        let mut b = Builder::split();
        for (k, v) in args.split('\u{1}').enumerate() {
            b.add_text(k as u64 + 1, v.as_bytes());
        }
        (b.finish(), b.take_prose())
    }

    #[test]
    fn prose_is_many_plain_words() {
        assert!(is_prose(b"The customer wants to cancel her reservation and get a full refund."));
        assert!(is_prose(b"User Ana Silva (reservation QZX417) wants a refund for the cancelled flight on 2024-05-13, not eligible."));
        // Code, command lines, ids, short texts are not prose.
        assert!(!is_prose(b"for x in items: total = total + x.price; print(total) if total > 0 else None"));
        assert!(!is_prose(b"grep -rn --include=*.py parse_args src/ | head -20 && ls -la build/"));
        assert!(!is_prose(b"QZX417 QZX588 KT-4410 KT-5521 2024-05-13 2024-05-14 card_5512 gift_card_77"));
        assert!(!is_prose(b"cancel the reservation please"));
    }

    #[test]
    fn re_worded_prose_shares_its_words_and_keeps_its_ids() {
        let a = split("The customer wants to cancel reservation QZX417 and get a full refund, but it is basic economy without travel insurance, so it is not eligible under the policy.");
        let b = split("Customer asks to cancel reservation QZX417 for a full refund. It is basic economy with no travel insurance and therefore not eligible per policy.");
        let other = split("Customer asks to cancel reservation QZX588 for a full refund. It is basic economy with no travel insurance and therefore not eligible per policy.");
        let unrelated = split("Please ask the user which of the two payment methods on file should be charged for the extra checked bag.");
        let (pa, pb) = (a.1.expect("prose"), b.1.expect("prose"));
        // The ids stay in the arguments' sketch, compared as ids; the words apart.
        assert_eq!(a.0.similarity(&b.0), 100);
        assert!(other.0.introduces(&b.0));
        assert!(pa.similarity(&pb) >= NEAR_PROSE, "{}", pa.similarity(&pb));
        assert!(pa.similarity(&unrelated.1.expect("prose")) < NEAR_PROSE);
        // Without prose fields the split sketch is the plain one.
        let plain = split("book\u{1}QZX417 economy");
        assert!(plain.1.is_none());
    }

    #[test]
    fn a_long_plain_field_asks_for_the_split() {
        let mut b = Builder::new();
        b.add_text(1, b"The customer wants to cancel her reservation and get a full refund.");
        assert!(b.maybe_prose());
        let mut b = Builder::new();
        b.add_text(1, b"flights from SFO to JFK on 2024-05-01");
        b.add_text(2, b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        assert!(!b.maybe_prose());
    }

    #[test]
    fn ids_combine_as_sets() {
        let a = Sketch::of_text(b"QX7F2A KT-4410 KT-5521").ids();
        let b = Sketch::of_text(b"QX7F2A KT-4410 KT-5590").ids();
        let both = a.and(&b);
        let shared = Sketch::of_text(b"QX7F2A KT-4410").ids();
        assert!(shared.within(&both));
        assert!(!a.within(&both) && a.within(&a.or(&b)));
        assert!(Ids::default().is_empty() && Ids::default().within(&both));
    }

    /// The tokenizer and the comparison as first written (a chain of comparisons per byte, four
    /// `count_ones`): the table-driven, eight-at-a-time versions must give the very same
    /// sketches and scores.
    fn reference_sketch(text: &[u8]) -> Sketch {
        let mut b = Builder::new();
        let (mut i, n) = (0, text.len());
        let one_line = !text.contains(&b'\n') && !text.windows(2).any(|w| w == b"\\n");
        while i < n {
            let c = text[i];
            if c == b'\\' {
                if let Some((start, end)) = quoted_at(text, i) {
                    b.add_hashed(0, token_hash(&text[start..end]) ^ QUOTED, HEAVY);
                }
                i += if text.get(i + 1) == Some(&b'u') { 6 } else { 2 };
                continue;
            }
            if let Some((start, end)) = quoted_at(text, i) {
                b.add_hashed(0, token_hash(&text[start..end]) ^ QUOTED, HEAVY);
            }
            if is_separator(c) {
                i += 1;
                continue;
            }
            let start = i;
            let (mut digit, mut slash, mut code) = (false, false, false);
            let (mut ext, mut prev_alpha) = (None::<usize>, false);
            while i < n {
                let c = text[i];
                if c == b'\\' || is_separator(c) {
                    break;
                }
                digit |= c.is_ascii_digit();
                slash |= c == b'/';
                code |= b"_@#$%^*+~".contains(&c);
                ext = if c == b'.' && prev_alpha { Some(0) } else { ext.map(|k| k + 1) };
                prev_alpha = c.is_ascii_alphabetic();
                i += 1;
            }
            let file = ext.is_some_and(|k| (1..=4).contains(&k));
            let symbol = (code || ext.is_some_and(|k| k > 4)) && one_line;
            b.add_hashed(0, token_hash(&text[start..i]), if digit || slash || file || symbol { HEAVY } else { 1 });
        }
        b.finish()
    }

    fn reference_similarity(a: &Sketch, b: &Sketch) -> u32 {
        let union = (a.filled | b.filled).count_ones();
        if union == 0 {
            return 100;
        }
        let equal = a.mins.iter().zip(&b.mins).filter(|(x, y)| x == y).count() as u32;
        (equal - (SLOTS as u32 - union)) * 100 / union
    }

    #[test]
    fn the_fast_paths_match_the_reference() {
        let mut texts: Vec<Vec<u8>> = [
            "", "a", "App.tsx", "document.body", "a.b.cd", "x.tar.gz", ".env", "1.5", "v2.txt", "..a.", "a\\u00e9b",
            "line\\nnext \\\"q\\\"", "curl -X POST http://host/cgi-bin/file.pl?a", "book QZX417 2024-05-13 economy",
            "trailing\\", "trailing\\u00", "a.b/c.d e.fghij k.", "ÀÉ.txt é.py",
            "jq .settings.use_tz config.json", "echo $HOME user@example.com a_b", "x_y\\nos.path.join $HOME",
            "x_y\nsettings.DEBUG", "a\\\\n_b",
        ]
        .iter()
        .map(|t| t.as_bytes().to_vec())
        .collect();
        // Pseudo-random texts over an alphabet rich in the bytes the tokenizer cares about, and
        // over one of long runs of letters and digits broken by the bytes just outside their
        // ranges (`/` `:` `@` `[` `` ` `` `{`) and by non-ASCII bytes.
        let alphabets: [&[u8]; 2] = [
            b"ab Z09./\\un\"',;=|&<>()[]{}\t\n-_$:?\xc3\xa9",
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefxyzXYZ09/:@[`{ .\xc3\xa9",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for alphabet in alphabets {
            for len in 0..400 {
                let mut t = Vec::new();
                for _ in 0..len % 97 {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    t.push(alphabet[(state % alphabet.len() as u64) as usize]);
                }
                texts.push(t);
            }
        }
        let sketches: Vec<Sketch> = texts.iter().map(|t| Sketch::of_text(t)).collect();
        for (t, s) in texts.iter().zip(&sketches) {
            assert_eq!(*s, reference_sketch(t), "{:?}", String::from_utf8_lossy(t));
        }
        for a in sketches.iter().step_by(7) {
            for b in &sketches {
                assert_eq!(a.similarity(b), reference_similarity(a, b));
            }
        }
    }

    #[test]
    fn eight_bytes_at_once_are_classed_like_one_at_a_time() {
        for b in 0..=255u8 {
            for at in 0..8 {
                for base in [b"aZ0zA9mq", b"01234567", b"abcdefgh"] {
                    let mut word = *base;
                    word[at] = b;
                    let n = word.iter().take_while(|c| c.is_ascii_alphanumeric()).count();
                    let classes = word[..n].iter().map(|&c| CLASS[c as usize]).fold(0, |a, c| a | c);
                    assert_eq!(alnum_prefix(u64::from_le_bytes(word)), (n, classes), "{word:?}");
                }
            }
        }
        assert_eq!(alnum_prefix(u64::from_le_bytes(*b"abcdefgh")), (8, ALPHA));
        assert_eq!(alnum_prefix(u64::from_le_bytes(*b"2024-05-")), (4, DIGIT));
        assert_eq!(alnum_prefix(u64::from_le_bytes(*b" flights")), (0, 0));
    }

    #[test]
    fn sixteen_bytes_at_once_are_classed_like_one_at_a_time() {
        let alphabet = b"abcxyzABCXYZ0189/:@[`{ .\xc3\xb1\xb9";
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..3000 {
            // Mostly letters and digits, so that whole blocks of sixteen occur.
            let text: Vec<u8> = (0..80)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let pick = (state >> 8) as usize;
                    alphabet[if state % 40 == 0 { pick % alphabet.len() } else { pick % 16 }]
                })
                .collect();
            for at in [0, 3, 17] {
                let run = text[at..].iter().take_while(|b| b.is_ascii_alphanumeric()).count();
                let end = at + (run.min(text.len() - at) / 16) * 16;
                let digits = if text[at..end].iter().any(u8::is_ascii_digit) { DIGIT } else { 0 };
                assert_eq!(alnum_runs(&text, at), (end, digits), "{:?}", String::from_utf8_lossy(&text[at..]));
            }
        }
    }

    #[test]
    fn the_check_path_shortcuts_set_the_same_bits() {
        // `Echo::insert` against `Echo::bits`, the ids of `add_token` against `id_bits`, and a
        // number's text against its formatted value, on many tokens.
        let mut h = K1;
        for i in 0..2000u64 {
            h = fmix(h ^ i);
            let mut echo = Echo::default();
            echo.insert(h);
            let mut want = Echo::default();
            for (w, bit) in Echo::bits(h) {
                want.0[w] |= bit;
            }
            assert_eq!(echo, want);
            let mut b = Builder::new();
            b.add_hashed(0, h, HEAVY);
            let mut ids = [0u64; 2];
            for (w, bit) in id_bits(h) {
                ids[w] |= bit;
            }
            assert_eq!(b.ids, ids);
        }
        for n in [0i128, 7, -3, 957, 1002, -9223372036854775807, i64::MIN as i128, u64::MAX as i128, 10_000_000_000, i128::MIN + 1] {
            let mut echo = Echo::default();
            echo.insert_number(n);
            assert_eq!(echo, Echo::from_token(token_hash(alloc::format!("{n}").as_bytes())), "{n}");
        }
    }

    #[test]
    fn listed_argument_tokens_give_the_filter_of_every_token() {
        // Tokens and numbers, fewer and more than are listed, against inserting each at once.
        let mut h = K2;
        for count in [0usize, 1, 5, ArgTokens::LISTED - 1, ArgTokens::LISTED, ArgTokens::LISTED + 1, 40] {
            let mut listed = ArgTokens::new();
            let mut want = Echo::default();
            for i in 0..count {
                h = fmix(h ^ i as u64);
                match h % 4 {
                    0 | 1 => {
                        let n = (h >> 8) as i64 as i128 / if h & 16 == 0 { 1 } else { 1 << 40 };
                        let n = if h % 4 == 1 { n.unsigned_abs() as i128 + u64::MAX as i128 / 2 } else { n };
                        listed.number(n < 0, n.unsigned_abs() as u64, crate::canon::hash_int(n));
                        want.insert(crate::canon::hash_int(n));
                        want.insert_number(n);
                    }
                    _ => {
                        listed.token(h);
                        want.insert(h);
                    }
                }
            }
            assert_eq!(listed.filter(), want, "{count} tokens");
            assert_eq!(listed, ArgTokens { words: want.0, listed: ArgTokens::FILTER, numbers: 0, negative: 0 });
        }
    }

    #[test]
    fn a_changed_code_symbol_in_one_line_is_a_new_question() {
        let q = |t: &str| Sketch::of_text(t.as_bytes());
        for (a, b) in [
            ("jq .settings.use_tz config.json", "jq .settings.append_slash config.json"),
            ("git log -S parse_date --oneline", "git log -S to_iso_date --oneline"),
            ("echo $HOME", "echo $PATH"),
            ("python -c import os; print os.path.sep", "python -c import os; print os.environ.keys"),
        ] {
            assert!(q(b).introduces(&q(a)) && q(a).introduces(&q(b)), "{a} / {b}");
        }
        // In many lines (code, an edit's content) a symbol is content: an edit that adds one
        // brings no new id, and stays comparable to the edit before it.
        let one = "function App() {\n  const [dark, setDark] = useState(false)\n  return <div/>\n}";
        let two = "function App() {\n  const [dark, setDark] = useState(false)\n  document.body.classList.toggle(x)\n  return <div/>\n}";
        assert!(!q(two).introduces(&q(one)));
        // A sentence's final dot makes no dotted name.
        assert!(!q("it is done.").introduces(&q("it is finished")));
    }

    #[test]
    fn a_changed_quoted_string_is_a_new_question() {
        let a = Sketch::of_text(br#"cd /testbed && grep -r "Ellipsis(" astroid/ | grep -v "class Ellipsis" | head -5"#);
        let b = Sketch::of_text(br#"cd /testbed && grep -r "ExtSlice(" astroid/ | grep -v "class ExtSlice" | head -5"#);
        assert!(b.introduces(&a) && a.introduces(&b));
        let raw = Sketch::of_text(br#"pylint --bad-names-rgxs=\"foo,bar\" foo.py"#);
        assert!(Sketch::of_text(br#"pylint --bad-names-rgxs=\"foo, bar\" foo.py"#).introduces(&raw));
        // The same quoted strings, other words: no new question.
        assert!(!Sketch::of_text(b"please grep 'Index(' now").introduces(&Sketch::of_text(b"grep 'Index(' again")));
        // An apostrophe in a word opens no quote.
        assert!(!Sketch::of_text(b"it's done, isn't it").introduces(&Sketch::of_text(b"it's finished")));
        assert_eq!(quoted_at(b"say 'hi' x", 4), Some((5, 7)));
        assert_eq!(quoted_at(b"it's 'x'", 2), None);
        assert_eq!(quoted_at(b"''", 0), None);
        assert_eq!(quoted_at(b"'a\nb'", 0), None);
    }

    #[test]
    fn errors_compare_with_their_echo_of_the_arguments_left_out() {
        let mut b = Builder::new();
        b.add_text(1, b"if x == 1:\n    return");
        b.add_int(0, false, 957, crate::canon::hash_int(957));
        let echo = &b.echo().filter();
        let key = |t: &[u8], e: Option<&Echo>| error_key(t, e).key;
        let k1 = key(b"Error: No replacement was performed, old_str `if x == 1:\n    return` did not appear", Some(echo));
        let k2 = key(b"Error: No replacement was performed, old_str `if x == 1:` did not appear", Some(echo));
        assert_eq!(k1, k2);
        let paid = error_key(b"total is 1002, but paid 957", Some(echo));
        assert_eq!(paid.key, key(b"total is 1002, but paid", None));
        assert!(paid.own_ids, "1002 is the error's own");
        let mut sent = Builder::new();
        sent.add_number(1, crate::canon::hash_int(957));
        assert_eq!(paid.echoed, sent.finish().ids());
        assert!(!error_key(b"x == 1: is wrong", Some(echo)).own_ids, "1: is echoed");
        assert_ne!(key(b"total is 1002, but paid 957", None), key(b"total is 1002, but paid 1047", None));
        assert_ne!(key(b"file a.py not found", Some(echo)), key(b"file b.py not found", Some(echo)));
    }

    #[test]
    fn different_texts_are_not_similar() {
        assert!(sim("the quick brown fox", "lorem ipsum dolor sit amet") < 20);
    }
}
