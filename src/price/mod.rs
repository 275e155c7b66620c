//! Where market prices come from: the web search, the listing pages it points at, and the parsers
//! that read listings out of those pages.
//!
//! - [`yandex`]: a Yandex Cloud Search API v2 client (`POST {YANDEX_SEARCH_API_URL}/v2/web/search`,
//!   `Authorization: Api-Key …`, base64 XML `rawData`) answering [`yandex::SearchResult`]s or a
//!   typed [`yandex::YandexError`].
//! - [`fetch`]: listing pages over HTTP with a per-page timeout, a body size cap, browser-like
//!   headers, charset decoding and `PRICE_SITE_ORIGINS` mapping ([`SiteOrigins`]).
//! - [`render`]: the [`render::PageRenderer`] seam for pages that need JavaScript, and the rule
//!   that decides when a page does.
//! - [`pages`]: fetch, parse, and render when the rule says so — one call per listing URL.
//! - [`sites`]: one parser per site family (avito, drom, farpost, japancar-like catalogs) and a
//!   generic fallback (JSON-LD, microdata, OpenGraph, price text near gearbox words), all
//!   answering [`sites::RawListing`]s.
//!
//! Nothing here decides what a price is worth: the raw texts go to the pure rules of
//! `aisales_domain::price` (price and mileage parsing, title filter, statistics). The settings of
//! this module are read by [`PriceSourceSettings::load`].

pub mod config;
pub mod estimate;
pub mod fetch;
pub mod pages;
pub mod render;
pub mod sites;
pub mod yandex;

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;

pub use config::PriceLookupConfig;
pub use fetch::{FetchError, FetchedPage, PageFetcher};
pub use pages::{ListingPages, PageListings};
pub use render::{PageRenderer, RenderError, RenderReason};
pub use sites::{RawListing, SiteFamily, StructuredPrice, parse_listings};
pub use yandex::{SearchResponse, SearchResult, YandexError, YandexSearchClient};

/// One environment variable read by [`PriceSourceSettings::load`]: name, default (empty when there
/// is none) and a one-line help, in the shape of the documented `.env` template.
#[derive(Debug, Clone, Copy)]
pub struct PriceVar {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

/// Every variable [`PriceSourceSettings::load`] reads.
pub const PRICE_SOURCE_VARS: &[PriceVar] = &[
    PriceVar {
        name: "YANDEX_SEARCH_API_URL",
        default: DEFAULT_YANDEX_SEARCH_API_URL,
        help: "Yandex Cloud Search API base URL; searches go to {URL}/v2/web/search",
    },
    PriceVar {
        name: "YANDEX_SEARCH_API_KEY",
        default: "",
        help: "API key of a service account with the search-api.webSearch.user role; without it the market search is skipped",
    },
    PriceVar {
        name: "YANDEX_FOLDER_ID",
        default: "",
        help: "Yandex Cloud folder the searches are billed to (required with the key)",
    },
    PriceVar { name: "YANDEX_SEARCH_TIMEOUT_SECS", default: "15", help: "timeout of one search request" },
    PriceVar {
        name: "PRICE_SITE_ORIGINS",
        default: "",
        help: "comma-separated domain=origin pairs: listing URLs on domain (or a subdomain) are fetched from origin with the same path and query (local replicas and tests)",
    },
    PriceVar {
        name: "PRICE_PAGE_TIMEOUT_SECS",
        default: "10",
        help: "timeout of fetching one listing page, redirects and body included",
    },
    PriceVar {
        name: "PRICE_PAGE_MAX_BYTES",
        default: "4194304",
        help: "largest listing page read; a bigger page is given up",
    },
    PriceVar {
        name: "PRICE_RENDER_TIMEOUT_SECS",
        default: "25",
        help: "timeout of rendering one listing page in the browser",
    },
];

/// Base URL of the Yandex Cloud Search API.
pub const DEFAULT_YANDEX_SEARCH_API_URL: &str = "https://searchapi.api.cloud.yandex.net";

/// The API key and folder a search is made with.
#[derive(Clone)]
pub struct YandexCredentials {
    pub api_key: SecretString,
    pub folder_id: String,
}

impl fmt::Debug for YandexCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YandexCredentials").field("api_key", &"[redacted]").field("folder_id", &self.folder_id).finish()
    }
}

