//! Reading variables from a source and recording every problem found.

use super::{Problem, vars::VARS};

/// Reads variables from a source (the process environment plus `.env`, or a map in tests) and
/// records which problems were found.
pub(super) struct Reader<'a> {
    pub(super) source: &'a dyn Fn(&str) -> Option<String>,
    pub(super) problems: Vec<Problem>,
    pub(super) warnings: Vec<String>,
}

impl Reader<'_> {
    pub(super) fn raw(&self, name: &str) -> Option<String> {
        (self.source)(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    pub(super) fn problem(&mut self, var: &'static str, message: impl Into<String>) {
        self.problems.push(Problem { var, message: message.into() });
    }

    pub(super) fn default_of(name: &str) -> &'static str {
        VARS.iter().find(|v| v.name == name).map(|v| v.default).unwrap_or("")
    }

    pub(super) fn string(&self, name: &'static str) -> String {
        self.raw(name).unwrap_or_else(|| Self::default_of(name).to_string())
    }

    pub(super) fn parse<T: std::str::FromStr>(&mut self, name: &'static str, what: &str) -> Option<T> {
        let value = self.string(name);
        match value.parse::<T>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.problem(
                    name,
                    format!(
                        "`{value}` is not {what}; set {what} or remove the variable to use the default `{}`",
                        Self::default_of(name)
                    ),
                );
                None
            }
        }
    }

    pub(super) fn bool(&mut self, name: &'static str) -> bool {
        let value = self.string(name).to_ascii_lowercase();
        match value.as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" | "" => false,
            _ => {
                self.problem(name, format!("`{value}` is not a boolean; use true or false"));
                false
            }
        }
    }

    pub(super) fn url(&mut self, name: &'static str, schemes: &[&str]) -> String {
        let value = self.string(name);
        let ok = schemes.iter().any(|s| {
            value.strip_prefix(s).and_then(|rest| rest.strip_prefix("://")).is_some_and(|rest| !rest.is_empty())
        });
        if !ok {
            self.problem(name, format!("is not a valid URL; expected {}://host…", schemes.join("|")));
        }
        value.trim_end_matches('/').to_string()
    }
}
