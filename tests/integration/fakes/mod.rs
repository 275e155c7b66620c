//! Local fake servers speaking third-party wire formats.
