//! A quote-aware reading of a shell command line, enough to tell what it runs.
//!
//! [`crate::effect`] decides whether a shell tool's command only reads; for that it needs the
//! programs the line runs and their words, and whether any output goes to a file. Splitting the
//! line at `;`, `|`, `(` wherever they are reads `grep -n "DECL(pattern);" f` as three commands
//! (a read taken for a write). This module follows the POSIX shell's quoting instead: `'…'`,
//! `"…"` (with `\` escapes and `$(…)` inside), `\x`, `$(…)` and `` `…` `` (whose commands are
//! commands of the line too), `#` comments, here-documents (`<<EOF` … `EOF`: data, not commands),
//! here-strings (`<<<`), and the operators `;` `&` `&&` `||` `|` `|&`, newlines and `( )` `{ }`
//! groups between commands.
//!
//! `shlex` (a kept crate, `no_std` + `alloc`) splits words the same way but knows no operators,
//! substitutions or here-documents, which is what deciding an effect is about: hence this
//! small reader.
//!
//! It is not a shell: no expansion of variables, globs or aliases. A line it cannot finish
//! reading (an unterminated quote or substitution) is reported as such, and read as a write by
//! the caller (when unsure, a write).

use alloc::string::String;
use alloc::vec::Vec;

/// What a command line runs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Line {
    /// Each simple command's words, quotes removed; redirections and their targets are left
    /// out, and so are the commands' leading `NAME=value` assignments. Commands inside
    /// `$(…)` or backquotes come after the command that holds them.
    pub commands: Vec<Vec<String>>,
    /// Some output goes to a file: `>`, `>>`, `>|`, `&>` or `&>>` to anything but `/dev/null`
    /// or another descriptor (`2>&1`).
    pub writes_file: bool,
    /// The line ended inside a quote, a substitution or a here-document's header.
    pub incomplete: bool,
}

/// Reads a command line.
pub fn parse(line: &str) -> Line {
    let mut out = Line::default();
    let mut r = Reader { s: line.as_bytes(), i: 0, heredocs: Vec::new() };
    r.commands(&mut out, None);
    out
}

struct Reader<'a> {
    s: &'a [u8],
    i: usize,
    /// Here-documents announced on the current line (`<<EOF`, `<<-EOF`): their bodies start on
    /// the next line. `(delimiter, strip leading tabs)`.
    heredocs: Vec<(String, bool)>,
}

/// A word being built, and what it turned out to be.
#[derive(Default)]
struct Word {
    text: Vec<u8>,
    /// Anything (even an empty quote) was read: `''` is a word.
    any: bool,
    /// Some of it was quoted or escaped: not an operator, not an assignment.
    quoted: bool,
}

