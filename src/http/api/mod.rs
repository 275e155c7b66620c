//! The `/api` tree. Every route is registered through [`ApiRouter`], which records its method,
//! path and required permission and wraps it with the permission check, so no route can be added
//! without declaring who may call it (and the route-enumeration test sees every one).

pub mod audit;
pub mod channels;
pub mod conversations;
pub mod customers;
pub mod insights;
pub mod leads;
pub mod live;
pub mod me;
pub mod media;
pub mod paging;
pub mod price_lookups;
pub mod tenant;
pub mod tokens;
pub mod users;
pub mod vehicle_lookups;
pub mod views;

use axum::Router;
use axum::extract::Request;
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::routing::MethodRouter;

use crate::auth::Permission;
use crate::http::AppState;

/// One registered `/api` route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    /// `None`: any authenticated caller of the tenant.
    pub permission: Option<Permission>,
}

/// Builder of the `/api` router that keeps a list of its routes.
pub struct ApiRouter {
    router: Router<AppState>,
    specs: Vec<RouteSpec>,
    /// Timeout of every non-streaming route.
    timeout: std::time::Duration,
}

impl Default for ApiRouter {
    fn default() -> Self {
        ApiRouter { router: Router::new(), specs: Vec::new(), timeout: std::time::Duration::from_secs(30) }
    }
}

impl ApiRouter {
    /// Adds a route requiring `permission` (`None`: any authenticated caller).
    pub fn route(
        self,
        method: Method,
        path: &'static str,
        permission: Option<Permission>,
        handler: MethodRouter<AppState>,
    ) -> Self {
        self.add(method, path, permission, false, handler)
    }

    /// Like [`ApiRouter::route`], also open to users who still have to replace a one-time password.
    pub fn route_before_password_change(
        self,
        method: Method,
        path: &'static str,
        handler: MethodRouter<AppState>,
    ) -> Self {
        self.add(method, path, None, true, handler)
    }

    /// A long-lived route (server-sent events): no request timeout.
    pub fn streaming_route(
        self,
        method: Method,
        path: &'static str,
        permission: Option<Permission>,
        handler: MethodRouter<AppState>,
    ) -> Self {
        self.add_inner(method, path, permission, false, false, handler)
    }

    fn add(
        self,
        method: Method,
        path: &'static str,
        permission: Option<Permission>,
        allow_pending_password: bool,
        handler: MethodRouter<AppState>,
    ) -> Self {
        self.add_inner(method, path, permission, allow_pending_password, true, handler)
    }

    fn add_inner(
        mut self,
        method: Method,
        path: &'static str,
        permission: Option<Permission>,
        allow_pending_password: bool,
        timeout: bool,
        handler: MethodRouter<AppState>,
    ) -> Self {
        assert!(path.starts_with("/api/"), "API routes live under /api: {path}");
        self.specs.push(RouteSpec { method, path, permission });
        let mut guarded = handler.route_layer(middleware::from_fn(move |req: Request, next: Next| {
            crate::http::authn::guard(permission, allow_pending_password, req, next)
        }));
        if timeout {
            guarded = guarded.layer(tower_http::timeout::TimeoutLayer::with_status_code(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                self.timeout,
            ));
        }
        self.router = self.router.route(path, guarded);
        self
    }

    pub fn specs(&self) -> &[RouteSpec] {
        &self.specs
    }

    /// The router with authentication in front of every route.
    pub fn into_router(self, state: AppState) -> Router<AppState> {
        // Authentication runs first (the outer layer), then the idempotency of command requests.
        self.router
            .route_layer(middleware::from_fn_with_state(state.clone(), crate::http::idempotency::layer))
            .route_layer(middleware::from_fn_with_state(state, crate::http::authn::authenticate))
    }
}

/// Every `/api` route of the application (30 s request timeout).
pub fn routes() -> ApiRouter {
    routes_with_timeout(std::time::Duration::from_secs(30))
}

