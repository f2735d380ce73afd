//! What a call does to the world (read or write), and whether a failure is transient.
//!
//! Progress, the heart of loop detection, is defined by effects: a write that succeeded between two
//! executions of the same call may have changed its answer; a read did not. The policy may say a
//! tool's effect; otherwise it is inferred here. When unsure the answer is `Write`: treating a read
//! as a write only delays a block, while the opposite would block legitimate work.

use alloc::string::String;
use alloc::vec::Vec;

use serde::Deserialize;

use crate::shell;

/// The effect of a call on the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Only observes: repeating it after other reads cannot give a new answer.
    Read,
    /// May change the world.
    Write,
}

/// Leading verbs of read-only tools (`get_weather`, `listFiles`, `search`, `view_page`).
const READ_VERBS: &[&str] = &[
    "get", "list", "search", "find", "read", "view", "show", "fetch", "query", "check", "status",
    "calculate", "calc", "compute", "think", "grep", "cat", "ls", "open", "screenshot", "wait",
    "sleep", "poll", "lookup", "look", "describe", "inspect", "count", "head", "tail", "browse",
    "navigate", "visit", "scroll", "peek", "retrieve", "load", "explore", "summarize",
    "verify", "validate", "stat", "diff", "info", "print", "echo", "preview", "scan",
    "observe", "watch", "tree", "pwd", "which", "whoami", "recall", "is", "has", "can",
];

/// Tools that run a shell command given in their arguments.
const SHELL_TOOLS: &[&str] = &[
    "bash", "sh", "zsh", "shell", "terminal", "execute_bash", "run_bash", "run_shell", "exec",
    "execute", "execute_command", "run_command", "run_terminal_cmd", "run_terminal_command",
    "cmd", "command", "powershell", "run", "run_in_terminal", "shell_exec", "bash_command",
    // coding agents: Codex CLI, Gemini CLI, Cline
    "exec_command", "shell_command", "run_shell_command",
];

/// Programs that only read, whatever their arguments (redirections aside).
const READ_PROGRAMS: &[&str] = &[
    "cat", "ls", "ll", "grep", "egrep", "fgrep", "rg", "ag", "ack", "head", "tail", "wc", "less",
    "more", "nl", "file", "stat", "du", "df", "pwd", "echo", "printf", "which", "whereis", "type",
    "whoami", "id", "env", "printenv", "date", "tree", "cd", "sort", "uniq", "cut", "tr", "diff",
    "cmp", "jq", "yq", "readlink", "realpath", "basename", "dirname", "true", "hostname", "uname",
    "ps", "top", "free", "sleep", "wait", "test", "[", "md5sum", "sha256sum", "xxd", "od", "hexdump",
    "column", "fold", "awk", "strings", "locate", "history", "man", "help", "view", "open",
];

/// `git` subcommands that only read.
const GIT_READS: &[&str] = &[
    "status", "log", "diff", "show", "branch", "rev-parse", "blame", "ls-files", "grep", "remote",
    "describe", "shortlog", "reflog", "config", "ls-tree", "cat-file",
];

fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x.to_ascii_lowercase() == y)
}

/// The first word of a tool or action name: `get_weather` → `get`, `listFiles` → `list`,
/// `mcp__fs__read_file` → `read` (namespaces before `__`, `.`, `/` or `:` are dropped).
pub fn leading_word(name: &str) -> &str {
    let base = name.rsplit(['.', '/', ':']).next().unwrap_or(name);
    let base = base.rsplit("__").next().unwrap_or(base).trim_start_matches(['_', '-', ' ']);
    let bytes = base.as_bytes();
    let mut end = bytes.len();
    for (i, &b) in bytes.iter().enumerate() {
        let camel = i > 0 && b.is_ascii_uppercase() && bytes[i - 1].is_ascii_lowercase();
        if matches!(b, b'_' | b'-' | b' ' | b'\t' | b'\n') || camel {
            end = i;
            break;
        }
    }
    &base[..end]
}

fn is_read_verb(word: &str) -> bool {
    READ_VERBS.iter().any(|v| eq_ignore_case(word, v))
}

/// True when `tool` is a shell-like tool whose `command` argument is a shell command line.
pub fn is_shell_tool(tool: &str) -> bool {
    SHELL_TOOLS.iter().any(|t| eq_ignore_case(tool, t))
}

/// Infers the effect of a call from its tool name and, when present, its top-level
/// `command` / `action` argument.
pub fn infer(tool: &str, command: Option<&str>) -> Effect {
    if let Some(cmd) = command {
        let first = cmd.split_whitespace().next().unwrap_or("");
        // Shell tools, and text-action agents whose tool is the command's own first word.
        if is_shell_tool(tool) || (!first.is_empty() && first == tool) {
            return shell_effect(cmd);
        }
    }
    if is_read_verb(leading_word(tool)) {
        return Effect::Read;
    }
    match command {
        Some(cmd) if is_read_verb(leading_word(cmd.trim())) => Effect::Read,
        _ => Effect::Write,
    }
}

/// The effect of a shell command line: a read when every command in it runs a read-only
/// program, with no output redirection to a file and no in-place edit. The line is read with
/// its quoting ([`crate::shell`]): `grep -n "a(b);" f` is one command. A line that cannot be read
/// to its end (an unterminated quote) is a write.
pub fn shell_effect(line: &str) -> Effect {
    let parsed = shell::parse(line);
    if parsed.commands.is_empty() || parsed.writes_file || parsed.incomplete {
        return Effect::Write;
    }
    if parsed.commands.iter().all(|words| command_is_read(words)) { Effect::Read } else { Effect::Write }
}

