//! VINs in text: 17-character runs, I/O/Q repair, check digit and look-alike autocorrection,
//! and 16-character runs reported as incomplete VINs.

use super::keywords::VIN_CONTEXT;
use super::normalize::{FROM_CYRILLIC, IdWord, Scanned};
use super::{Candidate, CandidateKind, round_score};
use crate::vin::{check_digit_required, has_valid_check_digit, is_vin_byte};

/// Characters either side of a VIN searched for VIN words.
const CONTEXT_RADIUS: usize = 50;

/// Look-alike substitutions tried when a mandatory check digit fails: S↔5, B↔8, Z↔2, G↔6, D→0.
const LOOK_ALIKES: &[(u8, u8)] = &[
    (b'S', b'5'),
    (b'5', b'S'),
    (b'B', b'8'),
    (b'8', b'B'),
    (b'Z', b'2'),
    (b'2', b'Z'),
    (b'G', b'6'),
    (b'6', b'G'),
    (b'D', b'0'),
];

/// VIN candidates of one identifier word.
#[derive(Debug, Default)]
pub(crate) struct VinCandidates {
    /// Full VINs, in text order.
    pub(crate) full: Vec<Candidate>,
    /// 16-character runs that look like a VIN with one character missing.
    pub(crate) incomplete: Vec<Candidate>,
}

/// Looks for VINs in every part of `word`.
pub(crate) fn collect(scan: &Scanned, word: &IdWord, out: &mut VinCandidates) {
    for &(start, end) in word.parts() {
        match end - start {
            17 => {
                if let Some(c) = full_vin(scan, start, end, false) {
                    out.full.push(c);
                }
            }
            // "VINXW8ZZZ61ZEG012345": the word VIN glued to the number.
            20 if scan.cells[start..start + 3].iter().map(|c| c.byte).eq(*b"VIN") => {
                if let Some(c) = full_vin(scan, start + 3, end, true) {
                    out.full.push(c);
                }
            }
            16 => {
                if let Some(c) = incomplete_vin(scan, start, end) {
                    out.incomplete.push(c);
                }
            }
            18 => {
                if let Some(c) = vin_in_eighteen(scan, start, end) {
                    out.full.push(c);
                }
            }
            _ => {}
        }
    }
}

fn full_vin(scan: &Scanned, start: usize, end: usize, glued_prefix: bool) -> Option<Candidate> {
    let cells = &scan.cells[start..end];
    let mut vin = [0u8; 17];
    for (slot, cell) in vin.iter_mut().zip(cells) {
        *slot = cell.byte;
    }
    if !vin.iter().any(u8::is_ascii_digit) || !vin.iter().any(u8::is_ascii_uppercase) {
        return None;
    }
    // I, O and Q never occur in a VIN; they are typos for 1 and 0.
    let mut replaced = 0;
    for b in &mut vin {
        let fixed = match *b {
            b'I' => b'1',
            b'O' | b'Q' => b'0',
            other => other,
        };
        if fixed != *b {
            *b = fixed;
            replaced += 1;
        }
    }
    let serial_numeric = vin[13..].iter().all(u8::is_ascii_digit);
    if replaced > 0 && (replaced > 3 || !serial_numeric) {
        // A word, not a mistyped VIN.
        return None;
    }

    let mut reasons = Vec::with_capacity(4);
    if glued_prefix {
        reasons.push("glued_vin_prefix".to_owned());
    }
    if cells.iter().any(|c| c.flags & FROM_CYRILLIC != 0) {
        reasons.push("cyrillic_homoglyphs".to_owned());
    }
    if replaced > 0 {
        reasons.push("illegal_chars_replaced".to_owned());
    }

    let mut verified = true;
    let score = if has_valid_check_digit(&vin) {
        if replaced > 0 {
            reasons.push("checksum_valid_after_autocorrect".to_owned());
            0.85
        } else {
            reasons.push("checksum_valid".to_owned());
            0.90
        }
    } else if check_digit_required(vin[0]) {
        match autocorrect(&vin) {
            Correction::Unique { position, from, to } => {
                vin[position] = to;
                reasons.push("checksum_valid_after_autocorrect".to_owned());
                reasons.push(format!("autocorrect:pos{}:{}>{}", position + 1, char::from(from), char::from(to)));
                0.85
            }
            Correction::Ambiguous => {
                verified = false;
                reasons.push("checksum_invalid_ambiguous_autocorrect".to_owned());
                0.25
            }
            Correction::None => {
                verified = false;
                reasons.push("checksum_invalid_uncorrectable".to_owned());
                0.25
            }
        }
    } else {
        verified = false;
        reasons.push("no_checksum_applicable".to_owned());
        if replaced > 0 { 0.75 } else { 0.80 }
    };
    let mut score: f64 = score;
    if !verified && !serial_numeric {
        // ISO 3779: the last four characters of a VIN are digits.
        reasons.push("vis_not_numeric".to_owned());
        score = score.min(0.50);
    }
    let context = scan.context(start, end, CONTEXT_RADIUS, VIN_CONTEXT, 2);
    if !context.is_empty() {
        score = (score + 0.05 * context.len() as f64).min(0.95);
        reasons.push(format!("context:{}", context.join(",")));
    }
    let value = String::from_utf8_lossy(&vin).into_owned();
    Some(Candidate::new(CandidateKind::Vin, value, round_score(score), reasons))
}

