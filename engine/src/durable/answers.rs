//! Answers a group owes its committers, and the thread that sends them for the writer thread.
//!
//! Waking a waiting committer is a futex wake per commit. Measured at 64 writers, a quarter
//! of the writer thread's time went to waking the group it had just made durable while the
//! next group waited. The writer thread hands each group's answers to the *notifier* (one
//! wake per group), which wakes the committers on the other core while the writer applies the
//! next group. It keeps the writer: releasing it to answer let woken committers lead groups of
//! a few commits each (measured: 28 commits a group instead of 49, and fewer commits a second).
//!
//! A caller leading a group answers it itself: its own answer is one of them, and a hop would
//! only delay it.
//!
//! Nothing an answer reports changes after it is gathered: it is gathered once its commit is
//! published and as durable as it asked, so sending it later only delays the caller. Answers of
//! different groups can therefore reach their callers in any order (a caller-led group may be
//! answered before the notifier sends the group before it); each was true when gathered, and
//! one gathered before a later latch stays true (its write or sync had completed).
//! Invariant: the notifier's backlog is bounded (`BACKLOG_MAX`); past it the writer thread
//! answers itself, so a stalled notifier slows commits instead of growing memory. A group of
//! one commit is answered by the writer thread too when no next group waits and the backlog
//! is empty: no group is delayed by the wake, and the committer is spared a hop
//! (`SEND_ALONE_MAX`).

use std::panic::{catch_unwind, AssertUnwindSafe};

use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use super::pipeline::Committed;
use crate::error::Result;

/// Answers waiting for the notifier before the writer thread sends its own.
const BACKLOG_MAX: usize = 4_096;

/// Answers the writer thread sends itself when no next group waits for it and nothing waits
/// for the notifier: the committer is spared the notifier's hop (a lone async commit led by
/// the writer thread: p50 145–151 → 113–121 µs on a 90 µs flush, `api_commit_probe`, session
/// 20). Not when a next group waits: on two cores the wake delays it (4 blocking writers lost
/// a fifth of their commits a second). Larger groups always go to the notifier, whose reason
/// to exist is their many wakes. Not when the backlog holds answers either, so as not to pass
/// them (answers the notifier is already sending may still be passed: answers of different
/// groups are not ordered, above).
const SEND_ALONE_MAX: usize = 1;

enum Answer {
    Commit(oneshot::Sender<Result<Committed>>, Result<Committed>),
    Sync(oneshot::Sender<Result<u64>>, Result<u64>),
}

/// Answers gathered and not yet sent: at most one per message a leader took from the
/// (bounded) queue.
#[derive(Default)]
#[must_use = "gathered answers must be sent, or their committers wait forever"]
pub(crate) struct Answers(Vec<Answer>);

impl Answers {
    pub fn commit(&mut self, reply: oneshot::Sender<Result<Committed>>, answer: Result<Committed>) {
        self.0.push(Answer::Commit(reply, answer));
    }

