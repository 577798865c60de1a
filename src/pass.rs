//! One garbage-collection pass: inventory → plan → execute → report.
