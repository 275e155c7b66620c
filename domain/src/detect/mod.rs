//! VIN, FRAME and transmission-code detection in customer text.
//!
//! [`detect`] is pure and total: any string in, a [`Detection`] out, no IO, no panics. The text is
//! normalised once (Cyrillic look-alikes → Latin, dashes → `-`, keywords located), split into
//! identifier-shaped words, and each word is judged as a VIN, a FRAME and a transmission code.
//! Every candidate carries a score in `0..=1` and short reason codes; `docs/detection.md` lists
//! them with the thresholds the conversation pipeline applies.

mod frame;
mod gearbox_type;
mod keywords;
mod normalize;
mod scoring;
mod transmission;
mod vin;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use gearbox_type::GearboxType;
pub(crate) use gearbox_type::label_type;
pub(crate) use transmission::known_family;

use crate::vin::VinInfo;

/// A VIN or FRAME at or above this score starts a vehicle lookup.
pub const VEHICLE_LOOKUP_MIN_SCORE: f64 = 0.80;
/// A transmission code at or above this score starts a price lookup.
pub const PRICE_LOOKUP_MIN_SCORE: f64 = 0.70;
/// A transmission code at or above this score (and below [`PRICE_LOOKUP_MIN_SCORE`]) is worth
/// asking the customer about.
pub const CLARIFY_MIN_SCORE: f64 = 0.55;

/// What a candidate identifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CandidateKind {
    /// Vehicle identification number (17 characters; 16 when reported as incomplete).
    Vin,
    /// Japanese chassis number (`NZE141-6012345`).
    Frame,
    /// Gearbox model code (`JF011E`, `A245E`).
    TransmissionCode,
}

impl CandidateKind {
    /// The name used in JSON and events: `VIN`, `FRAME` or `TRANSMISSION_CODE`.
    pub fn as_str(self) -> &'static str {
        match self {
            CandidateKind::Vin => "VIN",
            CandidateKind::Frame => "FRAME",
            CandidateKind::TransmissionCode => "TRANSMISSION_CODE",
        }
    }
}

/// One identifier found in the text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// What it identifies; serialised as `"type"`.
    #[serde(rename = "type")]
    pub kind: CandidateKind,
    /// Normalised value: uppercase ASCII, Cyrillic look-alikes replaced, corrections applied.
    pub value: String,
    /// Confidence in `0..=1`, rounded to two decimals.
    pub score: f64,
    /// Short reason codes explaining the score (`checksum_valid`, `context:vin`, …).
    pub reasons: Vec<String>,
    /// A 16-character VIN (one character missing). Never used for a lookup.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
    /// A guess the customer should confirm before it is used: a valid VIN found inside an
    /// 18-character run (one character too many). Scored below the lookup threshold.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub needs_confirmation: bool,
    /// Offline decoding of a VIN, filled by [`Detection::with_vin_info`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vin_info: Option<VinInfo>,
}

impl Candidate {
    pub(crate) fn new(kind: CandidateKind, value: String, score: f64, reasons: Vec<String>) -> Self {
        Self { kind, value, score, reasons, incomplete: false, needs_confirmation: false, vin_info: None }
    }

    /// A complete VIN or a FRAME: something a vehicle lookup can use (a guess to confirm is not).
    pub fn is_vehicle_id(&self) -> bool {
        matches!(self.kind, CandidateKind::Vin | CandidateKind::Frame) && !self.incomplete && !self.needs_confirmation
    }
}

/// Everything found in one text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// The text as given.
    pub input: String,
    /// Full VINs, incomplete VINs, FRAMEs, then at most one transmission code (the best one).
    pub candidates: Vec<Candidate>,
    /// The candidate the conversation should act on, if any (see `docs/detection.md`).
    pub best: Option<Candidate>,
    /// Gearbox type named in the text.
    pub gearbox_type: Option<GearboxType>,
    /// `multiple_vin:A|B` / `multiple_frame:A|B` when the text holds several different vehicle
    /// ids that would each start a lookup.
    pub conflicts: Vec<String>,
    /// The first 16-character VIN, when the text has one.
    pub incomplete_vin: Option<String>,
}

impl Detection {
    /// The best complete VIN or FRAME scoring at least `min_score` (use
    /// [`VEHICLE_LOOKUP_MIN_SCORE`] to decide on a lookup). Ties within 0.01 prefer a VIN. Check
    /// [`Detection::conflicts`] before acting on it.
    pub fn vehicle_id(&self, min_score: f64) -> Option<&Candidate> {
        scoring::ranked(&self.candidates).into_iter().find(|c| c.is_vehicle_id() && c.score >= min_score)
    }

