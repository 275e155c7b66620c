//! Offline VIN decoding: check digit, manufacturer and country from the WMI, model year.
//!
//! Everything here is pure. The model year depends on "now", so [`decode`] takes the reference
//! year explicitly instead of reading a clock.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Weights of the ISO 3779 / FMVSS 115 check-digit computation, by position.
const WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];

/// Second characters of a WMI in the order the SAE country ranges use (`A`..`Z` without
/// `I`, `O`, `Q`, then `1`..`9`, then `0`).
const RANGE_ORDER: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ1234567890";

/// A syntactically valid 17-character VIN: uppercase, only `A-H J-N P R-Z 0-9`.
///
/// Parsing accepts lowercase Latin letters and Cyrillic letters that look like Latin ones
/// (`А`→`A`, `Х`→`X`, …) and trims surrounding whitespace; everything else must already be a VIN.
/// It does not require a valid check digit: see [`Vin::check_digit`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Vin(String);

/// Why a string is not a VIN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VinError {
    /// A VIN has exactly 17 characters.
    #[error("a VIN has 17 characters, got {0}")]
    Length(usize),
    /// A character outside `A-H J-N P R-Z 0-9` (the letters I, O and Q never occur in a VIN).
    #[error("character {ch:?} at position {position} cannot occur in a VIN")]
    InvalidChar {
        /// 1-based position of the offending character.
        position: usize,
        /// The character as given.
        ch: char,
    },
}

impl Vin {
    /// Parses a VIN; see the type documentation for what is accepted.
    pub fn parse(input: &str) -> Result<Self, VinError> {
        let trimmed = input.trim();
        let count = trimmed.chars().count();
        if count != 17 {
            return Err(VinError::Length(count));
        }
        let mut out = String::with_capacity(17);
        for (index, ch) in trimmed.chars().enumerate() {
            let byte = latin_twin(ch).unwrap_or(ch).to_ascii_uppercase();
            if !byte.is_ascii() || !is_vin_byte(byte as u8) {
                return Err(VinError::InvalidChar { position: index + 1, ch });
            }
            out.push(byte);
        }
        Ok(Self(out))
    }

    /// The VIN as 17 uppercase ASCII characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// World manufacturer identifier: positions 1–3.
    pub fn wmi(&self) -> &str {
        &self.0[..3]
    }

    /// Vehicle descriptor section: positions 4–9 (position 9 is the check digit where one is used).
    pub fn vds(&self) -> &str {
        &self.0[3..9]
    }

    /// Vehicle identifier section: positions 10–17.
    pub fn vis(&self) -> &str {
        &self.0[9..]
    }

    /// Whether position 9 holds a valid check digit, and whether one is required for this VIN.
    pub fn check_digit(&self) -> CheckDigit {
        check_digit_status(self.bytes())
    }

    /// Decodes the VIN; `current_year` resolves the 30-year cycle of the model-year code.
    pub fn decode(&self, current_year: u16) -> VinInfo {
        let bytes = self.bytes();
        let wmi = self.wmi();
        let maker = lookup_wmi(wmi);
        VinInfo {
            vin: self.0.clone(),
            wmi: wmi.to_owned(),
            vds: self.vds().to_owned(),
            manufacturer: maker.map(|m| m.make.to_owned()),
            country: maker.and_then(|m| m.country).or_else(|| country_of(bytes)).map(str::to_owned),
            region: Region::of(bytes[0]),
            model_year: model_year(bytes, current_year),
            check_digit: check_digit_status(bytes),
            plant: char::from(bytes[10]).to_string(),
            serial: self.0[11..].to_owned(),
        }
    }

    fn bytes(&self) -> &[u8; 17] {
        // The constructor guarantees 17 ASCII bytes; fall back to a fixed array to stay total.
        self.0.as_bytes().try_into().unwrap_or(&[b'0'; 17])
    }
}