    pub fn sync(&mut self, reply: oneshot::Sender<Result<u64>>, answer: Result<u64>) {
        self.0.push(Answer::Sync(reply, answer));
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Wake every committer gathered. An answer whose receiver is gone (a dropped async
    /// commit) comes back and is dropped here, with the caller's value in it: a panic in that
    /// value's `Drop` is caught, so the answers after it are still sent.
    pub fn send(self) {
        for answer in self.0 {
            let sent = catch_unwind(AssertUnwindSafe(|| match answer {
                Answer::Commit(reply, answer) => drop(reply.send(answer)),
                Answer::Sync(reply, answer) => drop(reply.send(answer)),
            }));
            if sent.is_err() {
                tracing::warn!("dropping an unclaimed commit answer panicked");
            }
        }
    }
}

struct Backlog {
    answers: Answers,
    closed: bool,
}

/// Sends the writer thread's answers on a thread of its own.
pub(crate) struct Notifier {
    backlog: Mutex<Backlog>,
    wake: Condvar,
}

impl Notifier {
    pub fn new() -> Self {
        Notifier {
            backlog: Mutex::new(Backlog {
                answers: Answers::default(),
                closed: false,
            }),
            wake: Condvar::new(),
        }
    }

    /// Queue `answers` for the notifier; sent here instead when its backlog is full or it has
    /// stopped, or when the sender has no next group (`next_group_waits` false) and they are a
    /// lone answer with nothing waiting before it (`SEND_ALONE_MAX`).
    pub fn hand_off(&self, answers: Answers, next_group_waits: bool) {
        if answers.is_empty() {
            return;
        }
        let mut backlog = self.backlog.lock();
        let alone =
            !next_group_waits && answers.len() <= SEND_ALONE_MAX && backlog.answers.is_empty();
        if alone || backlog.closed || backlog.answers.len() + answers.len() > BACKLOG_MAX {
            drop(backlog);
            answers.send();
            return;
        }
        let was_idle = backlog.answers.is_empty();
        backlog.answers.0.extend(answers.0);
        drop(backlog);
        if was_idle {
            self.wake.notify_one();
        }
    }

    /// The notifier thread's body: until closed, send what is handed off. However it ends, the
    /// backlog is closed first, so later hand-offs are sent by whoever hands them off.
    pub fn run(&self) {
        let _closed = CloseOnExit(self);
        loop {
            let answers = {
                let mut backlog = self.backlog.lock();
                while backlog.answers.is_empty() && !backlog.closed {
                    self.wake.wait(&mut backlog);
                }
                if backlog.answers.is_empty() {
                    return;
                }
                std::mem::take(&mut backlog.answers)
            };
            answers.send();
        }
    }

    /// Stop: the notifier sends what it holds and returns; later hand-offs are sent inline.
    pub fn close(&self) {
        self.backlog.lock().closed = true;
        self.wake.notify_one();
    }

    /// Send what the backlog holds, on the calling thread.
    fn send_backlog(&self) {
        let left = std::mem::take(&mut self.backlog.lock().answers);
        left.send();
    }
}

/// Run `body` with a notifier thread beside it (or none, if it cannot start: hand-offs are
/// then sent inline). The notifier is closed however `body` ends, a panic included, and has
/// sent everything before this returns (or passes the panic on).
pub(crate) fn with_notifier<T>(body: impl FnOnce(&Notifier) -> T) -> T {
    let notifier = Notifier::new();
    std::thread::scope(|scope| {
        let started = std::thread::Builder::new()
            .name("aedb-answers".into())
            .spawn_scoped(scope, || notifier.run());
        if let Err(err) = started {
            tracing::warn!(error = %err, "no notifier thread: the writer thread answers");
            notifier.close();
        }
        // The scope waits for the notifier, which must not wait for more.
        let _close = CloseOnDrop(&notifier);
        body(&notifier)
    })
}

/// Closes the notifier when dropped (unwinding included), and sends whatever its backlog
/// still holds (the notifier thread may be gone).
struct CloseOnDrop<'a>(&'a Notifier);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
        self.0.send_backlog();
    }
}

/// Closes the backlog when the notifier's loop ends, by a return or a panic; a panic also
/// sends what it left behind on the way out.
struct CloseOnExit<'a>(&'a Notifier);