/// Settings of the price sources. `Debug` never prints the API key.
#[derive(Debug, Clone)]
pub struct PriceSourceSettings {
    /// `YANDEX_SEARCH_API_URL` without a trailing slash.
    pub yandex_api_url: String,
    /// `YANDEX_SEARCH_API_KEY` and `YANDEX_FOLDER_ID`; `None` when neither is set (the search is
    /// then skipped, which is not an error).
    pub yandex: Option<YandexCredentials>,
    pub yandex_timeout: Duration,
    pub site_origins: SiteOrigins,
    pub page_timeout: Duration,
    pub page_max_bytes: usize,
    pub render_timeout: Duration,
}

impl Default for PriceSourceSettings {
    /// The documented defaults, without search credentials.
    fn default() -> Self {
        PriceSourceSettings {
            yandex_api_url: DEFAULT_YANDEX_SEARCH_API_URL.into(),
            yandex: None,
            yandex_timeout: Duration::from_secs(15),
            site_origins: SiteOrigins::default(),
            page_timeout: Duration::from_secs(10),
            page_max_bytes: 4 * 1024 * 1024,
            render_timeout: Duration::from_secs(25),
        }
    }
}

/// A configuration problem: the variable and one sentence saying what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingProblem {
    pub var: &'static str,
    pub message: String,
}

impl fmt::Display for SettingProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.var, self.message)
    }
}

/// Every problem found in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceSettingsError {
    pub problems: Vec<SettingProblem>,
}

impl fmt::Display for PriceSettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.problems.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for PriceSettingsError {}

