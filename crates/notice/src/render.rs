//! Drawing the notice on A4 pages with krilla (origin top left, y down,
//! points).

use crate::codes::{datamatrix_payload, in_groups_of_four, qr_payload};
use crate::text::{Fitted, Metrics, fit};
use crate::{Language, Notice, NoticeError, Payments, Slip, fonts, italian_amount, italian_date};
use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect, Size};
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, FillRule, Stroke};
use krilla::surface::Surface;
use krilla::text::{Font, GlyphId, KrillaGlyph};
use std::sync::LazyLock;

pub(crate) const PAGE_W: f32 = 595.28;
pub(crate) const PAGE_H: f32 = 841.89;
pub(crate) const MARGIN: f32 = 28.35;
pub(crate) const CONTENT_W: f32 = PAGE_W - 2.0 * MARGIN;
/// 25 mm, as pagoPA prints its QR code.
const QR_SIZE: f32 = 70.87;
/// The Poste DataMatrix, about 22 mm.
const DM_SIZE: f32 = 62.0;
const SLIP_H: f32 = 132.0;
/// The top right corner of a form, its amount and due date, beside which
/// the text column is narrower.
const AMOUNT_W: f32 = 110.0;

/// pagoPA's blue, for titles and rules.
pub(crate) const BLUE: (u8, u8, u8) = (0, 102, 204);
pub(crate) const GREY: (u8, u8, u8) = (92, 111, 130);

/// Two weights, not three: each font embedded is a subset to build and
/// compress for every notice, the largest share of its cost
/// (`incasso bench notices`).
struct Fonts {
    regular: Font,
    bold: Font,
    m_regular: Metrics,
    m_bold: Metrics,
}

static FONTS: LazyLock<Fonts> = LazyLock::new(|| Fonts {
    regular: Font::new(fonts::REGULAR.into(), 0).expect("bundled font"),
    bold: Font::new(fonts::BOLD.into(), 0).expect("bundled font"),
    m_regular: Metrics::new(fonts::REGULAR).expect("bundled font"),
    m_bold: Metrics::new(fonts::BOLD).expect("bundled font"),
});

#[derive(Clone, Copy)]
pub(crate) enum Weight {
    Regular,
    Bold,
}

pub(crate) fn font(w: Weight) -> (&'static Font, &'static Metrics) {
    let f = &*FONTS;
    match w {
        Weight::Regular => (&f.regular, &f.m_regular),
        Weight::Bold => (&f.bold, &f.m_bold),
    }
}

fn fill(color: (u8, u8, u8)) -> Fill {
    Fill {
        paint: rgb::Color::new(color.0, color.1, color.2).into(),
        opacity: NormalizedF32::ONE,
        rule: FillRule::NonZero,
    }
}

/// A page being drawn, with the notice's language.
pub(crate) struct Pen<'s, 'p> {
    pub(crate) s: &'s mut Surface<'p>,
    pub(crate) lang: Language,
}

impl Pen<'_, '_> {
    /// A label in the notice's language(s).
    pub(crate) fn l(&self, it: &str, de: &str) -> String {
        match self.lang {
            Language::Italian => it.to_string(),
            Language::ItalianGerman => format!("{it} / {de}"),
        }
    }

    pub(crate) fn text(
        &mut self,
        x: f32,
        baseline: f32,
        w: Weight,
        size: f32,
        text: &str,
        color: (u8, u8, u8),
    ) {
        let (f, m) = font(w);
        let glyphs: Vec<KrillaGlyph> = text
            .char_indices()
            .map(|(at, c)| {
                let (id, advance) = m.glyph(c);
                KrillaGlyph {
                    glyph_id: GlyphId::new(id),
                    text_range: at..at + c.len_utf8(),
                    x_advance: advance,
                    x_offset: 0.0,
                    y_offset: 0.0,
                    y_advance: 0.0,
                    location: None,
                }
            })
            .collect();
        self.s.set_fill(Some(fill(color)));
        self.s.draw_glyphs(
            Point::from_xy(x, baseline),
            &glyphs,
            f.clone(),
            text,
            size,
            false,
        );
    }

    /// Right-aligned at `right`.
    pub(crate) fn text_right(
        &mut self,
        right: f32,
        baseline: f32,
        w: Weight,
        size: f32,
        text: &str,
    ) {
        let (_, m) = font(w);
        let x = right - m.width(text, size);
        self.text(x, baseline, w, size, text, (0, 0, 0));
    }