impl Reader<'_> {
    fn peek(&self, k: usize) -> Option<u8> {
        self.s.get(self.i + k).copied()
    }

    /// Reads commands up to the end, or up to `close` (`)` of a `$(`, `` ` ``) at depth 0.
    fn commands(&mut self, out: &mut Line, close: Option<u8>) {
        let mut words: Vec<String> = Vec::new();
        // A redirection's target is the next word: `Some(out)` where `out` says it is output.
        let mut target: Option<bool> = None;
        // A here-document's delimiter is the next word (`<<`), or a here-string's data (`<<<`).
        let mut heredoc: Option<bool> = None;
        let mut here_string = false;
        // Open `(` groups inside this level: their `)` is not `close`.
        let mut depth = 0u32;
        loop {
            self.blanks();
            let Some(b) = self.peek(0) else {
                if close.is_some() {
                    out.incomplete = true;
                }
                break;
            };
            if Some(b) == close && depth == 0 {
                self.i += 1;
                break;
            }
            match b {
                b'\n' => {
                    self.i += 1;
                    self.flush(&mut words, out);
                    self.skip_heredoc_bodies();
                    continue;
                }
                b';' | b'&' | b'|' | b'(' | b')' => {
                    // `&>` and `&>>` are redirections, not operators.
                    if b == b'&' && self.peek(1) == Some(b'>') {
                        self.i += if self.peek(2) == Some(b'>') { 3 } else { 2 };
                        target = Some(true);
                        continue;
                    }
                    self.i += 1;
                    match b {
                        b'(' => depth += 1,
                        b')' => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                    // `&&`, `||`, `|&`, `;;`: one operator.
                    if matches!((b, self.peek(0)), (b'&', Some(b'&')) | (b'|', Some(b'|' | b'&')) | (b';', Some(b';'))) {
                        self.i += 1;
                    }
                    self.flush(&mut words, out);
                    continue;
                }
                b'#' => {
                    while self.peek(0).is_some_and(|c| c != b'\n') {
                        self.i += 1;
                    }
                    continue;
                }
                b'<' | b'>' => {
                    self.redirection(&mut target, &mut heredoc, &mut here_string);
                    continue;
                }
                _ => {}
            }
            let word = self.word(out);
            // A descriptor before a redirection (`2>`, `1>>`): part of the operator.
            if !word.quoted && matches!(self.peek(0), Some(b'<' | b'>')) && !word.text.is_empty() && word.text.iter().all(u8::is_ascii_digit) {
                continue;
            }
            let text = String::from_utf8_lossy(&word.text).into_owned();
            if let Some(output) = target.take() {
                if output && !(text == "/dev/null" || text.starts_with('&') || text == "-") {
                    out.writes_file = true;
                }
                continue;
            }
            if let Some(strip) = heredoc.take() {
                self.heredocs.push((text, strip));
                continue;
            }
            if core::mem::take(&mut here_string) {
                continue;
            }
            // Group words: `{ cmd; }` runs `cmd`.
            if !word.quoted && (text == "{" || text == "}") {
                self.flush(&mut words, out);
                continue;
            }
            if words.is_empty() && !word.quoted && is_assignment(&text) {
                continue;
            }
            if word.any {
                words.push(text);
            }
        }
        if target.is_some() || heredoc.is_some() {
            out.incomplete = true;
        }
        self.flush(&mut words, out);
    }

    fn flush(&self, words: &mut Vec<String>, out: &mut Line) {
        if !words.is_empty() {
            out.commands.push(core::mem::take(words));
        }
    }

    fn blanks(&mut self) {
        while matches!(self.peek(0), Some(b' ' | b'\t' | b'\r')) || (self.peek(0) == Some(b'\\') && self.peek(1) == Some(b'\n')) {
            self.i += if self.peek(0) == Some(b'\\') { 2 } else { 1 };
        }
    }

    /// `<`, `>`, `>>`, `>|`, `>&`, `<&`, `<>`, `<<`, `<<-`, `<<<`.
    fn redirection(&mut self, target: &mut Option<bool>, heredoc: &mut Option<bool>, here_string: &mut bool) {
        let b = self.s[self.i];
        self.i += 1;
        if b == b'>' {
            if matches!(self.peek(0), Some(b'>' | b'|')) {
                self.i += 1;
            }
            if self.peek(0) == Some(b'&') {
                // `>&2`, `2>&1`: to another descriptor (`>&file` is bash for `&>file`).
                self.i += 1;
                let digits = self.s[self.i..].iter().take_while(|c| c.is_ascii_digit() || **c == b'-').count();
                self.i += digits;
                if digits == 0 {
                    *target = Some(true);
                }
                return;
            }
            *target = Some(true);
            return;
        }
        match (self.peek(0), self.peek(1)) {
            (Some(b'<'), Some(b'<')) => {
                self.i += 2;
                *here_string = true;
            }
            (Some(b'<'), Some(b'-')) => {
                self.i += 2;
                *heredoc = Some(true);
            }
            (Some(b'<'), _) => {
                self.i += 1;
                *heredoc = Some(false);
            }
            (Some(b'&'), _) => {
                self.i += 1;
                self.i += self.s[self.i..].iter().take_while(|c| c.is_ascii_digit() || **c == b'-').count();
            }
            (Some(b'>'), _) => {
                // `<>`: opened for reading and writing.
                self.i += 1;
                *target = Some(true);
            }
            _ => *target = Some(false),
        }
    }

    /// One word, up to a blank or an operator outside quotes.
    fn word(&mut self, out: &mut Line) -> Word {
        let mut w = Word::default();
        while let Some(b) = self.peek(0) {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' | b';' | b'&' | b'|' | b'(' | b')' | b'<' | b'>' => break,
                b'\\' => {
                    self.i += 1;
                    match self.peek(0) {
                        Some(b'\n') => self.i += 1,
                        Some(c) => {
                            w.text.push(c);
                            self.i += 1;
                            w.any = true;
                            w.quoted = true;
                        }
                        None => {}
                    }
                }
                b'\'' => {
                    self.i += 1;
                    w.any = true;
                    w.quoted = true;
                    match self.s[self.i..].iter().position(|&c| c == b'\'') {
                        Some(k) => {
                            w.text.extend_from_slice(&self.s[self.i..self.i + k]);
                            self.i += k + 1;
                        }
                        None => {
                            w.text.extend_from_slice(&self.s[self.i..]);
                            self.i = self.s.len();
                            out.incomplete = true;
                        }
                    }
                }
                b'"' => {
                    self.i += 1;
                    w.any = true;
                    w.quoted = true;
                    self.double_quoted(&mut w, out);
                }
                b'$' if self.peek(1) == Some(b'(') && self.peek(2) != Some(b'(') => {
                    self.i += 2;
                    w.any = true;
                    self.commands(out, Some(b')'));
                }
                b'`' => {
                    self.i += 1;
                    w.any = true;
                    self.backquoted(out);
                }
                b'$' if self.peek(1) == Some(b'(') => {
                    // `$((…))`: arithmetic, text of the word up to its balanced end.
                    let mut depth = 0u32;
                    while let Some(c) = self.peek(0) {
                        w.text.push(c);
                        self.i += 1;
                        match c {
                            b'(' => depth += 1,
                            b')' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                    }
                    w.any = true;
                    out.incomplete |= depth != 0;
                }
                _ => {
                    w.text.push(b);
                    w.any = true;
                    self.i += 1;
                }
            }
        }
        w
    }

    /// The inside of `"…"`, after its opening quote.
    fn double_quoted(&mut self, w: &mut Word, out: &mut Line) {
        while let Some(b) = self.peek(0) {
            match b {
                b'"' => {
                    self.i += 1;
                    return;
                }
                b'\\' => {
                    // Only these are escaped inside double quotes; elsewhere `\` stays.
                    match self.peek(1) {
                        Some(c @ (b'"' | b'\\' | b'$' | b'`')) => {
                            w.text.push(c);
                            self.i += 2;
                        }
                        Some(b'\n') => self.i += 2,
                        _ => {
                            w.text.push(b);
                            self.i += 1;
                        }
                    }
                }
                b'$' if self.peek(1) == Some(b'(') && self.peek(2) != Some(b'(') => {
                    self.i += 2;
                    self.commands(out, Some(b')'));
                }
                b'`' => {
                    self.i += 1;
                    self.backquoted(out);
                }
                _ => {
                    w.text.push(b);
                    self.i += 1;
                }
            }
        }
        out.incomplete = true;
    }

    /// `` `…` ``, after its opening backquote: read as a line of its own.
    fn backquoted(&mut self, out: &mut Line) {
        let start = self.i;
        while let Some(b) = self.peek(0) {
            match b {
                b'\\' => self.i += 2,
                b'`' => break,
                _ => self.i += 1,
            }
        }
        let end = self.i.min(self.s.len());
        if self.peek(0) == Some(b'`') {
            self.i += 1;
        } else {
            out.incomplete = true;
        }
        let inner = String::from_utf8_lossy(&self.s[start..end]);
        let line = parse(&inner);
        out.commands.extend(line.commands);
        out.writes_file |= line.writes_file;
        out.incomplete |= line.incomplete;
    }

    /// After a newline: the bodies of the here-documents announced on the line just ended.
    fn skip_heredoc_bodies(&mut self) {
        for (delimiter, strip) in core::mem::take(&mut self.heredocs) {
            loop {
                if self.i >= self.s.len() {
                    return;
                }
                let end = self.s[self.i..].iter().position(|&c| c == b'\n').map_or(self.s.len(), |k| self.i + k);
                let mut body_line = &self.s[self.i..end];
                if strip {
                    while let [b'\t', rest @ ..] = body_line {
                        body_line = rest;
                    }
                }
                self.i = (end + 1).min(self.s.len());
                if body_line == delimiter.as_bytes() {
                    break;
                }
            }
        }
    }
}

