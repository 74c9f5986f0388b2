//! Measuring and fitting text: long Ente names, debtors, addresses and
//! subjects wrap, then shrink, then (only at the smallest size allowed) are
//! cut with an ellipsis. They never run out of their box: a notice whose
//! text overflows into the codes is a notice that cannot be paid.

use skrifa::MetadataProvider;
use skrifa::instance::{LocationRef, Size};
use std::collections::HashMap;

/// Glyphs and advance widths of a font, per character, at size 1.
///
/// The notice is drawn from these, glyph by glyph, rather than shaped by
/// krilla's `draw_text`: that parses the font's tables again and runs a
/// full shaper for every string, most of a notice's cost (`incasso bench
/// notices`), for Latin text that needs neither. Drawing with the widths
/// that measured the text also makes right alignment and fitting exact.
pub struct Metrics {
    glyphs: HashMap<char, (u32, f32)>,
    fallback: f32,
}

impl Metrics {
    pub fn new(font: &[u8]) -> Option<Metrics> {
        let font = skrifa::FontRef::new(font).ok()?;
        let upem = f32::from(
            font.metrics(Size::unscaled(), LocationRef::default())
                .units_per_em,
        );
        let glyphs = font.glyph_metrics(Size::unscaled(), LocationRef::default());
        let charmap = font.charmap();
        let mut map = HashMap::new();
        for (code, gid) in charmap.mappings() {
            if let (Some(c), Some(w)) = (char::from_u32(code), glyphs.advance_width(gid)) {
                map.insert(c, (gid.to_u32(), w / upem));
            }
        }
        let fallback = map.get(&'n').map_or(0.5, |g| g.1);
        Some(Metrics {
            glyphs: map,
            fallback,
        })
    }

    /// The glyph of `c` and its advance at size 1; a character the font
    /// lacks is its missing-glyph box (glyph 0) as wide as an `n`.
    pub fn glyph(&self, c: char) -> (u32, f32) {
        self.glyphs.get(&c).copied().unwrap_or((0, self.fallback))
    }

    /// The width of `text` at `size` points.
    pub fn width(&self, text: &str, size: f32) -> f32 {
        text.chars().map(|c| self.glyph(c).1).sum::<f32>() * size
    }
}

/// Text laid out in a box: its size and its lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub size: f32,
    pub lines: Vec<String>,
}

/// Lays `text` out in at most `max_lines` lines of `width` points, from
/// `size` down to `min_size` in half points; at the smallest size, the last
/// line is cut with an ellipsis.
pub fn fit(
    metrics: &Metrics,
    text: &str,
    size: f32,
    min_size: f32,
    width: f32,
    max_lines: usize,
) -> Fitted {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut s = size;
    loop {
        let lines = wrap(metrics, &text, s, width);
        if lines.len() <= max_lines.max(1) {
            return Fitted { size: s, lines };
        }
        if s - 0.5 < min_size {
            let mut lines = lines;
            lines.truncate(max_lines.max(1));
            if let Some(last) = lines.last_mut() {
                *last = ellipsize(metrics, last, s, width);
            }
            return Fitted { size: s, lines };
        }
        s -= 0.5;
    }
}

/// Greedy word wrap; a word longer than the line is broken where it must.
pub fn wrap(metrics: &Metrics, text: &str, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let candidate = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        if metrics.width(&candidate, size) <= width {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        // The word alone: broken into pieces that fit.
        let mut piece = String::new();
        for c in word.chars() {
            piece.push(c);
            if metrics.width(&piece, size) > width && piece.chars().count() > 1 {
                piece.pop();
                lines.push(std::mem::take(&mut piece));
                piece.push(c);
            }
        }
        line = piece;
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

fn ellipsize(metrics: &Metrics, line: &str, size: f32, width: f32) -> String {
    let mut out: String = line.to_string();
    while !out.is_empty() && metrics.width(&format!("{out}…"), size) > width {
        out.pop();
    }
    format!("{}…", out.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Metrics {
        Metrics::new(crate::fonts::REGULAR).unwrap()
    }

    #[test]
    fn short_text_keeps_its_size_and_one_line() {
        let f = fit(&metrics(), "Comune di Roma", 12.0, 7.0, 300.0, 2);
        assert_eq!(f.size, 12.0);
        assert_eq!(f.lines, ["Comune di Roma"]);
    }

    #[test]
    fn long_text_wraps_then_shrinks_and_never_overflows() {
        let m = metrics();
        let long = "Azienda Unità Sanitaria Locale della Romagna per i servizi sanitari e socio sanitari integrati del territorio provinciale ".repeat(4);
        let f = fit(&m, &long, 12.0, 7.0, 200.0, 3);
        assert!(f.lines.len() <= 3);
        assert!(f.size >= 7.0 && f.size < 12.0);
        for line in &f.lines {
            assert!(m.width(line, f.size) <= 200.0, "{line}");
        }
        assert!(f.lines.last().unwrap().ends_with('…'));
    }

    #[test]
    fn a_word_longer_than_the_box_is_broken() {
        let m = metrics();
        let lines = wrap(&m, &"X".repeat(200), 10.0, 100.0);
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| m.width(l, 10.0) <= 100.0));
        assert_eq!(lines.concat(), "X".repeat(200));
    }
}
