//! The forecast gauges: the disk's fill rate (bytes, inodes) and the time until `high` per
//! resource, each **absent** while there is nothing to say (no fit yet; not filling).

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::agent::forecast::{Forecast, Outlook, Resource};
use crate::agent::metric_labels::{Label, OptionalGauge, label, set_optional};

/// The gauges of [`Forecast`].
#[derive(Debug, Default)]
pub(super) struct ForecastMetrics {
    fill_bytes: OptionalGauge,
    fill_inodes: OptionalGauge,
    eta: Family<Label, Gauge<f64, AtomicU64>>,
    passes: Counter,
}

impl ForecastMetrics {
    pub(super) fn register(&self, r: &mut Registry) {
        r.register_with_unit(
            "disk_fill_rate",
            "Bytes per second the disk fills (a least-squares line through the disk checks \
             of disk.forecast.window since the last drop); negative while it empties, absent \
             before three checks",
            Unit::Other("bytes_per_second".to_owned()),
            self.fill_bytes.clone(),
        );
        r.register_with_unit(
            "disk_inodes_fill_rate",
            "Inodes per second the disk fills, as disk_fill_rate_bytes_per_second; absent \
             where the filesystem does not count inodes",
            Unit::Other("per_second".to_owned()),
            self.fill_inodes.clone(),
        );
        r.register_with_unit(
            "disk_high_eta",
            "Time until the disk reaches its high watermark at the fill rate, by resource \
             (space, inodes: with disk.inodes_high); 0 at or over high, absent when not filling",
            Unit::Seconds,
            self.eta.clone(),
        );
        r.register(
            "forecast_passes",
            "Pressure passes run before the disk reached high because the forecast said it \
             would by the next check (disk.forecast.preempt)",
            self.passes.clone(),
        );
    }

    pub(super) fn pass_started(&self) {
        self.passes.inc();
    }

    pub(super) fn set(&self, forecast: &Forecast) {
        let rate = |o: Option<Outlook>| o.map(|o| o.rate_per_sec);
        set_optional(&self.fill_bytes, rate(forecast.space));
        set_optional(&self.fill_inodes, rate(forecast.inodes));
        for (resource, outlook) in [
            (Resource::Space, forecast.space),
            (Resource::Inodes, forecast.inodes),
        ] {
            let key = label("resource", resource.as_str());
            match outlook.and_then(|o| o.eta) {
                Some(eta) => {
                    self.eta.get_or_create(&key).set(eta.as_secs_f64());
                }
                None => {
                    self.eta.remove(&key);
                }
            }
        }
    }
}
