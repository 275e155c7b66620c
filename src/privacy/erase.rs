//! Erasing a customer (`DELETE /api/customers/{id}`, `aisales customer erase`): crypto-shredding.
//!
//! Events are never changed. The customer's data in them is sealed with the customer's own key
//! ([`aisales_projections::pii`]), and so is every lead that reached them, with the lead's key.
//! Erasure destroys those keys, so every customer-data field of those events reads `[erased]` from
//! then on, in every rebuild and in every reader (another process within its key cache's 30 s).
//! In order:
//!
//! 1. the snapshots of their aggregates (state in clear) are deleted and the keys destroyed (a
//!    tombstone stays: the subject never gets a new key); events stored before sealing existed
//!    get `[erased]` written over their customer data;
//! 2. `CustomerErased` is appended to each of the customer's conversations and `LeadErased` to
//!    each lead: the erasure's own record, with actor and time and no customer data. The
//!    projectors scrub their rows of that conversation or lead when they apply it; the
//!    aggregates refuse every later command, so nothing new is written about the customer;
//! 3. what is kept outside the events is deleted in one transaction: the customer's identities
//!    (the next message from the same chat starts a new customer), the provider ids of replies
//!    sent to them, the snapshots of their aggregates (again), webhook dead letters and stored
//!    command answers naming their chat, phone or name, and files only they sent; the erasure is
//!    recorded in `data_deletions`.
//!
//! Repeating an erasure is harmless: the keys are gone already, the aggregates record nothing
//! new, and the deletions find nothing. Each step is idempotent, so an erasure interrupted
//! half-way is finished by running it again.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use aisales_domain::conversation::{Conversation, ConversationCommand, ConversationError};
use aisales_domain::lead::{Lead, LeadCommand, LeadError};
use aisales_domain::pii::ErasureCause;

use crate::application::Context;
use crate::store::{EventMetadata, ExecuteError};

/// What an erasure did.
#[derive(Debug, Clone, Serialize)]
pub struct Erasure {
    pub customer_id: Uuid,
    pub conversations: Vec<Uuid>,
    pub leads: Vec<Uuid>,
    /// The customer was erased before: nothing new was done.
    pub already_erased: bool,
    /// Global position of the last erasure event written (for read-your-writes).
    pub position: Option<String>,
    pub erased_at: DateTime<Utc>,
}

/// The customer's conversations (from the identities, which never lag, and the read models).
async fn conversations_of(ctx: &Context, tenant: Uuid, customer: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "SELECT conversation_id FROM channel_identities WHERE tenant_id = $1 AND customer_id = $2 \
         UNION SELECT conversation_id FROM rm_conversations WHERE tenant_id = $1 AND customer_id = $2 \
         UNION SELECT conversation_id FROM rm_customers WHERE tenant_id = $1 AND customer_id = $2",
    )
    .bind(tenant)
    .bind(customer)
    .fetch_all(&ctx.pool)
    .await
}

/// The leads of the customer: answered in their conversations, or left with their phone (any
/// spelling of the same digits). The export holds the same leads.
pub(super) async fn leads_of<'c>(
    db: impl sqlx::PgExecutor<'c>,
    tenant: Uuid,
    conversations: &[Uuid],
    phones: &[String],
) -> sqlx::Result<Vec<Uuid>> {
    let digits: Vec<String> = phones
        .iter()
        .map(|p| p.chars().filter(char::is_ascii_digit).collect::<String>())
        .filter(|d| !d.is_empty())
        .collect();
    sqlx::query_scalar(
        "SELECT lead_id FROM rm_leads WHERE tenant_id = $1 AND conversation_id = ANY($2) \
         UNION \
         SELECT (payload->'LeadLinked'->>'lead_id')::uuid FROM events \
          WHERE aggregate_type = 'conversation' AND aggregate_id = ANY($2::uuid[]::text[]) \
            AND event_type = 'LeadLinked' AND tenant_id = $1 \
         UNION \
         SELECT lead_id FROM rm_leads WHERE tenant_id = $1 AND phone IS NOT NULL \
            AND regexp_replace(phone, '\\D', '', 'g') = ANY($3)",
    )
    .bind(tenant)
    .bind(conversations)
    .bind(&digits)
    .fetch_all(db)
    .await
}

