//! Reports of inappropriate content: an event (by a member who can see
//! it), a room, or a user, with the reporter's reason, kept for the admin
//! (`hearth reports`, the admin API) until dismissed. What the reporter
//! may learn is only what they could know: an event they cannot see is
//! "not found", as one that does not exist.
//! Spec: client-server-api "Reporting Content".

use std::sync::Arc;

use ruma::{EventId, RoomId, UserId};

use crate::{
    accounts::AccountService,
    error::{Error, Result},
    request::at_most,
    rooms::RoomService,
    store::reports::{Report, ReportTree},
    time::now_ms,
};

/// Longest reason kept, and most reports held at once.
const MAX_REASON: usize = 2000;
const MAX_REPORTS: usize = 10_000;

pub struct ReportService {
    tree: ReportTree,
    rooms: Arc<RoomService>,
    accounts: Arc<AccountService>,
}

/// What a report is about.
pub enum Subject<'a> {
    Event(&'a RoomId, &'a EventId),
    Room(&'a RoomId),
    User(&'a UserId),
}

impl ReportService {
    pub fn new(tree: ReportTree, rooms: Arc<RoomService>, accounts: Arc<AccountService>) -> Self {
        Self {
            tree,
            rooms,
            accounts,
        }
    }

    /// Keeps `reporter`'s report of `subject`.
    pub async fn report(
        &self,
        reporter: &UserId,
        subject: Subject<'_>,
        reason: &str,
    ) -> Result<()> {
        at_most("reason", reason, MAX_REASON)?;
        let mut report = Report {
            reporter: reporter.to_string(),
            room_id: None,
            event_id: None,
            user_id: None,
            reason: reason.to_owned(),
            received_ms: now_ms(),
        };
        match subject {
            Subject::Event(room, event) => {
                let not_found = || Error::not_found("no such event in a room you are in");
                let access = self
                    .rooms
                    .read_access(room, reporter)
                    .map_err(|_| not_found())?;
                let visible = matches!(access, crate::rooms::reads::access::ReadAccess::Member)
                    && self.rooms.readable_event(event, reporter, &access)?;
                if !visible {
                    return Err(not_found());
                }
                report.room_id = Some(room.to_string());
                report.event_id = Some(event.to_string());
            }
            Subject::Room(room) => {
                if !self.rooms.is_known(room)? {
                    return Err(Error::not_found("no such room here"));
                }
                report.room_id = Some(room.to_string());
            }
            Subject::User(user) => {
                let ours = user.server_name() == self.rooms.server_name();
                if ours && !self.accounts.exists(user)? {
                    return Err(Error::not_found("no such user here"));
                }
                report.user_id = Some(user.to_string());
            }
        }
        if self.tree.count() >= MAX_REPORTS {
            return Err(Error::limit_exceeded(
                "the admin has too many reports to read; try again later",
                3_600_000,
            ));
        }
        self.tree.add(&report).await?;
        tracing::info!(reporter = %reporter, "a report for the admin");
        Ok(())
    }

    pub fn all(&self) -> Result<Vec<(u64, Report)>> {
        Ok(self.tree.all()?)
    }

    pub fn dismiss(&self, id: u64) -> Result<()> {
        match self.tree.remove(id)? {
            true => Ok(()),
            false => Err(Error::not_found(format!("no report {id}"))),
        }
    }
}
