//! FRAME numbers: Japanese chassis numbers, a model code, a dash and a serial
//! (`GX110-6012345`, `NZE141-1234567`, `GDB-012345`). Written without the dash they are taken when
//! a FRAME word (кузов, рама, frame, шасси) is nearby, or when the number is the whole message and
//! its digits are a model number and a serial (`EU11105303`, `SCP110067053`).

use super::keywords::FRAME_CONTEXT;
use super::normalize::{FROM_CYRILLIC, IdWord, Scanned};
use super::{Candidate, CandidateKind, round_score};

/// Characters either side of a FRAME searched for FRAME words.
const CONTEXT_RADIUS: usize = 50;
/// Digits of a dashless FRAME that is the whole message: a model number of at least two digits
/// and a serial of at least six.
const MIN_DASHLESS_DIGITS_ALONE: usize = 8;

/// Whitespace and punctuation around a number sent alone ("EU11105303.", "(SCP110067053)").
fn is_filler(byte: u8) -> bool {
    matches!(byte, b' ' | b'.' | b',' | b'!' | b'?' | b':' | b';' | b'"' | b'\'' | b'(' | b')' | b'#')
}

/// Looks for a FRAME in `word`.
pub(crate) fn collect(scan: &Scanned, word: &IdWord, out: &mut Vec<Candidate>) {
    let candidate = match word.parts() {
        [model, serial] if word.count == 2 => with_dash(scan, *model, *serial),
        [run] => dashless(scan, *run),
        _ => None,
    };
    out.extend(candidate);
}

fn bytes(scan: &Scanned, (start, end): (usize, usize)) -> &[super::normalize::Cell] {
    &scan.cells[start..end]
}

fn with_dash(scan: &Scanned, model: (usize, usize), serial: (usize, usize)) -> Option<Candidate> {
    let model_cells = bytes(scan, model);
    let serial_cells = bytes(scan, serial);
    let model_len = model_cells.len();
    let serial_len = serial_cells.len();
    let shaped = (3..=6).contains(&model_len)
        && model_cells[0].byte.is_ascii_uppercase()
        && (4..=8).contains(&serial_len)
        && serial_cells.iter().all(|c| c.byte.is_ascii_digit())
        && !model_cells.iter().any(|c| c.is_lowercase_cyrillic());
    if !shaped {
        return None;
    }
    let model_has_digit = model_cells.iter().any(|c| c.byte.is_ascii_digit());
    if !model_has_digit && model_cells.iter().all(|c| c.flags & FROM_CYRILLIC != 0) {
        // A Russian abbreviation in capitals (СТС-…, ТОК-…), not a model code.
        return None;
    }
    let mut reasons = vec!["frame_with_dash".to_owned()];
    let mut score: f64 = 0.85;
    if !(6..=7).contains(&serial_len) {
        // Toyota, Nissan, Honda and Subaru serials have six or seven digits.
        reasons.push("frame_serial_unusual_length".to_owned());
        score = 0.70;
    } else if !model_has_digit {
        // Letter-only model codes exist (Subaru GDB, GGA) but so do many other "ABC-123456" numbers:
        // a FRAME word is needed to reach the lookup threshold.
        reasons.push("frame_model_without_digits".to_owned());
        score = 0.75;
    }
    let value: String = model_cells
        .iter()
        .map(|c| char::from(c.byte))
        .chain(std::iter::once('-'))
        .chain(serial_cells.iter().map(|c| char::from(c.byte)))
        .collect();
    Some(finish(scan, model.0, serial.1, value, score, reasons))
}

fn dashless(scan: &Scanned, run: (usize, usize)) -> Option<Candidate> {
    let cells = bytes(scan, run);
    let letters = cells.iter().take_while(|c| c.byte.is_ascii_uppercase()).count();
    let digits = cells.len() - letters;
    let shaped = (2..=5).contains(&letters)
        && (6..=10).contains(&digits)
        && (8..=14).contains(&cells.len())
        && cells[letters..].iter().all(|c| c.byte.is_ascii_digit())
        && !cells.iter().any(|c| c.is_lowercase_cyrillic());
    if !shaped {
        return None;
    }
    let value: String = cells.iter().map(|c| char::from(c.byte)).collect();
    if scan.has_context(run.0, run.1, CONTEXT_RADIUS, FRAME_CONTEXT) {
        return Some(finish(scan, run.0, run.1, value, 0.75, vec!["frame_dashless".to_owned()]));
    }
    // Without a FRAME word nearby, "AB1234567" is as likely an order or document number. A
    // message that is nothing but the number is a FRAME when its digits hold a model number of
    // two or three digits and a six- or seven-digit serial (EU11 105303, SCP11 0067053).
    let whole_message = scan.cells[..run.0].iter().chain(&scan.cells[run.1..]).all(|c| is_filler(c.byte));
    if whole_message && (MIN_DASHLESS_DIGITS_ALONE..=10).contains(&digits) {
        let reasons = vec!["frame_dashless".to_owned(), "frame_whole_message".to_owned()];
        return Some(Candidate::new(CandidateKind::Frame, value, 0.80, reasons));
    }
    None
}

fn finish(scan: &Scanned, start: usize, end: usize, value: String, score: f64, mut reasons: Vec<String>) -> Candidate {
    let context = scan.context(start, end, CONTEXT_RADIUS, FRAME_CONTEXT, 2);
    let mut score = score;
    if !context.is_empty() {
        score = (score + 0.05 * context.len() as f64).min(0.95);
        reasons.push(format!("context:{}", context.join(",")));
    }
    Candidate::new(CandidateKind::Frame, value, round_score(score), reasons)
}
