//! What may cut an operation short, and the one decision of what it may cut.
//!
//! An operation has a **commit point**: for a package, the rename that makes the new staging
//! result visible (with its package record); a validate has none (it writes nothing); a publish
//! is one blocking step on local volumes whose commit is the rename into production. An
//! [`Interrupt`] — a deadline (the caller's operation timeout) and/or a stop signal (a
//! shutdown whose grace period ran out) — cuts only the work *before* the commit point: that
//! work is dropped, which discards its temporary folder, so the answer "nothing was committed"
//! is true. Once the commit point is reached the operation is allowed to finish whatever the
//! clock says, and its answer is its real outcome; a publish, once begun, always finishes.
//! A caller that drops the operation's future (a client that went away) is the same: work before
//! the commit point is dropped, a commit already running on a blocking thread completes.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::WorkflowError;

/// Why an operation was stopped before its commit point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The operation's time ran out.
    Timeout(Duration),
    /// The service is shutting down.
    ShuttingDown,
}

/// A deadline and a stop signal that may stop an operation before its commit point.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    deadline: Option<(Instant, Duration)>,
    stop: Option<watch::Receiver<bool>>,
}

impl Interrupt {
    /// Nothing interrupts: the operation runs until it ends.
    pub fn none() -> Self {
        Self::default()
    }

    /// Stopped `timeout` from now.
    pub fn after(timeout: Duration) -> Self {
        Self {
            deadline: Some((Instant::now() + timeout, timeout)),
            stop: None,
        }
    }

    /// Also stopped as soon as `stop` holds `true`.
    pub fn or_when(mut self, stop: watch::Receiver<bool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Whether the operation must not start: already stopped or past its deadline.
    pub(crate) fn check(&self) -> Result<(), WorkflowError> {
        if self.stop.as_ref().is_some_and(|s| *s.borrow()) {
            return Err(WorkflowError::Interrupted(Cut::ShuttingDown));
        }
        match self.deadline {
            Some((at, timeout)) if Instant::now() >= at => {
                Err(WorkflowError::Interrupted(Cut::Timeout(timeout)))
            }
            _ => Ok(()),
        }
    }

    /// Runs `work` — everything before the commit point — unless the operation is interrupted
    /// first, in which case `work` is dropped and [`WorkflowError::Interrupted`] returned.
    pub(crate) async fn before_commit<T>(
        &self,
        work: impl Future<Output = Result<T, WorkflowError>>,
    ) -> Result<T, WorkflowError> {
        self.check()?;
        let deadline = async {
            match self.deadline {
                Some((at, timeout)) => {
                    tokio::time::sleep_until(at).await;
                    Cut::Timeout(timeout)
                }
                None => std::future::pending().await,
            }
        };
        let stop = async {
            match self.stop.clone() {
                Some(mut stop) => {
                    // A dropped sender never stops anything.
                    if stop.wait_for(|stopped| *stopped).await.is_err() {
                        std::future::pending::<()>().await;
                    }
                    Cut::ShuttingDown
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = work => result,
            cut = deadline => Err(WorkflowError::Interrupted(cut)),
            cut = stop => Err(WorkflowError::Interrupted(cut)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn work_before_the_commit_point_is_cut_by_the_deadline_and_by_a_stop() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        };
        let cut = Interrupt::after(Duration::from_secs(5))
            .before_commit(slow)
            .await;
        assert!(
            matches!(cut, Err(WorkflowError::Interrupted(Cut::Timeout(t))) if t.as_secs() == 5)
        );

        let (tx, rx) = watch::channel(false);
        let stopping = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            tx.send(true).unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        };
        let cut = Interrupt::none()
            .or_when(rx.clone())
            .before_commit(stopping)
            .await;
        assert!(matches!(
            cut,
            Err(WorkflowError::Interrupted(Cut::ShuttingDown))
        ));
        assert!(
            Interrupt::none().or_when(rx).check().is_err(),
            "already stopped"
        );

        let quick = async { Ok(7) };
        let done = Interrupt::after(Duration::from_secs(5))
            .before_commit(quick)
            .await;
        assert_eq!(done.unwrap(), 7);
    }
}
