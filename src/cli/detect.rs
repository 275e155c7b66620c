//! `aisales detect [TEXT]`: VIN/FRAME/gearbox-code detection, no database needed.

/// `aisales detect [TEXT]`: one JSON object per input (`TEXT`, or each line of stdin), with the
/// offline decoding of every VIN.
pub(super) fn detect(text: Option<&str>) -> std::io::Result<()> {
    use chrono::Datelike;
    use std::io::{BufRead, Write};
    let year = chrono::Utc::now().year().clamp(1980, 2100) as u16;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let one = |input: &str, out: &mut std::io::BufWriter<std::io::StdoutLock<'_>>| -> std::io::Result<()> {
        let detection = aisales_domain::detect::detect(input).with_vin_info(year);
        serde_json::to_writer(&mut *out, &detection)?;
        out.write_all(b"\n")
    };
    match text {
        Some(t) => one(t, &mut out)?,
        None => {
            for line in std::io::stdin().lock().lines() {
                let line = line?;
                one(line.strip_suffix('\r').unwrap_or(&line), &mut out)?;
            }
        }
    }
    out.flush()
}