    /// Fits `text` in a box of `width` and `max_lines` from its top; returns
    /// the y under the last line.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn fitted(
        &mut self,
        x: f32,
        top: f32,
        width: f32,
        max_lines: usize,
        w: Weight,
        size: f32,
        min_size: f32,
        text: &str,
    ) -> f32 {
        let (_, m) = font(w);
        let Fitted { size, lines } = fit(m, text, size, min_size, width, max_lines);
        let leading = size * 1.2;
        let mut y = top;
        for line in &lines {
            y += leading;
            self.text(x, y - size * 0.25, w, size, line, (0, 0, 0));
        }
        y
    }

    pub(crate) fn rule(&mut self, x: f32, y: f32, width: f32, color: (u8, u8, u8), thickness: f32) {
        if let Some(rect) = Rect::from_xywh(x, y, width, thickness) {
            let mut pb = PathBuilder::new();
            pb.push_rect(rect);
            if let Some(path) = pb.finish() {
                self.s.set_fill(Some(fill(color)));
                self.s.draw_path(&path);
            }
        }
    }

    pub(crate) fn frame(&mut self, x: f32, y: f32, w: f32, h: f32) {
        if let Some(rect) = Rect::from_xywh(x, y, w, h) {
            let mut pb = PathBuilder::new();
            pb.push_rect(rect);
            if let Some(path) = pb.finish() {
                self.s.set_fill(None);
                self.s.set_stroke(Some(Stroke {
                    paint: rgb::Color::new(GREY.0, GREY.1, GREY.2).into(),
                    width: 0.6,
                    ..Stroke::default()
                }));
                self.s.draw_path(&path);
                self.s.set_stroke(None);
            }
        }
    }

    /// Dark modules as one path, each horizontal run of them one rectangle:
    /// a third of the drawing operators of one square per module, and the
    /// page's content stream (compressed for every notice) as much smaller.
    fn modules(
        &mut self,
        x: f32,
        y: f32,
        side: f32,
        width: usize,
        dark: impl Iterator<Item = (usize, usize)>,
    ) {
        let cell = side / width as f32;
        let mut rows: Vec<Vec<usize>> = vec![Vec::new(); width];
        for (cx, cy) in dark {
            if let Some(row) = rows.get_mut(cy) {
                row.push(cx);
            }
        }
        // Drawn in module units, scaled once: small integers make a content
        // stream a third the size, and less to compress for every notice.
        let mut pb = PathBuilder::new();
        for (cy, row) in rows.iter_mut().enumerate() {
            row.sort_unstable();
            let mut k = 0;
            while k < row.len() {
                let start = row[k];
                let mut end = start;
                while k + 1 < row.len() && row[k + 1] == end + 1 {
                    k += 1;
                    end = row[k];
                }
                k += 1;
                let run = (end - start + 1) as f32;
                if let Some(r) = Rect::from_xywh(start as f32, cy as f32, run, 1.0) {
                    pb.push_rect(r);
                }
            }
        }
        if let Some(path) = pb.finish() {
            self.s.push_transform(&krilla::geom::Transform::from_row(
                cell, 0.0, 0.0, cell, x, y,
            ));
            self.s.set_fill(Some(fill((0, 0, 0))));
            self.s.draw_path(&path);
            self.s.pop();
        }
    }

    fn qr(&mut self, x: f32, y: f32, payload: &str) -> Result<(), NoticeError> {
        // Version 4, error correction M: pagoPA's specification.
        let code = qrcode::QrCode::with_version(
            payload.as_bytes(),
            qrcode::Version::Normal(4),
            qrcode::EcLevel::M,
        )
        .map_err(|e| NoticeError::Code(format!("QR: {e:?}")))?;
        let w = code.width();
        let colors = code.to_colors();
        let dark = colors
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == qrcode::Color::Dark)
            .map(move |(i, _)| (i % w, i / w));
        self.modules(x, y, QR_SIZE, w, dark);
        Ok(())
    }

    fn datamatrix(&mut self, x: f32, y: f32, payload: &str) -> Result<(), NoticeError> {
        let code = datamatrix::DataMatrix::encode_gs1(
            payload.as_bytes(),
            datamatrix::SymbolList::default(),
        )
        .map_err(|e| NoticeError::Code(format!("DataMatrix: {e:?}")))?;
        let bitmap = code.bitmap();
        let w = bitmap.width();
        self.modules(x, y, DM_SIZE, w, bitmap.pixels());
        Ok(())
    }
}

