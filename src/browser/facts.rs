//! Vehicle facts from catalogue tables, definition lists and `Label: value` lines, with the field
//! labels as data.

use serde::{Deserialize, Serialize};

use super::outcome::VehicleMeta;
use super::rules;

/// Labels (lower case) that name each field. A leading `=` means the whole label must be equal;
/// otherwise the label must contain the keyword. Fields are tried in the order of this struct's
/// fields, so `модель кпп` is a gearbox model, not the car model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FieldLabels {
    /// Gearbox model code (`Модель КПП`).
    pub gearbox_model: Vec<String>,
    /// Factory code / marking (`Заводской номер КПП`).
    pub factory_code: Vec<String>,
    /// Never used: serial numbers and identifiers (`Номер КПП`, `VIN`).
    pub ignore: Vec<String>,
    /// Aggregate list (`Используемые агрегаты`), searched for a gearbox code.
    pub aggregates: Vec<String>,
    /// Make.
    pub make: Vec<String>,
    /// Car model.
    pub model: Vec<String>,
    /// Year / production date.
    pub year: Vec<String>,
    /// Engine.
    pub engine: Vec<String>,
    /// Body.
    pub body: Vec<String>,
    /// Modification / grade.
    pub modification: Vec<String>,
    /// Drive.
    pub drive: Vec<String>,
    /// Gearbox description (`КПП`, `Коробка передач`), searched for a gearbox code.
    pub transmission: Vec<String>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for FieldLabels {
    fn default() -> Self {
        Self {
            gearbox_model: strings(&[
                "модель кпп",
                "модель коробки",
                "модель акпп",
                "модель мкпп",
                "gearbox model",
                "transmission model",
            ]),
            factory_code: strings(&[
                "заводской номер коробки",
                "заводской номер кпп",
                "заводской код",
                "маркировка кпп",
                "маркировка коробки",
                "код кпп",
                "factory code",
                "=маркировка",
                "=маркировки",
                "=marking",
                "код агрегата",
            ]),
            ignore: strings(&[
                "номер кпп",
                "номер коробки",
                "серийный",
                "vin",
                "номер кузова",
                "=frame",
                "номер двигателя",
            ]),
            aggregates: strings(&["используемые агрегаты", "агрегаты"]),
            make: strings(&["=марка", "=бренд", "=make", "=brand", "=производитель"]),
            model: strings(&["=модель", "=model", "=модель автомобиля", "=серия"]),
            year: strings(&["дата выпуска", "=год", "год выпуска", "=year", "модельный год", "=период выпуска"]),
            engine: strings(&["двигатель", "=engine", "=двс"]),
            body: strings(&["=кузов", "тип кузова", "=body"]),
            modification: strings(&["модификация", "комплектация", "=grade", "=modification"]),
            drive: strings(&["привод", "=drive", "drivetrain"]),
            transmission: strings(&["кпп", "коробка передач", "трансмиссия", "=transmission", "=gearbox"]),
        }
    }
}

/// A field a label can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    GearboxModel,
    FactoryCode,
    Ignore,
    Aggregates,
    Make,
    Model,
    Year,
    Engine,
    Body,
    Modification,
    Drive,
    Transmission,
}

impl FieldLabels {
    /// The field `label` names, if any.
    pub(crate) fn classify(&self, label: &str) -> Option<Field> {
        let label = label.trim().trim_end_matches([':', '：']).trim().to_lowercase().replace('ё', "е");
        if label.is_empty() || label.chars().count() > 60 {
            return None;
        }
        let hit = |keys: &[String]| {
            keys.iter().any(|k| match k.strip_prefix('=') {
                Some(exact) => label == exact,
                None => label.contains(k.as_str()),
            })
        };
        let order: [(&[String], Field); 12] = [
            (&self.gearbox_model, Field::GearboxModel),
            (&self.factory_code, Field::FactoryCode),
            (&self.ignore, Field::Ignore),
            (&self.aggregates, Field::Aggregates),
            (&self.make, Field::Make),
            (&self.model, Field::Model),
            (&self.year, Field::Year),
            (&self.engine, Field::Engine),
            (&self.body, Field::Body),
            (&self.modification, Field::Modification),
            (&self.drive, Field::Drive),
            (&self.transmission, Field::Transmission),
        ];
        order.iter().find(|(keys, _)| hit(keys)).map(|(_, f)| *f)
    }
}

/// What the vehicle part of a page says, with the label each value came from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    pub meta: VehicleMeta,
    pub gearbox_model: Vec<(String, String)>,
    pub factory_code: Vec<(String, String)>,
    pub transmission: Vec<(String, String)>,
    pub aggregates: Vec<(String, String)>,
}

impl Facts {
    fn put(&mut self, field: Field, label: &str, value: &str) {
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        if value.is_empty() || value == "-" || value == "—" {
            return;
        }
        let value: String = value.chars().take(300).collect();
        let slot = |s: &mut Option<String>| {
            if s.is_none() {
                *s = Some(value.clone());
            }
        };
        let pair = (label.trim().to_owned(), value.clone());
        match field {
            Field::GearboxModel => self.gearbox_model.push(pair),
            Field::FactoryCode => self.factory_code.push(pair),
            Field::Aggregates => self.aggregates.push(pair),
            Field::Transmission => {
                slot(&mut self.meta.transmission);
                self.transmission.push(pair);
            }
            Field::Ignore => {}
            Field::Make => slot(&mut self.meta.make),
            Field::Model => slot(&mut self.meta.model),
            Field::Year => slot(&mut self.meta.year),
            Field::Engine => slot(&mut self.meta.engine),
            Field::Body => slot(&mut self.meta.body),
            Field::Modification => slot(&mut self.meta.modification),
            Field::Drive => slot(&mut self.meta.drive),
        }
    }

