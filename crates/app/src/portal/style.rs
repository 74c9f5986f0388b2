//! How an Ente's portal looks and which languages it speaks.

use crate::Ctx;
use crate::error::{AppError, At, Place};

/// incasso's blue, Bootstrap Italia's primary: white text on it reads at
/// 5.6:1.
pub const DEFAULT_BRAND_COLOUR: &str = "#0066cc";

/// A language a portal may speak besides Italian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtraLanguage {
    German,
    English,
}

impl ExtraLanguage {
    pub fn code(self) -> &'static str {
        match self {
            ExtraLanguage::German => "de",
            ExtraLanguage::English => "en",
        }
    }

    pub fn from_code(code: &str) -> Option<ExtraLanguage> {
        match code {
            "de" => Some(ExtraLanguage::German),
            "en" => Some(ExtraLanguage::English),
            _ => None,
        }
    }
}

/// The portal of one Ente, as its pages need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalStyle {
    pub ente: String,
    pub ente_name: String,
    pub brand_colour: String,
    pub languages: Vec<ExtraLanguage>,
    pub has_logo: bool,
}

/// The portal of Ente `fc`; an unknown Ente is `NOT_FOUND`. Public: the
/// portal of every Ente is open to everyone.
pub async fn get(ctx: &Ctx, fc: &str) -> Result<PortalStyle, AppError> {
    if let Some(style) = ctx.app.portal_styles.get(fc) {
        return Ok(style);
    }
    let at = Place::new("portal.style", fc, "");
    let ente = ctx.store().get_ente(fc).await.at(at)?;
    let settings = ctx.store().portal_settings(fc).await.at(at)?;
    let has_logo = ctx.store().has_logo(fc).await.at(at)?;
    let (brand_colour, languages) = match settings {
        Some(s) => (
            s.brand_colour,
            s.languages
                .iter()
                .filter_map(|l| ExtraLanguage::from_code(l))
                .collect(),
        ),
        None => (DEFAULT_BRAND_COLOUR.to_string(), Vec::new()),
    };
    let style = PortalStyle {
        ente: ente.fiscal_code,
        ente_name: ente.name,
        brand_colour,
        languages,
        has_logo,
    };
    ctx.app.portal_styles.put(fc, &style);
    Ok(style)
}

/// The portals' looks read in the last [`StyleCache::TTL`]: every portal
/// page shows the Ente's name, logo and languages, three queries that
/// were half of a citizen's visit's (`incasso bench portal`). What this
/// process changes (style, name, logo) is forgotten at once; a change made
/// by another process shows within the TTL.
#[derive(Clone, Default)]
pub struct StyleCache {
    entries: std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, PortalStyle)>>,
    >,
}

impl StyleCache {
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(5);

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::HashMap<String, (std::time::Instant, PortalStyle)>,
    > {
        // A poisoned lock only means another request panicked mid-insert.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, fc: &str) -> Option<PortalStyle> {
        match self.lock().get(fc) {
            Some((at, style)) if at.elapsed() < Self::TTL => Some(style.clone()),
            _ => None,
        }
    }

    /// Only existing Enti are kept: the map is as large as their number.
    fn put(&self, fc: &str, style: &PortalStyle) {
        self.lock()
            .insert(fc.to_string(), (std::time::Instant::now(), style.clone()));
    }

    /// After a change to the Ente's style, name or logo.
    pub fn forget(&self, fc: &str) {
        self.lock().remove(fc);
    }
}

/// The contrast WCAG 2.1 asks of normal text (success criterion 1.4.3).
pub const MIN_CONTRAST: f64 = 4.5;

/// The colour of `#rrggbb` as its three channels, if it is one.
fn rgb(colour: &str) -> Option<[u8; 3]> {
    let hex = colour.strip_prefix('#')?;
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some([channel(0)?, channel(2)?, channel(4)?])
}

