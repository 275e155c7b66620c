//! Customers' files: what storing one found, and what a photo of a VIN plate, a registration
//! document (СТС/ПТС) or a gearbox tag was read as.
//!
//! [`read_photo`] is pure: the vision model's answer in, detection candidates out. It holds the
//! rules the old system applied to photos (a quality gate on gearbox codes, the OCR score caps)
//! and one it got wrong: a VIN whose check digit fails is corrected only through the look-alike
//! pairs (S↔5, B↔8, Z↔2, G↔6, D→0, …) when exactly one substitution fixes it, otherwise flagged and
//! never looked up.

use serde::{Deserialize, Serialize};

use crate::detect::{self, Candidate, CandidateKind};

/// A stored file: content-addressed by its SHA-256 within the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMedia {
    /// Hex SHA-256 of the content: the file's name in the tenant's store.
    pub sha256: String,
    pub size: u64,
    /// The type the content was recognised as (not what the provider claimed).
    pub mime_type: String,
    /// The SHA-256 of the thumbnail of an image, when one was made.
    pub thumbnail_sha256: Option<String>,
}

/// Why an attachment was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaRefusal {
    /// Larger than the configured limit (nothing of it is kept).
    TooLarge,
    /// A type that is not accepted (neither an image, nor a PDF, nor audio/video).
    RefusedType,
    /// The provider would not give the file (gone, refused, or failing past the retries).
    DownloadFailed,
}

impl MediaRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::RefusedType => "refused_type",
            Self::DownloadFailed => "download_failed",
        }
    }
}

/// What a photo shows, as the vision model classified it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhotoKind {
    /// The tag or plate on a gearbox with its model code.
    GearboxTag,
    /// A vehicle registration certificate or passport (СТС/ПТС).
    RegistrationDocument,
    /// The VIN plate or the VIN stamped on the body.
    VinPlate,
    Other,
}

impl PhotoKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GearboxTag => "gearbox_tag",
            Self::RegistrationDocument => "registration_document",
            Self::VinPlate => "vin_plate",
            Self::Other => "other",
        }
    }

    /// Reads the model's type name (the old system's names too).
    pub fn parse(s: &str) -> PhotoKind {
        match s.trim().to_ascii_lowercase().as_str() {
            "gearbox_tag" | "gearbox" | "transmission_tag" => Self::GearboxTag,
            "registration_document" | "registration_doc" | "sts" | "pts" => Self::RegistrationDocument,
            "vin_plate" | "vin" => Self::VinPlate,
            _ => Self::Other,
        }
    }
}

/// Why a photo was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotReadReason {
    /// No AI key is configured: photos are stored, not read.
    NoAiKey,
    /// The tenant switched photo reading off.
    SwitchedOff,
    /// The model answered something that is not the JSON asked for.
    InvalidAnswer,
    /// The model could not be reached (after the retries).
    VisionFailed,
}

/// The vision model's answer, as parsed from its JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VisionAnswer {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub readable: Option<bool>,
    #[serde(default)]
    pub confidence: Option<f64>,
    #[serde(default)]
    pub vin: Option<String>,
    #[serde(default)]
    pub frame: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
}

/// The answer could not be read as JSON of the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the vision answer is not the JSON asked for")]
pub struct InvalidAnswer;

impl VisionAnswer {
    /// Parses the model's message content: a JSON object, possibly inside a Markdown code fence.
    pub fn parse(content: &str) -> Result<VisionAnswer, InvalidAnswer> {
        let t = content.trim();
        let t = t.strip_prefix("```json").or_else(|| t.strip_prefix("```")).unwrap_or(t);
        let t = t.strip_suffix("```").unwrap_or(t).trim();
        let value: serde_json::Value = serde_json::from_str(t).map_err(|_| InvalidAnswer)?;
        if !value.is_object() {
            return Err(InvalidAnswer);
        }
        serde_json::from_value(value).map_err(|_| InvalidAnswer)
    }
}

/// What a photo was read as: the kind, the model's confidence, the candidates found (scored like
/// typed ones, with `ocr_*` reasons), and flags for what was found but not trusted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoReading {
    pub kind: PhotoKind,
    pub confidence: f64,
    pub candidates: Vec<Candidate>,
    /// `unreadable` (blurry, cut off: ask for a clearer photo), `vin_check_digit_invalid`,
    /// `quality_gate_failed`, `low_confidence`.
    pub flags: Vec<String>,
}

impl PhotoReading {
    /// The VIN or FRAME to look the vehicle up with: a complete id scoring at or above the lookup
    /// threshold.
    pub fn vehicle_id(&self) -> Option<&Candidate> {
        self.candidates
            .iter()
            .filter(|c| c.is_vehicle_id() && c.score >= detect::VEHICLE_LOOKUP_MIN_SCORE)
            .max_by(|a, b| a.score.total_cmp(&b.score))
    }

    /// The gearbox code that starts a price lookup.
    pub fn transmission_code(&self) -> Option<&Candidate> {
        self.candidates
            .iter()
            .find(|c| c.kind == CandidateKind::TransmissionCode && c.score >= detect::PRICE_LOOKUP_MIN_SCORE)
    }

