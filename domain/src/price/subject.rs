//! What a price lookup is for ([`PriceSubject`]), and the keys that make identical requests meet:
//! the search key (one price lookup per tenant and key, one market snapshot per key) and the
//! identification-cache key. No key is ever a bare gearbox type label (`AT`, `CVT`, `M-CVT`): such a
//! "code" is read as the gearbox type, never searched for or cached under.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::query::{
    CodeKind, QueryInput, classify_code, gearbox_label, is_gearbox_type_label, is_valid_market_model_name,
};
use crate::detect::GearboxType;

/// Longest code accepted (characters).
const MAX_CODE: usize = 40;
/// Longest make, model or vehicle fact accepted (characters).
const MAX_TEXT: usize = 60;

/// What a request asks to price, as given (API body, vehicle lookup, detected code).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubjectInput {
    pub oem: Option<String>,
    pub transmission_code: Option<String>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub gearbox_type: Option<GearboxType>,
    /// Market model name from a vehicle lookup (`JF011E`); ignored unless it is a valid one.
    pub model_name_hint: Option<String>,
    pub year: Option<String>,
    pub engine: Option<String>,
    pub drive: Option<String>,
}

/// Why a request cannot be priced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    #[error("nothing to price: give an OEM number, a transmission code, or a make and a model")]
    NothingToSearch,
    #[error("`{0}` is a gearbox type, not a transmission code: give the code, or a make and a model")]
    TypeLabelOnly(String),
    #[error("{field} is too long (at most {max} characters)")]
    TooLong { field: &'static str, max: usize },
    #[error("{field} has characters a part code never has: `{value}`")]
    InvalidCode { field: &'static str, value: String },
    #[error("{field} holds a control character")]
    ControlCharacter { field: &'static str },
}

/// A normalised price lookup subject. Built by [`PriceSubject::parse`]: codes upper case, texts
/// trimmed with single spaces, type labels read as the gearbox type, a part number given as a
/// transmission code (or the reverse) moved to its place.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceSubject {
    /// OEM part number of the gearbox assembly.
    #[serde(default)]
    pub oem: Option<String>,
    /// Gearbox model code.
    #[serde(default)]
    pub transmission_code: Option<String>,
    #[serde(default)]
    pub make: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub gearbox_type: Option<GearboxType>,
    /// A valid market model name from a vehicle lookup.
    #[serde(default)]
    pub model_name_hint: Option<String>,
    #[serde(default)]
    pub year: Option<String>,
    #[serde(default)]
    pub engine: Option<String>,
    #[serde(default)]
    pub drive: Option<String>,
}

fn text(value: Option<String>, field: &'static str) -> Result<Option<String>, SubjectError> {
    let Some(v) = value else { return Ok(None) };
    let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
    if v.chars().any(char::is_control) {
        return Err(SubjectError::ControlCharacter { field });
    }
    if v.chars().count() > MAX_TEXT {
        return Err(SubjectError::TooLong { field, max: MAX_TEXT });
    }
    Ok(Some(v).filter(|v| !v.is_empty()))
}

fn code(value: Option<String>, field: &'static str, keep_spaces: bool) -> Result<Option<String>, SubjectError> {
    let Some(v) = value else { return Ok(None) };
    let v = if keep_spaces {
        v.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        v.chars().filter(|c| !c.is_whitespace()).collect()
    }
    .to_uppercase();
    if v.is_empty() {
        return Ok(None);
    }
    if v.chars().count() > MAX_CODE {
        return Err(SubjectError::TooLong { field, max: MAX_CODE });
    }
    let allowed = |c: char| c.is_alphanumeric() || matches!(c, ' ' | '-' | '.' | '/' | '(' | ')');
    if !v.chars().all(allowed) {
        return Err(SubjectError::InvalidCode { field, value: v });
    }
    Ok(Some(v))
}

fn type_of_label(label: &str) -> Option<GearboxType> {
    // `M-CVT`, `E-CVT`, `XTRONIC`: variators whatever the prefix.
    crate::detect::detect(label)
        .gearbox_type
        .or_else(|| label.to_uppercase().contains("CVT").then_some(GearboxType::Cvt))
}

impl PriceSubject {
    /// Normalises and checks a request: at least an OEM number, a transmission code, or a make and
    /// a model. A type label given as the code (`CVT`, `4AT`) becomes the gearbox type.
    pub fn parse(input: SubjectInput) -> Result<Self, SubjectError> {
        let mut oem = code(input.oem, "oem", true)?;
        let mut transmission_code = code(input.transmission_code, "transmission_code", false)?;
        let make = text(input.make, "make")?;
        let model = text(input.model, "model")?;
        let mut gearbox_type = input.gearbox_type;
        let mut label = None;
        for slot in [&mut oem, &mut transmission_code] {
            if let Some(value) = slot.take_if(|v| is_gearbox_type_label(v)) {
                gearbox_type = gearbox_type.or_else(|| type_of_label(&value));
                label.get_or_insert(value);
            }
        }
        // A part number given as the code, or a code given as the OEM number.
        if oem.is_none() && transmission_code.as_deref().is_some_and(|c| classify_code(c) == CodeKind::OemPartNumber) {
            oem = transmission_code.take();
        } else if transmission_code.is_none()
            && oem.as_deref().is_some_and(|o| classify_code(o) == CodeKind::TransmissionCode)
        {
            transmission_code = oem.take().map(|o| o.replace(' ', ""));
        }
        let model_name_hint = code(input.model_name_hint, "model_name_hint", false)
            .ok()
            .flatten()
            .filter(|h| is_valid_market_model_name(h));
        let subject = Self {
            oem,
            transmission_code,
            make,
            model,
            gearbox_type,
            model_name_hint,
            year: text(input.year, "year")?,
            engine: text(input.engine, "engine")?,
            drive: text(input.drive, "drive")?,
        };
        let searchable = subject.oem.is_some()
            || subject.transmission_code.is_some()
            || subject.model_name_hint.is_some()
            || (subject.make.is_some() && subject.model.is_some());
        match (searchable, label) {
            (true, _) => Ok(subject),
            (false, Some(label)) => Err(SubjectError::TypeLabelOnly(label)),
            (false, None) => Err(SubjectError::NothingToSearch),
        }
    }

    /// The market model name: the hint, else the transmission code when it is a valid name.
    pub fn model_name(&self) -> Option<&str> {
        self.model_name_hint.as_deref().or(self.transmission_code.as_deref().filter(|c| is_valid_market_model_name(c)))
    }

    /// The code searched for: the transmission code, else the OEM number.
    pub fn code(&self) -> Option<&str> {
        self.transmission_code.as_deref().or(self.oem.as_deref())
    }

    /// What the code searched for is.
    pub fn code_kind(&self) -> Option<CodeKind> {
        if self.transmission_code.is_some() {
            Some(CodeKind::TransmissionCode)
        } else {
            self.oem.as_ref().map(|_| CodeKind::OemPartNumber)
        }
    }

    /// Codes a listing title may name (transmission code, OEM number, model name).
    pub fn codes(&self) -> Vec<&str> {
        let mut codes: Vec<&str> = Vec::new();
        for c in [self.transmission_code.as_deref(), self.oem.as_deref(), self.model_name_hint.as_deref()]
            .into_iter()
            .flatten()
        {
            if !codes.contains(&c) {
                codes.push(c);
            }
        }
        codes
    }

    /// The vehicle as one line: make, model, year, engine and drive that are known.
    pub fn vehicle_line(&self) -> String {
        [&self.make, &self.model, &self.year, &self.engine, &self.drive]
            .into_iter()
            .filter_map(|v| v.as_deref())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// How texts name the gearbox: the model name, else `<make> <model> <type label>`, else the
    /// OEM number, else the type label (`КПП`).
    pub fn display_name(&self) -> String {
        if let Some(name) = self.model_name() {
            return name.to_string();
        }
        if let (Some(make), Some(model)) = (&self.make, &self.model) {
            return format!("{make} {model} {}", gearbox_label(self.gearbox_type));
        }
        self.code().map_or_else(|| gearbox_label(self.gearbox_type).to_string(), str::to_string)
    }

    /// The Yandex query inputs for this subject.
    pub fn query_input(&self, prefer_model_name: bool) -> QueryInput<'_> {
        QueryInput {
            oem: self.code(),
            model_name: self.model_name(),
            make: self.make.as_deref(),
            model: self.model.as_deref(),
            gearbox_type: self.gearbox_type,
            kind: self.code_kind(),
            prefer_model_name,
        }
    }

    /// Fills what this subject lacks from `other` (a later request of the same key may know the
    /// vehicle or the model name).
    pub fn merge(&mut self, other: &PriceSubject) {
        let fill = |a: &mut Option<String>, b: &Option<String>| {
            if a.is_none() {
                a.clone_from(b);
            }
        };
        fill(&mut self.oem, &other.oem);
        fill(&mut self.model_name_hint, &other.model_name_hint);
        fill(&mut self.year, &other.year);
        fill(&mut self.engine, &other.engine);
        fill(&mut self.drive, &other.drive);
        if self.gearbox_type.is_none() {
            self.gearbox_type = other.gearbox_type;
        }
    }
}

/// The key identical requests share: `tc::jf011e::nissan::x-trail`, `pn::31020-3vx2d::nissan::qashqai`,
/// `tc::a245e`, `model::jf011e::nissan`, `vehicle::nissan::x-trail::cvt`. Lower case, single spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SearchKey(String);

fn key_part(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

impl SearchKey {
    /// The key of `subject`: by transmission code, else OEM number (both with make and model when
    /// known, as the old system keyed them), else model name, else the vehicle and gearbox type.
    pub fn of(subject: &PriceSubject) -> Self {
        let vehicle: String =
            [&subject.make, &subject.model].into_iter().flatten().map(|v| format!("::{}", key_part(v))).collect();
        let key = if let Some(tc) = &subject.transmission_code {
            format!("tc::{}{vehicle}", key_part(tc))
        } else if let Some(oem) = &subject.oem {
            format!("pn::{}{vehicle}", key_part(oem))
        } else if let Some(name) = &subject.model_name_hint {
            format!("model::{}{vehicle}", key_part(name))
        } else {
            let kind = subject.gearbox_type.map_or("any".to_string(), |t| t.as_str().to_lowercase());
            format!("vehicle{vehicle}::{kind}")
        };
        Self(key)
    }

    /// The key text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SearchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Key of the identification cache (code → market model name): `tc:JF011E` / `pn:31020-3VX2D`
/// (upper case, no spaces). `None` for an empty code or a type label, which must never be cached:
/// `tc:AT` would give one vehicle's gearbox to every automatic.
pub fn identity_key(kind: CodeKind, code: &str) -> Option<String> {
    let normalized: String = code.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase();
    if normalized.is_empty() || is_gearbox_type_label(&normalized) {
        return None;
    }
    let prefix = match kind {
        CodeKind::TransmissionCode => "tc",
        CodeKind::OemPartNumber => "pn",
    };
    Some(format!("{prefix}:{normalized}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(oem: Option<&str>, tc: Option<&str>, make: Option<&str>, model: Option<&str>) -> SubjectInput {
        SubjectInput {
            oem: oem.map(String::from),
            transmission_code: tc.map(String::from),
            make: make.map(String::from),
            model: model.map(String::from),
            ..Default::default()
        }
    }

    fn key(i: SubjectInput) -> String {
        SearchKey::of(&PriceSubject::parse(i).unwrap()).as_str().to_string()
    }

    #[test]
    fn keys_of_the_old_system() {
        assert_eq!(key(input(None, Some("jf011e"), Some("Nissan"), Some(" X-Trail "))), "tc::jf011e::nissan::x-trail");
        assert_eq!(
            key(input(Some("31020-3VX2D"), None, Some("NISSAN"), Some("QASHQAI"))),
            "pn::31020-3vx2d::nissan::qashqai"
        );
        assert_eq!(key(input(None, Some("A245E"), None, None)), "tc::a245e");
        // A code and a part number: the code keys (a vehicle lookup passes both).
        assert_eq!(key(input(Some("31020-3VX2D"), Some("JF011E"), None, None)), "tc::jf011e");
        assert_eq!(key(input(None, None, Some("Nissan"), Some("X  Trail"))), "vehicle::nissan::x trail::any");
        let mut i = input(None, None, Some("Nissan"), Some("X-Trail"));
        i.gearbox_type = Some(GearboxType::Cvt);
        assert_eq!(key(i), "vehicle::nissan::x-trail::cvt");
        let mut i = input(None, None, Some("Nissan"), None);
        i.model_name_hint = Some("JF011E".into());
        assert_eq!(key(i), "model::jf011e::nissan");
    }

    #[test]
    fn control_characters_in_free_text_are_refused() {
        let err = PriceSubject::parse(input(None, None, Some("Nis\u{0}san"), Some("X-Trail"))).unwrap_err();
        assert_eq!(err, SubjectError::ControlCharacter { field: "make" });
        let err = PriceSubject::parse(input(Some("310\u{0}20"), None, None, None)).unwrap_err();
        assert!(matches!(err, SubjectError::InvalidCode { field: "oem", .. }), "{err:?}");
    }

    #[test]
    fn identical_requests_share_a_key() {
        let a = key(input(None, Some(" jf 011e"), Some("NISSAN"), Some("QASHQAI")));
        let b = key(input(None, Some("JF011E"), Some("nissan"), Some("qashqai ")));
        assert_eq!(a, b);
    }

    #[test]
    fn type_labels_are_never_keys() {
        for label in ["AT", "CVT", "M-CVT", "4AT", "7DCT", "АКПП"] {
            let err = PriceSubject::parse(input(None, Some(label), None, None)).unwrap_err();
            assert_eq!(err, SubjectError::TypeLabelOnly(label.to_uppercase()), "{label}");
            let err = PriceSubject::parse(input(Some(label), None, None, None)).unwrap_err();
            assert!(matches!(err, SubjectError::TypeLabelOnly(_)), "{label}");
        }
        // With the vehicle, the label is the gearbox type.
        let s = PriceSubject::parse(input(None, Some("M-CVT"), Some("Mitsubishi"), Some("Lancer"))).unwrap();
        assert_eq!(s.transmission_code, None);
        assert_eq!(s.gearbox_type, Some(GearboxType::Cvt));
        assert_eq!(SearchKey::of(&s).as_str(), "vehicle::mitsubishi::lancer::cvt");
        let s = PriceSubject::parse(input(None, Some("4AT"), Some("Toyota"), Some("Camry"))).unwrap();
        assert_eq!(s.gearbox_type, Some(GearboxType::Automatic));
        for label in ["AT", "CVT", "M-CVT", "4AT"] {
            assert_eq!(identity_key(CodeKind::TransmissionCode, label), None, "{label}");
        }
        assert_eq!(identity_key(CodeKind::TransmissionCode, " jf011e ").as_deref(), Some("tc:JF011E"));
        assert_eq!(identity_key(CodeKind::OemPartNumber, "31020 3VX2D").as_deref(), Some("pn:310203VX2D"));
        assert_eq!(identity_key(CodeKind::OemPartNumber, " "), None);
    }

    #[test]
    fn codes_are_moved_to_their_place() {
        let s = PriceSubject::parse(input(None, Some("31020-3VX2D"), None, None)).unwrap();
        assert_eq!((s.oem.as_deref(), s.transmission_code.as_deref()), (Some("31020-3VX2D"), None));
        let s = PriceSubject::parse(input(Some("jf011e"), None, None, None)).unwrap();
        assert_eq!((s.oem.as_deref(), s.transmission_code.as_deref()), (None, Some("JF011E")));
        let s = PriceSubject::parse(input(Some("A 204 270 84 04"), None, None, None)).unwrap();
        assert_eq!(s.oem.as_deref(), Some("A 204 270 84 04"));
        assert_eq!(s.code_kind(), Some(CodeKind::OemPartNumber));
    }

    #[test]
    fn bad_requests_are_refused() {
        assert_eq!(PriceSubject::parse(SubjectInput::default()), Err(SubjectError::NothingToSearch));
        assert_eq!(PriceSubject::parse(input(None, None, Some("Nissan"), None)), Err(SubjectError::NothingToSearch));
        assert_eq!(PriceSubject::parse(input(Some("  "), Some(""), None, None)), Err(SubjectError::NothingToSearch));
        assert!(matches!(
            PriceSubject::parse(input(Some("<script>"), None, None, None)),
            Err(SubjectError::InvalidCode { field: "oem", .. })
        ));
        assert_eq!(
            PriceSubject::parse(input(None, Some(&"A".repeat(41)), None, None)),
            Err(SubjectError::TooLong { field: "transmission_code", max: 40 })
        );
        assert_eq!(
            PriceSubject::parse(input(None, None, Some(&"N".repeat(61)), Some("X"))),
            Err(SubjectError::TooLong { field: "make", max: 60 })
        );
    }

    #[test]
    fn names_codes_and_merging() {
        let mut i = input(Some("31020-3VX2D"), None, Some("NISSAN"), Some("QASHQAI"));
        i.model_name_hint = Some("cvt".into());
        let mut s = PriceSubject::parse(i).unwrap();
        assert_eq!(s.model_name_hint, None, "a type label is no model name");
        assert_eq!(s.display_name(), "NISSAN QASHQAI КПП");
        s.merge(&PriceSubject {
            model_name_hint: Some("JF011E".into()),
            gearbox_type: Some(GearboxType::Cvt),
            ..Default::default()
        });
        assert_eq!(s.display_name(), "JF011E");
        assert_eq!(s.codes(), ["31020-3VX2D", "JF011E"]);
        assert_eq!(s.vehicle_line(), "NISSAN QASHQAI");
        let q = s.query_input(false);
        assert_eq!((q.oem, q.model_name, q.kind), (Some("31020-3VX2D"), Some("JF011E"), Some(CodeKind::OemPartNumber)));
        let s = PriceSubject::parse(input(Some("31020-3VX2D"), None, None, None)).unwrap();
        assert_eq!(s.display_name(), "31020-3VX2D");
    }
}
