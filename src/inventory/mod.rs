//! The engine's state as plain values: images, containers, labels, the ID index, the build
//! cache records and the disk measurement, as one pass sees them.
//!
//! Owns the domain types that the planner reads. Knows nothing about bollard, I/O or the
//! configuration; this file only declares and re-exports.

pub mod build_cache;
mod cycles;
pub mod disk;
mod image;
mod index;
mod labels;
mod snapshot;

pub use build_cache::{CacheRecord, CacheType};
pub use cycles::{Cut, cut_cycles, cycle_of};
pub use disk::DiskUsage;
pub use image::{
    Container, EARLIEST_REAL_TIME, FUTURE_TOLERANCE, Image, ImageId, InvalidImageId,
    is_placeholder_reference, is_real_time, short_id,
};
pub use index::IdIndex;
pub use labels::{Labels, Strings};
pub use snapshot::{Inventory, ParentCycles};
