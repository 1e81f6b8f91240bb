//! What the command prints: the list of samples, and one line (or two) per
//! try.

use super::answer::shown_body;
use super::retry::TryReport;
use crate::commands::samples;

/// Lists the samples, one a line: name, webhook and event type, note.
pub(crate) fn list() -> String {
    let all = samples::all();
    let width = all.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for s in &all {
        let event = s.event_type().unwrap_or_default();
        let note = s
            .note
            .as_deref()
            .map(|n| format!("  ({n})"))
            .unwrap_or_default();
        out.push_str(&format!(
            "{:width$}  {} {}{note}\n",
            s.name,
            s.webhook_type(),
            event
        ));
    }
    out
}

/// What one try looks like on the terminal.
pub(crate) fn describe(r: &TryReport<'_>) -> String {
    let o = r.outcome;
    let at = humantime::format_rfc3339_millis(o.at);
    let ms = o.elapsed.as_secs_f64() * 1000.0;
    let peer = o.peer.map(|p| format!(" {p}")).unwrap_or_default();
    let mut out = format!("try {}/{} at {at}{peer}: ", r.number, r.of);
    match &o.result {
        Ok(a) => {
            out.push_str(&format!(
                "{} {} in {ms:.0} ms, body {}",
                a.status,
                hyper::StatusCode::from_u16(a.status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or(""),
                shown_body(&a.body)
            ));
            match a.problem() {
                None => out.push_str(" -> OK\n"),
                Some(p) => out.push_str(&format!(" -> FAILED: {p}\n")),
            }
        }
        Err(f) => out.push_str(&format!("FAILED after {ms:.0} ms: {f}\n")),
    }
    if let Some(next) = r.next_in {
        out.push_str(&format!(
            "  next try in {} (as POPBiLL would; Ctrl-C stops)\n",
            humantime::format_duration(next)
        ));
    }
    out
}