/// Calls `f` with each search term of the line's `grep`-like and `find` commands: the pattern
/// of `grep`/`egrep`/`fgrep`/`rg`/`ag`/`ack`/`git grep` (each `-e`/`--regexp` value, else the
/// first operand) and the value of `find`'s `-name`, `-iname`, `-path`, `-ipath`, `-wholename`,
/// `-regex`, `-iregex`. Quotes are removed first (`grep "Foo(" x` and `grep Foo x` search for
/// `Foo(` and `Foo`). A line with none of these programs is not parsed.
pub fn search_terms(line: &str, mut f: impl FnMut(&str)) {
    const PROGRAMS: [&str; 6] = ["grep", "egrep", "fgrep", "rg", "ag", "ack"];
    if !["grep", "rg", "ag", "ack", "find"].iter().any(|p| line.contains(p)) {
        return;
    }
    for words in parse(line).commands {
        let mut words = words.iter().map(String::as_str).skip_while(|w| matches!(*w, "sudo" | "command" | "exec" | "xargs" | "nice" | "time"));
        let Some(program) = words.next() else { continue };
        let program = program.rsplit('/').next().unwrap_or(program);
        if program == "find" {
            let mut words = words.peekable();
            while let Some(w) = words.next() {
                if matches!(w, "-name" | "-iname" | "-path" | "-ipath" | "-wholename" | "-regex" | "-iregex") {
                    if let Some(term) = words.next() {
                        f(term);
                    }
                }
            }
            continue;
        }
        let args: Vec<&str> = match program {
            "git" => match words.next() {
                Some("grep") => words.collect(),
                _ => continue,
            },
            p if PROGRAMS.contains(&p) => words.collect(),
            _ => continue,
        };
        grep_patterns(&args, &mut f);
    }
}