/// Every `/api` route, non-streaming ones with `timeout`.
pub fn routes_with_timeout(timeout: std::time::Duration) -> ApiRouter {
    use Permission::*;
    use axum::routing::put;
    use axum::routing::{delete, get, patch, post};
    ApiRouter { timeout, ..ApiRouter::default() }
        .route_before_password_change(Method::GET, "/api/me", get(me::show))
        .route_before_password_change(Method::POST, "/api/me/password", post(me::change_password))
        .route(Method::GET, "/api/tenant", Some(ViewConversations), get(tenant::show))
        .route(Method::PATCH, "/api/tenant", Some(ManageTenantSettings), patch(tenant::update))
        .route(Method::GET, "/api/users", Some(ManageUsers), get(users::list))
        .route(Method::POST, "/api/users", Some(ManageUsers), post(users::create))
        .route(Method::GET, "/api/users/{id}", Some(ManageUsers), get(users::show))
        .route(Method::PATCH, "/api/users/{id}", Some(ManageUsers), patch(users::update))
        .route(Method::GET, "/api/tokens", Some(ManageUsers), get(tokens::list))
        .route(Method::POST, "/api/tokens", Some(ManageUsers), post(tokens::create))
        .route(Method::DELETE, "/api/tokens/{id}", Some(ManageUsers), delete(tokens::revoke))
        .route(Method::GET, "/api/channels", Some(ManageChannels), get(channels::list))
        .route(Method::POST, "/api/channels", Some(ManageChannels), post(channels::create))
        .route(Method::GET, "/api/channels/{id}", Some(ManageChannels), get(channels::show))
        .route(Method::DELETE, "/api/channels/{id}", Some(ManageChannels), delete(channels::disable))
        .route(Method::POST, "/api/channels/{id}/webhook", Some(ManageChannels), post(channels::register_webhook))
        .route(Method::GET, "/api/conversations", Some(ViewConversations), get(conversations::list))
        .route(Method::GET, "/api/conversations/{id}", Some(ViewConversations), get(conversations::show))
        .route(Method::GET, "/api/conversations/{id}/messages", Some(ViewConversations), get(conversations::messages))
        .route(Method::POST, "/api/conversations/{id}/messages", Some(ManageConversations), post(conversations::reply))
        .route(
            Method::GET,
            "/api/conversations/{id}/suggestions",
            Some(ViewConversations),
            get(conversations::suggestions),
        )
        .route(
            Method::POST,
            "/api/conversations/{id}/suggestions",
            Some(ManageConversations),
            post(conversations::request_suggestion),
        )
        .route(
            Method::POST,
            "/api/conversations/{id}/escalate",
            Some(ManageConversations),
            post(conversations::escalate),
        )
        .route(Method::POST, "/api/conversations/{id}/resolve", Some(ManageConversations), post(conversations::resolve))
        .route(Method::POST, "/api/conversations/{id}/reopen", Some(ManageConversations), post(conversations::reopen))
        .route(Method::POST, "/api/conversations/{id}/mute", Some(ManageConversations), post(conversations::mute))
        .route(Method::POST, "/api/conversations/{id}/assign", Some(ManageConversations), post(conversations::assign))
        .route(Method::POST, "/api/conversations/{id}/read", Some(ManageConversations), post(conversations::mark_read))
        .route(
            Method::POST,
            "/api/conversations/{id}/replies/{reply_id}/retry",
            Some(ManageConversations),
            post(conversations::retry_reply),
        )
        .route(Method::GET, "/api/conversations/{id}/events", Some(ViewAuditLogs), get(audit::events))
        .route(Method::GET, "/api/conversations/{id}/state", Some(ViewAuditLogs), get(audit::state_at))
        .route(Method::GET, "/api/escalations", Some(ViewConversations), get(insights::escalations))
        .route(Method::GET, "/api/customers", Some(ViewCustomers), get(insights::customers))
        .route(Method::GET, "/api/customers/{id}", Some(ViewCustomers), get(insights::customer))
        .route(Method::GET, "/api/customers/{id}/export", Some(DeleteCustomerData), get(customers::export))
        .route(Method::DELETE, "/api/customers/{id}", Some(DeleteCustomerData), delete(customers::erase))
        .route(Method::GET, "/api/stats/daily", Some(ViewAnalytics), get(insights::daily))
        .route(Method::GET, "/api/webhook-dead-letters", Some(ViewAuditLogs), get(insights::webhook_dead_letters))
        .streaming_route(Method::GET, "/api/events/stream", Some(ViewConversations), get(live::stream))
        .route(Method::GET, "/api/media/{sha256}", Some(ViewConversations), get(media::show))
        .route(Method::GET, "/api/media/{sha256}/file", Some(ViewConversations), get(media::file))
        .route(Method::POST, "/api/suggestions/{id}/approve", Some(ManageConversations), post(conversations::approve))
        .route(Method::POST, "/api/suggestions/{id}/reject", Some(ManageConversations), post(conversations::reject))
        .route(Method::POST, "/api/suggestions/{id}/edit", Some(ManageConversations), post(conversations::edit))
        .route(
            Method::POST,
            "/api/conversations/{id}/vehicle-lookups",
            Some(ManageConversations),
            post(vehicle_lookups::request),
        )
        .route(Method::GET, "/api/vehicle-lookups", Some(ViewConversations), get(vehicle_lookups::list))
        .route(Method::GET, "/api/vehicle-lookups/{id}", Some(ViewConversations), get(vehicle_lookups::show))
        .route(
            Method::GET,
            "/api/vehicle-lookups/{id}/evidence/{evidence_id}",
            Some(ViewConversations),
            get(vehicle_lookups::evidence),
        )
        .route(Method::POST, "/api/vehicle-lookups/{id}/retry", Some(ManageConversations), post(vehicle_lookups::retry))
        .route(
            Method::POST,
            "/api/vehicle-lookups/{id}/correct",
            Some(ManageConversations),
            post(vehicle_lookups::correct),
        )
        .route(
            Method::POST,
            "/api/vehicle-lookups/{id}/confirm-gearbox",
            Some(ManageConversations),
            post(vehicle_lookups::confirm_gearbox),
        )
        .route(Method::GET, "/api/leads", Some(ViewConversations), get(leads::list))
        .route(Method::GET, "/api/leads/stats", Some(ViewAnalytics), get(leads::stats))
        .route(Method::GET, "/api/leads/{id}", Some(ViewConversations), get(leads::show))
        .route(Method::DELETE, "/api/leads/{id}", Some(DeleteCustomerData), delete(customers::erase_lead))
        .route(Method::POST, "/api/leads/{id}/qualify", Some(ManageConversations), post(leads::qualify))
        .route(Method::POST, "/api/leads/{id}/won", Some(ManageConversations), post(leads::won))
        .route(Method::POST, "/api/leads/{id}/lost", Some(ManageConversations), post(leads::lost))
        .route(Method::POST, "/api/leads/{id}/retry", Some(ManageConversations), post(leads::retry))
        .route(Method::POST, "/api/leads/{id}/assign", Some(ManageConversations), post(leads::assign))
        .route(Method::GET, "/api/lead-forms", Some(ManageChannels), get(leads::list_forms))
        .route(Method::POST, "/api/lead-forms", Some(ManageChannels), post(leads::create_form))
        .route(
            Method::PUT,
            "/api/lead-settings/escalation-bot",
            Some(ManageTenantSettings),
            axum::routing::put(leads::set_bot),
        )
        .route(Method::POST, "/api/price-lookups", Some(ManageConversations), post(price_lookups::request))
        .route(Method::GET, "/api/price-lookups", Some(ViewConversations), get(price_lookups::list))
        .route(Method::GET, "/api/price-lookups/{id}", Some(ViewConversations), get(price_lookups::show))
        .route(Method::GET, "/api/price-settings", Some(ViewConversations), get(price_lookups::settings))
        .route(Method::PUT, "/api/price-settings", Some(ManageTenantSettings), put(price_lookups::update_settings))
        .route(
            Method::POST,
            "/api/price-templates/preview",
            Some(ViewConversations),
            post(price_lookups::preview_template),
        )
}