    /// Whether the customer should be asked for a clearer photo: nothing usable was read.
    pub fn wants_clearer_photo(&self) -> bool {
        self.kind != PhotoKind::Other && self.vehicle_id().is_none() && self.transmission_code().is_none()
    }
}

/// Default confidence when the model gives none (the old system's 0.80).
const DEFAULT_CONFIDENCE: f64 = 0.80;
/// Below this the model's reading is not trusted at all.
const MIN_CONFIDENCE: f64 = 0.50;
/// An identifier read from a photo never scores above this.
const OCR_CAP: f64 = 0.85;

/// Turns the model's answer into a reading.
pub fn read_photo(answer: &VisionAnswer) -> PhotoReading {
    let kind = PhotoKind::parse(&answer.kind);
    let confidence = detect::round_score(answer.confidence.unwrap_or(DEFAULT_CONFIDENCE));
    let mut reading = PhotoReading { kind, confidence, candidates: vec![], flags: vec![] };
    if answer.readable == Some(false) {
        reading.flags.push("unreadable".into());
        return reading;
    }
    if confidence < MIN_CONFIDENCE {
        reading.flags.push("low_confidence".into());
        return reading;
    }
    let source = match kind {
        PhotoKind::GearboxTag => {
            if let Some(code) = answer.code.as_deref() {
                gearbox_code(code, confidence, &mut reading);
            }
            return finish(reading);
        }
        PhotoKind::RegistrationDocument => "ocr_registration_doc",
        PhotoKind::VinPlate => "ocr_vin_plate",
        PhotoKind::Other => return reading,
    };
    if let Some(vin) = answer.vin.as_deref().map(str::trim).filter(|v| !v.is_empty() && !is_absent(v)) {
        ocr_vin(vin, confidence, source, &mut reading);
    }
    if let Some(frame) = answer.frame.as_deref().map(str::trim).filter(|v| !v.is_empty() && !is_absent(v)) {
        let found = detect::detect(frame);
        if let Some(c) = found.candidates.into_iter().find(|c| c.kind == CandidateKind::Frame) {
            reading.candidates.push(ocr_candidate(c, confidence, source));
        }
    }
    finish(reading)
}

fn finish(mut reading: PhotoReading) -> PhotoReading {
    if reading.wants_clearer_photo() && !reading.flags.iter().any(|f| f == "unreadable") {
        reading.flags.push("unreadable".into());
    }
    reading
}

/// "ОТСУТСТВУЕТ", "нет", "null" written by the model instead of leaving the field out.
fn is_absent(v: &str) -> bool {
    let l = v.to_lowercase();
    ["отсутствует", "нет", "null", "none", "n/a", "-"].contains(&l.as_str())
}

fn ocr_candidate(mut c: Candidate, confidence: f64, source: &str) -> Candidate {
    c.score = detect::round_score(c.score.min(OCR_CAP).min(confidence));
    c.reasons.push(source.to_string());
    c
}

/// A VIN from a document or a plate. Unlike typed text, the check digit is demanded of every VIN
/// that has a digit or X in position 9; a failing one is corrected only through a unique
/// look-alike substitution, otherwise it is kept as a flagged candidate below every threshold.
fn ocr_vin(raw: &str, confidence: f64, source: &str, reading: &mut PhotoReading) {
    let compact: String = raw.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    let upper = detect::normalize_id(&compact);
    if upper.len() != 17 || !upper.bytes().all(|b| b.is_ascii_alphanumeric()) {
        reading.flags.push("vin_malformed".into());
        return;
    }
    let mut vin = [0u8; 17];
    vin.copy_from_slice(upper.as_bytes());
    // I, O, Q never occur in a VIN: a reading of them is 1 and 0.
    for b in &mut vin {
        *b = match *b {
            b'I' => b'1',
            b'O' | b'Q' => b'0',
            other => other,
        };
    }
    let check_position_is_digit = vin[8].is_ascii_digit() || vin[8] == b'X';
    let mut reasons = Vec::new();
    let score = if crate::vin::has_valid_check_digit(&vin) {
        reasons.push("checksum_valid".to_string());
        0.90
    } else if check_position_is_digit || crate::vin::check_digit_required(vin[0]) {
        match detect::autocorrect_vin(&vin) {
            Some((position, from, to)) => {
                vin[position] = to;
                reasons.push("checksum_valid_after_autocorrect".into());
                reasons.push(format!("autocorrect:pos{}:{}>{}", position + 1, char::from(from), char::from(to)));
                0.85
            }
            None => {
                reading.flags.push("vin_check_digit_invalid".into());
                reasons.push("checksum_invalid_uncorrectable".into());
                0.25
            }
        }
    } else {
        reasons.push("no_checksum_applicable".into());
        0.80
    };
    let value = String::from_utf8_lossy(&vin).into_owned();
    let c = Candidate::new(CandidateKind::Vin, value, detect::round_score(score), reasons);
    reading.candidates.push(ocr_candidate(c, confidence, source));
}

