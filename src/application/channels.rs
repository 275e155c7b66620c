//! Messenger accounts: adding one (with its credentials stored encrypted and its webhook pointed at
//! us), registering the webhook again, and how an account is shown (tokens only masked).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{CommandError, Context};
use crate::infra::crypto;
use crate::tenancy::{self, ChannelAccount, ChannelKind};

/// A new account, by kind.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum NewAccount {
    GreenApi {
        id_instance: String,
        api_token: String,
        api_url: Option<String>,
        media_url: Option<String>,
        #[serde(default)]
        label: String,
    },
    Telegram {
        bot_token: String,
        #[serde(default)]
        label: String,
    },
    Whatsapp {
        phone_number_id: String,
        access_token: String,
        app_secret: String,
        verify_token: Option<String>,
        #[serde(default)]
        label: String,
    },
}

/// An account as shown by the API: settings and masked secrets.
#[derive(Debug, Serialize)]
pub struct AccountView {
    #[serde(flatten)]
    pub account: ChannelAccount,
    pub webhook_url: String,
    pub secrets: serde_json::Map<String, Value>,
    /// At creation only: whether the provider was pointed at `webhook_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_registration: Option<WebhookRegistration>,
    /// At creation only, and only when the webhook must be configured on the provider's side by
    /// hand: the credential the provider has to present (`webhook_token` for GREEN-API's
    /// `webhookUrlToken`, `webhook_secret` for Telegram's `secret_token`, `verify_token` for
    /// WhatsApp's verification). Shown this once; afterwards only masked.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub webhook_credentials: serde_json::Map<String, Value>,
}

/// What became of pointing the provider at an account's webhook when the account was added.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookRegistration {
    /// `registered` (the provider now posts to `webhook_url` with the credential), `manual`
    /// (configure it on the provider's side) or `failed` (the provider refused or was unreachable).
    pub status: &'static str,
    pub message: String,
}

/// The names of the secrets each kind keeps.
pub fn secret_names(kind: ChannelKind) -> &'static [&'static str] {
    match kind {
        ChannelKind::GreenApi => &["api_token", "webhook_token"],
        ChannelKind::Telegram => &["bot_token", "webhook_secret"],
        ChannelKind::Whatsapp => &["access_token", "app_secret", "verify_token"],
    }
}

/// Public webhook URL of an account.
pub fn webhook_url(base: &str, account: &ChannelAccount) -> String {
    let base = base.trim_end_matches('/');
    // Every kind is routed per account (`/webhooks/telegram/{tenant}` and
    // `/webhooks/whatsapp/{tenant}` remain for URLs registered before).
    format!("{base}/webhooks/{}/{}/{}", tenancy::webhook_segment(account.kind), account.tenant_id, account.id)
}

fn invalid(field: &str, why: &str) -> CommandError {
    CommandError::invalid("invalid_channel", format!("{field} {why}"))
}

/// A GREEN-API host given with an account. The server calls it with the account's token and shows
/// parts of its answers, so it must not be a way into the server's own network: outside development
/// it must be GREEN-API's (`green-api.com` or a subdomain, over HTTPS) or the origin of
/// `GREEN_API_URL`; never with credentials, a query or a fragment.
fn check_provider_url(
    settings: &crate::config::Settings,
    field: &str,
    url: &Option<String>,
) -> Result<(), CommandError> {
    let Some(raw) = url else { return Ok(()) };
    let parsed = reqwest::Url::parse(raw.trim()).map_err(|_| invalid(field, "must be an http(s) URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(field, "must be an http(s) URL"));
    }
    if !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Err(invalid(field, "must not carry credentials, a query or a fragment"));
    }
    let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
    let greenapi = parsed.scheme() == "https" && (host == "green-api.com" || host.ends_with(".green-api.com"));
    let configured = reqwest::Url::parse(&settings.green_api_url).is_ok_and(|c| c.origin() == parsed.origin());
    if greenapi || configured || !settings.app_env.is_strict() {
        Ok(())
    } else {
        Err(invalid(field, "must be a GREEN-API host (https://….green-api.com) or the origin of GREEN_API_URL"))
    }
}

