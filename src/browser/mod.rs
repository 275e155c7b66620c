//! Headless browser (WebDriver) sessions and the vehicle-lookup site scrapers.
