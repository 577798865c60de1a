//! The bollard implementation of [`super::Engine`]: the only place bollard types appear.
