//! The engine answers worth a second try, and the bounded retry that gives it: answers that
//! say another operation got in the way, not that the request is wrong. Each is an engine
//! quirk seen on a real engine; anything else is returned at once.

use std::future::Future;
use std::time::Duration;

use crate::engine::EngineError;

/// What Docker 20.10 answers to a disk usage request while another one runs.
const DF_BUSY: &str = "a disk usage operation is already running";

/// Attempts at a request whose answer is transient, and the first wait (doubled after each
/// attempt: 0.25 + 0.5 + 1 + 2 + 4 s at most).
pub(super) const ATTEMPTS: u32 = 6;
pub(super) const FIRST_WAIT: Duration = Duration::from_millis(250);

/// A disk usage answer worth another try: the engine is busy with another one (Docker
/// 20.10), or, on the containerd image store, a snapshot it was measuring went away
/// meanwhile — right after a BuildKit build Docker 28 answers 404 `snapshot <id>-view does
/// not exist` (seen in 4 of 23 tries; reported as docker/for-mac#6509, moby/buildkit#3599),
/// and the next try succeeds — or an image was deleted while it listed them (404 `failed to
/// retrieve image list: … content digest sha256:…: not found`, as the listing's race).
pub(super) fn disk_usage_is_transient(e: &EngineError) -> bool {
    match e {
        EngineError::Other(m) => m.contains(DF_BUSY),
        EngineError::NotFound(m) => {
            (m.contains("snapshot") && m.contains("does not exist")) || m.contains("content digest")
        }
        _ => false,
    }
}

/// An image listing worth another try: an image was deleted while the engine listed it.
/// Docker 28 on the containerd image store answers 404 `content digest sha256:…: not
/// found`, Podman 4.3 `image not known`.
pub(super) fn listing_is_transient(e: &EngineError) -> bool {
    match e {
        EngineError::NotFound(m) => m.contains("content digest") || m.contains("image not known"),
        EngineError::Other(m) => m.contains("image not known"),
        _ => false,
    }
}

/// Run `call` until it succeeds, fails for good, or [`ATTEMPTS`] transient answers came.
pub(super) async fn retried<T, F, Fut>(
    what: &str,
    transient: fn(&EngineError) -> bool,
    mut call: F,
) -> Result<T, EngineError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, EngineError>>,
{
    let mut wait = FIRST_WAIT;
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e) if transient(&e) && attempt < ATTEMPTS => {
                tracing::debug!(what, attempt, retry_in = ?wait, error = %e, "trying again");
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
            answer => return answer,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    const VIEW: &str =
        "NotFound: snapshot eaoajed0mcbuc5bxan89yi5bx-view does not exist: not found";
    const CONTENT: &str = "rpc error: code = NotFound desc = content digest sha256:4812: not found";

    #[test]
    fn only_the_answers_seen_to_pass_are_tried_again() {
        let busy = EngineError::Other(format!("read disk usage at unix:///x: {DF_BUSY}"));
        assert!(disk_usage_is_transient(&busy));
        assert!(disk_usage_is_transient(&EngineError::NotFound(VIEW.into())));
        let df_race =
            format!("failed to retrieve image list: failed to read config content: {CONTENT}");
        assert!(disk_usage_is_transient(&EngineError::NotFound(df_race)));
        assert!(!disk_usage_is_transient(&EngineError::NotFound(
            "page not found".into()
        )));
        assert!(!disk_usage_is_transient(&EngineError::Other("boom".into())));
        assert!(!disk_usage_is_transient(&EngineError::Conflict(
            VIEW.into()
        )));
        assert!(listing_is_transient(&EngineError::NotFound(CONTENT.into())));
        let podman =
            "list images at unix:///p: Docker responded with status code 500: image not known";
        assert!(listing_is_transient(&EngineError::Other(podman.into())));
        assert!(!listing_is_transient(&EngineError::NotFound(
            "page not found".into()
        )));
        assert!(!listing_is_transient(&EngineError::NotFound(VIEW.into())));
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_answer_is_tried_again_a_bounded_number_of_times() {
        let calls = AtomicU32::new(0);
        let once = retried("x", listing_is_transient, || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n == 0 {
                Err(EngineError::NotFound(CONTENT.into()))
            } else {
                Ok(n)
            }
        });
        assert_eq!(once.await, Ok(1));
        calls.store(0, Ordering::SeqCst);
        let never = retried("x", listing_is_transient, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(EngineError::NotFound(CONTENT.into()))
        });
        assert!(never.await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), ATTEMPTS);
        calls.store(0, Ordering::SeqCst);
        let wrong = retried("x", listing_is_transient, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(EngineError::NotFound("page not found".into()))
        });
        assert!(wrong.await.is_err());
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "a lasting answer is returned at once"
        );
    }
}
