//! An in-memory [`super::Engine`] for fast tests.
