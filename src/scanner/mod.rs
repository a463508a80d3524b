//! Scanner devices: scan events, GS1 element strings, count sessions.

pub mod gs1;