/// The patterns of a `grep`-like command's arguments: every `-e`/`--regexp` value, else the
/// first operand (options' values skipped: `-A 3`, `-m 1`, `--include '*.py'`, `-g '*.rs'`).
fn grep_patterns(args: &[&str], f: &mut impl FnMut(&str)) {
    // Short options that take the next word as their value (grep's and rg's).
    const SHORT_VALUE: &[u8] = b"ABCDdefgmMtTj";
    const LONG_VALUE: [&str; 14] = [
        "--regexp", "--file", "--max-count", "--after-context", "--before-context", "--context", "--include", "--exclude",
        "--exclude-dir", "--glob", "--iglob", "--type", "--type-not", "--threads",
    ];
    let mut explicit = false;
    let mut first: Option<&str> = None;
    let mut i = 0;
    let mut options = true;
    while i < args.len() {
        let w = args[i];
        i += 1;
        if options && w == "--" {
            options = false;
            continue;
        }
        if options && w.len() > 1 && w.starts_with("--") {
            let (name, value) = match w.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (w, None),
            };
            let takes = LONG_VALUE.contains(&name);
            let value = match (takes, value) {
                (true, None) => {
                    i += 1;
                    args.get(i - 1).copied()
                }
                (_, v) => v,
            };
            if name == "--regexp" {
                if let Some(v) = value {
                    explicit = true;
                    f(v);
                }
            }
            continue;
        }
        if options && w.len() > 1 && w.starts_with('-') {
            // Bundled short options (`-rn`, `-A3`, `-e pattern`, `-epattern`).
            let flags = &w.as_bytes()[1..];
            if let Some(k) = flags.iter().position(|c| SHORT_VALUE.contains(c)) {
                let inline = &w[2 + k..];
                let value = if inline.is_empty() {
                    i += 1;
                    args.get(i - 1).copied()
                } else {
                    Some(inline)
                };
                if flags[k] == b'e' {
                    if let Some(v) = value {
                        explicit = true;
                        f(v);
                    }
                }
            }
            continue;
        }
        if first.is_none() {
            first = Some(w);
        }
    }
    if let (false, Some(term)) = (explicit, first) {
        f(term);
    }
}

