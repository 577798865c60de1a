//! Rendering plans and pass results as text tables and JSON.