impl Drop for CloseOnExit<'_> {
    fn drop(&mut self) {
        self.0.backlog.lock().closed = true;
        self.0.send_backlog();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syncs(n: usize) -> (Answers, Vec<oneshot::Receiver<Result<u64>>>) {
        let mut answers = Answers::default();
        let receivers = (0..n as u64)
            .map(|i| {
                let (reply, receiver) = oneshot::channel();
                answers.sync(reply, Ok(i));
                receiver
            })
            .collect();
        (answers, receivers)
    }

    fn answered(receivers: &mut [oneshot::Receiver<Result<u64>>]) -> Vec<Option<u64>> {
        receivers
            .iter_mut()
            .map(|r| r.try_recv().ok().and_then(|answer| answer.ok()))
            .collect()
    }

    #[test]
    fn the_notifier_sends_everything_handed_off_before_it_returns() {
        let notifier = Notifier::new();
        let (first, mut first_rx) = syncs(3);
        let (second, mut second_rx) = syncs(2);
        std::thread::scope(|scope| {
            let runner = scope.spawn(|| notifier.run());
            notifier.hand_off(first, true);
            notifier.hand_off(second, true);
            notifier.close();
            runner.join().expect("the notifier thread returns");
        });
        assert_eq!(answered(&mut first_rx), vec![Some(0), Some(1), Some(2)]);
        assert_eq!(answered(&mut second_rx), vec![Some(0), Some(1)]);
    }

    struct PanicOnDrop;

    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("a caller's value that panics when dropped");
        }
    }

    #[test]
    fn an_unclaimed_answer_that_panics_when_dropped_stops_no_other_answer() {
        let notifier = Notifier::new();
        let mut answers = Answers::default();
        let (reply, gone) = oneshot::channel();
        drop(gone); // an async commit whose future was dropped
        let committed = Committed {
            commit_seq: 1,
            durable_head_seq: 1,
            value: Box::new(PanicOnDrop),
        };
        answers.commit(reply, Ok(committed));
        let (after, mut after_rx) = syncs(2);
        answers.0.extend(after.0);
        let (later, mut later_rx) = syncs(1);
        std::thread::scope(|scope| {
            let runner = scope.spawn(|| notifier.run());
            notifier.hand_off(answers, true);
            notifier.hand_off(later, true);
            notifier.close();
            runner
                .join()
                .expect("the notifier thread survives the panic");
        });
        assert_eq!(answered(&mut after_rx), vec![Some(0), Some(1)]);
        assert_eq!(answered(&mut later_rx), vec![Some(0)]);
    }

    /// The writer thread's body panicking outside any group: without the close on unwind the
    /// scope would wait for the notifier for ever (detected here, not hung on).
    #[test]
    fn a_panicking_body_still_ends_its_notifier_after_its_answers() {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (held, mut held_rx) = syncs(2);
            let ended = catch_unwind(AssertUnwindSafe(|| {
                with_notifier(|notifier| {
                    notifier.hand_off(held, true);
                    panic!("a panic outside any group");
                })
            }));
            let _ = done_tx.send((ended.is_err(), answered(&mut held_rx)));
        });
        let (panicked, held) = done_rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the scope ended: the unwinding body closed the notifier");
        assert!(
            panicked,
            "the panic reaches whoever joins the writer thread"
        );
        assert_eq!(held, vec![Some(0), Some(1)]);
    }

    #[test]
    fn closing_without_a_notifier_thread_sends_what_was_handed_off() {
        let notifier = Notifier::new();
        let (held, mut held_rx) = syncs(3);
        notifier.hand_off(held, true);
        assert!(answered(&mut held_rx).iter().all(Option::is_none));
        drop(CloseOnDrop(&notifier));
        assert_eq!(answered(&mut held_rx), vec![Some(0), Some(1), Some(2)]);
    }

    #[test]
    fn a_lone_answer_with_no_next_group_and_nothing_before_it_is_sent_by_the_writer_thread() {
        let notifier = Notifier::new();
        let (lone, mut lone_rx) = syncs(1);
        notifier.hand_off(lone, false);
        assert_eq!(
            answered(&mut lone_rx),
            vec![Some(0)],
            "no hop for a lone answer"
        );
        // A next group waits: even a lone answer goes to the notifier.
        let (busy, mut busy_rx) = syncs(1);
        notifier.hand_off(busy, true);
        assert_eq!(
            answered(&mut busy_rx),
            vec![None],
            "the next group goes first"
        );
        // A lone answer behind others waits its turn; so does a group of more.
        let (after, mut after_rx) = syncs(1);
        notifier.hand_off(after, false);
        assert_eq!(
            answered(&mut after_rx),
            vec![None],
            "kept behind the answers before it"
        );
        let (group, mut group_rx) = syncs(SEND_ALONE_MAX + 1);
        notifier.hand_off(group, false);
        assert!(answered(&mut group_rx).iter().all(Option::is_none));
        notifier.close();
        notifier.run();
        assert_eq!(answered(&mut busy_rx), vec![Some(0)]);
        assert_eq!(answered(&mut after_rx), vec![Some(0)]);
        assert!(answered(&mut group_rx).iter().all(Option::is_some));
    }

    #[test]
    fn a_full_backlog_or_a_closed_notifier_answers_on_the_caller() {
        let notifier = Notifier::new();
        let (held, mut held_rx) = syncs(BACKLOG_MAX);
        notifier.hand_off(held, true);
        assert!(answered(&mut held_rx).iter().all(Option::is_none));
        // Past the bound: sent here, at once, instead of growing the backlog.
        let (over, mut over_rx) = syncs(1);
        notifier.hand_off(over, true);
        assert_eq!(answered(&mut over_rx), vec![Some(0)]);
        notifier.close();
        let (late, mut late_rx) = syncs(1);
        notifier.hand_off(late, true);
        assert_eq!(answered(&mut late_rx), vec![Some(0)]);
        // A notifier started after the close still drains what it held.
        notifier.run();
        assert!(answered(&mut held_rx).iter().all(Option::is_some));
    }
}
