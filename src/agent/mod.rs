//! The long-running agent: passes on a schedule, signals, metrics and health.
