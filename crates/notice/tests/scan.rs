//! Notices read as a scanner reads them: each variant is rendered, rasterized
//! with `pdftoppm`, its QR codes decoded with `zbarimg` and its DataMatrix
//! codes with `dmtxread`, its text extracted with `pdftotext`; and each page
//! is compared with a reference image in `docs/notices/`, so that a layout
//! regression fails.
//!
//! The tools come from Debian's `poppler-utils`, `zbar-tools` and
//! `dmtx-utils` (installed by `scripts/test.sh`).

use incasso_notice::sample::variants;
use incasso_notice::{
    Notice, Packing, Payments, datamatrix_payload, qr_payload, render, render_packed,
};
use std::path::{Path, PathBuf};
use std::process::Command;

fn tool(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found && std::env::var_os("INCASSO_REQUIRE_TOOLS").is_some() {
        panic!("{name} is required (scripts/test.sh installs it)");
    }
    found
}

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("incasso-notice-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Pages as PNG files at `dpi`.
fn rasterize(pdf: &Path, dpi: u32, gray: bool) -> Vec<PathBuf> {
    let prefix = pdf.with_extension("");
    let mut cmd = Command::new("pdftoppm");
    cmd.args(["-r", &dpi.to_string(), "-png"]);
    if gray {
        cmd.arg("-gray");
    }
    let status = cmd.arg(pdf).arg(&prefix).status().unwrap();
    assert!(status.success());
    let dir = pdf.parent().unwrap();
    let stem = prefix.file_name().unwrap().to_string_lossy().into_owned();
    let mut pages: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "png")
                && p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&format!("{stem}-"))
        })
        .collect();
    pages.sort();
    pages
}

