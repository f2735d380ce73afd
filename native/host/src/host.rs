//! A loaded policy with everything a host attaches to it: the compiled engine and the sinks its
//! sections configure (`[audit]`, `[approval]`). The C ABI, the proxy and the hook build one per policy and take
//! each session's [`Events`] from it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use microloop_audit::log::AuditLog;
use microloop_core::{Engine, Policy, PolicyError};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::approval::{ApprovalConfig, Approver};
use crate::audit::{AuditConfig, AuditSink};
use crate::events::{Events, Sink};
use crate::policy::{engine_for, parse_text, LoadError};

/// The sections of a policy document that configure the host rather than the checks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostSections {
    pub audit: Option<AuditConfig>,
    pub approval: Option<ApprovalConfig>,
}

/// Whether policy text may name a host section (a cheap test before the generic parse).
fn names_a_section(text: &str) -> bool {
    text.contains("audit") || text.contains("approval")
}

/// Parses policy text like [`parse_text`], taking out the host's sections (`audit`, `approval`).
pub fn parse_host_text(text: &str) -> Result<(Policy, HostSections), PolicyError> {
    // Only a document that names a section takes the generic path; every other keeps its own.
    if !names_a_section(text) {
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
    let approval = doc.remove("approval").map(|v| ApprovalConfig::from_value(&v)).transpose()?;
    Ok((Policy::from_value(Value::Object(doc))?, HostSections { audit, approval }))
}

/// A compiled policy and its sinks.
pub struct Host {
    engine: Arc<Engine>,
    sinks: Arc<[Arc<dyn Sink>]>,
    audit: Option<Arc<AuditLog>>,
    approver: Option<Arc<Approver>>,
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
        Host::load_mode(spec, cwd, false)
    }

    /// [`Host::load`]; with `observe`, the policy runs in observe mode (shadow mode) whatever its
    /// `mode` says (a transport's `--observe`).
    pub fn load_mode(spec: Option<&str>, cwd: Option<&Path>, observe: bool) -> Result<(Host, Option<PathBuf>), LoadError> {
        let (mut policy, sections, text, file) = Host::load_parts(spec, cwd)?;
        policy.observe |= observe;
        let host = Host::new(policy, sections, text.as_bytes())
            .map_err(|e| LoadError { file: file.clone(), path: e.path, message: e.message })?;
        Ok((host, file))
    }

    /// What [`Host::load`] reads, before anything is opened: the policy, its host sections, the
    /// text its hash covers and the file it came from (for a host that keeps the policy itself).
    pub fn load_parts(spec: Option<&str>, cwd: Option<&Path>) -> Result<(Policy, HostSections, String, Option<PathBuf>), LoadError> {
        let (text, file) = crate::policy::load_text(spec, cwd)?;
        let wrap = |e: PolicyError| LoadError { file: file.clone(), path: e.path, message: e.message };
        let (policy, sections) = match (&file, text.as_deref()) {
            (_, None) => (Policy::default(), HostSections::default()),
            (Some(f), Some(t)) if f.extension().is_some_and(|x| x.eq_ignore_ascii_case("json")) && !names_a_section(t) => {
                (Policy::from_json(t.trim().as_bytes()).map_err(wrap)?, HostSections::default())
            }
            (_, Some(t)) => parse_host_text(t).map_err(wrap)?,
        };
        Ok((policy, sections, text.unwrap_or_default(), file))
    }

    /// Compiles `policy` and opens its sections' sinks; `text` is what the policy's hash covers.
    pub fn new(policy: Policy, sections: HostSections, text: &[u8]) -> Result<Host, PolicyError> {
        let policy_sha256 = microloop_audit::jcs::hex(&Sha256::digest(text));
        let engine = engine_for(policy)?;
        let mut sinks: Vec<Arc<dyn Sink>> = Vec::new();
        let mut audit = None;
        // The key first: a policy whose key cannot be read opens no log.
        let approver = sections.approval.as_ref().map(Approver::from_config).transpose()?.map(Arc::new);
        if let Some(cfg) = &sections.audit {
            let log = crate::audit::open(cfg)?;
            sinks.push(Arc::new(AuditSink::new(log.clone(), &policy_sha256)));
            audit = Some(log);
        }
        Ok(Host { engine, sinks: sinks.into(), audit, approver, policy_sha256 })
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The audit log, when the policy configures one.
    pub fn audit_log(&self) -> Option<&Arc<AuditLog>> {
        self.audit.as_ref()
    }

    /// The approval token signer, when the policy has an `[approval]` section.
    pub fn approver(&self) -> Option<&Arc<Approver>> {
        self.approver.as_ref()
    }

    /// The SHA-256 (hex) of the policy text, as audit records carry it.
    pub fn policy_sha256(&self) -> &str {
        &self.policy_sha256
    }

    fn has_events(&self) -> bool {
        !self.sinks.is_empty() || self.approver.is_some()
    }

    /// A new session's events (its own id, this host's sinks and approver); `None` when there is
    /// neither, so a host without them pays nothing per check.
    pub fn events(&self) -> Option<Events> {
        self.has_events().then(|| Events::new(self.sinks.clone()).with_approver(self.approver.clone()))
    }

    /// The events of a session the transport names itself (a coding agent's session id), so its
    /// records and tokens carry that id.
    pub fn events_for(&self, session: &str) -> Option<Events> {
        self.has_events().then(|| Events::with_session(session, self.sinks.clone()).with_approver(self.approver.clone()))
    }
}