/// Creates an account with its secrets in one transaction. Shared by the API and the CLI.
/// A restricted tenant (`tenants.status = 'restricted'`, set by the platform's fraud review) may
/// keep using what it has but cannot connect channels or point providers at this server.
async fn refuse_restricted(ctx: &Context, tenant: Uuid) -> Result<(), CommandError> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM tenants WHERE id = $1").bind(tenant).fetch_optional(&ctx.pool).await?;
    match status.as_deref() {
        Some("active") => Ok(()),
        Some(_) => Err(CommandError::Forbidden(
            "this shop's account is restricted: channels cannot be connected or registered; contact support".into(),
        )),
        None => Err(CommandError::NotFound("tenant")),
    }
}

pub async fn add_account(ctx: &Context, tenant: Uuid, new: NewAccount) -> Result<AccountView, CommandError> {
    refuse_restricted(ctx, tenant).await?;
    let keys = crypto::Keyring::from_settings(&ctx.settings);
    let (kind, external_key, label, config, mut secrets): (ChannelKind, String, String, Value, Vec<(&str, String)>) =
        match new {
            NewAccount::GreenApi { id_instance, api_token, api_url, media_url, label } => {
                if id_instance.is_empty() || !id_instance.chars().all(|c| c.is_ascii_digit()) {
                    return Err(invalid("id_instance", "must be the numeric GREEN-API instance id"));
                }
                if api_token.trim().len() < 8 {
                    return Err(invalid("api_token", "is too short to be a GREEN-API token"));
                }
                check_provider_url(&ctx.settings, "api_url", &api_url)?;
                check_provider_url(&ctx.settings, "media_url", &media_url)?;
                let api_url = api_url.unwrap_or_else(|| ctx.settings.green_api_url.clone());
                let config = json!({ "id_instance": id_instance, "api_url": api_url.trim_end_matches('/'), "media_url": media_url });
                (ChannelKind::GreenApi, id_instance, label, config, vec![("api_token", api_token.trim().to_string())])
            }
            NewAccount::Telegram { bot_token, label } => {
                let Some((bot_id, rest)) = bot_token.trim().split_once(':') else {
                    return Err(invalid("bot_token", "must look like <bot id>:<secret>"));
                };
                if bot_id.is_empty() || !bot_id.chars().all(|c| c.is_ascii_digit()) || rest.len() < 20 {
                    return Err(invalid("bot_token", "must look like <bot id>:<secret>"));
                }
                let bot_id = bot_id.to_string();
                (
                    ChannelKind::Telegram,
                    bot_id.clone(),
                    label,
                    json!({ "bot_id": bot_id }),
                    vec![("bot_token", bot_token.trim().to_string())],
                )
            }
            NewAccount::Whatsapp { phone_number_id, access_token, app_secret, verify_token, label } => {
                if phone_number_id.is_empty() || !phone_number_id.chars().all(|c| c.is_ascii_digit()) {
                    return Err(invalid("phone_number_id", "must be the numeric WhatsApp phone number id"));
                }
                if access_token.trim().is_empty() || app_secret.trim().is_empty() {
                    return Err(invalid("access_token and app_secret", "are required"));
                }
                let verify = verify_token.unwrap_or_else(|| crate::config::random_token(32));
                (
                    ChannelKind::Whatsapp,
                    phone_number_id.clone(),
                    label,
                    json!({ "phone_number_id": phone_number_id }),
                    vec![
                        ("access_token", access_token.trim().to_string()),
                        ("app_secret", app_secret.trim().to_string()),
                        ("verify_token", verify),
                    ],
                )
            }
        };
    match kind {
        ChannelKind::GreenApi => secrets.push(("webhook_token", crate::config::random_token(40))),
        ChannelKind::Telegram => secrets.push(("webhook_secret", crate::config::random_token(40))),
        ChannelKind::Whatsapp => {}
    }
    let mut tx = ctx.pool.begin().await?;
    let account =
        tenancy::create_channel_account(&mut tx, tenant, kind, &external_key, label.trim(), config).await?.ok_or_else(
            || CommandError::Conflict(format!("this tenant already has the {} account {external_key}", kind.as_str())),
        )?;
    for (name, value) in &secrets {
        crypto::put(&mut tx, &keys, Some(tenant), &tenancy::secret_name(account.id, name), value)
            .await
            .map_err(|e| CommandError::Unexpected(e.into()))?;
    }
    tx.commit().await?;
    let mut out = view(ctx, account).await?;
    let secret = |name: &str| secrets.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let (registration, credential) = match out.account.kind {
        ChannelKind::GreenApi => {
            let token = secret("webhook_token");
            (register_green_api(ctx, &out, &secret("api_token"), &token).await, ("webhook_token", token))
        }
        ChannelKind::Telegram => {
            let token = secret("webhook_secret");
            (register_telegram(ctx, &out, &secret("bot_token"), &token).await, ("webhook_secret", token))
        }
        ChannelKind::Whatsapp => (whatsapp_registration(), ("verify_token", secret("verify_token"))),
    };
    if registration.status != "registered" {
        out.webhook_credentials.insert(credential.0.to_string(), Value::String(credential.1));
    }
    match registration.status {
        "failed" => {
            tracing::warn!(account = %out.account.id, kind = out.account.kind.as_str(), reason = %registration.message, "webhook registration failed")
        }
        status => {
            tracing::info!(account = %out.account.id, kind = out.account.kind.as_str(), status, "channel account added")
        }
    }
    out.webhook_registration = Some(registration);
    Ok(out)
}

