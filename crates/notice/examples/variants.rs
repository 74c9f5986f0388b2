//! Writes each sample variant as PDF into the folder given (default: the
//! current one): `cargo run -p incasso-notice --example variants -- DIR`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    for (name, notice) in incasso_notice::sample::variants() {
        let path = std::path::Path::new(&dir).join(format!("{name}.pdf"));
        std::fs::write(&path, incasso_notice::render(&notice)?)?;
        println!("{}", path.display());
    }
    Ok(())
}