fn command_is_read(words: &[String]) -> bool {
    let Some((program, args)) = words.split_first() else { return true };
    let program = program.rsplit('/').next().unwrap_or(program);
    let mut args = args.iter().map(String::as_str);
    match program {
        "sed" => {
            let args: Vec<&str> = args.collect();
            args.iter().any(|a| *a == "-n" || a.starts_with("-n") && !a.contains('i') || *a == "--quiet")
                && !args.iter().any(|a| a.starts_with("-i") || *a == "--in-place" || (a.starts_with('-') && !a.starts_with("--") && a.contains('i')))
        }
        "find" => !args.any(|w| matches!(w, "-delete" | "-exec" | "-execdir" | "-ok" | "-okdir" | "-fprint" | "-fprintf" | "-fls")),
        "git" => {
            let sub = args.find(|w| !w.starts_with('-'));
            sub.is_some_and(|s| GIT_READS.contains(&s))
        }
        "sort" => !args.any(|w| w == "-o" || w.starts_with("--output")),
        _ => READ_PROGRAMS.contains(&program),
    }
}

/// True when an error answer looks transient: a timeout, a rate limit, an overloaded or
/// unavailable upstream (HTTP 429, 502, 503, 504). Only the first 4 KiB are looked at.
pub fn is_transient(output: &[u8]) -> bool {
    let text = &output[..output.len().min(4096)];
    const WORDS: &[&[u8]] = &[
        b"timeout", b"timed out", b"time out", b"time-out", b"rate limit", b"ratelimit",
        b"rate-limit", b"temporarily", b"temporary", b"too many requests", b"service unavailable",
        b"bad gateway", b"gateway timeout", b"try again", b"overloaded", b"connection reset",
        b"econnreset", b"etimedout", b"econnrefused", b"unavailable", b"throttl",
    ];
    if WORDS.iter().any(|w| contains_ignore_case(text, w)) {
        return true;
    }
    // A status code standing alone as a number (not inside `14290` or `v503a`).
    let mut i = 0;
    while i + 3 <= text.len() {
        let code = &text[i..i + 3];
        let before = i == 0 || !text[i - 1].is_ascii_alphanumeric();
        let after = text.get(i + 3).map_or(true, |b| !b.is_ascii_alphanumeric());
        if before && after && matches!(code, b"429" | b"502" | b"503" | b"504") {
            return true;
        }
        i += 1;
    }
    false
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Effect::*;

    #[test]
    fn leading_words() {
        assert_eq!(leading_word("get_weather"), "get");
        assert_eq!(leading_word("listFiles"), "list");
        assert_eq!(leading_word("mcp__fs__read_file"), "read");
        assert_eq!(leading_word("browser.open"), "open");
        assert_eq!(leading_word("search"), "search");
    }

    #[test]
    fn tool_names() {
        assert_eq!(infer("get_user_details", None), Read);
        assert_eq!(infer("think", None), Read);
        assert_eq!(infer("book_reservation", None), Write);
        assert_eq!(infer("str_replace_editor", Some("view")), Read);
        assert_eq!(infer("str_replace_editor", Some("str_replace")), Write);
        assert_eq!(infer("computer", Some("screenshot")), Read);
    }

    #[test]
    fn shell_commands() {
        for cmd in ["ls -la", "cat a.py | grep foo", "cd /repo && git status", "sed -n '1,20p' x.py",
                    "grep -rn foo . 2>/dev/null", "find . -name '*.py'", "FOO=1 rg bar", "python -c 'print(1)' > /dev/null && ls"] {
            let want = if cmd.starts_with("python") { Write } else { Read };
            assert_eq!(shell_effect(cmd), want, "{cmd}");
        }
        for cmd in ["rm -rf build", "sed -i s/a/b/ x.py", "echo hi > f.txt", "pytest", "cat a | tee b",
                    "git commit -m x", "find . -delete", "python reproduce.py", ""] {
            assert_eq!(shell_effect(cmd), Write, "{cmd}");
        }
        assert_eq!(infer("bash", Some("cat setup.py")), Read);
        // Operators and redirections inside quotes are text.
        for cmd in [r#"grep -n "DECL(pattern);" src/x.c"#, "grep -rn 'a > b' .", r#"grep "x && rm -rf y" f"#,
                    "cat <<< 'a; rm b'", "sed -n '/(/,/);/p' f", r#"rg "foo|bar" | head -5"#, "ls $(pwd)", "cd /repo && grep -r \"Index(\" astroid/"] {
            assert_eq!(shell_effect(cmd), Read, "{cmd}");
        }
        for cmd in ["grep x f; rm f", "echo $(rm -rf x)", "cat <<'EOF' > a.py\nprint(1)\nEOF", "cat `touch x`", "echo 'unterminated",
                    "sed -ni 's/a/b/p' f", "ls | xargs rm"] {
            assert_eq!(shell_effect(cmd), Write, "{cmd}");
        }
        assert_eq!(infer("grep", Some("grep -n foo x")), Read);
        assert_eq!(infer("sed", Some("sed -i 's/a/b/' x")), Write);
    }

    #[test]
    fn transient_errors() {
        for s in ["Error: 503 Service Unavailable", "Request timed out", "HTTP 429", "rate limit exceeded",
                  "temporarily unavailable"] {
            assert!(is_transient(s.as_bytes()), "{s}");
        }
        for s in ["KeyError: 'x'", "order 14290 not found", "Error: file not found"] {
            assert!(!is_transient(s.as_bytes()), "{s}");
        }
    }
}