/// How a notice's PDF is packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// Every stream compressed: the smallest file, for archives and ZIPs.
    Compact,
    /// The pages' drawing left uncompressed (fonts still are): about twice
    /// the bytes (some 35 KiB) for half the CPU. Deflating the pages is most
    /// of a notice's cost (`incasso bench notices`), and a citizen waiting
    /// for one notice gains more from the time than loses from the bytes.
    Quick,
}

/// Renders a notice to PDF, compact.
pub fn render(notice: &Notice) -> Result<Vec<u8>, NoticeError> {
    render_packed(notice, Packing::Compact)
}

/// Renders a notice to PDF, packed as asked.
pub fn render_packed(notice: &Notice, packing: Packing) -> Result<Vec<u8>, NoticeError> {
    let slips = notice.payments.slips();
    if slips.is_empty() {
        return Err(NoticeError::Empty);
    }
    let mut doc = Document::new_with(krilla::SerializeSettings {
        compress_content_streams: packing == Packing::Compact,
        ..Default::default()
    });
    let settings = || PageSettings::from_wh(PAGE_W, PAGE_H).expect("A4");
    let on_first_page;
    // The first page: who, how much, where; the forms of the single solution
    // (or of the alternatives, or none when there are only installments).
    {
        let mut page = doc.start_page_with(settings());
        let mut surface = page.surface();
        let mut pen = Pen {
            s: &mut surface,
            lang: notice.language,
        };
        let y = header(&mut pen, notice);
        let y = parties(&mut pen, notice, y + 10.0);
        let y = how_much_and_where(&mut pen, notice, y + 12.0);
        let mut y = y + 8.0;
        // Alternatives go on the first page as far as they fit.
        let room = ((PAGE_H - MARGIN - y - 14.0) / form_height(notice)).max(1.0) as usize;
        let first_forms: Vec<&Slip> = match &notice.payments {
            Payments::Single(s) => vec![s],
            Payments::Alternatives(v) => v.iter().take(room).collect(),
            Payments::Installments { single, .. } => single.iter().collect(),
        };
        on_first_page = first_forms.len();
        if !first_forms.is_empty() {
            let hint = pen.l(
                "Utilizza la porzione di avviso relativa al canale di pagamento che preferisci.",
                "Verwende den Abschnitt, der dem bevorzugten Zahlungskanal entspricht.",
            );
            pen.text(MARGIN, y + 8.0, Weight::Regular, 8.0, &hint, (0, 0, 0));
            y += 14.0;
        }
        for slip in first_forms {
            y = forms(&mut pen, notice, slip, None, y)?;
        }
        surface.finish();
    }
    // The pages of forms: the alternatives that did not fit, or the
    // installments.
    let (rest, label): (Vec<&Slip>, bool) = match &notice.payments {
        Payments::Single(_) => (Vec::new(), false),
        Payments::Alternatives(v) => (v.iter().skip(on_first_page).collect(), false),
        Payments::Installments { installments, .. } => (installments.iter().collect(), true),
    };
    let per_page = if notice.creditor.postal_account.is_some() {
        2
    } else {
        3
    };
    let total = rest.len();
    for (p, chunk) in rest.chunks(per_page).enumerate() {
        let mut page = doc.start_page_with(settings());
        let mut surface = page.surface();
        let mut pen = Pen {
            s: &mut surface,
            lang: notice.language,
        };
        let mut y = short_header(&mut pen, notice);
        for (k, slip) in chunk.iter().enumerate() {
            let n = p * per_page + k + 1;
            let tag = label.then(|| {
                pen.l(
                    &format!("RATA {n} di {total}"),
                    &format!("RATE {n} von {total}"),
                )
            });
            y = forms(&mut pen, notice, slip, tag.as_deref(), y + 6.0)?;
        }
        surface.finish();
    }
    doc.finish().map_err(|e| NoticeError::Pdf(format!("{e:?}")))
}