impl fmt::Display for Vin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Vin {
    type Error = VinError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Vin> for String {
    fn from(vin: Vin) -> Self {
        vin.0
    }
}

impl AsRef<str> for Vin {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Result of checking position 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckDigit {
    /// Position 9 equals the computed check digit.
    Valid,
    /// The VIN comes from a region where the check digit is mandatory (North America, China)
    /// and position 9 does not match.
    Invalid,
    /// The check digit is optional for this VIN's region and position 9 does not match: many
    /// European, Japanese and Russian manufacturers put something else there.
    NotApplicable,
}

/// Continent of manufacture, from the first VIN character (ISO 3780).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Region {
    /// `A`–`H`.
    Africa,
    /// `J`–`R`.
    Asia,
    /// `S`–`Z`.
    Europe,
    /// `1`–`5`.
    NorthAmerica,
    /// `6`–`7`.
    Oceania,
    /// `8`, `9`, `0`.
    SouthAmerica,
}

impl Region {
    /// The region of a VIN starting with `first` (uppercase ASCII); `None` for anything else.
    pub fn of(first: u8) -> Option<Self> {
        Some(match first {
            b'A'..=b'H' => Self::Africa,
            b'J'..=b'R' => Self::Asia,
            b'S'..=b'Z' => Self::Europe,
            b'1'..=b'5' => Self::NorthAmerica,
            b'6' | b'7' => Self::Oceania,
            b'8' | b'9' | b'0' => Self::SouthAmerica,
            _ => return None,
        })
    }
}

/// What the offline decoder knows about a VIN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VinInfo {
    /// The VIN itself.
    pub vin: String,
    /// World manufacturer identifier (positions 1–3).
    pub wmi: String,
    /// Vehicle descriptor section (positions 4–9).
    pub vds: String,
    /// Make from the built-in WMI table, e.g. `"Toyota"`; `None` when the WMI is not in the table.
    pub manufacturer: Option<String>,
    /// Country of manufacture (English name), from the WMI table or the SAE country ranges.
    pub country: Option<String>,
    /// Continent from the first character.
    pub region: Option<Region>,
    /// Model year from position 10. For North-American VINs position 7 picks the 30-year cycle
    /// (digit: 1980–2009, letter: 2010–2039); otherwise the latest year not after
    /// `current_year + 1`. Many European and Japanese VINs do not encode the year at position 10,
    /// so outside North America and China this is a best guess.
    pub model_year: Option<u16>,
    /// Check-digit status (position 9).
    pub check_digit: CheckDigit,
    /// Plant code (position 11).
    pub plant: String,
    /// Production sequence number (positions 12–17).
    pub serial: String,
}

/// Decodes a VIN offline. `None` when `vin` is not a syntactically valid VIN (see [`Vin::parse`]).
///
/// `current_year` is the calendar year the VIN is read in; it is only used to pick the model year
/// from the 30-year cycle.
pub fn decode(vin: &str, current_year: u16) -> Option<VinInfo> {
    Vin::parse(vin).ok().map(|vin| vin.decode(current_year))
}

/// Whether `b` may appear in a VIN (`A-H J-N P R-Z 0-9`, uppercase).
pub fn is_vin_byte(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'A'..=b'H' | b'J'..=b'N' | b'P' | b'R'..=b'Z')
}

/// Whether the check digit is mandatory for VINs starting with `first`: North America (`1`–`5`)
/// and China (`L`, GB 16735). Elsewhere manufacturers may use position 9 for other data.
pub fn check_digit_required(first: u8) -> bool {
    matches!(first, b'1'..=b'5' | b'L')
}

/// The check digit (`b'0'..=b'9'` or `b'X'`) computed from the other 16 positions; `None` if a
/// character has no transliteration value (I, O, Q or non-VIN bytes).
pub fn compute_check_digit(vin: &[u8; 17]) -> Option<u8> {
    let mut sum = 0u32;
    for (&b, &w) in vin.iter().zip(WEIGHTS.iter()) {
        sum += transliterate(b)? * w;
    }
    Some(match sum % 11 {
        10 => b'X',
        // `sum % 11` is below 10 here.
        d => b'0' + d as u8,
    })
}

/// Whether position 9 holds the check digit computed from the other positions.
pub fn has_valid_check_digit(vin: &[u8; 17]) -> bool {
    compute_check_digit(vin) == Some(vin[8])
}

fn check_digit_status(vin: &[u8; 17]) -> CheckDigit {
    if has_valid_check_digit(vin) {
        CheckDigit::Valid
    } else if check_digit_required(vin[0]) {
        CheckDigit::Invalid
    } else {
        CheckDigit::NotApplicable
    }
}

fn transliterate(b: u8) -> Option<u32> {
    Some(match b {
        b'0'..=b'9' => u32::from(b - b'0'),
        b'A' | b'J' => 1,
        b'B' | b'K' | b'S' => 2,
        b'C' | b'L' | b'T' => 3,
        b'D' | b'M' | b'U' => 4,
        b'E' | b'N' | b'V' => 5,
        b'F' | b'W' => 6,
        b'G' | b'P' | b'X' => 7,
        b'H' | b'Y' => 8,
        b'R' | b'Z' => 9,
        _ => return None,
    })
}

