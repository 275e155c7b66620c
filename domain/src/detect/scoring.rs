//! Choosing the best candidate and reporting conflicting vehicle ids.

use std::collections::HashMap;

use super::{Candidate, CandidateKind, VEHICLE_LOOKUP_MIN_SCORE};

/// Appends `new` to `out`, merging candidates of the same kind and value (the higher score wins).
pub(crate) fn push_distinct(out: &mut Vec<Candidate>, new: Vec<Candidate>) {
    if new.is_empty() {
        return;
    }
    let mut seen: HashMap<(CandidateKind, String), usize> =
        out.iter().enumerate().map(|(i, c)| ((c.kind, c.value.clone()), i)).collect();
    for candidate in new {
        match seen.get(&(candidate.kind, candidate.value.clone())) {
            Some(&i) if out[i].score < candidate.score => out[i] = candidate,
            Some(_) => {}
            None => {
                seen.insert((candidate.kind, candidate.value.clone()), out.len());
                out.push(candidate);
            }
        }
    }
}

fn priority(kind: CandidateKind) -> u8 {
    match kind {
        CandidateKind::Vin => 3,
        CandidateKind::Frame => 2,
        CandidateKind::TransmissionCode => 1,
    }
}

/// Candidates by score, highest first; equal scores put VIN before FRAME before a code, then
/// keep text order.
pub(crate) fn ranked<'a>(candidates: impl IntoIterator<Item = &'a Candidate>) -> Vec<&'a Candidate> {
    let mut ranked: Vec<&Candidate> = candidates.into_iter().collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(priority(b.kind).cmp(&priority(a.kind))));
    ranked
}

/// The candidate to act on: a complete VIN or FRAME that starts a lookup wins over everything;
/// otherwise the highest score. Incomplete VINs are only chosen when nothing else was found.
pub(crate) fn best(candidates: &[Candidate]) -> Option<&Candidate> {
    let ranked = ranked(candidates.iter().filter(|c| !c.incomplete));
    if ranked.is_empty() {
        return candidates.first();
    }
    ranked.iter().find(|c| c.is_vehicle_id() && c.score >= VEHICLE_LOOKUP_MIN_SCORE).or_else(|| ranked.first()).copied()
}

/// `multiple_vin:A|B` and `multiple_frame:A|B` (at most three values each) when several different
/// VINs or FRAMEs would each start a lookup.
pub(crate) fn conflicts(candidates: &[Candidate]) -> Vec<String> {
    let mut conflicts = Vec::new();
    for (kind, label) in [(CandidateKind::Vin, "multiple_vin"), (CandidateKind::Frame, "multiple_frame")] {
        let values: Vec<&str> = candidates
            .iter()
            .filter(|c| c.kind == kind && c.is_vehicle_id() && c.score >= VEHICLE_LOOKUP_MIN_SCORE)
            .map(|c| c.value.as_str())
            .collect();
        if values.len() >= 2 {
            conflicts.push(format!("{label}:{}", values[..values.len().min(3)].join("|")));
        }
    }
    conflicts
}