fn header(pen: &mut Pen, n: &Notice) -> f32 {
    let top = MARGIN;
    let mut x = MARGIN;
    if let Some(logo) = &n.creditor.logo
        && let Some(image) = logo_image(logo)
    {
        let size = image_fit(&image, 56.0, 56.0);
        pen.s
            .push_transform(&krilla::geom::Transform::from_translate(MARGIN, top));
        pen.s.draw_image(image, size);
        pen.s.pop();
        x += 66.0;
    }
    let left_w = CONTENT_W * 0.62 - (x - MARGIN);
    let y = pen.fitted(
        x,
        top - 2.0,
        left_w,
        2,
        Weight::Bold,
        13.0,
        8.0,
        &n.creditor.name,
    );
    let y = pen.fitted(
        x,
        y + 2.0,
        left_w,
        3,
        Weight::Regular,
        10.0,
        7.0,
        &n.subject,
    );
    let title = pen.l("AVVISO DI PAGAMENTO", "ZAHLUNGSMITTEILUNG");
    let (_, m) = font(Weight::Bold);
    let size = if m.width(&title, 15.0) > CONTENT_W * 0.36 {
        10.0
    } else {
        15.0
    };
    pen.text_right(PAGE_W - MARGIN, top + 14.0, Weight::Bold, size, &title);
    pen.text_right(PAGE_W - MARGIN, top + 28.0, Weight::Bold, 9.0, "pagoPA");
    let bottom = y.max(top + 60.0) + 6.0;
    pen.rule(MARGIN, bottom, CONTENT_W, BLUE, 1.2);
    bottom
}

fn short_header(pen: &mut Pen, n: &Notice) -> f32 {
    let top = MARGIN;
    let y = pen.fitted(
        MARGIN,
        top - 2.0,
        CONTENT_W * 0.62,
        1,
        Weight::Bold,
        11.0,
        7.0,
        &n.creditor.name,
    );
    pen.fitted(
        MARGIN,
        y,
        CONTENT_W * 0.62,
        1,
        Weight::Regular,
        9.0,
        7.0,
        &n.subject,
    );
    let title = pen.l("AVVISO DI PAGAMENTO", "ZAHLUNGSMITTEILUNG");
    pen.text_right(PAGE_W - MARGIN, top + 12.0, Weight::Bold, 10.0, &title);
    let bottom = top + 34.0;
    pen.rule(MARGIN, bottom, CONTENT_W, BLUE, 1.0);
    bottom
}

fn parties(pen: &mut Pen, n: &Notice, top: f32) -> f32 {
    let half = CONTENT_W / 2.0 - 8.0;
    let right_x = MARGIN + CONTENT_W / 2.0 + 8.0;
    let t1 = pen.l("ENTE CREDITORE", "ZAHLUNGSEMPFÄNGER");
    let t2 = pen.l("DESTINATARIO AVVISO", "EMPFÄNGER DER MITTEILUNG");
    pen.text(MARGIN, top + 9.0, Weight::Bold, 8.0, &t1, BLUE);
    pen.text(right_x, top + 9.0, Weight::Bold, 8.0, &t2, BLUE);
    let cf = pen.l("Cod. Fiscale", "Steuernummer");
    let y1 = pen.fitted(
        MARGIN,
        top + 12.0,
        half,
        2,
        Weight::Bold,
        11.0,
        7.5,
        &n.creditor.name,
    );
    let line = format!("{cf} {}", n.creditor.fiscal_code);
    let y1 = pen.fitted(MARGIN, y1, half, 1, Weight::Regular, 9.0, 7.0, &line);
    let y2 = pen.fitted(
        right_x,
        top + 12.0,
        half,
        2,
        Weight::Bold,
        11.0,
        7.5,
        &n.recipient.name,
    );
    let line = format!("{cf} {}", n.recipient.fiscal_code);
    let mut y2 = pen.fitted(right_x, y2, half, 1, Weight::Regular, 9.0, 7.0, &line);
    if let Some(address) = &n.recipient.address {
        y2 = pen.fitted(right_x, y2, half, 2, Weight::Regular, 9.0, 7.0, address);
    }
    y1.max(y2)
}

