//! The fault suite: hostile listeners, garbled listings and hanging sockets (fake servers,
//! no engine needed), a daemon that dies mid-pass and racing actors (a real engine and
//! root, with `--features host-tests`).

#[path = "../support/mod.rs"]
mod support;

#[cfg(feature = "host-tests")]
mod faults_daemon;
mod faults_listener;
mod faults_listing;
#[cfg(feature = "host-tests")]
mod faults_races;
mod faults_socket;
#[cfg(feature = "host-tests")]
mod faults_unplanned;
