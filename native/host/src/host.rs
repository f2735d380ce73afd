//! A loaded policy with everything a host attaches to it: the compiled engine and the sinks its
//! sections configure (`[audit]`). The C ABI, the proxy and the hook build one per policy and take
//! each session's [`Events`] from it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use microloop_audit::log::AuditLog;
use microloop_core::{Engine, Policy, PolicyError};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::audit::{AuditConfig, AuditSink};
use crate::events::{Events, Sink};
use crate::policy::{engine_for, parse_text, LoadError};

/// The sections of a policy document that configure the host rather than the checks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostSections {
    pub audit: Option<AuditConfig>,
}

/// Parses policy text like [`parse_text`], taking out the host's sections (`audit`).
pub fn parse_host_text(text: &str) -> Result<(Policy, HostSections), PolicyError> {
    // Only a document that names a section takes the generic path; every other keeps its own.
    if !text.contains("audit") {
        return Ok((parse_text(text)?, HostSections::default()));
    }
    let t = text.trim();
    let value: Option<Value> = if t.starts_with('{') {
        serde_json::from_str(t).ok()
    } else if t.contains('=') || t.contains('\n') || t.starts_with('[') {
        toml::from_str(text).ok()
    } else {
        None
    };
    // Unreadable text: the loader says why.
    let Some(Value::Object(mut doc)) = value else {
        return Ok((parse_text(text)?, HostSections::default()));
    };
    let audit = doc.remove("audit").map(|v| AuditConfig::from_value(&v)).transpose()?;
    Ok((Policy::from_value(Value::Object(doc))?, HostSections { audit }))
}

/// A compiled policy and its sinks.
pub struct Host {
    engine: Arc<Engine>,
    sinks: Arc<[Arc<dyn Sink>]>,
    audit: Option<Arc<AuditLog>>,
    policy_sha256: String,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "Host(policy {}, {} sinks)", self.policy_sha256, self.sinks.len())
    }
}

impl Host {
    /// Loads policy text (JSON, TOML or a preset name, as [`parse_text`]), compiles it, and
    /// opens what its sections configure: a log that cannot be opened is an error now.
    pub fn from_text(text: &str) -> Result<Host, PolicyError> {
        let (policy, sections) = parse_host_text(text)?;
        Host::new(policy, sections, text.as_bytes())
    }

    /// Loads a policy spec as [`crate::load`] does (a preset, a file, text, or a `.microloop.toml`
    /// found from `cwd`), with its host sections.
    pub fn load(spec: Option<&str>, cwd: Option<&Path>) -> Result<(Host, Option<PathBuf>), LoadError> {
        let (text, file) = crate::policy::load_text(spec, cwd)?;
        let wrap = |e: PolicyError| LoadError { file: file.clone(), path: e.path, message: e.message };
        let (policy, sections) = match (&file, text.as_deref()) {
            (_, None) => (Policy::default(), HostSections::default()),
            (Some(f), Some(t)) if f.extension().is_some_and(|x| x.eq_ignore_ascii_case("json")) && !t.contains("audit") => {
                (Policy::from_json(t.trim().as_bytes()).map_err(wrap)?, HostSections::default())
            }
            (_, Some(t)) => parse_host_text(t).map_err(wrap)?,
        };
        let host = Host::new(policy, sections, text.as_deref().unwrap_or("").as_bytes()).map_err(wrap)?;
        Ok((host, file))
    }

    /// Compiles `policy` and opens its sections' sinks; `text` is what the policy's hash covers.
    pub fn new(policy: Policy, sections: HostSections, text: &[u8]) -> Result<Host, PolicyError> {
        let policy_sha256 = microloop_audit::jcs::hex(&Sha256::digest(text));
        let engine = engine_for(policy)?;
        let mut sinks: Vec<Arc<dyn Sink>> = Vec::new();
        let mut audit = None;
        if let Some(cfg) = &sections.audit {
            let log = crate::audit::open(cfg)?;
            sinks.push(Arc::new(AuditSink::new(log.clone(), &policy_sha256)));
            audit = Some(log);
        }
        Ok(Host { engine, sinks: sinks.into(), audit, policy_sha256 })
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The audit log, when the policy configures one.
    pub fn audit_log(&self) -> Option<&Arc<AuditLog>> {
        self.audit.as_ref()
    }

    /// The SHA-256 (hex) of the policy text, as audit records carry it.
    pub fn policy_sha256(&self) -> &str {
        &self.policy_sha256
    }

    /// A new session's events (its own id, this host's sinks); `None` when there is no sink, so
    /// a host without one pays nothing per check.
    pub fn events(&self) -> Option<Events> {
        (!self.sinks.is_empty()).then(|| Events::new(self.sinks.clone()))
    }

    /// The events of a session the transport names itself (a coding agent's session id), so its
    /// records carry that id.
    pub fn events_for(&self, session: &str) -> Option<Events> {
        (!self.sinks.is_empty()).then(|| Events::with_session(session, self.sinks.clone()))
    }
}
