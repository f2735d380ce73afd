//! The fast path held against serde_json, for the differential fuzz target (`native/fuzz`,
//! `fingerprint_diff`). Compiled only under `cfg(fuzzing)`, which cargo-fuzz sets.

use alloc::string::String;

use super::fast::{self, Decline};
use super::{serde_doc, Hashed};
use crate::doc::Doc;
use crate::sketch::{ArgTokens, Builder};

/// Panics when the byte scanner and serde_json disagree on `text`: a text the scanner takes must
/// be one serde_json takes, with the same fingerprint, command, sketch and document; a text the
/// scanner calls certainly not JSON (trailing characters) must be one serde_json refuses.
/// Returns whether the scanner took the text.
pub fn fast_agrees_with_serde(text: &str, ignore: &[String]) -> bool {
    let (mut builder, mut fast_doc) = (Builder::new(), Doc::default());
    let read = fast::read(text, ignore, Some(&mut builder), Some(&mut fast_doc));
    let bare = fast::read(text, ignore, None, None);
    let (mut slow_doc, mut slow_echo) = (Doc::default(), ArgTokens::new());
    let slow = serde_doc(text, ignore, true, &mut slow_doc, Some(&mut slow_echo));
    match read {
        Err(why) => {
            assert_eq!(bare.err(), Some(why), "the scanner declined {text:?} with a document and answered without one");
            if why == Decline::Trailing {
                assert!(slow.is_err(), "the scanner saw trailing characters in {text:?}, serde_json took it");
            }
            false
        }
        Ok(read) => {
            let bare = bare.unwrap_or_else(|_| panic!("the scanner took {text:?} with a document, declined it without one"));
            assert_eq!((bare.fingerprint, &bare.command), (read.fingerprint, &read.command), "{text:?}");
            // What `hash_fast` adds to the scan: a command line's search terms, prose sketched apart.
            if let Some((_, line)) = &read.command {
                builder.add_search_terms(line);
            }
            let fast: Hashed = match builder.maybe_prose() {
                true => super::split_prose(read.hashed(None), text, ignore).unwrap_or_else(|_| panic!("the scanner took {text:?} once, declined it again")),
                false => read.hashed(Some(builder.finish())),
            };
            let slow = slow.unwrap_or_else(|e| panic!("the scanner took {text:?}, serde_json refused it: {e}"));
            assert_eq!(fast, slow, "{text:?}");
            assert_eq!(*builder.echo(), slow_echo, "{text:?}");
            assert_eq!(fast_doc.items, slow_doc.items, "{text:?}");
            assert_eq!(fast_doc.owned, slow_doc.owned, "{text:?}");
            true
        }
    }
}
