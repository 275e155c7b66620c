//! What every page shares: the frame (navigation, language, CSRF token, asset URLs), rendering a
//! template into a response, and the pages that say something went wrong.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::assets;
use super::i18n::{Lang, Tr};
use super::session::Operator;

/// The frame around a page.
pub struct Chrome {
    pub lang: &'static str,
    pub tr: &'static Tr,
    pub css: &'static str,
    pub js: &'static str,
    pub signed_in: bool,
    pub admin: bool,
    pub email: String,
    pub role: &'static str,
    pub csrf: String,
    /// Which navigation entry is current: `inbox`, `leads`, `settings`, `ops` or empty.
    pub nav: &'static str,
}

impl Chrome {
    pub fn of(op: &Operator, nav: &'static str) -> Chrome {
        Chrome {
            lang: op.lang.code(),
            tr: op.lang.tr(),
            css: assets::css_url(),
            js: assets::js_url(),
            signed_in: !op.caller.must_change_password,
            admin: op.is_admin(),
            email: op.email.clone(),
            role: op.caller.role.as_str(),
            csrf: op.csrf.clone(),
            nav,
        }
    }

    /// The frame of a page shown before signing in.
    pub fn anonymous(lang: Lang) -> Chrome {
        Chrome {
            lang: lang.code(),
            tr: lang.tr(),
            css: assets::css_url(),
            js: assets::js_url(),
            signed_in: false,
            admin: false,
            email: String::new(),
            role: "",
            csrf: String::new(),
            nav: "",
        }
    }
}

/// A template rendered as an HTML response with `status`.
pub fn render<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a dashboard template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

/// A template rendered as a 200 HTML response.
pub fn ok<T: Template>(t: &T) -> Response {
    render(StatusCode::OK, t)
}

#[derive(Template)]
#[template(path = "dashboard/message.html")]
struct MessagePage {
    chrome: Chrome,
    title: &'static str,
    text: &'static str,
}

/// A page with one sentence: not found, no access, a server failure.
pub fn message(chrome: Chrome, status: StatusCode, title: &'static str, text: &'static str) -> Response {
    render(status, &MessagePage { chrome, title, text })
}

pub fn not_found(op: &Operator) -> Response {
    let tr = op.lang.tr();
    message(Chrome::of(op, ""), StatusCode::NOT_FOUND, tr.not_found_title, tr.not_found_text)
}

pub fn forbidden(op: &Operator) -> Response {
    let tr = op.lang.tr();
    message(Chrome::of(op, ""), StatusCode::FORBIDDEN, tr.forbidden_title, tr.err_forbidden)
}

/// A failure of the server (logged with its cause; the page shows a sentence).
pub fn server_error(op: &Operator, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "a dashboard page failed");
    let tr = op.lang.tr();
    message(Chrome::of(op, ""), StatusCode::INTERNAL_SERVER_ERROR, tr.server_error, tr.server_error)
}
