//! Effect inference over shell command lines and tool names: `shell::parse`, `effect::infer`,
//! `effect::shell_effect`, `effect::leading_word`, `effect::is_transient` on any text, without a
//! panic or a hang. And one safety property: a line read as read-only, followed by `; rm -rf x`,
//! is no longer read-only (unless the rest of the line is a comment).
#![no_main]

use libfuzzer_sys::fuzz_target;
use microloop_core::effect::{self, Effect};
use microloop_core::shell;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (tool, line) = match text.split_once('\u{0}') {
        Some((t, l)) => (t, l),
        None => ("bash", &*text),
    };
    let parsed = shell::parse(line);
    let effect = effect::shell_effect(line);
    assert_eq!(effect, effect::shell_effect(line), "deterministic");
    if parsed.incomplete || parsed.writes_file {
        assert_eq!(effect, Effect::Write, "{line:?}");
    }
    let _ = effect::infer(tool, Some(line));
    let _ = effect::infer(tool, None);
    let word = effect::leading_word(tool);
    assert!(tool.contains(word), "the leading word {word:?} of {tool:?}");
    let _ = effect::is_shell_tool(tool);
    let _ = effect::is_transient(data);
    if effect == Effect::Read && !line.contains('#') && !line.contains("<<") {
        let extended = format!("{line} ; rm -rf x");
        assert_eq!(effect::shell_effect(&extended), Effect::Write, "{extended:?} is read as read-only");
        assert_eq!(effect::infer("bash", Some(&extended)), Effect::Write, "{extended:?}");
    }
});
