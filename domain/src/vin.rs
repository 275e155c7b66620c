//! Offline VIN decoding: check digit, manufacturer and country from the WMI, model year.