/// Latin letter for a Cyrillic look-alike (both cases), as used when reading VINs typed on a
/// Russian keyboard layout.
fn latin_twin(ch: char) -> Option<char> {
    Some(match ch {
        'А' | 'а' => 'A',
        'В' => 'B',
        'С' | 'с' => 'C',
        'Е' | 'е' => 'E',
        'К' | 'к' => 'K',
        'М' | 'м' => 'M',
        'Н' | 'н' => 'H',
        'О' | 'о' => 'O',
        'Р' | 'р' => 'P',
        'Т' | 'т' => 'T',
        'У' | 'у' => 'Y',
        'Х' | 'х' => 'X',
        _ => return None,
    })
}

/// Model year for a position-10 code in the 1980–2009 cycle.
fn base_year(code: u8) -> Option<u16> {
    Some(match code {
        b'A'..=b'H' => 1980 + u16::from(code - b'A'),
        b'J'..=b'N' => 1988 + u16::from(code - b'J'),
        b'P' => 1993,
        b'R'..=b'T' => 1994 + u16::from(code - b'R'),
        b'V'..=b'Y' => 1997 + u16::from(code - b'V'),
        b'1'..=b'9' => 2000 + u16::from(code - b'0'),
        _ => return None,
    })
}

fn model_year(vin: &[u8; 17], current_year: u16) -> Option<u16> {
    let base = base_year(vin[9])?;
    let latest_allowed = current_year.saturating_add(1);
    if matches!(vin[0], b'1'..=b'5') {
        // 49 CFR 565: for passenger vehicles a letter at position 7 marks the 2010–2039 cycle.
        let year = if vin[6].is_ascii_digit() { base } else { base + 30 };
        if year <= latest_allowed {
            return Some(year);
        }
    }
    let mut year = base;
    if year > latest_allowed {
        return None;
    }
    while year + 30 <= latest_allowed {
        year += 30;
    }
    Some(year)
}

struct Maker {
    make: &'static str,
    country: Option<&'static str>,
}

const fn maker(make: &'static str, country: &'static str) -> Maker {
    Maker { make, country: Some(country) }
}

