//! Gearbox type named in the text: words (АКПП, механика, вариатор, DSG, робот, …), capitalised
//! `AT`/`MT`, `A/T`/`M/T`, and labels with a gear count (`6AT`, `5MT`, `7DCT`, `DSG7`).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::normalize::{Cell, IdWord, Scanned, bytes_of};

/// Kind of gearbox. Serialised as `"AT"`, `"MT"`, `"CVT"`, `"DCT"`, `"AMT"` (the canonical codes the
/// rest of the system stores).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GearboxType {
    /// Automatic with torque converter (АКПП, автомат, AT).
    #[serde(rename = "AT")]
    Automatic,
    /// Manual (МКПП, механика, MT).
    #[serde(rename = "MT")]
    Manual,
    /// Continuously variable (вариатор, CVT).
    #[serde(rename = "CVT")]
    Cvt,
    /// Dual-clutch (DSG, DCT, PowerShift).
    #[serde(rename = "DCT")]
    Dct,
    /// Automated manual, single clutch (робот, РКПП, AMT).
    #[serde(rename = "AMT")]
    Amt,
}

impl GearboxType {
    /// The canonical code: `AT`, `MT`, `CVT`, `DCT` or `AMT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Automatic => "AT",
            Self::Manual => "MT",
            Self::Cvt => "CVT",
            Self::Dct => "DCT",
            Self::Amt => "AMT",
        }
    }

    /// How customers read it in Russian: АКПП, МКПП, вариатор, DSG, РКПП.
    pub fn human_ru(self) -> &'static str {
        match self {
            Self::Automatic => "АКПП",
            Self::Manual => "МКПП",
            Self::Cvt => "вариатор",
            Self::Dct => "DSG",
            Self::Amt => "РКПП",
        }
    }

    /// Parses a canonical code (case-insensitive).
    pub fn from_code(code: &str) -> Option<Self> {
        [Self::Automatic, Self::Manual, Self::Cvt, Self::Dct, Self::Amt]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(code))
    }

    /// More specific types win over generic ones when a message names several: "АКПП вариатор"
    /// is a CVT, "робот DSG" a DCT.
    fn specificity(self) -> u8 {
        match self {
            Self::Dct => 3,
            Self::Cvt | Self::Amt => 2,
            Self::Automatic | Self::Manual => 1,
        }
    }
}

impl fmt::Display for GearboxType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Gearbox type of a label with a gear count: `6AT`, `5MT`, `7DCT`, `6DSG`, `DSG7`, `CVT8`.
/// Such labels are never transmission codes.
pub(crate) fn label_type(token: &[u8]) -> Option<GearboxType> {
    let digits_first = token.iter().take_while(|b| b.is_ascii_digit()).count();
    let letters = if digits_first > 0 {
        &token[digits_first..]
    } else {
        let letters = token.iter().take_while(|b| b.is_ascii_uppercase()).count();
        let rest = &token[letters..];
        if rest.is_empty() || rest.len() > 2 || !rest.iter().all(u8::is_ascii_digit) {
            return None;
        }
        &token[..letters]
    };
    if !(1..=2).contains(&digits_first) && digits_first != 0 {
        return None;
    }
    match letters {
        b"AT" | b"AKPP" => Some(GearboxType::Automatic),
        b"MT" | b"MKPP" => Some(GearboxType::Manual),
        b"CVT" => Some(GearboxType::Cvt),
        b"DCT" | b"DSG" => Some(GearboxType::Dct),
        b"AMT" => Some(GearboxType::Amt),
        _ => None,
    }
}

/// The gearbox type of the text: the most specific type named, the earliest among equals.
pub(crate) fn choose(scan: &Scanned, words: &[IdWord]) -> Option<GearboxType> {
    let mut found: Option<(GearboxType, usize)> = None;
    let mut consider = |kind: GearboxType, at: usize| {
        let better = match found {
            None => true,
            Some((current, current_at)) => {
                kind.specificity() > current.specificity()
                    || (kind.specificity() == current.specificity() && at < current_at)
            }
        };
        if better {
            found = Some((kind, at));
        }
    };
    for hit in &scan.hits {
        if let Some(kind) = hit.keyword.gearbox {
            consider(kind, hit.start);
        }
    }
    let mut token = [0u8; 6];
    for word in words {
        if let [part] = word.parts() {
            let len = part.1 - part.0;
            // Labels are 3 to 6 characters and start or end with a digit.
            let digit_edge = scan.cells[part.0].byte.is_ascii_digit() || scan.cells[part.1 - 1].byte.is_ascii_digit();
            if (3..=6).contains(&len) && digit_edge {
                for (slot, b) in token.iter_mut().zip(bytes_of(&scan.cells, *part)) {
                    *slot = b;
                }
                if let Some(kind) = label_type(&token[..len]) {
                    consider(kind, part.0);
                }
            }
        }
    }
    for (at, kind) in slashed(&scan.cells) {
        consider(kind, at);
    }
    found.map(|(kind, _)| kind)
}

/// `A/T` and `M/T` (also typed with Cyrillic А, М, Т) standing alone.
fn slashed(cells: &[Cell]) -> impl Iterator<Item = (usize, GearboxType)> + '_ {
    cells.windows(3).enumerate().filter_map(move |(i, w)| {
        if w[1].byte != b'/' || w[2].byte != b'T' {
            return None;
        }
        let alone_before = i == 0 || !is_word_char(cells[i - 1]);
        let alone_after = cells.get(i + 3).is_none_or(|c| !is_word_char(*c));
        if !(alone_before && alone_after) {
            return None;
        }
        match w[0].byte {
            b'A' => Some((i, GearboxType::Automatic)),
            b'M' => Some((i, GearboxType::Manual)),
            _ => None,
        }
    })
}

fn is_word_char(cell: Cell) -> bool {
    cell.is_id() || cell.byte == super::normalize::FOREIGN_ALNUM
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_with_gear_counts() {
        assert_eq!(label_type(b"6AT"), Some(GearboxType::Automatic));
        assert_eq!(label_type(b"5MT"), Some(GearboxType::Manual));
        assert_eq!(label_type(b"7DCT"), Some(GearboxType::Dct));
        assert_eq!(label_type(b"DSG7"), Some(GearboxType::Dct));
        assert_eq!(label_type(b"CVT"), None);
        assert_eq!(label_type(b"AT"), None);
        assert_eq!(label_type(b"A245E"), None);
        assert_eq!(label_type(b"123AT"), None);
    }

    #[test]
    fn serialises_as_canonical_codes() {
        assert_eq!(serde_json::to_string(&GearboxType::Cvt).ok().as_deref(), Some("\"CVT\""));
        assert_eq!(GearboxType::from_code("amt"), Some(GearboxType::Amt));
        assert_eq!(GearboxType::Automatic.human_ru(), "АКПП");
    }
}
