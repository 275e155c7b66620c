//! What a lead says: the fields the extraction table reads from a [`Submission`], and the lead's
//! kind.
//!
//! The table is the old system's, kept in its order (keywords are written
//! normalised, so `объём` is `объем`): for each field the answers
//! are searched keyword by keyword (the first answer whose question contains the keyword wins),
//! then the legacy results by name prefix. English keywords follow the Russian ones, matched as
//! whole words so that `car` does not match `card`. Two changes on purpose: answers with an empty
//! value are skipped (the old system stopped at them), and each answer feeds at most one of the
//! descriptive fields, taken in the old order (gearbox, engine type, volume, model, car, VIN,
//! city, tires), so that "Какой тип коробки у вашего автомобиля?" is the gearbox and not also the
//! car.

use std::cell::RefCell;
use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::contact::{ContactInfo, Phone, PreferredChannel, TelegramUsername};
use super::keys::{Keyword, collapse, normalize_key};
use super::submission::{Answer, Submission, SubmissionFormat};
use crate::detect::{self, CandidateKind, GearboxType, VEHICLE_LOOKUP_MIN_SCORE};
use crate::vehicle_lookup::IdType;

use Keyword::{Exact, Sub, Word};

/// Longest key of [`LeadFields::raw_fields`], in characters (as the old system cut them).
const RAW_KEY_CHARS: usize = 60;
/// Longest single-line field kept, in characters.
const FIELD_CHARS: usize = 300;

/// What kind of part a lead asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadKind {
    #[default]
    Gearbox,
    Engine,
    Tires,
}

impl crate::tenant::LeadSettings {
    /// Whether leads of `kind` get the detailed auto-response.
    pub fn detailed_reply(&self, kind: LeadKind) -> bool {
        match kind {
            LeadKind::Gearbox => self.gearbox_template_enabled,
            LeadKind::Engine => self.engine_template_enabled,
            LeadKind::Tires => self.tires_template_enabled,
        }
    }
}

impl LeadKind {
    pub const ALL: [LeadKind; 3] = [Self::Gearbox, Self::Engine, Self::Tires];

    /// `gearbox`, `engine` or `tires`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gearbox => "gearbox",
            Self::Engine => "engine",
            Self::Tires => "tires",
        }
    }

    /// Parses the name [`LeadKind::as_str`] gives.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for LeadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fields of a lead. Empty values are `None`; single-line fields are trimmed with whitespace
/// collapsed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeadFields {
    /// The quiz's or form's name (`Квиз` for a Marquiz body without one, else the lead form's name
    /// or `Заявка`).
    pub form_name: String,
    pub client_name: Option<String>,
    /// The customer's phone number, normalised.
    pub phone: Option<Phone>,
    /// The phone number as typed, when one was given (valid or not).
    pub phone_raw: Option<String>,
    pub email: Option<String>,
    pub telegram: Option<TelegramUsername>,
    /// A number given for MAX (the phone is used when there is none).
    pub max_phone: Option<Phone>,
    pub preferred_channel: Option<PreferredChannel>,
    /// Make, model, year as the customer wrote them.
    pub car: Option<String>,
    /// A VIN or FRAME number the detector accepted, normalised.
    pub vin: Option<String>,
    pub vin_type: Option<IdType>,
    /// The gearbox type as answered (`Автомат`).
    pub gearbox_type: Option<String>,
    /// The same as a canonical code (`AT`, `MT`, `CVT`, `DCT`, `AMT`) when the detector reads one.
    pub gearbox_code: Option<GearboxType>,
    pub engine_type: Option<String>,
    pub engine_volume: Option<String>,
    pub engine_model: Option<String>,
    pub city: Option<String>,
    pub tire_season: Option<String>,
    pub tire_method: Option<String>,
    pub tire_width: Option<String>,
    pub tire_height: Option<String>,
    pub tire_diameter: Option<String>,
    /// Every answer: `(question lower-cased and cut to 60 characters, answer)`, in the order sent.
    pub raw_fields: Vec<(String, String)>,
    /// UTM tags, page, transaction id, … (`utm source`, `href`, `tranid`).
    pub tracking: Vec<(String, String)>,
}