/// A gearbox code read from its tag: the old system's quality gate (at least five characters, at
/// least 70 % of them letters or digits), then scored by strength.
fn gearbox_code(raw: &str, confidence: f64, reading: &mut PhotoReading) {
    let code = detect::normalize_id(raw.trim());
    let len = code.chars().count();
    let alnum = code.chars().filter(|c| c.is_ascii_alphanumeric()).count();
    if len < 5 || (alnum as f64) < 0.70 * len as f64 {
        reading.flags.push("quality_gate_failed".into());
        return;
    }
    let strong = detect::detect(&code)
        .candidates
        .into_iter()
        .find(|c| c.kind == CandidateKind::TransmissionCode)
        .is_some_and(|c| c.reasons.iter().any(|r| r == "strength:strong"));
    let (base, strength) = if strong { (0.75, "strong") } else { (0.65, "weak") };
    let value: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let c = Candidate::new(
        CandidateKind::TransmissionCode,
        value,
        detect::round_score(base),
        vec![format!("strength:{strength}")],
    );
    reading.candidates.push(ocr_candidate(c, confidence, "ocr_gearbox_tag"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: &str) -> VisionAnswer {
        VisionAnswer::parse(json).unwrap()
    }

    #[test]
    fn a_registration_document_with_a_valid_vin_starts_a_lookup() {
        let r = read_photo(&answer(r#"{"type":"registration_document","vin":"1HGCM82633A004352","confidence":0.95}"#));
        assert_eq!(r.kind, PhotoKind::RegistrationDocument);
        let id = r.vehicle_id().expect("a VIN to look up");
        assert_eq!(id.value, "1HGCM82633A004352");
        assert_eq!(id.score, 0.85);
        assert!(id.reasons.contains(&"ocr_registration_doc".to_string()));
        assert!(!r.wants_clearer_photo());
    }

    #[test]
    fn a_misread_vin_is_corrected_through_the_look_alike_pairs_only() {
        // B read for 8 in position 6.
        let r = read_photo(&answer(r#"{"type":"registration_doc","vin":"1HGCMB2633A004352"}"#));
        let id = r.vehicle_id().expect("corrected");
        assert_eq!(id.value, "1HGCM82633A004352");
        assert!(id.reasons.iter().any(|r| r == "autocorrect:pos6:B>8"), "{:?}", id.reasons);
        // A wrong digit no look-alike explains: flagged, never looked up.
        let r = read_photo(&answer(r#"{"type":"registration_doc","vin":"1HGCM82633A004353"}"#));
        assert!(r.vehicle_id().is_none());
        assert!(r.flags.contains(&"vin_check_digit_invalid".to_string()));
        assert_eq!(r.candidates[0].score, 0.25);
        assert!(r.wants_clearer_photo());
    }

    #[test]
    fn a_european_vin_without_a_check_digit_is_taken_as_read() {
        let r = read_photo(&answer(r#"{"type":"vin_plate","vin":"WAUZZZ4B8CN123456","confidence":0.9}"#));
        // Position 9 is a digit here, so the check digit is demanded; this one is valid or not,
        // either way the value is never changed by anything but a unique look-alike.
        assert!(r.candidates.iter().all(|c| c.value.starts_with("WAUZZ")));
        let r = read_photo(&answer(r#"{"type":"vin_plate","vin":"XTA21099YY2765432","confidence":0.9}"#));
        assert!(r.candidates.is_empty() || r.candidates[0].value == "XTA21099YY2765432");
    }

    #[test]
    fn gearbox_tags_pass_the_quality_gate_or_ask_for_a_clearer_photo() {
        let r = read_photo(&answer(r#"{"type":"gearbox_tag","code":"JF011E","confidence":0.9}"#));
        let code = r.transmission_code().expect("a code");
        assert_eq!(code.value, "JF011E");
        assert_eq!(code.score, 0.75);
        let r = read_photo(&answer(r#"{"type":"gearbox_tag","code":"J?1","confidence":0.9}"#));
        assert!(r.transmission_code().is_none());
        assert!(r.flags.contains(&"quality_gate_failed".to_string()));
        assert!(r.wants_clearer_photo());
    }

    #[test]
    fn an_unreadable_photo_is_not_guessed() {
        let r = read_photo(&answer(r#"{"type":"registration_document","readable":false,"vin":"1HGCM82633A004352"}"#));
        assert!(r.candidates.is_empty());
        assert!(r.wants_clearer_photo());
        let r = read_photo(&answer(r#"{"type":"vin_plate","vin":"1HGCM82633A004352","confidence":0.3}"#));
        assert!(r.candidates.is_empty());
    }

    #[test]
    fn answers_that_are_not_json_are_refused() {
        assert_eq!(VisionAnswer::parse("I think it is a VIN plate"), Err(InvalidAnswer));
        assert_eq!(VisionAnswer::parse("[1,2]"), Err(InvalidAnswer));
        assert!(VisionAnswer::parse("```json\n{\"type\":\"other\"}\n```").is_ok());
    }
}
