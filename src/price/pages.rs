//! One listing URL in, its listings out: fetch over HTTP, parse, and render in the browser when
//! the page needs JavaScript ([`render::render_reason`]).

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::fetch::{FetchError, PageFetcher};
use super::render::{self, PageRenderer, RenderError, RenderReason};
use super::sites::{RawListing, SiteFamily, parse_listings, site_of};

/// What happened about rendering a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "render", rename_all = "snake_case")]
pub enum RenderStatus {
    /// The HTTP answer was enough.
    NotNeeded,
    /// The page was rendered in the browser and parsed from there.
    Rendered { reason: RenderReason },
    /// The page needed the browser but none is configured.
    NoRenderer { reason: RenderReason },
    /// The page needed the browser and rendering failed; the HTTP answer's listings are kept.
    Failed { reason: RenderReason, error: String },
}

/// The listings of one page and how they were obtained.
#[derive(Debug, Clone)]
pub struct PageListings {
    /// The page's real URL (after redirects).
    pub url: Url,
    /// The real domain, without `www.`.
    pub site: String,
    pub family: SiteFamily,
    pub listings: Vec<RawListing>,
    pub render: RenderStatus,
}

/// Fetches, parses and (when needed) renders listing pages. Cheap to clone.
#[derive(Clone)]
pub struct ListingPages {
    fetcher: PageFetcher,
    renderer: Option<Arc<dyn PageRenderer>>,
    render_timeout: Duration,
}

impl ListingPages {
    /// Pages fetched by `fetcher`, rendered by `renderer` (if any) within `render_timeout`.
    pub fn new(fetcher: PageFetcher, renderer: Option<Arc<dyn PageRenderer>>, render_timeout: Duration) -> Self {
        ListingPages { fetcher, renderer, render_timeout }
    }

    /// The fetcher in use.
    pub fn fetcher(&self) -> &PageFetcher {
        &self.fetcher
    }

    /// The listings of the page at `url` (its real URL). A fetch failure is an error; a page
    /// that needed the browser and could not be rendered answers what its HTML held (often
    /// nothing) with the reason in [`PageListings::render`].
    pub async fn listings(&self, url: &str) -> Result<PageListings, FetchError> {
        // A site that builds its lists in the browser goes there directly when one is at hand.
        if let (Some(renderer), Ok(real)) = (&self.renderer, Url::parse(url.trim()))
            && matches!(real.scheme(), "http" | "https")
            && real.host_str().is_some_and(render::is_js_only_site)
        {
            let reason = RenderReason::JsOnlySite;
            return match self.render(renderer.as_ref(), &real).await {
                Ok(listings) => Ok(page_listings(real, listings, RenderStatus::Rendered { reason })),
                Err(error) => {
                    Ok(page_listings(real, Vec::new(), RenderStatus::Failed { reason, error: error.to_string() }))
                }
            };
        }

        let page = self.fetcher.fetch(url).await?;
        let real = page.url.clone();
        let parse_url = real.clone();
        let (listings, reason) = blocking(move || {
            let listings = parse_listings(&parse_url, &page.html);
            let reason = render::render_reason(&parse_url, &page.html, listings.len());
            (listings, reason)
        })
        .await;
        let Some(reason) = reason else {
            return Ok(page_listings(real, listings, RenderStatus::NotNeeded));
        };
        let Some(renderer) = &self.renderer else {
            return Ok(page_listings(real, listings, RenderStatus::NoRenderer { reason }));
        };
        match self.render(renderer.as_ref(), &real).await {
            Ok(rendered) => Ok(page_listings(real, rendered, RenderStatus::Rendered { reason })),
            Err(error) => {
                tracing::debug!(site = %site_of(&real), error = %error, "listing page not rendered");
                Ok(page_listings(real, listings, RenderStatus::Failed { reason, error: error.to_string() }))
            }
        }
    }

    /// Renders the page (through its origin) within the deadline and parses it as the real URL.
    async fn render(&self, renderer: &dyn PageRenderer, real: &Url) -> Result<Vec<RawListing>, RenderError> {
        let target = self.fetcher.origins().map(real);
        let html = match tokio::time::timeout(self.render_timeout, renderer.render(&target)).await {
            Ok(result) => result?,
            Err(_) => return Err(RenderError::Timeout(self.render_timeout)),
        };
        let real = real.clone();
        Ok(blocking(move || parse_listings(&real, &html)).await)
    }
}

fn page_listings(url: Url, listings: Vec<RawListing>, render: RenderStatus) -> PageListings {
    let site = site_of(&url);
    PageListings { family: SiteFamily::of(&site), site, url, listings, render }
}

/// Runs CPU-bound parsing off the async workers (a large page takes tens of milliseconds).
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}