pub async fn view(ctx: &Context, account: ChannelAccount) -> Result<AccountView, CommandError> {
    let mut conn = ctx.pool.acquire().await?;
    let mut secrets = serde_json::Map::new();
    for name in secret_names(account.kind) {
        let hint = crypto::hint(&mut conn, Some(account.tenant_id), &tenancy::secret_name(account.id, name))
            .await
            .map_err(|e| CommandError::Unexpected(e.into()))?;
        secrets.insert((*name).to_string(), hint.map(Value::String).unwrap_or(Value::Null));
    }
    Ok(AccountView {
        webhook_url: webhook_url(ctx.settings.public_base_url(), &account),
        account,
        secrets,
        webhook_registration: None,
        webhook_credentials: serde_json::Map::new(),
    })
}

/// `POST /api/channels/{id}/webhook`: points the provider at the account's webhook again with a
/// fresh credential, after `APP_URL` changed or when the first registration failed. The stored
/// credential is replaced only when the provider took the new one, or when it has to be configured
/// by hand (it is then shown this once); a failed registration changes nothing.
pub async fn register_webhook(ctx: &Context, tenant: Uuid, id: Uuid) -> Result<AccountView, CommandError> {
    refuse_restricted(ctx, tenant).await?;
    let account = tenancy::channel_account(&ctx.pool, tenant, id)
        .await?
        .filter(|a| a.disabled_at.is_none())
        .ok_or(CommandError::NotFound("channel account"))?;
    let stored = |what: &'static str| {
        let (ctx, account) = (ctx.clone(), account.clone());
        async move {
            let mut conn = ctx.pool.acquire().await?;
            crypto::get(&mut conn, &ctx.keys, Some(account.tenant_id), &tenancy::secret_name(account.id, what))
                .await
                .map_err(|e| CommandError::Unexpected(e.into()))
        }
    };
    let mut out = view(ctx, account.clone()).await?;
    let (name, fresh, registration) = match account.kind {
        ChannelKind::GreenApi => {
            let fresh = crate::config::random_token(40);
            let r = register_green_api(ctx, &out, &stored("api_token").await?, &fresh).await;
            ("webhook_token", fresh, r)
        }
        ChannelKind::Telegram => {
            let fresh = crate::config::random_token(40);
            let r = register_telegram(ctx, &out, &stored("bot_token").await?, &fresh).await;
            ("webhook_secret", fresh, r)
        }
        ChannelKind::Whatsapp => ("verify_token", crate::config::random_token(32), whatsapp_registration()),
    };
    if registration.status != "failed" {
        let mut conn = ctx.pool.acquire().await?;
        crypto::put(&mut conn, &ctx.keys, Some(account.tenant_id), &tenancy::secret_name(account.id, name), &fresh)
            .await
            .map_err(|e| CommandError::Unexpected(e.into()))?;
        ctx.tenancy.forget_secret(&account, name);
        // Shown again with the new credential's masked hint.
        out = view(ctx, account.clone()).await?;
    }
    if registration.status == "manual" {
        out.webhook_credentials.insert(name.to_string(), Value::String(fresh));
    }
    tracing::info!(account = %account.id, kind = account.kind.as_str(), status = registration.status, "webhook registered again");
    out.webhook_registration = Some(registration);
    Ok(out)
}

fn whatsapp_registration() -> WebhookRegistration {
    WebhookRegistration {
        status: "manual",
        message: "set the callback URL and verify token in the Meta app's WhatsApp webhook settings".into(),
    }
}

/// A client for the one call registration makes.
fn registration_http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .connect_timeout(std::time::Duration::from_secs(5))
        .build()
        .expect("HTTP client builds")
}

