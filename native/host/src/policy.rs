//! Policies, however they are given, loaded one way.
//!
//! A policy *spec* is what a user types after `--policy` or puts in `MICROLOOP_POLICY`: a preset
//! name (`strict`, `balanced`, `permissive`), a path to a `.toml` or `.json` file, or the policy's
//! text itself (JSON or TOML). With no spec, hosts that know a working directory look for a
//! [`POLICY_FILE`] there and in its parents ([`discover`]); else `balanced`.
//!
//! ```
//! let p = microloop_host::parse_text("[loops]\nmax_identical = 5").unwrap();
//! assert_eq!(p.limits.max_identical, 5);
//! let q = microloop_host::parse_text(r#"{"loops": {"max_identical": 5}}"#).unwrap();
//! assert_eq!(p, q);
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use microloop_core::{Engine, Policy, PolicyError};

/// The policy file a project keeps at its root, found by [`discover`].
pub const POLICY_FILE: &str = ".microloop.toml";

/// A policy that could not be loaded: the file it came from (if any) and the entry that is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The file, when the policy came from one.
    pub file: Option<PathBuf>,
    /// The bad entry (`tools[0].rules[1].deny_regex`), or empty for the whole document.
    pub path: String,
    pub message: String,
}

impl LoadError {
    fn new(file: Option<&Path>, e: PolicyError) -> LoadError {
        LoadError {
            file: file.map(Path::to_path_buf),
            path: e.path,
            message: e.message,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for LoadError {}

impl From<LoadError> for PolicyError {
    fn from(e: LoadError) -> PolicyError {
        match e.file {
            None => PolicyError::new(e.path, e.message),
            Some(file) => PolicyError::new(e.path, format!("{}: {}", file.display(), e.message)),
        }
    }
}

/// Parses policy text: JSON (an object, or a preset name as a JSON string), TOML, or a bare preset
/// name. Empty text is `balanced`.
pub fn parse_text(text: &str) -> Result<Policy, PolicyError> {
    let t = text.trim();
    if t.is_empty() || t.starts_with('{') || t.starts_with('"') {
        return Policy::from_json(t.as_bytes());
    }
    if !t.contains('=') && !t.contains('\n') && !t.starts_with('[') {
        // One word: a preset name, and the core says which ones exist when it is not.
        return Policy::from_value(t.into());
    }
    microloop_rules::load_toml(text)
}

/// Reads a policy file: `.json` is JSON, anything else is parsed as [`parse_text`] does.
pub fn load_file(path: &Path) -> Result<Policy, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError {
        file: Some(path.to_path_buf()),
        path: String::new(),
        message: format!("cannot read the policy file: {e}"),
    })?;
    let is_json = path
        .extension()
        .is_some_and(|x| x.eq_ignore_ascii_case("json"));
    let parsed = if is_json {
        Policy::from_json(text.trim().as_bytes())
    } else {
        parse_text(&text)
    };
    parsed.map_err(|e| LoadError::new(Some(path), e))
}

/// Whether a spec names a file rather than holding a policy: it ends in `.toml` or `.json`, or
/// it is one line with a path separator that exists on disk.
fn names_a_file(spec: &str) -> bool {
    let s = spec.trim();
    if s.contains('\n') || s.starts_with('{') || s.contains('=') {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    lower.ends_with(".toml")
        || lower.ends_with(".json")
        || (s.contains('/') && Path::new(s).is_file())
}

/// Loads a policy spec (a preset name, a file, or policy text). `None` looks for a
/// [`POLICY_FILE`] from `cwd` upward, then takes `balanced`. Returns the policy and the file it
/// came from.
pub fn load(
    spec: Option<&str>,
    cwd: Option<&Path>,
) -> Result<(Policy, Option<PathBuf>), LoadError> {
    match spec.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) if names_a_file(s) => {
            let path = PathBuf::from(s);
            load_file(&path).map(|p| (p, Some(path)))
        }
        Some(s) => parse_text(s)
            .map(|p| (p, None))
            .map_err(|e| LoadError::new(None, e)),
        None => match cwd.and_then(discover) {
            Some(path) => load_file(&path).map(|p| (p, Some(path))),
            None => Ok((Policy::default(), None)),
        },
    }
}