fn qr_codes(png: &Path) -> Vec<String> {
    let out = Command::new("zbarimg")
        .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
        .arg(png)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn datamatrix_codes(png: &Path) -> Vec<String> {
    let out = Command::new("dmtxread")
        // Square symbols of the printed size (0.7 to 1.1 inch edges at 150
        // dpi), at most 3 to a page: scanning a whole page for more takes
        // dmtxread many seconds, so the time limit ends that search.
        .args([
            "--newline",
            "--minimum-edge=100",
            "--maximum-edge=160",
            "--symbol-size=s",
            "--stop-after=3",
            "--milliseconds=4000",
        ])
        .arg(png)
        .output()
        .unwrap();
    // dmtxread prints one symbol a line; GS1's FNC1 comes out as a GS
    // character in front, which is not part of Poste's payload.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_start_matches('\u{1d}').to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn text_of(pdf: &Path) -> String {
    let out = Command::new("pdftotext")
        .args(["-layout"])
        .arg(pdf)
        .arg("-")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn expected_qr(n: &Notice) -> Vec<String> {
    let mut v: Vec<String> = n
        .payments
        .slips()
        .iter()
        .map(|s| qr_payload(&s.notice_number, &n.creditor.fiscal_code, s.amount))
        .collect();
    v.sort();
    v
}

fn expected_dm(n: &Notice) -> Vec<String> {
    let Some(account) = &n.creditor.postal_account else {
        return Vec::new();
    };
    let mut v: Vec<String> = n
        .payments
        .slips()
        .iter()
        .map(|s| {
            datamatrix_payload(
                &s.notice_number,
                account,
                s.amount,
                &n.creditor.fiscal_code,
                &n.recipient.fiscal_code,
                &n.recipient.name,
                &n.subject,
            )
        })
        .collect();
    v.sort();
    v
}

/// Every variant's codes scan to the position's payloads: one QR code per
/// notice number, and a DataMatrix for each when the Ente has a postal
/// account (none otherwise).
#[test]
fn every_variant_scans_to_its_payloads() {
    if !(tool("pdftoppm") && tool("zbarimg") && tool("dmtxread")) {
        eprintln!("skipped: pdftoppm, zbarimg or dmtxread missing");
        return;
    }
    for (name, notice) in variants() {
        let dir = workdir(name);
        let pdf = dir.join(format!("{name}.pdf"));
        std::fs::write(&pdf, render(&notice).unwrap()).unwrap();
        // 150 dpi: what an office scanner does, and dmtxread reads it in a
        // fraction of the time it takes at 200.
        let pages = rasterize(&pdf, 150, false);
        let mut qr: Vec<String> = pages.iter().flat_map(|p| qr_codes(p)).collect();
        qr.sort();
        assert_eq!(qr, expected_qr(&notice), "{name}: QR codes");
        let mut dm: Vec<String> = pages.iter().flat_map(|p| datamatrix_codes(p)).collect();
        dm.sort();
        assert_eq!(dm, expected_dm(&notice), "{name}: DataMatrix codes");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The texts a person reads: amounts the Italian way, dates dd/mm/yyyy,
/// the notice number in groups of four, both languages where asked.
#[test]
fn texts_read_as_printed() {
    if !tool("pdftotext") {
        return;
    }
    let all = variants();
    let get = |n: &str| all.iter().find(|(k, _)| *k == n).unwrap().1.clone();
    let dir = workdir("text");
    let read = |name: &str| {
        let pdf = dir.join(format!("{name}.pdf"));
        std::fs::write(&pdf, render(&get(name)).unwrap()).unwrap();
        text_of(&pdf)
    };
    let single = read("single");
    for expected in [
        "AVVISO DI PAGAMENTO",
        "Comune di Borgo Esempio",
        "Mario Rossi",
        "RSSMRA85T10A562S",
        "1.234,56 Euro",
        "entro il 31/12/2027",
        "BANCHE E ALTRI CANALI",
        "A0B1C",
        "80000130585",
    ] {
        assert!(single.contains(expected), "single: {expected} in\n{single}");
    }
    let nav = match &get("single").payments {
        Payments::Single(s) => s.notice_number.clone(),
        _ => unreachable!(),
    };
    assert!(single.contains(&incasso_notice::in_groups_of_four(&nav)));
    // No postal account, no Poste form at all.
    assert!(!single.contains("BOLLETTINO POSTALE"), "{single}");
    let poste = read("single-poste");
    assert!(poste.contains("BOLLETTINO POSTALE PA") && poste.contains("001234567890"));
    let rate = read("installments");
    assert!(
        rate.contains("RATA 1 di 4") && rate.contains("RATA 4 di 4"),
        "{rate}"
    );
    let fine = read("traffic-fine");
    assert!(
        fine.contains("58,80 Euro") && fine.contains("84,00 Euro"),
        "{fine}"
    );
    let de = read("bilingual");
    assert!(
        de.contains("ZAHLUNGSMITTEILUNG") && de.contains("Anna Müller"),
        "{de}"
    );
    let long = read("long-names");
    assert!(long.contains("1.234.567,89"), "{long}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Installments lay out as pagoPA's templates do: two to a page with the
/// Poste form, three without.
#[test]
fn installments_two_or_three_to_a_page() {
    if !tool("pdftoppm") {
        return;
    }
    let (_, mut notice) = variants()
        .into_iter()
        .find(|(k, _)| *k == "installments")
        .unwrap();
    let dir = workdir("pages");
    let pages = |n: &Notice, tag: &str| {
        let pdf = dir.join(format!("{tag}.pdf"));
        std::fs::write(&pdf, render(n).unwrap()).unwrap();
        rasterize(&pdf, 20, true).len()
    };
    // 4 installments with Poste: page 1, then 2 + 2.
    assert_eq!(pages(&notice, "poste"), 3);
    notice.creditor.postal_account = None;
    // Without: page 1, then 3 + 1.
    assert_eq!(pages(&notice, "bank"), 3);
    if let Payments::Installments { installments, .. } = &mut notice.payments {
        installments.truncate(3);
    }
    assert_eq!(pages(&notice, "three"), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each variant's pages look like the reference images kept in
/// `docs/notices/` (grey, 72 dpi), within a small tolerance. Set
/// `INCASSO_UPDATE_REFERENCES=1` to write them anew after a deliberate
/// change of the layout.
#[test]
fn pages_match_their_reference_images() {
    if !tool("pdftoppm") {
        return;
    }
    let refs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/notices");
    let update = std::env::var_os("INCASSO_UPDATE_REFERENCES").is_some();
    for (name, notice) in variants() {
        let dir = workdir(&format!("ref-{name}"));
        let pdf = dir.join(format!("{name}.pdf"));
        std::fs::write(&pdf, render(&notice).unwrap()).unwrap();
        for (k, page) in rasterize(&pdf, 72, true).iter().enumerate() {
            let reference = refs.join(format!("{name}-{}.png", k + 1));
            if update {
                std::fs::create_dir_all(&refs).unwrap();
                std::fs::copy(page, &reference).unwrap();
                continue;
            }
            let (w1, h1, a) = gray(page);
            let (w2, h2, b) = gray(&reference);
            assert_eq!((w1, h1), (w2, h2), "{name} page {}", k + 1);
            // The share of pixels that differ noticeably.
            let differing = a
                .iter()
                .zip(&b)
                .filter(|(x, y)| x.abs_diff(**y) > 48)
                .count();
            let share = differing as f64 / a.len() as f64;
            assert!(
                share < 0.002,
                "{name} page {}: {:.3}% of the page differs from {}",
                k + 1,
                share * 100.0,
                reference.display()
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A notice packed for a quick download is the same notice: every page
/// rasterizes to the same pixels and reads to the same text as the compact
/// one, only its file is bigger (its pages' drawing left uncompressed).
#[test]
fn quick_packing_changes_the_bytes_not_the_notice() {
    if !tool("pdftoppm") || !tool("pdftotext") {
        return;
    }
    for (name, notice) in variants() {
        let dir = workdir(&format!("packing-{name}"));
        let compact = dir.join("compact.pdf");
        let quick = dir.join("quick.pdf");
        let compact_bytes = render(&notice).unwrap();
        let quick_bytes = render_packed(&notice, Packing::Quick).unwrap();
        assert!(
            quick_bytes.len() > compact_bytes.len(),
            "{name}: quick {} bytes, compact {}",
            quick_bytes.len(),
            compact_bytes.len()
        );
        std::fs::write(&compact, &compact_bytes).unwrap();
        std::fs::write(&quick, &quick_bytes).unwrap();
        assert_eq!(text_of(&quick), text_of(&compact), "{name}");
        let a = rasterize(&compact, 72, true);
        let b = rasterize(&quick, 72, true);
        assert_eq!(a.len(), b.len(), "{name}: pages");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(
                gray(x),
                gray(y),
                "{name}: {} and {}",
                x.display(),
                y.display()
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A PNG's width, height and grey levels.
fn gray(path: &Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    let pixels = match info.color_type {
        png::ColorType::Grayscale => buf,
        png::ColorType::Rgb => buf
            .chunks(3)
            .map(|p| ((p[0] as u32 + p[1] as u32 + p[2] as u32) / 3) as u8)
            .collect(),
        other => panic!("{other:?}"),
    };
    (info.width, info.height, pixels)
}
