//! Options: command line first, then environment, then defaults.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use microloop_core::Engine;

pub const USAGE: &str = "\
microloop-proxy: guard an agent by standing in front of its LLM API

usage: microloop-proxy [options]
  --listen ADDR        address to listen on (MICROLOOP_LISTEN; default 127.0.0.1:20128)
  --upstream URL       where requests go (MICROLOOP_UPSTREAM or TARGET_API_URL; default
                       https://api.openai.com, and https://api.anthropic.com for /v1/messages)
  --policy FILE        policy file, .toml or .json, or a preset name (MICROLOOP_POLICY; default balanced)
  --on-block MODE      reprompt | refuse | error (MICROLOOP_ON_BLOCK; default reprompt)
  --max-reasks N       re-asks per request before the turn is stopped (default 1)
  --max-body-bytes N   largest request body accepted (default 33554432)
  --timeout SECS       upstream connect + idle read timeout (default 600)
  --max-concurrent N   requests handled at once (a stream until it ends); more are refused at once
                       with 503 in the API's error format (default 1024)
  --observe            shadow mode, as a policy's mode = \"observe\": every verdict is computed,
                       logged and counted in /metrics, no call is ever blocked
  --observe-log FILE   where shadow mode appends its log, a file `microloop replay` reads
                       (MICROLOOP_OBSERVE_LOG; default observe.jsonl in the working directory)
  --store URL          where Responses conversations continued by previous_response_id are kept:
                       memory, or redis://[:password@]HOST[:PORT][/DB] to share them between
                       replicas (MICROLOOP_STORE; default memory)
  --store-max-entries N   conversations kept in memory (default 10000)
  --store-max-bytes N     bytes kept in memory (default 268435456)
  --store-ttl SECS        age after which a kept conversation is dropped (default 86400)
  -h, --help           this text

Guarded: POST /v1/chat/completions, /v1/responses, /v1/messages, and Gemini's
/v1beta/models/MODEL:generateContent and :streamGenerateContent (default upstream
https://generativelanguage.googleapis.com). Point a client at it with OPENAI_BASE_URL=http://127.0.0.1:20128/v1,
ANTHROPIC_BASE_URL=http://127.0.0.1:20128 or GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:20128 (README: per client).";

/// What to do when the model proposes a call that must not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBlock {
    /// Re-ask the model with the verdict as the call's result (at most `max_reasks` times), then stop the turn.
    Reprompt,
    /// Stop the turn at once: a 200 answer with a text explaining the block.
    Refuse,
    /// Answer 400 in the API's own error format.
    Error,
}

impl OnBlock {
    pub fn parse(s: &str) -> Result<OnBlock, String> {
        match s {
            "reprompt" => Ok(OnBlock::Reprompt),
            "refuse" => Ok(OnBlock::Refuse),
            "error" => Ok(OnBlock::Error),
            _ => Err(format!("--on-block is reprompt, refuse or error, not `{s}`")),
        }
    }
}

pub struct Config {
    pub listen: SocketAddr,
    /// The upstream for every route, when given; else the OpenAI and Anthropic APIs by route.
    pub upstream: Option<String>,
    pub policy: Option<String>,
    pub on_block: OnBlock,
    pub max_reasks: u32,
    pub max_body_bytes: usize,
    pub timeout: Duration,
    /// Requests handled at once; more get 503.
    pub max_concurrent: usize,
    /// `memory` (None) or a `redis://` URL.
    pub store: Option<String>,
    pub store_max_entries: usize,
    pub store_max_bytes: usize,
    pub store_ttl: Duration,
    /// Shadow mode whatever the policy's `mode` says.
    pub observe: bool,
    /// Shadow mode's log (see `--observe-log`).
    pub observe_log: Option<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: "127.0.0.1:20128".parse().unwrap(),
            upstream: None,
            policy: None,
            on_block: OnBlock::Reprompt,
            max_reasks: 1,
            max_body_bytes: 32 << 20,
            timeout: Duration::from_secs(600),
            max_concurrent: 1024,
            store: None,
            store_max_entries: 10_000,
            store_max_bytes: 256 << 20,
            store_ttl: Duration::from_secs(86_400),
            observe: false,
            observe_log: None,
        }
    }
}

pub enum Parsed {
    Run(Config),
    Help,
}