const GEARBOX_TYPE: &[Keyword] = &[
    Sub("тип коробки"),
    Sub("тип кпп"),
    Sub("коробка передач"),
    Sub("коробка"),
    Word("gearbox type"),
    Word("transmission type"),
    Word("gearbox"),
    Word("transmission"),
];
const GEARBOX_TYPE_LEGACY: &[&str] = &["тип коробки", "тип кпп", "коробка"];
const ENGINE_TYPE: &[Keyword] = &[
    Sub("тип двигателя"),
    Sub("вид двигателя"),
    Sub("двигатель"),
    Word("engine type"),
    Word("fuel type"),
    Exact("engine"),
    Exact("fuel"),
];
const ENGINE_TYPE_LEGACY: &[&str] = &["тип двигателя", "двигатель"];
const ENGINE_VOLUME: &[Keyword] = &[
    Sub("объем двигателя"),
    Sub("объем мотора"),
    Sub("объем"),
    Word("engine volume"),
    Word("engine size"),
    Word("displacement"),
];
const ENGINE_VOLUME_LEGACY: &[&str] = &["объем двигателя", "объем"];
const ENGINE_MODEL: &[Keyword] = &[
    Sub("модель двигателя"),
    Sub("маркировка двигателя"),
    Sub("модель мотора"),
    Word("engine model"),
    Word("engine code"),
];
const ENGINE_MODEL_LEGACY: &[&str] = &["модель двигателя"];
const CAR: &[Keyword] = &[
    Sub("марка авто"),
    Sub("марка и год"),
    Sub("автомобиль"),
    Sub("марка машины"),
    Sub("авто"),
    Sub("марка и модель"),
    Word("car"),
    Word("vehicle"),
    Word("make"),
    Word("brand"),
    Exact("марка"),
];
/// A car answer that names only the make: the model and year asked apart are added to it.
const CAR_MAKE_ONLY: &[Keyword] = &[
    Exact("марка"),
    Exact("марка авто"),
    Exact("марка автомобиля"),
    Exact("марка машины"),
    Exact("make"),
    Exact("car make"),
    Exact("brand"),
    Exact("car brand"),
];
const CAR_MODEL: &[Keyword] = &[
    Exact("модель"),
    Exact("модель авто"),
    Exact("модель автомобиля"),
    Exact("модель машины"),
    Exact("model"),
    Exact("car model"),
    Exact("vehicle model"),
];
const CAR_YEAR: &[Keyword] = &[Sub("год выпуска"), Exact("год"), Exact("year"), Exact("car year"), Word("model year")];
const CAR_LEGACY: &[&str] = &["марка авто", "автомобиль", "авто"];
const VIN: &[Keyword] = &[Sub("vin"), Sub("вин"), Sub("номер кузова"), Word("frame")];
const VIN_LEGACY: &[&str] = &["vin", "вин"];
const CITY: &[Keyword] = &[Sub("город"), Sub("ваш город"), Word("city"), Word("town")];
const CITY_LEGACY: &[&str] = &["город"];
const TIRE_SEASON: &[Keyword] = &[Sub("сезон"), Sub("комплект шин"), Word("season")];
const TIRE_SEASON_LEGACY: &[&str] = &["сезон"];
const TIRE_METHOD: &[Keyword] = &[Sub("удобнее подобрать"), Sub("способ подбора"), Sub("как подобрать")];
const TIRE_METHOD_LEGACY: &[&str] = &["удобнее подобрать"];
const TIRE_WIDTH: &[Keyword] = &[Sub("ширина"), Word("width")];
const TIRE_WIDTH_LEGACY: &[&str] = &["ширина"];
const TIRE_HEIGHT: &[Keyword] = &[Sub("высота"), Word("height"), Word("profile")];
const TIRE_HEIGHT_LEGACY: &[&str] = &["высота"];
const TIRE_DIAMETER: &[Keyword] = &[Sub("диаметр"), Word("diameter"), Word("rim")];
const TIRE_DIAMETER_LEGACY: &[&str] = &["диаметр"];
const TELEGRAM: &[Keyword] = &[Sub("telegram"), Sub("телеграм"), Sub("юзернейм"), Sub("username"), Exact("tg")];
const MAX_NUMBER: &[Keyword] =
    &[Sub("max"), Sub("номер max"), Sub("max номер"), Sub("номер в max"), Sub("ваш номер max"), Word("макс")];