/// The contrast ratio of white text on `rgb` (WCAG 2.1's relative
/// luminance: 1 to 21).
pub fn white_contrast(rgb: [u8; 3]) -> f64 {
    let linear = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * linear(rgb[0]) + 0.7152 * linear(rgb[1]) + 0.0722 * linear(rgb[2]);
    1.05 / (l + 0.05)
}

/// Sets the portal of Ente `fc`: its header's brand colour (`#rrggbb`, on
/// which white text must read at [`MIN_CONTRAST`] or more) and the
/// languages it speaks besides Italian. The Ente's administrator or the
/// intermediary's (an operator or an administration key); in the audit
/// log, refusals included.
pub async fn set(
    ctx: &Ctx,
    fc: &str,
    brand_colour: &str,
    languages: &[ExtraLanguage],
) -> Result<PortalStyle, AppError> {
    let colour = brand_colour.trim().to_lowercase();
    crate::audit::audited(ctx, Some(fc), "portal.style", &colour, async {
        match &ctx.caller {
            // A program: the intermediary's key or the Ente's
            // administration key, not an application's.
            crate::Caller::Key(k) => {
                let ente_admin =
                    k.scope == incasso_store::KeyScope::EnteAdmin && k.ente.as_deref() == Some(fc);
                if !(ctx.caller.is_intermediary() || ente_admin) {
                    return Err(AppError::forbidden());
                }
            }
            // An operator: the Ente's administrator or the intermediary's.
            _ => ctx.caller.require_ente(fc)?,
        }
        let Some(channels) = rgb(&colour) else {
            return Err(AppError::invalid(
                "BAD_COLOUR",
                "colore: indicare un colore nel formato #rrggbb, per esempio #0066cc",
            ));
        };
        let contrast = white_contrast(channels);
        if contrast < MIN_CONTRAST {
            return Err(AppError::invalid(
                "LOW_CONTRAST",
                format!(
                    "colore: il testo bianco su {colour} ha un contrasto di {}:1, sotto il minimo di 4,5:1 che chiede l'accessibilità (WCAG 2.1 AA): scegliere un colore più scuro",
                    // Rounded down, so that 4.49 never reads as 4,5.
                    format!("{:.1}", (contrast * 10.0).floor() / 10.0).replace('.', ",")
                ),
            ));
        }
        let mut codes: Vec<String> = Vec::new();
        for l in languages {
            if !codes.iter().any(|c| c == l.code()) {
                codes.push(l.code().to_string());
            }
        }
        codes.sort();
        let at = Place::new("portal.style.set", fc, "");
        ctx.store().get_ente(fc).await.at(at)?;
        ctx.store()
            .put_portal_settings(
                fc,
                &incasso_store::PortalSettingsRecord {
                    brand_colour: colour.clone(),
                    languages: codes,
                },
                ctx.now(),
            )
            .await
            .at(at)?;
        ctx.app.portal_styles.forget(fc);
        get(ctx, fc).await
    })
    .await
}

#[cfg(test)]
mod set_tests {
    use super::*;

    #[test]
    fn colours_are_hex_and_keep_white_text_readable() {
        assert_eq!(rgb("#0066cc"), Some([0, 0x66, 0xcc]));
        assert_eq!(rgb("#0066CC"), Some([0, 0x66, 0xcc]));
        for bad in ["0066cc", "#06c", "#0066cg", "#0066cc0", "", "#ééé"] {
            assert_eq!(rgb(bad), None, "{bad}");
        }
        // Bootstrap Italia's blue reads at about 5.6:1, black at 21:1,
        // white on white at 1:1; #808080 fails (3.9:1).
        assert!((white_contrast([0, 0x66, 0xcc]) - 5.57).abs() < 0.01);
        assert!((white_contrast([0, 0, 0]) - 21.0).abs() < 0.01);
        assert!((white_contrast([255, 255, 255]) - 1.0).abs() < 0.01);
        assert!(white_contrast([0x80, 0x80, 0x80]) < MIN_CONTRAST);
        assert!(white_contrast([0x76, 0x76, 0x76]) >= MIN_CONTRAST);
    }
}