/// What [`load`] would parse: the policy's text (`None` for the default, `balanced`) and the file
/// it came from.
pub fn load_text(spec: Option<&str>, cwd: Option<&Path>) -> Result<(Option<String>, Option<PathBuf>), LoadError> {
    let read = |path: PathBuf| {
        std::fs::read_to_string(&path)
            .map(|t| (Some(t), Some(path.clone())))
            .map_err(|e| LoadError {
                file: Some(path.clone()),
                path: String::new(),
                message: format!("cannot read the policy file: {e}"),
            })
    };
    match spec.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) if names_a_file(s) => read(PathBuf::from(s)),
        Some(s) => Ok((Some(s.to_owned()), None)),
        None => match cwd.and_then(discover) {
            Some(path) => read(path),
            None => Ok((None, None)),
        },
    }
}

/// The [`POLICY_FILE`] in `dir` or the nearest of its parents.
pub fn discover(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .map(|d| d.join(POLICY_FILE))
        .find(|p| p.is_file())
}

/// The engine for a policy: its schemas, field rules and mask patterns compiled once, shared by
/// any number of sessions.
pub fn engine_for(policy: Policy) -> Result<Arc<Engine>, PolicyError> {
    microloop_rules::compile(policy).map(Arc::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("microloop-host-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn text_is_json_toml_or_a_preset() {
        assert_eq!(parse_text("").unwrap(), Policy::default());
        assert_eq!(parse_text(" strict ").unwrap().preset.name(), "strict");
        assert_eq!(
            parse_text("\"permissive\"").unwrap().preset.name(),
            "permissive"
        );
        let toml = parse_text("[[tools]]\nname = \"x\"\nmax_calls = 3\n").unwrap();
        let json = parse_text(r#"{"tools":[{"name":"x","max_calls":3}]}"#).unwrap();
        assert_eq!(toml, json);
        let e = parse_text("stricter").unwrap_err();
        assert!(e.message.contains("strict"), "{e}");
        let e = parse_text("[loops]\nmax_identical = \"five\"").unwrap_err();
        assert_eq!(e.path, "loops.max_identical", "{e}");
    }

    #[test]
    fn a_policy_file_is_found_upward_and_named_in_errors() {
        let root = scratch("discover");
        let deep = root.join("a/b/c");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(
            load(None, Some(&deep))
                .unwrap()
                .1
                .filter(|p| p.starts_with(&root)),
            None
        );
        std::fs::write(
            root.join("a").join(POLICY_FILE),
            "[loops]\nmax_identical = 7\n",
        )
        .unwrap();
        let (p, file) = load(None, Some(&deep)).unwrap();
        assert_eq!(p.limits.max_identical, 7);
        assert_eq!(file.unwrap(), root.join("a").join(POLICY_FILE));
        // A spec wins over the file.
        assert_eq!(
            load(Some("strict"), Some(&deep)).unwrap().0.preset.name(),
            "strict"
        );
        std::fs::write(
            root.join("a").join(POLICY_FILE),
            "[loops]\nmax_identical = -1\n",
        )
        .unwrap();
        let e = load(None, Some(&deep)).unwrap_err();
        assert!(
            e.to_string().contains(POLICY_FILE) && e.path == "loops.max_identical",
            "{e}"
        );
        std::fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn files_by_name() {
        let d = scratch("files");
        let json = d.join("p.json");
        std::fs::write(&json, r#"{"loops":{"max_identical":4}}"#).unwrap();
        assert_eq!(
            load(Some(json.to_str().unwrap()), None)
                .unwrap()
                .0
                .limits
                .max_identical,
            4
        );
        let missing = d.join("missing.toml");
        let e = load(Some(missing.to_str().unwrap()), None).unwrap_err();
        assert!(e.message.starts_with("cannot read the policy file"), "{e}");
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn every_example_policy_compiles() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/policies");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let (p, _) = load(Some(path.to_str().unwrap()), None).unwrap_or_else(|e| panic!("{e}"));
            engine_for(p).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
        assert!(n >= 4);
    }
}