const PHONE_ANSWER: &[Keyword] = &[Sub("телефон"), Word("phone")];
const NAME_ANSWER: &[Keyword] = &[Exact("имя"), Exact("name"), Sub("ваше имя"), Sub("как вас зовут")];

impl LeadFields {
    /// Reads the fields of `submission`. `form_name` names the lead form, used when the body
    /// names no quiz or form.
    pub fn extract(submission: &Submission, form_name: Option<&str>) -> LeadFields {
        let s = submission;
        let finder = Finder::new(s);
        let c = &s.contacts;

        let phone_raw = c.phone.clone().or_else(|| finder.peek(PHONE_ANSWER));
        let phone = phone_raw
            .as_deref()
            .and_then(|p| Phone::parse(p).ok())
            .or_else(|| c.whatsapp.as_deref().and_then(|w| Phone::parse(w).ok()));
        let telegram = [c.telegram.clone(), finder.peek(TELEGRAM)]
            .into_iter()
            .flatten()
            .find_map(|t| TelegramUsername::parse(&t).ok());
        let max_phone = c
            .max
            .iter()
            .cloned()
            .chain(MAX_NUMBER.iter().filter_map(|k| finder.peek(std::slice::from_ref(k))))
            .find_map(|m| Phone::parse(&m).ok());

        // The descriptive fields in the old system's order; each answer feeds one field, so a
        // gearbox question that mentions "автомобиля" is not also read as the car.
        let find = |keywords: &[Keyword], legacy: &[&str]| finder.take(keywords, legacy).and_then(|v| one_line(&v));
        let gearbox_type = find(GEARBOX_TYPE, GEARBOX_TYPE_LEGACY);
        let engine_type = find(ENGINE_TYPE, ENGINE_TYPE_LEGACY);
        let engine_volume = find(ENGINE_VOLUME, ENGINE_VOLUME_LEGACY);
        let engine_model = find(ENGINE_MODEL, ENGINE_MODEL_LEGACY);
        let car = finder.take_with_question(CAR, CAR_LEGACY).map(|(question, mut car)| {
            if CAR_MAKE_ONLY.iter().any(|k| k.matches(&question)) {
                // "Марка: Kia", "Модель: Rio", "Год выпуска: 2015" → "Kia Rio 2015".
                for part in [CAR_MODEL, CAR_YEAR].into_iter().filter_map(|k| finder.take(k, &[])) {
                    if !car.to_lowercase().contains(&part.to_lowercase()) {
                        car = format!("{car} {part}");
                    }
                }
            }
            car
        });
        let car = car.and_then(|v| one_line(&v));
        let vin_answer = finder.take(VIN, VIN_LEGACY);
        let vehicle = vin_answer
            .as_deref()
            .and_then(|v| vehicle_id(&format!("VIN {v}")))
            .or_else(|| vehicle_id(&s.answers.iter().map(|a| a.answer.as_str()).collect::<Vec<_>>().join("\n")));
        let gearbox_code = gearbox_type.as_deref().and_then(|g| detect::detect(g).gearbox_type);
        let city = find(CITY, CITY_LEGACY);
        let tire_season = find(TIRE_SEASON, TIRE_SEASON_LEGACY);
        let tire_method = find(TIRE_METHOD, TIRE_METHOD_LEGACY);
        let tire_width = find(TIRE_WIDTH, TIRE_WIDTH_LEGACY);
        let tire_height = find(TIRE_HEIGHT, TIRE_HEIGHT_LEGACY);
        let tire_diameter = find(TIRE_DIAMETER, TIRE_DIAMETER_LEGACY);

        let default_name = match s.format {
            SubmissionFormat::Marquiz | SubmissionFormat::MarquizLegacy => "Квиз",
            SubmissionFormat::Json | SubmissionFormat::Form => "Заявка",
        };
        let form_name = s
            .form_name
            .clone()
            .or_else(|| form_name.map(collapse).filter(|n| !n.is_empty()))
            .unwrap_or_else(|| default_name.to_string());

        let mut seen = HashSet::new();
        let raw_fields = s
            .answers
            .iter()
            .chain(&s.legacy)
            .map(|a| (a.question.to_lowercase().chars().take(RAW_KEY_CHARS).collect::<String>(), a.answer.clone()))
            .filter(|(k, _)| seen.insert(k.clone()))
            .collect();

        LeadFields {
            form_name: one_line(&form_name).unwrap_or_default(),
            client_name: c.name.clone().or_else(|| finder.peek(NAME_ANSWER)).and_then(|n| one_line(&n)),
            phone,
            phone_raw: phone_raw.and_then(|p| one_line(&p)),
            email: c.email.as_deref().and_then(one_line).filter(|e| e.contains('@')),
            telegram,
            max_phone,
            preferred_channel: preferred_channel(s),
            car,
            vin: vehicle.as_ref().map(|(value, _)| value.clone()),
            vin_type: vehicle.map(|(_, t)| t),
            gearbox_type,
            gearbox_code,
            engine_type,
            engine_volume,
            engine_model,
            city,
            tire_season,
            tire_method,
            tire_width,
            tire_height,
            tire_diameter,
            raw_fields,
            tracking: s.tracking.clone(),
        }
    }