fn how_much_and_where(pen: &mut Pen, n: &Notice, top: f32) -> f32 {
    let half = CONTENT_W / 2.0 - 8.0;
    let right_x = MARGIN + CONTENT_W / 2.0 + 8.0;
    pen.rule(MARGIN, top - 6.0, CONTENT_W, GREY, 0.4);
    let t1 = pen.l("QUANTO E QUANDO PAGARE?", "WIE VIEL UND WANN ZAHLEN?");
    let t2 = pen.l("DOVE PAGARE?", "WO ZAHLEN?");
    pen.text(MARGIN, top + 9.0, Weight::Bold, 8.0, &t1, BLUE);
    pen.text(right_x, top + 9.0, Weight::Bold, 8.0, &t2, BLUE);
    let by = pen.l("entro il", "bis zum");
    let mut y = top + 14.0;
    let amount_line = |s: &Slip| format!("{} Euro", italian_amount(s.amount));
    match &n.payments {
        Payments::Single(s) => {
            pen.text(
                MARGIN,
                y + 20.0,
                Weight::Bold,
                20.0,
                &amount_line(s),
                (0, 0, 0),
            );
            let due = format!("{by} {}", italian_date(s.due_date));
            pen.text(MARGIN, y + 34.0, Weight::Regular, 10.0, &due, (0, 0, 0));
            y += 40.0;
        }
        Payments::Alternatives(v) => {
            for s in v.iter().take(3) {
                let line = format!("{}  {by} {}", amount_line(s), italian_date(s.due_date));
                pen.text(MARGIN, y + 14.0, Weight::Bold, 13.0, &line, (0, 0, 0));
                y += 18.0;
            }
            let note = pen.l(
                "Paga uno solo degli importi, secondo la data in cui paghi.",
                "Zahle nur einen der Beträge, je nach Zahlungsdatum.",
            );
            y = pen.fitted(MARGIN, y, half, 2, Weight::Regular, 8.0, 6.5, &note);
        }
        Payments::Installments {
            single,
            installments,
        } => {
            let k = installments.len();
            let intro = match single {
                Some(_) => pen.l(
                    &format!("Puoi pagare in un'unica soluzione o in {k} rate"),
                    &format!("Einmalzahlung oder {k} Raten"),
                ),
                None => pen.l(
                    &format!("Pagamento in {k} rate"),
                    &format!("Zahlung in {k} Raten"),
                ),
            };
            y = pen.fitted(MARGIN, y, half, 2, Weight::Bold, 10.0, 7.0, &intro);
            if let Some(s) = single {
                pen.text(
                    MARGIN,
                    y + 18.0,
                    Weight::Bold,
                    18.0,
                    &amount_line(s),
                    (0, 0, 0),
                );
                let due = format!("{by} {}", italian_date(s.due_date));
                pen.text(MARGIN, y + 31.0, Weight::Regular, 10.0, &due, (0, 0, 0));
                y += 36.0;
            }
            if let (Some(first), Some(last)) = (installments.first(), installments.last()) {
                let total: i64 = installments.iter().map(|s| s.amount.0).sum();
                let line = pen.l(
                    &format!(
                        "{k} rate per {} Euro, dal {} al {}",
                        italian_amount(incasso_core::Cents(total)),
                        italian_date(first.due_date),
                        italian_date(last.due_date)
                    ),
                    &format!("{k} Raten"),
                );
                y = pen.fitted(MARGIN, y, half, 2, Weight::Regular, 9.0, 7.0, &line);
            }
        }
    }
    let note = pen.l(
        "L'importo è aggiornato automaticamente dal sistema e potrebbe subire variazioni per eventuali sgravi, note di credito, indennità di mora, sanzioni o interessi, ecc. Un operatore, il sito o l'app che userai ti potrebbero quindi chiedere una cifra diversa da quella qui indicata.",
        "Der Betrag wird automatisch aktualisiert und kann sich durch Entlastungen, Gutschriften, Verzugszinsen oder Strafen ändern.",
    );
    let left_bottom = pen.fitted(MARGIN, y + 4.0, half, 5, Weight::Regular, 7.5, 6.0, &note);
    let where_online = pen.l(
        "PAGA SUL SITO O CON LE APP della tua Banca o degli altri canali di pagamento: potrai pagare con carte, conto corrente, CBILL.",
        "ZAHLE ÜBER DIE WEBSITE ODER DIE APP deiner Bank oder anderer Zahlungskanäle: mit Karte, Bankkonto oder CBILL.",
    );
    let where_local = pen.l(
        "PAGA SUL TERRITORIO in Banca, negli Uffici Postali, in Ricevitoria, dal Tabaccaio, al Bancomat, al Supermercato: potrai pagare in contanti, con carte o conto corrente.",
        "ZAHLE VOR ORT in Banken, Postämtern, Annahmestellen, Tabakläden, am Bankomat, im Supermarkt: bar, mit Karte oder Bankkonto.",
    );
    let y = pen.fitted(
        right_x,
        top + 12.0,
        half,
        4,
        Weight::Regular,
        8.5,
        6.5,
        &where_online,
    );
    let right_bottom = pen.fitted(
        right_x,
        y + 4.0,
        half,
        4,
        Weight::Regular,
        8.5,
        6.5,
        &where_local,
    );
    left_bottom.max(right_bottom) + 4.0
}

