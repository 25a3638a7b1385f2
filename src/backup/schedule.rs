//! Scheduled backups: every `backup.every`, a backup into
//! `backup.dir/hearth-YYYYMMDD-HHMMSS.mmm`, keeping the newest
//! `backup.keep`. The schedule follows the newest backup on disk, so a
//! server restarted more often than `every` still takes them.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use super::{BackupReport, BackupService, MARKER};
use crate::config::Backup;

const PREFIX: &str = "hearth-";
/// After a failed backup, the next try comes this soon at the latest.
const RETRY_AFTER: Duration = Duration::from_secs(600);

/// Runs forever when `backup.dir` is set; returns at once when not.
pub async fn run(service: BackupService, config: Backup) {
    let Some(dir) = config.dir.clone() else {
        return std::future::pending().await;
    };
    let every = config.every.0;
    loop {
        let newest = newest_taken_ms(&dir);
        let due_ms = newest.map_or(0, |taken| taken.saturating_add(every.as_millis() as u64));
        let wait = due_ms.saturating_sub(crate::time::now_ms());
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let target = dir.join(name_for(crate::time::now_ms()));
        match service.take(&target).await {
            Ok(_) => {
                if let Err(e) = rotate(&dir, config.keep) {
                    tracing::warn!(error = %e, "removing old backups failed");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, dir = %target.display(), "scheduled backup failed");
                tokio::time::sleep(every.min(RETRY_AFTER)).await;
            }
        }
    }
}

/// `hearth-YYYYMMDD-HHMMSS.mmm` in UTC: names sort as the times do.
fn name_for(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let of_day = secs % 86_400;
    format!(
        "{PREFIX}{year:04}{month:02}{day:02}-{:02}{:02}{:02}.{:03}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        unix_ms % 1000
    )
}

/// The Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Finished backups in `dir` (a name of ours, with its marker), oldest first.
fn backups(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(PREFIX))
        .map(|entry| entry.path())
        .filter(|path| path.join(MARKER).is_file())
        .collect();
    found.sort();
    found
}

fn newest_taken_ms(dir: &Path) -> Option<u64> {
    let newest = backups(dir).pop()?;
    let marker = std::fs::read(newest.join(MARKER)).ok()?;
    let report: BackupReport = serde_json::from_slice(&marker).ok()?;
    Some(report.taken_at_ms)
}

/// Removes the oldest backups beyond `keep`.
fn rotate(dir: &Path, keep: usize) -> Result<(), String> {
    let found = backups(dir);
    let excess = found.len().saturating_sub(keep.max(1));
    for old in &found[..excess] {
        std::fs::remove_dir_all(old).map_err(|e| format!("{}: {e}", old.display()))?;
        tracing::info!(dir = %old.display(), "old backup removed");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
