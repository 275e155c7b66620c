//! VIN, FRAME and transmission-code detection in customer text.