/// The forms of one slip: banks and other channels, then Poste's when the
/// Ente has a postal account. Returns the y under them.
fn forms(
    pen: &mut Pen,
    n: &Notice,
    slip: &Slip,
    tag: Option<&str>,
    top: f32,
) -> Result<f32, NoticeError> {
    let mut y = top;
    let by = pen.l("entro il", "bis zum");
    if let Some(tag) = tag {
        let line = format!("{tag}  ·  {by} {}", italian_date(slip.due_date));
        pen.text(MARGIN, y + 10.0, Weight::Bold, 10.0, &line, BLUE);
        y += 14.0;
    }
    y = bank_form(pen, n, slip, y)?;
    if let Some(account) = &n.creditor.postal_account {
        y = postal_form(pen, n, slip, account, y + 6.0)?;
    }
    Ok(y + 6.0)
}

/// The height of one slip's forms.
fn form_height(n: &Notice) -> f32 {
    let one = SLIP_H + 6.0;
    if n.creditor.postal_account.is_some() {
        2.0 * one + 6.0
    } else {
        one
    }
}

/// The codes row at the bottom of a form: (label, value) in equal columns.
fn codes_row(pen: &mut Pen, x: f32, y: f32, width: f32, cells: &[(String, String)]) {
    let w = width / cells.len() as f32;
    for (i, (label, value)) in cells.iter().enumerate() {
        let cx = x + i as f32 * w;
        pen.fitted(cx, y, w - 6.0, 1, Weight::Regular, 7.0, 5.5, label);
        pen.fitted(cx, y + 9.0, w - 6.0, 1, Weight::Bold, 10.0, 7.0, value);
    }
}

/// A form's frame, title, amount and due date; returns its text column:
/// left edge, width, and the width beside the amount's corner.
fn form_frame(pen: &mut Pen, title: &str, slip: &Slip, top: f32) -> (f32, f32, f32) {
    pen.frame(MARGIN, top, CONTENT_W, SLIP_H);
    pen.text(MARGIN + 8.0, top + 14.0, Weight::Bold, 10.0, title, BLUE);
    let amount = format!("Euro {}", italian_amount(slip.amount));
    pen.text_right(
        PAGE_W - MARGIN - 8.0,
        top + 16.0,
        Weight::Bold,
        13.0,
        &amount,
    );
    let due = format!(
        "{} {}",
        pen.l("entro il", "bis zum"),
        italian_date(slip.due_date)
    );
    pen.text_right(
        PAGE_W - MARGIN - 8.0,
        top + 28.0,
        Weight::Regular,
        8.5,
        &due,
    );
    let x = MARGIN + 8.0 + QR_SIZE + 14.0;
    let w = PAGE_W - MARGIN - 8.0 - x;
    (x, w, w - AMOUNT_W)
}