    /// A VIN the customer should confirm (found inside an 18-character run), when there is one and
    /// no complete VIN or FRAME reaches the lookup threshold.
    pub fn vin_to_confirm(&self) -> Option<&Candidate> {
        if self.vehicle_id(VEHICLE_LOOKUP_MIN_SCORE).is_some() {
            return None;
        }
        self.candidates.iter().find(|c| c.needs_confirmation)
    }

    /// The transmission code, if it scores at least `min_score` (use [`PRICE_LOOKUP_MIN_SCORE`]
    /// or [`CLARIFY_MIN_SCORE`]).
    pub fn transmission_code(&self, min_score: f64) -> Option<&Candidate> {
        self.candidates.iter().find(|c| c.kind == CandidateKind::TransmissionCode && c.score >= min_score)
    }

    /// The transmission code that starts a price lookup, if any. It scores at least
    /// [`PRICE_LOOKUP_MIN_SCORE`], and the message holds no VIN or FRAME that starts a vehicle
    /// lookup: that lookup finds the gearbox's OEM number and asks for its price itself, more
    /// precisely than a bare code (a code next to an incomplete VIN, or a VIN to confirm, still
    /// starts one). A code that is a piece of a vehicle id of the message is never one.
    pub fn price_lookup_code(&self) -> Option<&Candidate> {
        let code = self.transmission_code(PRICE_LOOKUP_MIN_SCORE)?;
        if self.vehicle_id(VEHICLE_LOOKUP_MIN_SCORE).is_some() {
            return None;
        }
        let inside_id = self
            .candidates
            .iter()
            .any(|c| c.kind != CandidateKind::TransmissionCode && c.value.contains(code.value.as_str()));
        if inside_id { None } else { Some(code) }
    }

    /// Adds the offline decoding ([`crate::vin::decode`]) to every VIN candidate and to `best`.
    /// `current_year` resolves the model-year cycle.
    pub fn with_vin_info(mut self, current_year: u16) -> Self {
        let candidates = self.candidates.iter_mut().chain(self.best.as_mut());
        for candidate in candidates.filter(|c| c.kind == CandidateKind::Vin && !c.incomplete) {
            candidate.vin_info = crate::vin::decode(&candidate.value, current_year);
        }
        self
    }
}

/// Finds VINs, FRAMEs, a transmission code and the gearbox type in `text`.
pub fn detect(text: &str) -> Detection {
    let scan = normalize::scan(text);
    let words = normalize::id_words(&scan.cells);
    let mut vins = vin::VinCandidates::default();
    let mut frames = Vec::new();
    let mut code = None;
    for word in &words {
        vin::collect(&scan, word, &mut vins);
        frame::collect(&scan, word, &mut frames);
        transmission::collect(&scan, word, &mut code);
    }
    let gearbox_type = gearbox_type::choose(&scan, &words);

    let incomplete_vin = vins.incomplete.first().map(|c| c.value.clone());
    let mut candidates = Vec::new();
    scoring::push_distinct(&mut candidates, vins.full);
    scoring::push_distinct(&mut candidates, vins.incomplete);
    scoring::push_distinct(&mut candidates, frames);
    candidates.extend(code);

    let best = scoring::best(&candidates).cloned();
    let conflicts = scoring::conflicts(&candidates);
    Detection { input: text.to_owned(), candidates, best, gearbox_type, conflicts, incomplete_vin }
}

/// An identifier as read (from a photo): Cyrillic look-alikes replaced by Latin letters, the rest
/// uppercased.
pub fn normalize_id(text: &str) -> String {
    text.chars()
        .map(|c| match normalize::homoglyph(c) {
            Some((b, _)) => char::from(b),
            None => c.to_ascii_uppercase(),
        })
        .collect()
}

/// The unique single look-alike substitution (position, from, to) that makes a VIN's check digit
/// valid, if there is exactly one.
pub fn autocorrect_vin(vin: &[u8; 17]) -> Option<(usize, u8, u8)> {
    vin::autocorrect_unique(vin)
}

/// Rounds a score to two decimals so that sums such as 0.80 + 0.05 print as 0.85.
pub(crate) fn round_score(score: f64) -> f64 {
    (score.clamp(0.0, 1.0) * 100.0).round() / 100.0
}