impl Config {
    /// Reads `args` (without the program name) and the environment through `env`.
    pub fn parse(args: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Parsed, String> {
        let mut c = Config::default();
        let mut listen = env("MICROLOOP_LISTEN");
        c.upstream = env("MICROLOOP_UPSTREAM").or_else(|| env("TARGET_API_URL")).filter(|s| !s.is_empty());
        c.policy = env("MICROLOOP_POLICY").filter(|s| !s.is_empty());
        c.store = env("MICROLOOP_STORE").filter(|s| !s.is_empty());
        c.observe_log = env(microloop_host::observe::ENV).filter(|s| !s.is_empty());
        if let Some(m) = env("MICROLOOP_ON_BLOCK").filter(|s| !s.is_empty()) {
            c.on_block = OnBlock::parse(&m)?;
        }
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (key, inline) = match a.split_once('=') {
                Some((k, v)) if k.starts_with("--") => (k, Some(v.to_owned())),
                _ => (a.as_str(), None),
            };
            if key == "-h" || key == "--help" {
                return Ok(Parsed::Help);
            }
            if key == "--observe" && inline.is_none() {
                c.observe = true;
                continue;
            }
            let mut value = || inline.clone().or_else(|| it.next().cloned()).ok_or_else(|| format!("{key} needs a value"));
            let number = |v: String| v.parse::<u64>().map_err(|_| format!("{key} takes a number, not `{v}`"));
            match key {
                "--listen" => listen = Some(value()?),
                "--upstream" => c.upstream = Some(value()?),
                "--policy" => c.policy = Some(value()?),
                "--on-block" => c.on_block = OnBlock::parse(&value()?)?,
                "--max-reasks" => c.max_reasks = number(value()?)? as u32,
                "--max-body-bytes" => c.max_body_bytes = number(value()?)? as usize,
                "--timeout" => c.timeout = Duration::from_secs(number(value()?)?),
                "--max-concurrent" => c.max_concurrent = (number(value()?)? as usize).max(1),
                "--store" => c.store = Some(value()?),
                "--observe-log" => c.observe_log = Some(value()?),
                "--store-max-entries" => c.store_max_entries = number(value()?)? as usize,
                "--store-max-bytes" => c.store_max_bytes = number(value()?)? as usize,
                "--store-ttl" => c.store_ttl = Duration::from_secs(number(value()?)?.max(1)),
                _ => return Err(format!("unknown option `{a}` (see --help)")),
            }
        }
        if let Some(l) = listen {
            c.listen = l.parse().map_err(|_| format!("--listen takes ADDR:PORT, not `{l}`"))?;
        }
        if let Some(u) = &mut c.upstream {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!("--upstream is an http:// or https:// URL, not `{u}`"));
            }
            while u.ends_with('/') {
                u.pop();
            }
        }
        Ok(Parsed::Run(c))
    }

    /// The engine for the policy: a preset name, a JSON or TOML file, or policy text.
    pub fn engine(&self) -> Result<Arc<Engine>, String> {
        // The same compilation as libmicroloop's: schemas, field rules and mask patterns included.
        self.host().map(|h| h.engine().clone())
    }

    /// The policy loaded with the sinks its sections configure (`[audit]`: opened now, so a log
    /// that cannot be written is an error at start); in observe mode with `--observe`.
    pub fn host(&self) -> Result<microloop_host::Host, String> {
        microloop_host::Host::load_mode(self.policy.as_deref(), None, self.observe).map(|(h, _)| h).map_err(|e| format!("policy: {e}"))
    }

    /// Where shadow mode's log goes.
    pub fn observe_log_path(&self) -> String {
        self.observe_log.clone().unwrap_or_else(|| "observe.jsonl".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with_policy(path: &str) -> Config {
        Config { policy: Some(path.to_owned()), ..Config::default() }
    }

    #[test]
    fn shadow_mode_from_the_policy_or_the_flag() {
        let config = Config { policy: Some(r#"{"mode":"observe"}"#.to_owned()), ..Config::default() };
        assert!(config.engine().unwrap().policy.observe);
        let config = Config { policy: Some(r#"{"mode":"enforce"}"#.to_owned()), ..Config::default() };
        assert!(!config.engine().unwrap().policy.observe);
        let Ok(Parsed::Run(flag)) = Config::parse(&["--observe".into(), "--observe-log".into(), "x.jsonl".into()], |_| None) else { panic!("--observe") };
        assert!(flag.engine().unwrap().policy.observe);
        assert_eq!(flag.observe_log_path(), "x.jsonl");
        let Ok(Parsed::Run(env)) = Config::parse(&[], |k| (k == "MICROLOOP_OBSERVE_LOG").then(|| "y.jsonl".to_owned())) else { panic!("env") };
        assert!(!env.observe && env.observe_log_path() == "y.jsonl");
    }

    #[test]
    fn every_example_policy_loads_with_its_rules() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/policies");
        let mut loaded = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let engine = config_with_policy(path.to_str().unwrap()).engine().unwrap_or_else(|e| panic!("{e}"));
            assert!(!engine.policy.tools.is_empty(), "{}", path.display());
            loaded += 1;
        }
        assert!(loaded >= 4);
    }

    #[test]
    fn a_toml_field_rule_is_enforced() {
        let path = std::env::temp_dir().join(format!("microloop-proxy-policy-{}.toml", std::process::id()));
        std::fs::write(&path, "[[tools]]\nname = \"run_sql\"\nrules = [{ id = \"no-drop\", field = \"/sql\", deny_regex = \"(?i)drop\\\\s+table\", message = \"no DROP\" }]\n").unwrap();
        let engine = config_with_policy(path.to_str().unwrap()).engine().unwrap();
        std::fs::remove_file(&path).ok();
        let mut s = microloop_core::Session::new(engine);
        let v = s.check("run_sql", br#"{"sql":"DROP TABLE users"}"#, 0).unwrap();
        assert_eq!(v.rule, "no-drop");
        assert!(!s.check("run_sql", br#"{"sql":"select 1"}"#, 0).unwrap().rule.starts_with("no-drop"));
    }

    #[test]
    fn a_broken_policy_file_names_the_bad_entry() {
        let path = std::env::temp_dir().join(format!("microloop-proxy-broken-{}.json", std::process::id()));
        std::fs::write(&path, r#"{"tools":[{"name":"x","rules":[{"field":"/a","deny_regex":"("}]}]}"#).unwrap();
        let err = config_with_policy(path.to_str().unwrap()).engine().err().unwrap();
        std::fs::remove_file(&path).ok();
        assert!(err.contains("tools[0].rules[0].deny_regex"), "{err}");
    }
}