    /// Reads tables (a header row over a value row, or two-cell label/value rows), label/value
    /// pairs and `Label: value` text lines.
    pub(crate) fn collect(
        labels: &FieldLabels,
        tables: &[Vec<Vec<String>>],
        pairs: &[(String, String)],
        lines: &[String],
    ) -> Self {
        let mut facts = Self::default();
        for table in tables {
            let Some(header) = table.first() else { continue };
            let classified: Vec<Option<Field>> = header.iter().map(|h| labels.classify(h)).collect();
            let known = classified.iter().filter(|f| f.is_some()).count();
            if table.len() >= 2 && known >= 2 && known * 2 >= header.len() {
                // Horizontal: labels in the first row (at least two of them), the vehicle in the second.
                let row = &table[1];
                for ((label, field), value) in header.iter().zip(&classified).zip(row) {
                    if let Some(field) = field {
                        facts.put(*field, label, value);
                    }
                }
                continue;
            }
            for row in table {
                if let [label, value] = row.as_slice()
                    && let Some(field) = labels.classify(label)
                {
                    facts.put(field, label, value);
                }
            }
        }
        for (label, value) in pairs {
            if let Some(field) = labels.classify(label) {
                facts.put(field, label, value);
            }
        }
        for line in lines {
            if let Some((label, value)) = line.split_once([':', '：'])
                && let Some(field) = labels.classify(label)
            {
                facts.put(field, label, value);
            }
        }
        facts
    }

    /// Gearbox model: `Модель КПП` cells, then gearbox descriptions, then aggregate lists. Returns
    /// the model and the label it came from.
    pub(crate) fn gearbox_model(&self) -> Option<(String, String)> {
        let body = self.meta.body.as_deref();
        self.gearbox_model
            .iter()
            .chain(&self.transmission)
            .chain(&self.aggregates)
            .find_map(|(label, value)| rules::model_from_text(value, body).map(|m| (m, label.clone())))
    }

    /// Factory code from its own cells (first plausible value).
    pub(crate) fn factory_code(&self) -> Option<String> {
        self.factory_code.iter().map(|(_, v)| v.trim().to_uppercase()).find(|v| {
            (2..=30).contains(&v.chars().count())
                && v.chars().all(|c| c.is_ascii_alphanumeric() || "-()./ ".contains(c))
        })
    }
}

/// Splits a title like `TOYOTA / CAMRY` (or `TOYOTA CAMRY`) into make and model.
pub(crate) fn split_title(title: &str) -> (Option<String>, Option<String>) {
    let title = title.trim();
    if let Some((make, model)) = title.split_once(" / ") {
        let make = make.trim();
        let model = model.trim();
        return ((!make.is_empty()).then(|| make.to_owned()), (!model.is_empty()).then(|| model.to_owned()));
    }
    let mut words = title.splitn(2, char::is_whitespace);
    let make = words.next().filter(|w| !w.is_empty()).map(str::to_owned);
    let model = words.next().map(str::trim).filter(|w| !w.is_empty()).map(str::to_owned);
    (make, model)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn labels_classify_in_priority_order() {
        let labels = FieldLabels::default();
        assert_eq!(labels.classify("Модель КПП"), Some(Field::GearboxModel));
        assert_eq!(labels.classify("Заводской номер КПП:"), Some(Field::FactoryCode));
        assert_eq!(labels.classify("Номер КПП"), Some(Field::Ignore));
        assert_eq!(labels.classify("Модель"), Some(Field::Model));
        assert_eq!(labels.classify("КПП"), Some(Field::Transmission));
        assert_eq!(labels.classify("Дата выпуска"), Some(Field::Year));
        assert_eq!(labels.classify("Цвет"), None);
    }

    #[test]
    fn horizontal_and_key_value_tables() {
        let labels = FieldLabels::default();
        let horizontal = vec![
            s(&["Марка", "Модель", "Кузов", "КПП", "Номер КПП"]),
            s(&["MITSUBISHI", "LANCER", "CY2A", "(MFG) TRANSMISSION CVT, F1CJA", "EDDVA4480773"]),
        ];
        let kv = vec![s(&["Двигатель", "4B11"]), s(&["Цвет", "белый"])];
        let facts = Facts::collect(&labels, &[horizontal, kv], &[], &[]);
        assert_eq!(facts.meta.make.as_deref(), Some("MITSUBISHI"));
        assert_eq!(facts.meta.engine.as_deref(), Some("4B11"));
        assert_eq!(facts.gearbox_model().map(|m| m.0).as_deref(), Some("F1CJA"));
        let lines = s(&["Марка: HAVAL", "КПП: 7DCT300"]);
        let facts = Facts::collect(&labels, &[], &[], &lines);
        assert_eq!(facts.meta.make.as_deref(), Some("HAVAL"));
        assert_eq!(facts.gearbox_model().map(|m| m.0).as_deref(), Some("7DCT300"));
        assert_eq!(split_title("TOYOTA / CAMRY"), (Some("TOYOTA".into()), Some("CAMRY".into())));
    }
}
