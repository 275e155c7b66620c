//! Lookup confidence and the gearbox reply suggestion a lookup produces, as the old system scored and worded them.

use crate::detect::GearboxType;
use crate::reply::render_template;
use crate::tenant::AgentSettings;

use super::types::{VehicleData, VehicleDataStatus};

/// Confidence of a lookup answer, as the old system computed it: start at 0.5; +0.3 for an OEM
/// found; +0.2 for a model-only answer with a model; +0.1 when podzamenu answered; +0.1 when OEM
/// candidates were listed; −0.2 when no OEM could be shown (decoder-only answers); −0.2 when neither
/// an OEM nor a model was found. Clamped to `0..=1`, two decimals.
pub fn confidence(
    status: VehicleDataStatus,
    has_oem: bool,
    has_model: bool,
    source: Option<&str>,
    has_candidates: bool,
) -> f64 {
    let mut c: f64 = 0.5;
    let found = status == VehicleDataStatus::Found && has_oem;
    let model_only = status == VehicleDataStatus::ModelOnly && has_model;
    if found {
        c += 0.3;
    }
    if model_only {
        c += 0.2;
    }
    if source == Some("podzamenu") {
        c += 0.1;
    }
    if has_candidates {
        c += 0.1;
    }
    if status == VehicleDataStatus::DecoderOnly {
        c -= 0.2;
    }
    if !found && !model_only {
        c -= 0.2;
    }
    (c.clamp(0.0, 1.0) * 100.0).round() / 100.0
}

/// How the templates name a gearbox type: `АКПП`, `МКПП`, `CVT (вариатор)`, `DSG`, `РКПП`.
pub fn gearbox_type_label(t: GearboxType) -> &'static str {
    match t {
        GearboxType::Automatic => "АКПП",
        GearboxType::Manual => "МКПП",
        GearboxType::Cvt => "CVT (вариатор)",
        GearboxType::Dct => "DSG",
        GearboxType::Amt => "РКПП",
    }
}

/// A reply suggestion rendered from one of the tenant's gearbox templates.
#[derive(Debug, Clone, PartialEq)]
pub struct GearboxSuggestion {
    /// Template key (`gearboxLookupFound`, …).
    pub template: &'static str,
    pub text: String,
    pub intent: String,
    pub confidence: f64,
}

/// The reply suggestion for `data`, from the tenant's templates (defaults when not overridden).
///
/// * `FOUND` / `MODEL_ONLY`: `gearboxLookupModelOnly` for model-only answers, else by confidence:
///   ≥ 0.8 `gearboxLookupFound`, ≥ 0.5 `gearboxLookupModelOnly`, below `gearboxTagRequest`. Intent
///   `other` when an OEM or a model-only answer is given, else `gearbox_tag_request`.
/// * `NOT_FOUND` / `DECODER_ONLY`: `gearboxLookupFallback` (the search continues by make, model and
///   gearbox type), intent `gearbox_fallback_search`, confidence 0.5. The gearbox type comes from
///   the customer's own words (`customer_type`), else from the catalogue's transmission field.
pub fn gearbox_suggestion(
    settings: &AgentSettings,
    data: &VehicleData,
    customer_type: Option<GearboxType>,
) -> Option<GearboxSuggestion> {
    let vehicle_type = data
        .vehicle
        .transmission
        .as_deref()
        .and_then(|t| crate::detect::detect(t).gearbox_type)
        .or_else(|| data.gearbox_model().and_then(|m| crate::detect::detect(m).gearbox_type));
    let gearbox_type = customer_type.or(vehicle_type);
    let type_label = gearbox_type.map(gearbox_type_label).or(data.gearbox_model());
    let oem = data.oem();
    let model = data.gearbox_model();
    let values = |model_value: Option<&str>| {
        vec![
            ("oem", oem.map(str::to_string)),
            ("model", model_value.map(str::to_string)),
            ("source", data.source.clone()),
            ("factoryCode", data.gearbox.factory_code.clone()),
            ("idType", Some(data.id_type.label_ru().to_string())),
            ("gearboxType", type_label.map(str::to_string)),
            ("make", data.make().map(str::to_string)),
        ]
    };
    let render = |key: &'static str, values: Vec<(&str, Option<String>)>| {
        let borrowed: Vec<(&str, Option<&str>)> = values.iter().map(|(k, v)| (*k, v.as_deref())).collect();
        render_template(settings, key, &borrowed)
    };
    match data.status {
        VehicleDataStatus::Found | VehicleDataStatus::ModelOnly => {
            let model_only = data.status == VehicleDataStatus::ModelOnly;
            let template = if model_only {
                "gearboxLookupModelOnly"
            } else if data.confidence >= 0.8 {
                "gearboxLookupFound"
            } else if data.confidence >= 0.5 {
                "gearboxLookupModelOnly"
            } else {
                "gearboxTagRequest"
            };
            let answered = (data.status == VehicleDataStatus::Found && oem.is_some()) || model_only;
            Some(GearboxSuggestion {
                template,
                text: render(template, values(model))?,
                intent: if answered { "other" } else { "gearbox_tag_request" }.into(),
                confidence: data.confidence,
            })
        }
        VehicleDataStatus::NotFound | VehicleDataStatus::DecoderOnly => {
            let template = "gearboxLookupFallback";
            // In the fallback text `model` is the car's model, not the gearbox's.
            Some(GearboxSuggestion {
                template,
                text: render(template, values(data.vehicle.model.as_deref()))?,
                intent: "gearbox_fallback_search".into(),
                confidence: 0.5,
            })
        }
    }
}