impl PriceSourceSettings {
    /// Reads the settings from any source of variables (blank counts as unset) and reports every
    /// problem at once.
    pub fn load(source: &dyn Fn(&str) -> Option<String>) -> Result<Self, PriceSettingsError> {
        let raw = |name: &str| source(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let mut problems = Vec::new();
        let mut problem = |var: &'static str, message: String| problems.push(SettingProblem { var, message });
        let defaults = PriceSourceSettings::default();

        let yandex_api_url = match raw("YANDEX_SEARCH_API_URL") {
            None => defaults.yandex_api_url.clone(),
            Some(value) => match base_url(&value) {
                Ok(url) => url,
                Err(why) => {
                    problem(
                        "YANDEX_SEARCH_API_URL",
                        format!("`{value}` {why}; set e.g. {DEFAULT_YANDEX_SEARCH_API_URL}"),
                    );
                    defaults.yandex_api_url.clone()
                }
            },
        };
        let yandex = match (raw("YANDEX_SEARCH_API_KEY"), raw("YANDEX_FOLDER_ID")) {
            (None, None) => None,
            (Some(key), Some(folder_id)) => {
                if key.chars().any(char::is_whitespace) {
                    problem("YANDEX_SEARCH_API_KEY", "contains whitespace; paste the key's secret value alone".into());
                }
                if !folder_id.chars().all(|c| c.is_ascii_alphanumeric()) {
                    problem(
                        "YANDEX_FOLDER_ID",
                        format!(
                            "`{folder_id}` is not a folder id; copy the id (letters and digits, e.g. b1g…) from the Yandex Cloud console"
                        ),
                    );
                }
                Some(YandexCredentials { api_key: SecretString::from(key), folder_id })
            }
            (Some(_), None) => {
                problem("YANDEX_FOLDER_ID", "missing while YANDEX_SEARCH_API_KEY is set; set the folder id the searches are billed to, or remove the key".into());
                None
            }
            (None, Some(_)) => {
                problem(
                    "YANDEX_SEARCH_API_KEY",
                    "missing while YANDEX_FOLDER_ID is set; set the service account's API key, or remove the folder id"
                        .into(),
                );
                None
            }
        };
        let mut seconds = |var: &'static str, default: Duration| match raw(var) {
            None => default,
            Some(value) => match value.parse::<u64>() {
                Ok(secs @ 1..=600) => Duration::from_secs(secs),
                _ => {
                    problem(
                        var,
                        format!(
                            "`{value}` is not a number of seconds between 1 and 600; remove it to use the default {}",
                            default.as_secs()
                        ),
                    );
                    default
                }
            },
        };
        let yandex_timeout = seconds("YANDEX_SEARCH_TIMEOUT_SECS", defaults.yandex_timeout);
        let page_timeout = seconds("PRICE_PAGE_TIMEOUT_SECS", defaults.page_timeout);
        let render_timeout = seconds("PRICE_RENDER_TIMEOUT_SECS", defaults.render_timeout);
        let page_max_bytes = match raw("PRICE_PAGE_MAX_BYTES") {
            None => defaults.page_max_bytes,
            Some(value) => match value.parse::<usize>() {
                Ok(n) if (64 * 1024..=64 * 1024 * 1024).contains(&n) => n,
                _ => {
                    problem(
                        "PRICE_PAGE_MAX_BYTES",
                        format!(
                            "`{value}` is not a number of bytes between 65536 and 67108864; remove it to use the default {}",
                            defaults.page_max_bytes
                        ),
                    );
                    defaults.page_max_bytes
                }
            },
        };
        let site_origins = match raw("PRICE_SITE_ORIGINS") {
            None => SiteOrigins::default(),
            Some(value) => SiteOrigins::parse(&value).unwrap_or_else(|errors| {
                for message in errors {
                    problem("PRICE_SITE_ORIGINS", message);
                }
                SiteOrigins::default()
            }),
        };
        if !problems.is_empty() {
            return Err(PriceSettingsError { problems });
        }
        Ok(PriceSourceSettings {
            yandex_api_url,
            yandex,
            yandex_timeout,
            site_origins,
            page_timeout,
            page_max_bytes,
            render_timeout,
        })
    }
}

/// An http(s) URL with a host, no query or fragment, without its trailing slash.
fn base_url(value: &str) -> Result<String, &'static str> {
    let url = Url::parse(value).map_err(|_| "is not a URL")?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("is not an http(s) URL with a host");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment");
    }
    Ok(value.trim_end_matches('/').to_string())
}

/// Where listing pages of a domain are fetched from instead of the domain itself
/// (`PRICE_SITE_ORIGINS`). Parsing and scoring keep the real domain; only the transport changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteOrigins {
    /// (domain, origin), longest domain first so `baza.drom.ru` wins over `drom.ru`.
    pairs: Vec<(String, Url)>,
}