/// Erases customer `customer` of `tenant`; `None` when the tenant has no such customer.
pub async fn erase_customer(
    ctx: &Context,
    tenant: Uuid,
    customer: Uuid,
    actor: &str,
    cause: ErasureCause,
) -> anyhow::Result<Option<Erasure>> {
    let conversations = conversations_of(ctx, tenant, customer).await?;
    let tombstone: Option<Uuid> = sqlx::query_scalar(
        "SELECT tenant_id FROM data_keys WHERE subject_id = $1 AND kind = 'customer' AND erased_at IS NOT NULL",
    )
    .bind(customer)
    .fetch_optional(&ctx.pool)
    .await?;
    if conversations.is_empty() {
        return Ok((tombstone == Some(tenant)).then(|| Erasure {
            customer_id: customer,
            conversations: vec![],
            leads: vec![],
            already_erased: true,
            position: None,
            erased_at: Utc::now(),
        }));
    }
    let at = Utc::now();

    // What identifies the customer outside the events, read before anything is destroyed.
    let mut chats = Vec::new();
    let mut phones = Vec::new();
    let mut names = Vec::new();
    for id in &conversations {
        let state = ctx.store.load::<Conversation>(&id.to_string()).await?.state;
        if state.tenant_id != tenant {
            return Ok(None);
        }
        if !state.erased {
            chats.push(state.chat_id.clone());
            chats.extend(state.aliases.iter().cloned());
            phones.extend(state.customer_phone.clone());
            names.extend(state.customer_name.clone());
        }
    }
    let external_ids: Vec<String> =
        sqlx::query_scalar("SELECT external_id FROM channel_identities WHERE tenant_id = $1 AND customer_id = $2")
            .bind(tenant)
            .bind(customer)
            .fetch_all(&ctx.pool)
            .await?;
    chats.extend(external_ids.iter().map(|e| e.split('#').next().unwrap_or(e).to_string()));
    chats.sort();
    chats.dedup();
    let mut leads = leads_of(&ctx.pool, tenant, &conversations, &phones).await?;
    // Leads whose key an interrupted erasure destroyed before recording them (found then by a
    // phone the erased conversation no longer tells).
    let unfinished: Vec<Uuid> = sqlx::query_scalar(
        "SELECT k.subject_id FROM data_keys k WHERE k.tenant_id = $1 AND k.kind = 'lead' AND k.erased_at IS NOT NULL \
            AND NOT EXISTS (SELECT 1 FROM events e WHERE e.aggregate_type = 'lead' \
                              AND e.aggregate_id = k.subject_id::text AND e.event_type = 'LeadErased')",
    )
    .bind(tenant)
    .fetch_all(&ctx.pool)
    .await?;
    leads.extend(unfinished);
    leads.sort();
    leads.dedup();

    // 1. The keys, after the snapshots (which hold the state in clear), so that nothing loads
    // the customer's data in clear once the keys are gone.
    sqlx::query(
        "DELETE FROM aggregate_snapshots WHERE (aggregate_type = 'conversation' AND aggregate_id = ANY($1)) \
            OR (aggregate_type = 'lead' AND aggregate_id = ANY($2))",
    )
    .bind(conversations.iter().map(Uuid::to_string).collect::<Vec<_>>())
    .bind(leads.iter().map(Uuid::to_string).collect::<Vec<_>>())
    .execute(&ctx.pool)
    .await?;
    let mut conn = ctx.pool.acquire().await?;
    let mut destroyed = aisales_projections::pii::destroy(&mut conn, tenant, customer, "customer", actor).await?;
    for lead in &leads {
        destroyed |= aisales_projections::pii::destroy(&mut conn, tenant, *lead, "lead", actor).await?;
    }
    drop(conn);
    // Events stored before sealing existed hold the data in clear: written over with [erased].
    crate::privacy::migrate::erase_unsealed(&ctx.pool, "conversation", &conversations).await?;
    crate::privacy::migrate::erase_unsealed(&ctx.pool, "lead", &leads).await?;

    // 2. The erasure events.
    let meta = EventMetadata::system(Some(tenant), actor);
    let mut position = None;
    let mut recorded = false;
    for id in &conversations {
        let cmd = ConversationCommand::EraseCustomer { by: actor.to_string(), cause, at };
        match ctx.store.execute::<Conversation>(&id.to_string(), cmd, &(), &meta).await {
            Ok(out) => {
                if let Some(c) = out.committed {
                    recorded = true;
                    position = Some(c.position.to_string());
                }
            }
            Err(ExecuteError::Rejected(ConversationError::NotFound)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for id in &leads {
        let cmd = LeadCommand::Erase { by: actor.to_string(), cause, at };
        match ctx.store.execute::<Lead>(&id.to_string(), cmd, &(), &meta).await {
            Ok(out) => {
                if let Some(c) = out.committed {
                    recorded = true;
                    position = Some(c.position.to_string());
                }
            }
            Err(ExecuteError::Rejected(LeadError::NotFound)) => {}
            Err(e) => return Err(e.into()),
        }
    }

    // Rows a projector parked (an event it could not apply) are skipped, the erasure's included:
    // they are retried now, with the customer data of their events erased.
    retry_parked(ctx, &conversations, &leads).await?;

    // 3. What is kept outside the events.
    scrub_outside_events(ctx, tenant, customer, &conversations, &leads, &chats, &phones, &names).await?;
    let files = delete_files(ctx, tenant, &conversations).await?;
    let accounts = accounts_of(ctx, tenant).await?;
    for chat in &chats {
        for (kind, account) in &accounts {
            ctx.identities.forget(tenant, *kind, *account, chat);
        }
    }
    if destroyed || recorded {
        sqlx::query(
            "INSERT INTO data_deletions (tenant_id, kind, subject, rows, bytes, reason, actor) \
             VALUES ($1, 'customer', $2, $3, 0, $4, $5)",
        )
        .bind(tenant)
        .bind(customer.to_string())
        .bind(i32::try_from(conversations.len() + leads.len() + files).unwrap_or(i32::MAX))
        .bind(match cause {
            ErasureCause::Request => "erasure: requested",
            ErasureCause::Inactive => "erasure: inactive longer than the tenant keeps data",
        })
        .bind(actor)
        .execute(&ctx.pool)
        .await?;
    }
    metrics::counter!("aisales_customer_erasures_total", "already" => if destroyed || recorded { "false" } else { "true" })
        .increment(1);
    tracing::info!(%tenant, %customer, conversations = conversations.len(), leads = leads.len(), "customer erased");
    Ok(Some(Erasure {
        customer_id: customer,
        conversations,
        leads,
        already_erased: !(destroyed || recorded),
        position,
        erased_at: at,
    }))
}

/// What erasing a lead on its own did.
#[derive(Debug, Clone, Serialize)]
pub struct LeadErasure {
    pub lead_id: Uuid,
    /// The lead was erased before: nothing new was done.
    pub already_erased: bool,
    /// Global position of the erasure event written (for read-your-writes).
    pub position: Option<String>,
    pub erased_at: DateTime<Utc>,
}

/// Why a lead was not erased on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeadNotErased {
    /// The tenant has no such lead.
    NotFound,
    /// The lead reached a customer: it is part of their record and erased with them.
    ReachedCustomer(Uuid),
    /// The outreach is trying the channels right now: whether it reaches a customer is not known
    /// yet (asked again once it has ended).
    OutreachUnderWay,
}

/// Erases a lead that never reached a customer (a failed lead, or one still waiting for its
/// outreach): its key is destroyed, `LeadErased` recorded, and what names its phone or name
/// outside the events deleted. A lead that reached a customer is refused with the customer's id:
/// the customer's erasure takes it with everything else of theirs.
pub async fn erase_lead(
    ctx: &Context,
    tenant: Uuid,
    lead: Uuid,
    actor: &str,
    cause: ErasureCause,
) -> anyhow::Result<Result<LeadErasure, LeadNotErased>> {
    let state = ctx.store.load::<Lead>(&lead.to_string()).await?.state;
    if state.status.is_none() || state.tenant_id != tenant {
        return Ok(Err(LeadNotErased::NotFound));
    }
    // Contacted, or an attempt of the current round opened a conversation already.
    if let Some(conversation) = state.conversation_id.or_else(|| state.attempts.iter().find_map(|a| a.conversation_id))
    {
        let customer = ctx.store.load::<Conversation>(&conversation.to_string()).await?.state.customer_id;
        return Ok(Err(LeadNotErased::ReachedCustomer(customer)));
    }
    if state.status == Some(aisales_domain::lead::LeadStatus::Contacting) && !state.erased {
        return Ok(Err(LeadNotErased::OutreachUnderWay));
    }
    let at = Utc::now();
    let fields = &state.fields;
    let phones: Vec<String> = if state.erased {
        vec![]
    } else {
        fields
            .phone
            .iter()
            .chain(&fields.max_phone)
            .map(|p| p.digits().to_string())
            .chain(fields.phone_raw.clone())
            .collect()
    };
    let mut names: Vec<String> = Vec::new();
    if !state.erased {
        names.extend(fields.client_name.clone());
        names.extend(fields.email.clone());
        names.extend(fields.telegram.as_ref().map(|t| t.as_str().to_string()));
    }

    sqlx::query("DELETE FROM aggregate_snapshots WHERE aggregate_type = 'lead' AND aggregate_id = $1")
        .bind(lead.to_string())
        .execute(&ctx.pool)
        .await?;
    let mut conn = ctx.pool.acquire().await?;
    let destroyed = aisales_projections::pii::destroy(&mut conn, tenant, lead, "lead", actor).await?;
    drop(conn);
    crate::privacy::migrate::erase_unsealed(&ctx.pool, "lead", &[lead]).await?;

    let meta = EventMetadata::system(Some(tenant), actor);
    let cmd = LeadCommand::Erase { by: actor.to_string(), cause, at };
    let committed = ctx.store.execute::<Lead>(&lead.to_string(), cmd, &(), &meta).await?.committed;
    let position = committed.map(|c| c.position.to_string());

    retry_parked(ctx, &[], &[lead]).await?;
    scrub_outside_events(ctx, tenant, lead, &[], &[lead], &[], &phones, &names).await?;
    let done = destroyed || position.is_some();
    if done {
        sqlx::query(
            "INSERT INTO data_deletions (tenant_id, kind, subject, rows, bytes, reason, actor) \
             VALUES ($1, 'lead', $2, 1, 0, 'erasure: requested', $3)",
        )
        .bind(tenant)
        .bind(lead.to_string())
        .bind(actor)
        .execute(&ctx.pool)
        .await?;
    }
    metrics::counter!("aisales_lead_erasures_total", "already" => if done { "false" } else { "true" }).increment(1);
    tracing::info!(%tenant, %lead, "lead erased");
    Ok(Ok(LeadErasure { lead_id: lead, already_erased: !done, position, erased_at: at }))
}

/// Retries, for every projector, the erased conversations and leads it has parked. A projector
/// skips a parked aggregate's events, so without this the erasure would not reach its rows. Once
/// the events apply (their customer data now reads `[erased]`, which often is what made one fail),
/// the projector follows the aggregate again and applies the erasure like any other event. One
/// that fails again stays parked and is logged; its rows are scrubbed when it is retried later.
async fn retry_parked(ctx: &Context, conversations: &[Uuid], leads: &[Uuid]) -> anyhow::Result<()> {
    let parked: Vec<(String, String)> = sqlx::query_as(
        "SELECT projector, aggregate_id FROM projector_parked \
          WHERE (aggregate_type = 'conversation' AND aggregate_id = ANY($1)) \
             OR (aggregate_type = 'lead' AND aggregate_id = ANY($2))",
    )
    .bind(conversations.iter().map(Uuid::to_string).collect::<Vec<_>>())
    .bind(leads.iter().map(Uuid::to_string).collect::<Vec<_>>())
    .fetch_all(&ctx.pool)
    .await?;
    if parked.is_empty() {
        return Ok(());
    }
    let projectors = crate::projection::registry::all(&ctx.settings, &ctx.pool, &ctx.redis);
    for (name, aggregate) in parked {
        // A rebuild's generation (not one of the live projectors) takes the parked rows over at its swap.
        let Some(projector) = projectors.iter().find(|p| p.name() == name) else { continue };
        for outcome in aisales_projections::parking::retry(&ctx.pool, projector.as_ref(), Some(&aggregate)).await? {
            match outcome.error {
                None => {
                    tracing::info!(projector = %name, aggregate = %aggregate, "parked aggregate of an erased customer applied")
                }
                Some(error) => tracing::warn!(
                    projector = %name,
                    aggregate = %aggregate,
                    error,
                    "parked aggregate of an erased customer still fails; its rows are scrubbed when it applies"
                ),
            }
        }
    }
    Ok(())
}

/// Deletes the files the customer sent (and their thumbnails) that no other conversation of the
/// tenant holds; returns how many.
async fn delete_files(ctx: &Context, tenant: Uuid, conversations: &[Uuid]) -> anyhow::Result<usize> {
    let files: Vec<String> = sqlx::query_scalar(
        "WITH stored AS ( \
             SELECT aggregate_id, payload->'AttachmentStored'->'media' AS m FROM events \
              WHERE aggregate_type = 'conversation' AND event_type = 'AttachmentStored' AND tenant_id = $1), \
         files AS ( \
             SELECT aggregate_id, m->>'sha256' AS sha FROM stored \
             UNION ALL SELECT aggregate_id, m->>'thumbnail_sha256' FROM stored WHERE m->>'thumbnail_sha256' IS NOT NULL) \
         SELECT DISTINCT sha FROM files WHERE aggregate_id = ANY($2::uuid[]::text[]) \
         EXCEPT SELECT sha FROM files WHERE NOT aggregate_id = ANY($2::uuid[]::text[])",
    )
    .bind(tenant)
    .bind(conversations)
    .fetch_all(&ctx.pool)
    .await?;
    if files.is_empty() {
        return Ok(0);
    }
    let store = crate::media::MediaStore::shared(&ctx.settings.media)?;
    for sha in &files {
        store.delete(tenant, sha).await?;
    }
    sqlx::query("DELETE FROM media_objects WHERE tenant_id = $1 AND sha256 = ANY($2)")
        .bind(tenant)
        .bind(&files)
        .execute(&ctx.pool)
        .await?;
    Ok(files.len())
}

/// The tenant's channel accounts (kind and id), whose identity caches may hold the customer.
async fn accounts_of(
    ctx: &Context,
    tenant: Uuid,
) -> sqlx::Result<Vec<(aisales_domain::conversation::ChannelKind, Uuid)>> {
    let rows: Vec<(String, Uuid)> = sqlx::query_as("SELECT kind, id FROM channel_accounts WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_all(&ctx.pool)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(k, id)| Some((aisales_domain::conversation::ChannelKind::parse(&k)?, id)))
        .collect())
}

/// Deletes, in one transaction, what names the customer outside the events.
#[allow(clippy::too_many_arguments)]
async fn scrub_outside_events(
    ctx: &Context,
    tenant: Uuid,
    customer: Uuid,
    conversations: &[Uuid],
    leads: &[Uuid],
    chats: &[String],
    phones: &[String],
    names: &[String],
) -> sqlx::Result<()> {
    let conversation_keys: Vec<String> = conversations.iter().map(Uuid::to_string).collect();
    let lead_keys: Vec<String> = leads.iter().map(Uuid::to_string).collect();
    // Strings that name the customer in raw provider bodies and stored answers: chat ids, phone
    // digits (as providers write them) and names.
    let mut needles: Vec<String> = chats.iter().filter(|c| c.len() >= 5).cloned().collect();
    needles.extend(
        phones.iter().map(|p| p.chars().filter(char::is_ascii_digit).collect::<String>()).filter(|d| d.len() >= 7),
    );
    needles.extend(names.iter().filter(|n| n.chars().count() >= 3).cloned());
    needles.sort();
    needles.dedup();

    let mut tx = ctx.pool.begin().await?;
    sqlx::query(
        "DELETE FROM channel_identities WHERE tenant_id = $1 AND (customer_id = $2 OR conversation_id = ANY($3))",
    )
    .bind(tenant)
    .bind(customer)
    .bind(conversations)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM outbound_messages WHERE tenant_id = $1 AND conversation_id = ANY($2)")
        .bind(tenant)
        .bind(conversations)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "DELETE FROM aggregate_snapshots WHERE (aggregate_type = 'conversation' AND aggregate_id = ANY($1)) \
            OR (aggregate_type = 'lead' AND aggregate_id = ANY($2))",
    )
    .bind(&conversation_keys)
    .bind(&lead_keys)
    .execute(&mut *tx)
    .await?;
    if !needles.is_empty() {
        sqlx::query(
            "DELETE FROM webhook_dead_letters WHERE tenant_id = $1 \
               AND EXISTS (SELECT 1 FROM unnest($2::text[]) n WHERE strpos(body, n) > 0)",
        )
        .bind(tenant)
        .bind(&needles)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND body IS NOT NULL \
               AND EXISTS (SELECT 1 FROM unnest($2::text[]) n WHERE position(convert_to(n, 'UTF8') IN body) > 0)",
        )
        .bind(tenant)
        .bind(&needles)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