    /// The lead's kind (as the old system decided it, with the form's own word first):
    /// 1. the form's name says tires (`шин`, `резин`, `колес`, `tire`, `tyre`, `wheel`), engine
    ///    (`двигател`, `мотор`, `engine`, `motor`) or gearbox (`кпп`, `коробк`, `трансмисс`,
    ///    `вариатор`, `gearbox`, `transmission`), in that order;
    /// 2. else any tire field (season or size) makes it tires, any engine field engine;
    /// 3. else gearbox.
    pub fn kind(&self) -> LeadKind {
        let name = self.form_name.to_lowercase();
        let says = |words: &[&str]| words.iter().any(|w| name.contains(w));
        if says(&["шин", "резин", "колес", "колёс", "tire", "tyre", "wheel"]) {
            return LeadKind::Tires;
        }
        if says(&["двигател", "мотор", "engine", "motor"]) {
            return LeadKind::Engine;
        }
        if says(&["кпп", "коробк", "трансмисс", "вариатор", "gearbox", "transmission"]) {
            return LeadKind::Gearbox;
        }
        let any = |fields: &[&Option<String>]| fields.iter().any(|f| f.is_some());
        if any(&[&self.tire_season, &self.tire_width, &self.tire_height, &self.tire_diameter]) {
            LeadKind::Tires
        } else if any(&[&self.engine_type, &self.engine_volume, &self.engine_model]) {
            LeadKind::Engine
        } else {
            LeadKind::Gearbox
        }
    }

    /// How the lead can be reached.
    pub fn contact(&self) -> ContactInfo {
        ContactInfo { phone: self.phone.clone(), max_phone: self.max_phone.clone(), telegram: self.telegram.clone() }
    }
}

/// Preferred channel: `telegram` when the customer chose it or gave a Telegram
/// username and no phone; else `max` when chosen or a MAX number was given; else `whatsapp` when
/// chosen or a WhatsApp number was given without a phone; else none (automatic routing).
fn preferred_channel(s: &Submission) -> Option<PreferredChannel> {
    let chosen = s.messenger.as_deref().and_then(PreferredChannel::parse_loose);
    let c = &s.contacts;
    let no_phone = c.phone.is_none();
    if chosen == Some(PreferredChannel::Telegram) || (c.telegram.is_some() && no_phone) {
        Some(PreferredChannel::Telegram)
    } else if chosen == Some(PreferredChannel::Max) || c.max.is_some() {
        Some(PreferredChannel::Max)
    } else if chosen == Some(PreferredChannel::Whatsapp) || (c.whatsapp.is_some() && no_phone) {
        Some(PreferredChannel::Whatsapp)
    } else {
        None
    }
}