impl SiteOrigins {
    /// Parses `domain=origin[,domain=origin…]`. The origin is an http(s) URL; a path on it is
    /// a prefix put before the listing's path. Answers every problem, one sentence each.
    pub fn parse(raw: &str) -> Result<SiteOrigins, Vec<String>> {
        let mut pairs: Vec<(String, Url)> = Vec::new();
        let mut errors = Vec::new();
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((domain, origin)) = item.split_once('=') else {
                errors.push(format!("`{item}` is not a domain=origin pair; write e.g. avito.ru=http://127.0.0.1:9001"));
                continue;
            };
            let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
            let origin = origin.trim();
            if !is_domain(&domain) {
                errors.push(format!(
                    "`{domain}` is not a domain name; write the bare host such as avito.ru, without scheme or path"
                ));
                continue;
            }
            let url = match Url::parse(origin) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => url,
                _ => {
                    errors.push(format!(
                        "the origin `{origin}` of {domain} is not an http(s) URL; write e.g. http://127.0.0.1:9001"
                    ));
                    continue;
                }
            };
            if url.query().is_some() || url.fragment().is_some() {
                errors.push(format!("the origin `{origin}` of {domain} must not have a query or fragment"));
                continue;
            }
            if pairs.iter().any(|(d, _)| *d == domain) {
                errors.push(format!("{domain} is listed twice; keep one origin per domain"));
                continue;
            }
            pairs.push((domain, url));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        pairs.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Ok(SiteOrigins { pairs })
    }

    /// No mapping configured: every page is fetched from its own site.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The configured `(domain, origin)` pairs, longest domain first.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &Url)> {
        self.pairs.iter().map(|(d, u)| (d.as_str(), u))
    }

    /// The origin that serves `url`, when its host is a mapped domain or a subdomain of one.
    pub fn origin_for(&self, url: &Url) -> Option<&Url> {
        let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
        self.pairs.iter().find(|(domain, _)| domain_matches(&host, domain)).map(|(_, origin)| origin)
    }

    /// The URL to fetch for the real listing URL `url`: the origin with the same path and query,
    /// or `url` itself when its domain is not mapped.
    pub fn map(&self, url: &Url) -> Url {
        match self.origin_for(url) {
            Some(origin) => join_origin(origin, url),
            None => url.clone(),
        }
    }
}

/// `origin` (scheme, host, port, optional path prefix) with `real`'s path and query.
pub(crate) fn join_origin(origin: &Url, real: &Url) -> Url {
    let mut mapped = origin.clone();
    let prefix = origin.path().trim_end_matches('/');
    mapped.set_path(&format!("{prefix}{}", real.path()));
    mapped.set_query(real.query());
    mapped.set_fragment(None);
    mapped
}

/// `host` is `domain` or a subdomain of it.
pub fn domain_matches(host: &str, domain: &str) -> bool {
    host == domain || host.strip_suffix(domain).is_some_and(|rest| rest.ends_with('.'))
}

