//! Sources and sinks of aiops.
