//! What became of the records of a run: each record's fate, the counts by
//! fate, the table printed at the end and the progress bar drawn meanwhile.

use std::collections::BTreeMap;
use std::io::Write as _;

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fate {
    /// Published (or, dry run: would be) to the topic its route now names.
    Redriven(String),
    /// Already published there (the ledger or this run says so).
    AlreadyPublished,
    /// The configuration still routes it to the source topic.
    StillUnrouted,
    /// It still does not parse; the reason.
    StillInvalid(&'static str),
    /// Kafka did not confirm the write (why); the run stops before it.
    Failed(String),
}

impl Fate {
    fn label(&self) -> String {
        match self {
            Fate::Redriven(t) => format!("re-driven to {t}"),
            Fate::AlreadyPublished => "already published".into(),
            Fate::StillUnrouted => "still unrouted (left)".into(),
            Fate::StillInvalid(r) => format!("still invalid: {r} (left)"),
            Fate::Failed(why) => format!("failed: {why} (run again to resume here)"),
        }
    }
}

/// Counts of a run, by fate.
#[derive(Debug, Default)]
pub struct Summary {
    pub fates: BTreeMap<Fate, u64>,
    pub looked_at: u64,
    /// Stopped by SIGINT or SIGTERM before the end: what was in flight was
    /// finished and its progress committed; run again to resume.
    pub interrupted: bool,
}

impl Summary {
    pub fn count(&self, pred: impl Fn(&Fate) -> bool) -> u64 {
        self.fates
            .iter()
            .filter(|(f, _)| pred(f))
            .map(|(_, n)| n)
            .sum()
    }

    pub(super) fn table(&self, source: &str, dry_run: bool) -> String {
        let mut out = format!(
            "popbill-bridge redrive: {} record(s) of {source}{}{}\n",
            self.looked_at,
            if dry_run {
                " (dry run: nothing published or committed)"
            } else {
                ""
            },
            if self.interrupted {
                " (interrupted: what was in flight was finished and committed; run again to resume)"
            } else {
                ""
            }
        );
        let width = self
            .fates
            .keys()
            .map(|f| f.label().len())
            .max()
            .unwrap_or(0);
        for (fate, n) in &self.fates {
            out.push_str(&format!("  {:<width$}  {n:>8}\n", fate.label()));
        }
        out
    }
}

/// The progress bar on standard error, redrawn in place.
pub(super) fn draw(summary: &Summary, total: i64) {
    let total = total.max(1) as u64;
    let done = summary.looked_at.min(total);
    let filled = (done * 30 / total) as usize;
    let moved = summary.count(|f| matches!(f, Fate::Redriven(_)));
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "\r[{}{}] {done}/{total} looked at, {moved} re-driven",
        "#".repeat(filled),
        "-".repeat(30 - filled)
    );
    let _ = err.flush();
}

#[cfg(test)]
mod tests;