/// Exact three-character WMIs. Checked before [`WMI_PREFIXES`].
const WMIS: &[(&str, Maker)] = &[
    // Toyota / Lexus
    ("JTH", maker("Lexus", "Japan")),
    ("JTJ", maker("Lexus", "Japan")),
    ("JT6", maker("Lexus", "Japan")),
    ("JT8", maker("Lexus", "Japan")),
    ("2T2", maker("Lexus", "Canada")),
    ("58A", maker("Lexus", "United States")),
    ("4T1", maker("Toyota", "United States")),
    ("4T3", maker("Toyota", "United States")),
    ("4T4", maker("Toyota", "United States")),
    ("5TD", maker("Toyota", "United States")),
    ("5TE", maker("Toyota", "United States")),
    ("5TF", maker("Toyota", "United States")),
    ("2T1", maker("Toyota", "Canada")),
    ("2T3", maker("Toyota", "Canada")),
    ("SB1", maker("Toyota", "United Kingdom")),
    ("VNK", maker("Toyota", "France")),
    ("NMT", maker("Toyota", "Turkey")),
    ("XW7", maker("Toyota", "Russia")),
    ("MR0", maker("Toyota", "Thailand")),
    ("AHT", maker("Toyota", "South Africa")),
    ("6T1", maker("Toyota", "Australia")),
    // Nissan / Infiniti
    ("JNK", maker("Infiniti", "Japan")),
    ("JNR", maker("Infiniti", "Japan")),
    ("5N3", maker("Infiniti", "United States")),
    ("JN1", maker("Nissan", "Japan")),
    ("JN6", maker("Nissan", "Japan")),
    ("JN8", maker("Nissan", "Japan")),
    ("SJN", maker("Nissan", "United Kingdom")),
    ("VSK", maker("Nissan", "Spain")),
    ("Z8N", maker("Nissan", "Russia")),
    ("1N4", maker("Nissan", "United States")),
    ("1N6", maker("Nissan", "United States")),
    ("5N1", maker("Nissan", "United States")),
    ("3N1", maker("Nissan", "Mexico")),
    ("3N6", maker("Nissan", "Mexico")),
    // Honda / Acura
    ("JH4", maker("Acura", "Japan")),
    ("19U", maker("Acura", "United States")),
    ("JHM", maker("Honda", "Japan")),
    ("JHL", maker("Honda", "Japan")),
    ("JHG", maker("Honda", "Japan")),
    ("SHH", maker("Honda", "United Kingdom")),
    ("SHS", maker("Honda", "United Kingdom")),
    ("1HG", maker("Honda", "United States")),
    ("2HG", maker("Honda", "Canada")),
    ("2HK", maker("Honda", "Canada")),
    ("2HJ", maker("Honda", "Canada")),
    ("5FN", maker("Honda", "United States")),
    ("5J6", maker("Honda", "United States")),
    ("19X", maker("Honda", "United States")),
    ("MRH", maker("Honda", "Thailand")),
    ("NLA", maker("Honda", "Turkey")),
    ("93H", maker("Honda", "Brazil")),
    // Mazda
    ("JM1", maker("Mazda", "Japan")),
    ("JM3", maker("Mazda", "Japan")),
    ("JMZ", maker("Mazda", "Japan")),
    ("1YV", maker("Mazda", "United States")),
    ("3MZ", maker("Mazda", "Mexico")),
    // Mitsubishi
    ("JA3", maker("Mitsubishi", "Japan")),
    ("JA4", maker("Mitsubishi", "Japan")),
    ("JMB", maker("Mitsubishi", "Japan")),
    ("JMY", maker("Mitsubishi", "Japan")),
    ("4A3", maker("Mitsubishi", "United States")),
    ("4A4", maker("Mitsubishi", "United States")),
    ("MMB", maker("Mitsubishi", "Thailand")),
    ("XMC", maker("Mitsubishi", "Netherlands")),
    // Subaru
    ("JF1", maker("Subaru", "Japan")),
    ("JF2", maker("Subaru", "Japan")),
    ("4S3", maker("Subaru", "United States")),
    ("4S4", maker("Subaru", "United States")),
    // Suzuki, Daihatsu, Isuzu
    ("JS2", maker("Suzuki", "Japan")),
    ("JS3", maker("Suzuki", "Japan")),
    ("JSA", maker("Suzuki", "Japan")),
    ("TSM", maker("Suzuki", "Hungary")),
    ("MA3", maker("Suzuki (Maruti)", "India")),
    ("2S3", maker("Suzuki", "Canada")),
    ("JDA", maker("Daihatsu", "Japan")),
    ("JAA", maker("Isuzu", "Japan")),
    ("JAL", maker("Isuzu", "Japan")),
    // Hyundai / Kia / Genesis
    ("KMH", maker("Hyundai", "South Korea")),
    ("KMF", maker("Hyundai", "South Korea")),
    ("KM8", maker("Hyundai", "South Korea")),
    ("KMT", maker("Genesis", "South Korea")),
    ("5NP", maker("Hyundai", "United States")),
    ("5NM", maker("Hyundai", "United States")),
    ("NLH", maker("Hyundai", "Turkey")),
    ("TMA", maker("Hyundai", "Czech Republic")),
    ("MAL", maker("Hyundai", "India")),
    ("X7M", maker("Hyundai (TagAZ)", "Russia")),
    ("Z94", maker("Hyundai", "Russia")),
    ("KNA", maker("Kia", "South Korea")),
    ("KNC", maker("Kia", "South Korea")),
    ("KND", maker("Kia", "South Korea")),
    ("KNE", maker("Kia", "South Korea")),
    ("U5Y", maker("Kia", "Slovakia")),
    ("U6Y", maker("Kia", "Slovakia")),
    ("XWE", maker("Kia (Avtotor)", "Russia")),
    ("5XY", maker("Kia", "United States")),
    ("5XX", maker("Kia", "United States")),
    ("3KP", maker("Kia", "Mexico")),
    // GM Korea / Daewoo / UzAuto
    ("KL1", maker("Chevrolet (GM Korea)", "South Korea")),
    ("KLA", maker("Daewoo (GM Korea)", "South Korea")),
    ("XWB", maker("Daewoo / Chevrolet (UzAuto)", "Uzbekistan")),
    ("KPT", maker("SsangYong", "South Korea")),
    ("KNM", maker("Renault Samsung", "South Korea")),
    // Volkswagen group
    ("WVW", maker("Volkswagen", "Germany")),
    ("WVG", maker("Volkswagen", "Germany")),
    ("WV1", maker("Volkswagen Commercial Vehicles", "Germany")),
    ("WV2", maker("Volkswagen Commercial Vehicles", "Germany")),
    ("WV3", maker("Volkswagen Commercial Vehicles", "Germany")),
    ("1VW", maker("Volkswagen", "United States")),
    ("3VW", maker("Volkswagen", "Mexico")),
    ("9BW", maker("Volkswagen", "Brazil")),
    ("AAV", maker("Volkswagen", "South Africa")),
    ("LSV", maker("Volkswagen (SAIC)", "China")),
    ("LFV", maker("Volkswagen / Audi (FAW)", "China")),
    ("XW8", maker("Volkswagen Group Rus (VW, Skoda, Audi)", "Russia")),
    ("WAU", maker("Audi", "Germany")),
    ("WA1", maker("Audi", "Germany")),
    ("WUA", maker("Audi Sport", "Germany")),
    ("TRU", maker("Audi", "Hungary")),
    ("TMB", maker("Skoda", "Czech Republic")),
    ("VSS", maker("Seat", "Spain")),
    ("WP0", maker("Porsche", "Germany")),
    ("WP1", maker("Porsche", "Germany")),
    // BMW / MINI
    ("WBA", maker("BMW", "Germany")),
    ("WBS", maker("BMW M", "Germany")),
    ("WBY", maker("BMW i", "Germany")),
    ("WBX", maker("BMW", "Germany")),
    ("4US", maker("BMW", "United States")),
    ("5UX", maker("BMW", "United States")),
    ("5YM", maker("BMW M", "United States")),
    ("X4X", maker("BMW (Avtotor)", "Russia")),
    ("WMW", maker("MINI", "Germany")),
    // Mercedes-Benz / smart
    ("WDB", maker("Mercedes-Benz", "Germany")),
    ("WDD", maker("Mercedes-Benz", "Germany")),
    ("WDC", maker("Mercedes-Benz", "Germany")),
    ("WDF", maker("Mercedes-Benz", "Germany")),
    ("W1K", maker("Mercedes-Benz", "Germany")),
    ("W1N", maker("Mercedes-Benz", "Germany")),
    ("W1V", maker("Mercedes-Benz", "Germany")),
    ("4JG", maker("Mercedes-Benz", "United States")),
    ("VSA", maker("Mercedes-Benz", "Spain")),
    ("WME", maker("smart", "Germany")),
    // Opel / GM Europe
    ("W0L", maker("Opel", "Germany")),
    ("W0V", maker("Opel", "Germany")),
    ("VSX", maker("Opel", "Spain")),
    ("XUF", maker("GM (Opel / Chevrolet)", "Russia")),
    // Ford
    ("WF0", maker("Ford", "Germany")),
    ("SFA", maker("Ford", "United Kingdom")),
    ("VS6", maker("Ford", "Spain")),
    ("NM0", maker("Ford", "Turkey")),
    ("X9F", maker("Ford", "Russia")),
    ("Z6F", maker("Ford (Sollers)", "Russia")),
    ("MAJ", maker("Ford", "India")),
    ("6FP", maker("Ford", "Australia")),
    ("9BF", maker("Ford", "Brazil")),
    ("1FA", maker("Ford", "United States")),
    ("1FB", maker("Ford", "United States")),
    ("1FC", maker("Ford", "United States")),
    ("1FD", maker("Ford", "United States")),
    ("1FM", maker("Ford", "United States")),
    ("1FT", maker("Ford", "United States")),
    ("2FA", maker("Ford", "Canada")),
    ("2FM", maker("Ford", "Canada")),
    ("2FT", maker("Ford", "Canada")),
    ("3FA", maker("Ford", "Mexico")),
    ("3FE", maker("Ford", "Mexico")),
    ("1LN", maker("Lincoln", "United States")),
    ("5LM", maker("Lincoln", "United States")),
    // General Motors
    ("1G1", maker("Chevrolet", "United States")),
    ("1GC", maker("Chevrolet", "United States")),
    ("1GN", maker("Chevrolet", "United States")),
    ("2G1", maker("Chevrolet", "Canada")),
    ("3G1", maker("Chevrolet", "Mexico")),
    ("1G4", maker("Buick", "United States")),
    ("1G6", maker("Cadillac", "United States")),
    ("1GY", maker("Cadillac", "United States")),
    ("1GT", maker("GMC", "United States")),
    ("1GK", maker("GMC", "United States")),
    ("9BG", maker("Chevrolet", "Brazil")),
    ("X9L", maker("Chevrolet (GM-AvtoVAZ)", "Russia")),
    ("LSG", maker("GM (SAIC-GM)", "China")),
    // Renault / Dacia
    ("VF1", maker("Renault", "France")),
    ("VF6", maker("Renault Trucks", "France")),
    ("X7L", maker("Renault", "Russia")),
    ("93Y", maker("Renault", "Brazil")),
    ("UU1", maker("Dacia", "Romania")),
    // PSA / Stellantis Europe
    ("VF3", maker("Peugeot", "France")),
    ("VR3", maker("Peugeot", "France")),
    ("VF7", maker("Citroën", "France")),
    ("VR7", maker("Citroën", "France")),
    ("VR1", maker("DS", "France")),
    ("Z8T", maker("Peugeot / Citroën / Mitsubishi (PCMA Rus)", "Russia")),
    ("ZFA", maker("Fiat", "Italy")),
    ("ZAR", maker("Alfa Romeo", "Italy")),
    ("ZLA", maker("Lancia", "Italy")),
    ("ZFF", maker("Ferrari", "Italy")),
    ("ZHW", maker("Lamborghini", "Italy")),
    ("ZAM", maker("Maserati", "Italy")),
    // Chrysler / Jeep / Dodge / Ram
    ("1C3", maker("Chrysler", "United States")),
    ("1C4", maker("Chrysler / Jeep / Dodge", "United States")),
    ("1C6", maker("Ram", "United States")),
    ("1J4", maker("Jeep", "United States")),
    ("1J8", maker("Jeep", "United States")),
    ("1B3", maker("Dodge", "United States")),
    ("1D3", maker("Dodge", "United States")),
    ("1D7", maker("Dodge", "United States")),
    ("2C3", maker("Chrysler", "Canada")),
    ("2C4", maker("Chrysler", "Canada")),
    ("3C4", maker("Chrysler / Jeep", "Mexico")),
    ("3D7", maker("Ram", "Mexico")),
    // Volvo
    ("YV1", maker("Volvo", "Sweden")),
    ("YV4", maker("Volvo", "Sweden")),
    ("LYV", maker("Volvo", "China")),
    // Jaguar Land Rover
    ("SAL", maker("Land Rover", "United Kingdom")),
    ("SAJ", maker("Jaguar", "United Kingdom")),
    ("SAD", maker("Jaguar", "United Kingdom")),
    // Tesla
    ("5YJ", maker("Tesla", "United States")),
    ("7SA", maker("Tesla", "United States")),
    ("LRW", maker("Tesla", "China")),
    ("XP7", maker("Tesla", "Germany")),
    // Russian makes
    ("XTA", maker("Lada (AvtoVAZ)", "Russia")),
    ("X96", maker("GAZ", "Russia")),
    ("XTH", maker("GAZ", "Russia")),
    ("XTT", maker("UAZ", "Russia")),
    ("XTC", maker("KAMAZ", "Russia")),
    ("Y6D", maker("ZAZ", "Ukraine")),
    // Chinese makes
    ("LVV", maker("Chery", "China")),
    ("L6T", maker("Geely", "China")),
    ("LB3", maker("Geely", "China")),
    ("Y4K", maker("Geely (BelGee)", "Belarus")),
    ("LGW", maker("Great Wall / Haval", "China")),
    ("LS5", maker("Changan", "China")),
    ("LVS", maker("Changan Ford", "China")),
    ("LLV", maker("Lifan", "China")),
    ("LFP", maker("FAW", "China")),
    ("LJ1", maker("JAC", "China")),
    ("LC0", maker("BYD", "China")),
    ("LGX", maker("BYD", "China")),
    ("LMG", maker("GAC", "China")),
];

