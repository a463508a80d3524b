//! Scanner devices: scan events, GS1 element strings, count sessions.

pub mod devices;
pub mod gs1;
pub mod model;