fn relative_url_registration() -> WebhookRegistration {
    WebhookRegistration {
        status: "manual",
        message: "APP_URL is not set, so the webhook URL is relative: set APP_URL to this server's public address \
                  and add the account again, or configure the webhook on the provider's side"
            .into(),
    }
}

/// GREEN-API `setSettings`: webhooks to this account's URL with its `webhookUrlToken`.
async fn register_green_api(ctx: &Context, view: &AccountView, api_token: &str, token: &str) -> WebhookRegistration {
    if !view.webhook_url.starts_with("http") {
        return relative_url_registration();
    }
    let creds = crate::channels::green_api::GreenApiCredentials {
        api_url: view.account.config.get("api_url").and_then(Value::as_str).map(str::to_string),
        id_instance: view.account.external_key.parse().unwrap_or_default(),
        api_token: api_token.to_string().into(),
    };
    let client =
        crate::channels::green_api::GreenApiClient::new(registration_http(), ctx.settings.green_api_url.clone());
    match client.set_settings(&creds, &view.webhook_url, token).await {
        Ok(()) => WebhookRegistration {
            status: "registered",
            message: "GREEN-API now posts notifications to the webhook URL with the account's webhookUrlToken".into(),
        },
        Err(e) => WebhookRegistration { status: "failed", message: format!("GREEN-API setSettings: {e}") },
    }
}

/// Telegram `setWebhook`: updates to this account's URL with its `secret_token`.
async fn register_telegram(ctx: &Context, view: &AccountView, bot_token: &str, secret: &str) -> WebhookRegistration {
    if !view.webhook_url.starts_with("http") {
        return relative_url_registration();
    }
    let client =
        crate::channels::telegram::TelegramClient::new(registration_http(), ctx.settings.telegram_api_url.clone());
    match client.set_webhook(&bot_token.to_string().into(), &view.webhook_url, secret).await {
        Ok(()) => WebhookRegistration {
            status: "registered",
            message: "Telegram now posts updates to the webhook URL with the account's secret token".into(),
        },
        Err(e) => WebhookRegistration { status: "failed", message: format!("Telegram setWebhook: {e}") },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn production(green_api_url: &str) -> crate::config::Settings {
        crate::config::Settings::for_tests(&[
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://u:p@db.internal:5432/aisales"),
            ("REDIS_URL", "redis://redis.internal:6379/"),
            ("SESSION_SECRET", "0123456789abcdef0123456789abcdef0123"),
            ("INTEGRATION_SECRETS_MASTER_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="),
            ("APP_URL", "https://sales.example.com"),
            ("GREEN_API_URL", green_api_url),
        ])
    }

    fn check(settings: &crate::config::Settings, url: &str) -> Result<(), String> {
        check_provider_url(settings, "api_url", &Some(url.to_string())).map_err(|e| e.to_string())
    }

    #[test]
    fn in_production_only_green_api_hosts_are_called() {
        let s = production("https://api.green-api.com");
        check(&s, "https://3100.api.green-api.com/v3").unwrap();
        check(&s, "https://api.green-api.com").unwrap();
        check(&s, "https://green-api.com").unwrap();
        for bad in [
            "http://10.0.0.5:8080/internal",
            "http://127.0.0.1:6379",
            "https://green-api.com.evil.example",
            "https://evilgreen-api.com",
            "http://3100.api.green-api.com",
            "https://3100.api.green-api.com/v3?x=",
            "https://user:pw@3100.api.green-api.com",
            "https://3100.api.green-api.com/#frag",
            "ftp://api.green-api.com",
            "not a url",
        ] {
            assert!(check(&s, bad).is_err(), "{bad} is refused");
        }
    }

    #[test]
    fn the_configured_green_api_origin_is_allowed() {
        let s = production("http://green-proxy.internal:8080");
        check(&s, "http://green-proxy.internal:8080/v3").unwrap();
        assert!(check(&s, "http://green-proxy.internal:8081").is_err());
    }

    #[test]
    fn development_may_use_local_fakes_but_no_query_or_credentials() {
        let s = crate::config::Settings::for_tests(&[]);
        check(&s, "http://127.0.0.1:4010").unwrap();
        assert!(check(&s, "http://127.0.0.1:4010/?x=1").is_err());
        assert!(check(&s, "http://u:p@127.0.0.1:4010").is_err());
    }
}