/// Two-character WMI prefixes for makes that use many third characters.
const WMI_PREFIXES: &[(&str, Maker)] = &[
    ("JT", maker("Toyota", "Japan")),
    ("JN", maker("Nissan", "Japan")),
    ("JH", maker("Honda", "Japan")),
    ("JM", maker("Mazda", "Japan")),
    ("JA", maker("Isuzu", "Japan")),
    ("JS", maker("Suzuki", "Japan")),
    ("JF", maker("Subaru", "Japan")),
    ("KM", maker("Hyundai", "South Korea")),
    ("KN", maker("Kia", "South Korea")),
    ("WD", maker("Mercedes-Benz", "Germany")),
    ("WB", maker("BMW", "Germany")),
    ("1F", maker("Ford", "United States")),
    ("1G", maker("General Motors", "United States")),
    ("YV", maker("Volvo", "Sweden")),
];

fn lookup_wmi(wmi: &str) -> Option<&'static Maker> {
    WMIS.iter()
        .find(|(code, _)| *code == wmi)
        .or_else(|| WMI_PREFIXES.iter().find(|(prefix, _)| wmi.starts_with(prefix)))
        .map(|(_, maker)| maker)
}

/// SAE country ranges: first character, first and last second character (in [`RANGE_ORDER`]), country.
const COUNTRY_RANGES: &[(u8, u8, u8, &str)] = &[
    (b'A', b'A', b'H', "South Africa"),
    (b'J', b'A', b'0', "Japan"),
    (b'K', b'A', b'E', "Sri Lanka"),
    (b'K', b'F', b'K', "Israel"),
    (b'K', b'L', b'R', "South Korea"),
    (b'K', b'S', b'0', "Kazakhstan"),
    (b'L', b'A', b'0', "China"),
    (b'M', b'A', b'E', "India"),
    (b'M', b'F', b'K', "Indonesia"),
    (b'M', b'L', b'R', "Thailand"),
    (b'N', b'A', b'E', "Iran"),
    (b'N', b'F', b'K', "Pakistan"),
    (b'N', b'L', b'R', "Turkey"),
    (b'P', b'A', b'E', "Philippines"),
    (b'P', b'F', b'K', "Singapore"),
    (b'P', b'L', b'R', "Malaysia"),
    (b'R', b'F', b'K', "Taiwan"),
    (b'S', b'A', b'M', "United Kingdom"),
    (b'S', b'N', b'T', "Germany"),
    (b'S', b'U', b'Z', "Poland"),
    (b'T', b'A', b'H', "Switzerland"),
    (b'T', b'J', b'P', "Czech Republic"),
    (b'T', b'R', b'V', "Hungary"),
    (b'T', b'W', b'1', "Portugal"),
    (b'U', b'H', b'M', "Denmark"),
    (b'U', b'N', b'T', "Ireland"),
    (b'U', b'U', b'Z', "Romania"),
    (b'U', b'5', b'7', "Slovakia"),
    (b'V', b'A', b'E', "Austria"),
    (b'V', b'F', b'R', "France"),
    (b'V', b'S', b'W', "Spain"),
    (b'V', b'X', b'2', "Serbia"),
    (b'V', b'3', b'5', "Croatia"),
    (b'V', b'6', b'0', "Estonia"),
    (b'W', b'A', b'0', "Germany"),
    (b'X', b'A', b'E', "Bulgaria"),
    (b'X', b'F', b'K', "Greece"),
    (b'X', b'L', b'R', "Netherlands"),
    (b'X', b'S', b'W', "Russia"),
    (b'X', b'X', b'2', "Luxembourg"),
    (b'X', b'3', b'0', "Russia"),
    (b'Y', b'A', b'E', "Belgium"),
    (b'Y', b'F', b'K', "Finland"),
    (b'Y', b'S', b'W', "Sweden"),
    (b'Y', b'X', b'2', "Norway"),
    (b'Y', b'3', b'5', "Belarus"),
    (b'Y', b'6', b'0', "Ukraine"),
    (b'Z', b'A', b'R', "Italy"),
    (b'Z', b'X', b'2', "Slovenia"),
    (b'Z', b'3', b'5', "Lithuania"),
    (b'Z', b'6', b'0', "Russia"),
    (b'1', b'A', b'0', "United States"),
    (b'4', b'A', b'0', "United States"),
    (b'5', b'A', b'0', "United States"),
    (b'2', b'A', b'0', "Canada"),
    (b'3', b'A', b'W', "Mexico"),
    (b'6', b'A', b'W', "Australia"),
    (b'7', b'A', b'E', "New Zealand"),
    (b'8', b'A', b'E', "Argentina"),
    (b'8', b'F', b'K', "Chile"),
    (b'8', b'X', b'2', "Venezuela"),
    (b'9', b'A', b'E', "Brazil"),
    (b'9', b'F', b'J', "Colombia"),
    (b'9', b'3', b'9', "Brazil"),
];

