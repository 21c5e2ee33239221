//! Test kit: real peers on free loopback ports.
