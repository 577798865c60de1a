//! How old an image is: its age counts from the later of `Created` and `LastTagTime`, each
//! only when it is a real time; unknown when neither is.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::inventory::{Image, is_real_time};

/// The time an image's age counts from: the later of `Created` and `LastTagTime`, each only
/// when it is a real time ([`is_real_time`]). `None`: unknown.
pub(super) fn age_base(image: &Image, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let real = |t: &DateTime<Utc>| is_real_time(*t, now);
    let created = Some(image.created).filter(real);
    let tagged = image.last_tagged.filter(real);
    created.max(tagged)
}

/// How old an image is at `now` (zero when its time is in the future within the
/// tolerance); `None` when its age cannot be told ([`age_base`]).
pub fn age(image: &Image, now: DateTime<Utc>) -> Option<Duration> {
    age_base(image, now).map(|t| (now - t).to_std().unwrap_or(Duration::ZERO))
}

/// How long before `now` an effective time `since` is (zero when in the future).
pub(super) fn since_age(since: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (now - since).to_std().unwrap_or(Duration::ZERO)
}