fn country_of(vin: &[u8; 17]) -> Option<&'static str> {
    let rank = |b: u8| RANGE_ORDER.iter().position(|&x| x == b);
    let second = rank(vin[1])?;
    COUNTRY_RANGES
        .iter()
        .find(|(first, from, to, _)| {
            *first == vin[0] && rank(*from).is_some_and(|f| f <= second) && rank(*to).is_some_and(|t| second <= t)
        })
        .map(|(.., country)| *country)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vin(s: &str) -> [u8; 17] {
        s.as_bytes().try_into().expect("17 bytes")
    }

    #[test]
    fn known_valid_north_american_vins_have_valid_check_digits() {
        for v in ["1HGCM82633A004352", "1M8GDM9AXKP042788", "5YJSA1E12HF178924", "1FTFW1ET9DFC10312"] {
            assert!(has_valid_check_digit(&vin(v)), "{v}");
            assert_eq!(Vin::parse(v).expect("parses").check_digit(), CheckDigit::Valid, "{v}");
        }
        assert_eq!(compute_check_digit(&vin("1M8GDM9AXKP042788")), Some(b'X'));
    }

    #[test]
    fn check_digit_is_invalid_only_where_it_is_mandatory() {
        let na = Vin::parse("1HGCM82634A004352").expect("parses");
        assert_eq!(na.check_digit(), CheckDigit::Invalid);
        let eu = Vin::parse("WVWZZZ1JZ3W386752").expect("parses");
        assert_eq!(eu.check_digit(), CheckDigit::NotApplicable);
    }

    #[test]
    fn parse_normalises_case_and_cyrillic_look_alikes() {
        let v = Vin::parse("  хта21099осу123456 ".replace('о', "0").as_str());
        assert_eq!(v.map(String::from), Ok("XTA210990CY123456".to_owned()));
        assert_eq!(Vin::parse("XTA21099").unwrap_err(), VinError::Length(8));
        assert_eq!(Vin::parse("XTA210990IY123456").unwrap_err(), VinError::InvalidChar { position: 10, ch: 'I' });
    }

    #[test]
    fn decodes_a_north_american_vin() {
        let info = decode("1HGCM82633A004352", 2026).expect("valid");
        assert_eq!(info.wmi, "1HG");
        assert_eq!(info.manufacturer.as_deref(), Some("Honda"));
        assert_eq!(info.country.as_deref(), Some("United States"));
        assert_eq!(info.region, Some(Region::NorthAmerica));
        assert_eq!(info.model_year, Some(2003));
        assert_eq!(info.check_digit, CheckDigit::Valid);
        assert_eq!(info.serial, "004352");
        assert_eq!(info.plant, "A");
    }

    #[test]
    fn north_american_position_seven_selects_the_cycle() {
        // Position 7 is a letter ('E'), position 10 'H': 2017, not 1987.
        assert_eq!(decode("5YJSA1E12HF178924", 2026).and_then(|i| i.model_year), Some(2017));
        // Position 7 is a digit ('3'), position 10 '3': 2003.
        assert_eq!(decode("1HGCM82633A004352", 2040).and_then(|i| i.model_year), Some(2003));
    }

    #[test]
    fn other_regions_take_the_latest_year_not_in_the_future() {
        let info = decode("XW8ZZZ61ZEG012345", 2026).expect("valid");
        assert_eq!(info.manufacturer.as_deref(), Some("Volkswagen Group Rus (VW, Skoda, Audi)"));
        assert_eq!(info.country.as_deref(), Some("Russia"));
        assert_eq!(info.model_year, Some(2014));
        assert_eq!(info.check_digit, CheckDigit::NotApplicable);
        // 'Y' is 2000 or 2030; in 2026 it can only be 2000.
        assert_eq!(decode("XTA210990Y1234567", 2026).and_then(|i| i.model_year), Some(2000));
        // 'T' is 1996 or 2026.
        assert_eq!(decode("XTA219170T0123456", 2026).and_then(|i| i.model_year), Some(2026));
        assert_eq!(decode("XTA219170T0123456", 2020).and_then(|i| i.model_year), Some(1996));
        // Position 10 '0' is not a year code (common in Japanese-built European VINs).
        assert_eq!(decode("JTNBE46K803123456", 2026).and_then(|i| i.model_year), None);
    }

    #[test]
    fn wmi_table_and_country_ranges() {
        let cases = [
            ("JTNBE46K803123456", "Toyota", "Japan"),
            ("JTHBK1GG2D2012345", "Lexus", "Japan"),
            ("Z94CB41AAGR123456", "Hyundai", "Russia"),
            ("XTA210990Y1234567", "Lada (AvtoVAZ)", "Russia"),
            ("WDD2040021A123456", "Mercedes-Benz", "Germany"),
            ("LVVDB11B0ED123456", "Chery", "China"),
            ("SALLAAA146A123456", "Land Rover", "United Kingdom"),
            ("KNAFX411BA5123456", "Kia", "South Korea"),
        ];
        for (v, make, country) in cases {
            let info = decode(v, 2026).expect("valid");
            assert_eq!(info.manufacturer.as_deref(), Some(make), "{v}");
            assert_eq!(info.country.as_deref(), Some(country), "{v}");
        }
        let unknown = decode("XSZ12345678901234", 2026).expect("valid");
        assert_eq!(unknown.manufacturer, None);
        assert_eq!(unknown.country.as_deref(), Some("Russia"));
        assert_eq!(decode("9BD12345678901234", 2026).and_then(|i| i.country), Some("Brazil".to_owned()));
    }

    #[test]
    fn serde_round_trip() {
        let v = Vin::parse("1HGCM82633A004352").expect("parses");
        let json = serde_json::to_string(&v).expect("serialises");
        assert_eq!(json, "\"1HGCM82633A004352\"");
        assert_eq!(serde_json::from_str::<Vin>(&json).expect("deserialises"), v);
        assert!(serde_json::from_str::<Vin>("\"1HGCM\"").is_err());
        let info = decode("1HGCM82633A004352", 2026).expect("valid");
        let json = serde_json::to_value(&info).expect("serialises");
        assert_eq!(json["check_digit"], "valid");
        assert_eq!(json["region"], "north_america");
    }
}