fn is_assignment(word: &str) -> bool {
    match word.find('=') {
        Some(i) if i > 0 => {
            let name = &word.as_bytes()[..i];
            !name[0].is_ascii_digit() && name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// The words of each command (`String == &str`, so they compare with `vec![vec!["ls"]]`).
    fn commands(line: &str) -> Vec<Vec<String>> {
        parse(line).commands
    }

    fn terms(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        search_terms(line, |t| out.push(String::from(t)));
        out
    }

    #[test]
    fn search_terms_of_grep_rg_and_find() {
        assert_eq!(terms("grep -rn ExtSlice astroid/ --include='*.py' | head -5"), vec!["ExtSlice"]);
        assert_eq!(terms(r#"cd /testbed && grep -r "Index(" astroid/ | grep -v "class Index""#), vec!["Index(", "class Index"]);
        assert_eq!(terms("rg -n -g '*.rs' -A 3 fn_name src"), vec!["fn_name"]);
        assert_eq!(terms("grep -A3 -e foo -e bar file"), vec!["foo", "bar"]);
        assert_eq!(terms("grep --regexp=foo --include '*.c' -- -x file"), vec!["foo"]);
        assert_eq!(terms("grep -- -x file"), vec!["-x"]);
        assert_eq!(terms("find . -name '*.py' -type f -iname Setup.cfg"), vec!["*.py", "Setup.cfg"]);
        assert_eq!(terms("git grep -n parse_args -- '*.py'"), vec!["parse_args"]);
        assert_eq!(terms("xargs grep -l Needle"), vec!["Needle"]);
        assert_eq!(terms("/usr/bin/grep Needle f"), vec!["Needle"]);
        assert!(terms("cat file.py | head").is_empty());
        assert!(terms("git log --grep foo").is_empty());
        assert!(terms("ls findings/").is_empty());
    }

    #[test]
    fn quotes_keep_operators_inside_one_word() {
        assert_eq!(commands(r#"grep -n "DECL(pattern);" file"#), vec![vec!["grep", "-n", "DECL(pattern);", "file"]]);
        assert_eq!(commands("grep 'a|b && c' x"), vec![vec!["grep", "a|b && c", "x"]]);
        assert_eq!(commands(r#"echo "it's" 'say "hi"'"#), vec![vec!["echo", "it's", r#"say "hi""#]]);
        assert_eq!(commands(r#"grep "a\"b;c" f"#), vec![vec!["grep", r#"a"b;c"#, "f"]]);
        assert_eq!(commands(r#"grep "a\nb" f"#), vec![vec!["grep", r"a\nb", "f"]]);
        assert_eq!(commands("echo ''"), vec![vec!["echo", ""]]);
    }

    #[test]
    fn escapes_outside_quotes() {
        assert_eq!(commands(r"grep a\;b f"), vec![vec!["grep", "a;b", "f"]]);
        assert_eq!(commands(r"echo a\ b"), vec![vec!["echo", "a b"]]);
        assert_eq!(commands("ls \\\n  -la"), vec![vec!["ls", "-la"]]);
        assert_eq!(commands(r"echo \> x"), vec![vec!["echo", ">", "x"]]);
        assert!(!parse(r"echo \> x").writes_file);
    }

    #[test]
    fn chains_split_into_commands() {
        assert_eq!(
            commands("cd /repo && git status || echo no; ls | wc -l & sleep 1 |& cat"),
            vec![vec!["cd", "/repo"], vec!["git", "status"], vec!["echo", "no"], vec!["ls"], vec!["wc", "-l"], vec!["sleep", "1"], vec!["cat"]]
        );
        assert_eq!(commands("ls\npwd"), vec![vec!["ls"], vec!["pwd"]]);
        assert_eq!(commands("(cd a; ls) && { cat x; }"), vec![vec!["cd", "a"], vec!["ls"], vec!["cat", "x"]]);
        assert_eq!(commands("FOO=1 BAR=x rg bar"), vec![vec!["rg", "bar"]]);
        assert_eq!(commands("ls # rm -rf /"), vec![vec!["ls"]]);
        assert_eq!(commands("echo a#b"), vec![vec!["echo", "a#b"]]);
    }

    #[test]
    fn substitutions_are_commands_of_the_line() {
        // A substitution's own output is a word of unknown text (empty here).
        assert_eq!(commands("echo $(rm -rf x) done"), vec![vec!["rm", "-rf", "x"], vec!["echo", "", "done"]]);
        assert_eq!(commands(r#"echo "n=$(ls | wc -l)""#), vec![vec!["ls"], vec!["wc", "-l"], vec!["echo", "n="]]);
        assert_eq!(commands("cat `which python`"), vec![vec!["which", "python"], vec!["cat", ""]]);
        assert_eq!(commands("echo $(echo $(date))"), vec![vec!["date"], vec!["echo", ""], vec!["echo", ""]]);
        assert_eq!(commands("echo $((1 + 2))"), vec![vec!["echo", "$((1 + 2))"]]);
        assert_eq!(commands("echo $(grep ')' f)"), vec![vec!["grep", ")", "f"], vec!["echo", ""]]);
        assert_eq!(commands("echo $( (cd a; ls) ) x"), vec![vec!["cd", "a"], vec!["ls"], vec!["echo", "", "x"]]);
    }

    #[test]
    fn redirections() {
        for line in ["echo hi > f.txt", "echo hi >> f", "ls &> out", "ls >| f", "cat a 1> b", "ls > $(echo f)", "ls>f", "sort <> f"] {
            assert!(parse(line).writes_file, "{line}");
        }
        for line in ["grep x f 2>/dev/null", "ls 2>&1 | head", "cat < in.txt", "ls >&2", "echo 'a > b'", "echo \"x>y\"", "cat <&3", "ls 2>&-"] {
            assert!(!parse(line).writes_file, "{line}");
        }
        assert_eq!(commands("grep -rn foo . 2>/dev/null"), vec![vec!["grep", "-rn", "foo", "."]]);
        assert_eq!(commands("cat < in.txt | sort"), vec![vec!["cat"], vec!["sort"]]);
    }

    #[test]
    fn here_documents_and_strings_are_data() {
        let line = parse("cat <<'EOF' > x.py\nimport os; os.remove('y')\nrm -rf /\nEOF\nls");
        assert_eq!(line.commands, vec![vec![String::from("cat")], vec![String::from("ls")]]);
        assert!(line.writes_file);
        let line = parse("python3 - <<EOF\nprint(1)\nEOF");
        assert_eq!(line.commands, vec![vec![String::from("python3"), String::from("-")]]);
        assert!(!line.writes_file && !line.incomplete);
        assert_eq!(commands("cat <<-END\n\trm x\n\tEND\npwd"), vec![vec!["cat"], vec!["pwd"]]);
        assert_eq!(commands("grep foo <<< 'a; rm b'"), vec![vec!["grep", "foo"]]);
        assert_eq!(commands("wc -l <<<\"$(ls)\""), vec![vec!["ls"], vec!["wc", "-l"]]);
        assert!(!parse("python3 - <<EOF\nopen('f', 'w')\nEOF").writes_file);
    }

    #[test]
    fn unfinished_lines_say_so() {
        for line in ["echo 'abc", "echo \"abc", "echo $(ls", "echo `ls", "ls >", "cat <<"] {
            assert!(parse(line).incomplete, "{line}");
        }
        for line in ["echo 'abc'", "ls > f", ""] {
            assert!(!parse(line).incomplete, "{line}");
        }
    }
}