enum Correction {
    Unique { position: usize, from: u8, to: u8 },
    Ambiguous,
    None,
}

/// Tries every single look-alike substitution; only a unique one that makes the check digit
/// valid counts. Substitutions that break the VIN's own rules (a letter in positions 14–17, a
/// letter other than X in position 9, an invalid year code) are not tried.
fn autocorrect(vin: &[u8; 17]) -> Correction {
    let mut found = Correction::None;
    for position in 0..17 {
        for &(from, to) in LOOK_ALIKES {
            if vin[position] != from || !allowed_at(position, to) {
                continue;
            }
            let mut candidate = *vin;
            candidate[position] = to;
            if has_valid_check_digit(&candidate) {
                found = match found {
                    Correction::None => Correction::Unique { position, from, to },
                    _ => return Correction::Ambiguous,
                };
            }
        }
    }
    found
}

/// [`autocorrect`] when it finds exactly one substitution.
pub(crate) fn autocorrect_unique(vin: &[u8; 17]) -> Option<(usize, u8, u8)> {
    match autocorrect(vin) {
        Correction::Unique { position, from, to } => Some((position, from, to)),
        _ => None,
    }
}

fn allowed_at(position: usize, b: u8) -> bool {
    match position {
        8 => b.is_ascii_digit() || b == b'X',
        9 => !matches!(b, b'0' | b'U' | b'Z'),
        13..=16 => b.is_ascii_digit(),
        _ => is_vin_byte(b),
    }
}

/// Score of a VIN found inside an 18-character run: below the lookup threshold, so it is only
/// used once the customer confirms it.
const EIGHTEEN_SCORE: f64 = 0.60;

/// An 18-character run is a VIN with one character too many when exactly one of its two
/// 17-character windows is a VIN with a valid check digit and a numeric serial: that VIN is a
/// candidate to confirm (`vin_in_18_char_run`, `extra_char:start|end:<c>`).
fn vin_in_eighteen(scan: &Scanned, start: usize, end: usize) -> Option<Candidate> {
    let bytes: Vec<u8> = scan.cells[start..end].iter().map(|c| c.byte).collect();
    let window = |from: usize| -> Option<[u8; 17]> {
        let mut vin = [0u8; 17];
        vin.copy_from_slice(&bytes[from..from + 17]);
        let shaped = vin.iter().all(|&b| is_vin_byte(b))
            && vin.iter().any(u8::is_ascii_uppercase)
            && vin[13..].iter().all(u8::is_ascii_digit);
        (shaped && has_valid_check_digit(&vin)).then_some(vin)
    };
    let (vin, extra) = match (window(0), window(1)) {
        (Some(vin), None) => (vin, format!("extra_char:end:{}", char::from(bytes[17]))),
        (None, Some(vin)) => (vin, format!("extra_char:start:{}", char::from(bytes[0]))),
        _ => return None,
    };
    let mut reasons =
        vec!["vin_in_18_char_run".to_owned(), extra, "checksum_valid".to_owned(), "needs_confirmation".to_owned()];
    let mut score = EIGHTEEN_SCORE;
    let context = scan.context(start, end, CONTEXT_RADIUS, VIN_CONTEXT, 2);
    if !context.is_empty() {
        score += 0.05 * context.len() as f64;
        reasons.push(format!("context:{}", context.join(",")));
    }
    let mut candidate =
        Candidate::new(CandidateKind::Vin, String::from_utf8_lossy(&vin).into_owned(), round_score(score), reasons);
    candidate.needs_confirmation = true;
    Some(candidate)
}

fn incomplete_vin(scan: &Scanned, start: usize, end: usize) -> Option<Candidate> {
    let bytes: Vec<u8> = scan.cells[start..end].iter().map(|c| c.byte).collect();
    let letters = bytes.iter().filter(|b| b.is_ascii_uppercase()).count();
    let digits = bytes.len() - letters;
    let plausible = bytes.iter().all(|&b| is_vin_byte(b))
        && letters >= 2
        && digits >= 4
        && bytes[..3].iter().any(u8::is_ascii_uppercase)
        && bytes[12..].iter().all(u8::is_ascii_digit);
    if !plausible {
        return None;
    }
    let mut reasons = vec!["incomplete_vin_16chars".to_owned()];
    let context = scan.context(start, end, CONTEXT_RADIUS, VIN_CONTEXT, 2);
    if !context.is_empty() {
        reasons.push(format!("context:{}", context.join(",")));
    }
    let mut candidate = Candidate::new(CandidateKind::Vin, String::from_utf8_lossy(&bytes).into_owned(), 0.15, reasons);
    candidate.incomplete = true;
    Some(candidate)
}
