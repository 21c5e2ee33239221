//! The console: the pages of the built-in web UI, pure. Which API answers each page shows
//! ([`pages`]), the templates that render them ([`Console`]), SVG charts ([`chart`]), the QR code
//! of a TOTP enrolment ([`qr`]), and the stylesheet and script written here ([`assets`]).
//!
//! The server (engine/server, `http/console.rs`) does the I/O: it checks the session, calls the
//! API routes a [`pages::Page`] lists with the caller's own credentials (so roles and audit are the
//! API's), and renders the page's template with the answers. Nothing here reads a clock or the
//! network, so the bench renders pages from recorded answers.

pub mod assets;
pub mod chart;
pub mod pages;
pub mod qr;
mod render;
pub mod totp;

pub use render::{Console, ConsoleError};