/// The extraction table's searches over one submission.
struct Finder<'a> {
    /// Answers, then composite answers, with their normalised questions.
    answers: Vec<(String, &'a Answer)>,
    legacy: Vec<(String, &'a Answer)>,
    /// Answers (`false`, index) and legacy results (`true`, index) a field already took.
    taken: RefCell<HashSet<(bool, usize)>>,
}

impl<'a> Finder<'a> {
    fn new(s: &'a Submission) -> Self {
        let norm = |a: &'a Answer| (normalize_key(&a.question), a);
        Finder {
            answers: s.answers.iter().chain(&s.composites).map(norm).collect(),
            legacy: s.legacy.iter().map(norm).collect(),
            taken: RefCell::new(HashSet::new()),
        }
    }

    /// The first non-empty answer whose question matches a keyword, keyword by keyword (none
    /// taken); else the first legacy result whose name starts with a prefix, prefix by prefix.
    /// Takes what it returns.
    fn take(&self, keywords: &[Keyword], legacy: &[&str]) -> Option<String> {
        self.take_with_question(keywords, legacy).map(|(_, answer)| answer)
    }

    /// [`Finder::take`], with the normalised question the answer came from.
    fn take_with_question(&self, keywords: &[Keyword], legacy: &[&str]) -> Option<(String, String)> {
        let mut taken = self.taken.borrow_mut();
        let free = |legacy: bool, i: usize, a: &Answer| !taken.contains(&(legacy, i)) && !a.answer.trim().is_empty();
        let found = keywords
            .iter()
            .find_map(|k| self.answers.iter().enumerate().find(|(i, (q, a))| k.matches(q) && free(false, *i, a)))
            .map(|(i, (q, a))| ((false, i), q, *a))
            .or_else(|| {
                legacy.iter().find_map(|p| {
                    self.legacy
                        .iter()
                        .enumerate()
                        .find(|(i, (q, a))| q.starts_with(p) && free(true, *i, a))
                        .map(|(i, (q, a))| ((true, i), q, *a))
                })
            });
        let (key, question, answer) = found?;
        taken.insert(key);
        Some((question.clone(), answer.answer.trim().to_string()))
    }

    /// Like [`Finder::take`] over the answers only, without taking (contact look-ups).
    fn peek(&self, keywords: &[Keyword]) -> Option<String> {
        keywords.iter().find_map(|k| {
            self.answers
                .iter()
                .find(|(q, a)| k.matches(q) && !a.answer.trim().is_empty())
                .map(|(_, a)| a.answer.trim().to_string())
        })
    }
}

/// The best VIN or FRAME in `text` the detector accepts for a lookup (none when it sees two).
fn vehicle_id(text: &str) -> Option<(String, IdType)> {
    let d = detect::detect(text);
    if !d.conflicts.is_empty() {
        return None;
    }
    let c = d.vehicle_id(VEHICLE_LOOKUP_MIN_SCORE)?;
    let id_type = if c.kind == CandidateKind::Frame { IdType::Frame } else { IdType::Vin };
    Some((c.value.clone(), id_type))
}

fn one_line(v: &str) -> Option<String> {
    let v: String = collapse(v).chars().take(FIELD_CHARS).collect();
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_and_prefixes_are_written_normalised() {
        let tables = [
            GEARBOX_TYPE,
            ENGINE_TYPE,
            ENGINE_VOLUME,
            ENGINE_MODEL,
            CAR,
            CAR_MAKE_ONLY,
            CAR_MODEL,
            CAR_YEAR,
            VIN,
            CITY,
            TIRE_SEASON,
            TIRE_METHOD,
            TIRE_WIDTH,
            TIRE_HEIGHT,
            TIRE_DIAMETER,
            TELEGRAM,
            MAX_NUMBER,
            PHONE_ANSWER,
            NAME_ANSWER,
        ];
        for k in tables.iter().flat_map(|t| t.iter()) {
            assert_eq!(normalize_key(k.text()), k.text(), "{k:?}");
        }
        let prefixes = [
            GEARBOX_TYPE_LEGACY,
            ENGINE_TYPE_LEGACY,
            ENGINE_VOLUME_LEGACY,
            ENGINE_MODEL_LEGACY,
            CAR_LEGACY,
            VIN_LEGACY,
            CITY_LEGACY,
            TIRE_SEASON_LEGACY,
            TIRE_METHOD_LEGACY,
            TIRE_WIDTH_LEGACY,
            TIRE_HEIGHT_LEGACY,
            TIRE_DIAMETER_LEGACY,
        ];
        for p in prefixes.iter().flat_map(|t| t.iter()) {
            assert_eq!(&normalize_key(p), p);
        }
    }
}
