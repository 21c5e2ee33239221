//! Pages of the overview, alerts and incidents, monitoring, and the sign-in pages' templates.

use super::Page;

/// The pages of this file.
pub const PAGES: &[Page] = &[];

/// Their templates (including `layout.html`, `login.html`, `totp.html`, `enrol.html`,
/// `error.html`).
pub const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../templates/layout.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("totp.html", include_str!("../../templates/totp.html")),
    ("enrol.html", include_str!("../../templates/enrol.html")),
    ("error.html", include_str!("../../templates/error.html")),
];
