//! Pure rules of price lookups: reading prices and mileages from listings, keeping only whole used
//! gearboxes, market statistics, currency conversion, the confidence score, what is searched for
//! and under which key, the tenant's margin and the replies. No IO: fetching pages, search results
//! and rates is the worker's job; it hands the texts it saw to these rules (through the
//! `PriceLookup` aggregate, which records every step). `docs/price-lookup.md` describes the
//! rules and the old system's defects they fix.

mod confidence;
mod currency;
mod filter;
mod format;
mod listing;
mod parse;
mod query;
mod reply;
mod settings;
mod stats;
mod subject;
mod template;

pub use confidence::{ConfidenceBasis, ConfidenceLevel, ConfidenceSignals, PriceConfidence, compute_price_confidence};
pub use currency::{Currency, Rates, RatesError, RatesSource};
pub use filter::check_title;
pub use format::{NBSP, format_date_msk, format_number};
pub use listing::{
    DropReason, DroppedListing, Listing, MAX_TITLE_CHARS, Market, OriginalPrice, RawListing, host_of,
    normalize_listing, site_of,
};
pub use parse::{
    MAX_MILEAGE_KM, MAX_PRICE_RUB, MIN_PRICE_RUB, PriceRejection, PriceText, parse_mileage, parse_price,
    parse_rub_price, parse_structured_price,
};
pub use query::{
    CodeKind, DOMAIN_SCORES, OTHER_DOMAIN_SCORE, QueryInput, build_yandex_queries, classify_code, display_site,
    domain_score, gearbox_label, is_excluded_url, is_gearbox_type_label, is_valid_market_model_name, select_pages,
};
pub use reply::{
    Escalation, OwnOffer, PaymentMethod, PriceAnswer, PriceSuggestion, ReplyContext, SUGGESTED_SITES, SuggestionKind,
    TemplateOverrides, escalation, escalation_text, payment_methods_list, price_suggestions, ready_queries,
    short_reply,
};
pub use settings::{MARGIN_RANGE, MAX_PRICE_NOTE, PriceSettings, ROUNDINGS};
pub use stats::{
    Analysis, FOREIGN_CAP_RATIO, IQR_FACTOR, IQR_MIN_LISTINGS, MEDIAN_SHARE_PERCENT, MIN_PRICED_LISTINGS,
    PRICE_FLOOR_RUB, PriceSummary, analyze, cap_foreign, remove_outliers, summarize, validate_prices,
};
pub use subject::{PriceSubject, SearchKey, SubjectError, SubjectInput, identity_key};
pub use template::{
    MAX_TEMPLATE_CHARS, Rendered, TemplateError, TemplateKind, TemplateValues, preview, render, sample_values,
    validate_template,
};