fn bank_form(pen: &mut Pen, n: &Notice, slip: &Slip, top: f32) -> Result<f32, NoticeError> {
    let title = pen.l("BANCHE E ALTRI CANALI", "BANKEN UND ANDERE KANÄLE");
    let (x, w, text_w) = form_frame(pen, &title, slip, top);
    pen.qr(
        MARGIN + 8.0,
        top + 24.0,
        &qr_payload(&slip.notice_number, &n.creditor.fiscal_code, slip.amount),
    )?;
    let recipient = format!(
        "{}: {}",
        pen.l("Destinatario", "Empfänger"),
        n.recipient.name
    );
    let creditor = format!(
        "{}: {}",
        pen.l("Ente Creditore", "Zahlungsempfänger"),
        n.creditor.name
    );
    let subject = format!(
        "{}: {}",
        pen.l("Oggetto del pagamento", "Zahlungsgrund"),
        n.subject
    );
    let y = pen.fitted(
        x,
        top + 20.0,
        text_w,
        1,
        Weight::Regular,
        9.0,
        6.5,
        &recipient,
    );
    let y = pen.fitted(x, y, text_w, 1, Weight::Regular, 9.0, 6.5, &creditor);
    pen.fitted(x, y, text_w, 2, Weight::Regular, 9.0, 6.5, &subject);
    let cbill = n
        .creditor
        .cbill_code
        .clone()
        .unwrap_or_else(|| "-".to_string());
    codes_row(
        pen,
        x,
        top + SLIP_H - 30.0,
        w,
        &[
            (pen.l("Codice CBILL", "CBILL-Kodex"), cbill),
            (
                pen.l("Codice Avviso", "Kodex der Mitteilung"),
                in_groups_of_four(&slip.notice_number),
            ),
            (
                pen.l("Cod. Fiscale Ente Creditore", "Steuernr. Zahlungsempfänger"),
                n.creditor.fiscal_code.clone(),
            ),
        ],
    );
    Ok(top + SLIP_H)
}

fn postal_form(
    pen: &mut Pen,
    n: &Notice,
    slip: &Slip,
    account: &str,
    top: f32,
) -> Result<f32, NoticeError> {
    let title = pen.l("BOLLETTINO POSTALE PA", "POSTZAHLSCHEIN PA");
    let (x, w, text_w) = form_frame(pen, &title, slip, top);
    pen.datamatrix(
        MARGIN + 8.0 + (QR_SIZE - DM_SIZE) / 2.0,
        top + 26.0,
        &datamatrix_payload(
            &slip.notice_number,
            account,
            slip.amount,
            &n.creditor.fiscal_code,
            &n.recipient.fiscal_code,
            &n.recipient.name,
            &n.subject,
        ),
    )?;
    let on_account = format!("{} {account}", pen.l("sul C/C n.", "auf das K/K Nr."));
    pen.text(x, top + 32.0, Weight::Bold, 10.0, &on_account, (0, 0, 0));
    let holder = format!(
        "{} {}",
        pen.l("Intestato a", "Lautend auf"),
        n.creditor.name
    );
    let recipient = format!(
        "{}: {}",
        pen.l("Destinatario", "Empfänger"),
        n.recipient.name
    );
    let subject = format!("{}: {}", pen.l("Oggetto", "Zahlungsgrund"), n.subject);
    let y = pen.fitted(x, top + 34.0, text_w, 1, Weight::Regular, 9.0, 6.5, &holder);
    let y = pen.fitted(x, y, text_w, 1, Weight::Regular, 9.0, 6.5, &recipient);
    pen.fitted(x, y, text_w, 2, Weight::Regular, 9.0, 6.5, &subject);
    codes_row(
        pen,
        x,
        top + SLIP_H - 30.0,
        w,
        &[
            (
                pen.l("Codice Avviso", "Kodex der Mitteilung"),
                in_groups_of_four(&slip.notice_number),
            ),
            (pen.l("Tipo", "Typ"), "P1".to_string()),
            (
                pen.l("Cod. Fiscale Ente Creditore", "Steuernr. Zahlungsempfänger"),
                n.creditor.fiscal_code.clone(),
            ),
        ],
    );
    Ok(top + SLIP_H)
}

pub(crate) fn logo_image(bytes: &[u8]) -> Option<krilla::image::Image> {
    let data: krilla::Data = bytes.to_vec().into();
    krilla::image::Image::from_png(data.clone(), true)
        .or_else(|_| krilla::image::Image::from_jpeg(data, true))
        .ok()
}

/// The image's size scaled to fit a box, keeping its proportions.
pub(crate) fn image_fit(image: &krilla::image::Image, w: f32, h: f32) -> Size {
    let (iw, ih) = image.size();
    let (iw, ih) = (iw.max(1) as f32, ih.max(1) as f32);
    let scale = (w / iw).min(h / ih);
    Size::from_wh(iw * scale, ih * scale).unwrap_or_else(|| Size::from_wh(w, h).expect("box"))
}