fn is_domain(s: &str) -> bool {
    s.contains('.')
        && s.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<PriceSourceSettings, PriceSettingsError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        PriceSourceSettings::load(&|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_without_variables() {
        let s = load(&[]).unwrap();
        assert_eq!(s.yandex_api_url, "https://searchapi.api.cloud.yandex.net");
        assert!(s.yandex.is_none());
        assert_eq!(s.yandex_timeout, Duration::from_secs(15));
        assert_eq!(s.page_timeout, Duration::from_secs(10));
        assert_eq!(s.page_max_bytes, 4 * 1024 * 1024);
        assert!(s.site_origins.is_empty());
        for var in PRICE_SOURCE_VARS {
            assert!(!var.help.is_empty(), "{} has help", var.name);
        }
    }

    #[test]
    fn reads_every_variable() {
        let s = load(&[
            ("YANDEX_SEARCH_API_URL", "http://127.0.0.1:9000/"),
            ("YANDEX_SEARCH_API_KEY", " AQVN-secret-key "),
            ("YANDEX_FOLDER_ID", "b1gabc123"),
            ("YANDEX_SEARCH_TIMEOUT_SECS", "3"),
            ("PRICE_SITE_ORIGINS", "avito.ru=http://127.0.0.1:9001, baza.drom.ru=http://127.0.0.1:9002/drom/"),
            ("PRICE_PAGE_TIMEOUT_SECS", "4"),
            ("PRICE_PAGE_MAX_BYTES", "1048576"),
            ("PRICE_RENDER_TIMEOUT_SECS", "9"),
        ])
        .unwrap();
        assert_eq!(s.yandex_api_url, "http://127.0.0.1:9000");
        let creds = s.yandex.as_ref().unwrap();
        assert_eq!(creds.api_key.expose_secret(), "AQVN-secret-key");
        assert_eq!(creds.folder_id, "b1gabc123");
        assert!(!format!("{s:?}").contains("AQVN"), "Debug hides the key");
        assert_eq!(s.yandex_timeout, Duration::from_secs(3));
        assert_eq!(s.page_timeout, Duration::from_secs(4));
        assert_eq!(s.page_max_bytes, 1_048_576);
        assert_eq!(s.render_timeout, Duration::from_secs(9));
        let pairs: Vec<(&str, String)> = s.site_origins.pairs().map(|(d, u)| (d, u.to_string())).collect();
        assert_eq!(
            pairs,
            vec![
                ("baza.drom.ru", "http://127.0.0.1:9002/drom/".to_string()),
                ("avito.ru", "http://127.0.0.1:9001/".into())
            ]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = load(&[
            ("YANDEX_SEARCH_API_URL", "searchapi"),
            ("YANDEX_SEARCH_API_KEY", "AQVN-SeCrEt"),
            ("YANDEX_SEARCH_TIMEOUT_SECS", "0"),
            ("PRICE_SITE_ORIGINS", "avito.ru,https://x.ru=http://a,drom.ru=ftp://x"),
            ("PRICE_PAGE_MAX_BYTES", "12"),
        ])
        .unwrap_err();
        let vars: Vec<&str> = err.problems.iter().map(|p| p.var).collect();
        assert_eq!(
            vars,
            vec![
                "YANDEX_SEARCH_API_URL",
                "YANDEX_FOLDER_ID",
                "YANDEX_SEARCH_TIMEOUT_SECS",
                "PRICE_PAGE_MAX_BYTES",
                "PRICE_SITE_ORIGINS",
                "PRICE_SITE_ORIGINS",
                "PRICE_SITE_ORIGINS",
            ]
        );
        let text = err.to_string();
        assert!(text.contains("PRICE_SITE_ORIGINS: `avito.ru` is not a domain=origin pair"), "{text}");
        assert!(text.contains("`https://x.ru` is not a domain name"), "{text}");
        assert!(text.contains("the origin `ftp://x` of drom.ru is not an http(s) URL"), "{text}");
        assert!(!text.contains("SeCrEt"), "the key's value is never echoed");
        let only_folder = load(&[("YANDEX_FOLDER_ID", "b1g")]).unwrap_err();
        assert_eq!(only_folder.problems[0].var, "YANDEX_SEARCH_API_KEY");
        let dup = SiteOrigins::parse("avito.ru=http://a, AVITO.ru=http://b").unwrap_err();
        assert_eq!(dup, vec!["avito.ru is listed twice; keep one origin per domain".to_string()]);
    }

    #[test]
    fn origins_map_domains_and_subdomains_keeping_path_and_query() {
        let origins = SiteOrigins::parse(
            "avito.ru=http://127.0.0.1:9001,drom.ru=http://127.0.0.1:9002,baza.drom.ru=http://127.0.0.1:9003/baza",
        )
        .unwrap();
        let map = |u: &str| origins.map(&Url::parse(u).unwrap()).to_string();
        assert_eq!(
            map("https://www.avito.ru/moskva/zapchasti?q=%D0%B0%D0%BA%D0%BF%D0%BF&p=2#top"),
            "http://127.0.0.1:9001/moskva/zapchasti?q=%D0%B0%D0%BA%D0%BF%D0%BF&p=2"
        );
        assert_eq!(map("https://avito.ru/"), "http://127.0.0.1:9001/");
        assert_eq!(map("https://baza.drom.ru/sell/akpp/"), "http://127.0.0.1:9003/baza/sell/akpp/");
        assert_eq!(map("https://auto.drom.ru/x"), "http://127.0.0.1:9002/x");
        assert_eq!(map("https://notavito.ru/x"), "https://notavito.ru/x", "a lookalike domain is not mapped");
        assert_eq!(map("https://farpost.ru/x"), "https://farpost.ru/x");
        assert!(domain_matches("m.avito.ru", "avito.ru"));
        assert!(!domain_matches("avito.ru.evil.com", "avito.ru"));
    }
}
