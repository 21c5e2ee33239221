//! The QR code of a TOTP enrolment (`otpauth://totp/...`), as SVG, so a phone's authenticator
//! app can scan it from the enrolment page without any image fetched from elsewhere.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

use crate::ConsoleError;

/// An SVG QR code of `text` (medium error correction, dark on white, a quiet zone, no fixed
/// size: the page's CSS sizes it). The SVG holds no text, only the modules, so it is safe to
/// embed unescaped.
pub fn svg(text: &str) -> Result<String, ConsoleError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|e| ConsoleError::Qr(e.to_string()))?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .quiet_zone(true)
        .build();
    // qrcode writes an XML declaration; inside HTML it is noise. Also give it a role and label
    // so screen readers announce it.
    let start = image.find("<svg").unwrap_or(0);
    let body = &image[start..];
    Ok(body.replacen(
        "<svg",
        "<svg role=\"img\" aria-label=\"QR code\" class=\"qr-svg\"",
        1,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn otpauth_uri_becomes_svg() {
        let out = svg("otpauth://totp/aiops:alice?secret=JBSWY3DPEHPK3PXP&issuer=aiops").unwrap();
        assert!(out.starts_with("<svg"), "{}", &out[..40]);
        assert!(out.contains("role=\"img\""));
        assert!(out.contains("<path") || out.contains("<rect"));
        assert!(!out.contains("<?xml"));
        assert!(
            !out.contains("secret"),
            "the SVG must not carry the secret as text"
        );
    }

    #[test]
    fn too_long_is_an_error() {
        let long = "x".repeat(8000);
        assert!(svg(&long).is_err());
    }
}
