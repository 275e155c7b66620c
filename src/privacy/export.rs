//! Everything held about one customer, as one JSON document: the answer to a customer's request
//! for their data (`GET /api/customers/{id}/export`, `aisales customer export`).
//!
//! The document is read in one read-only repeatable-read transaction, so it is one consistent
//! picture even while webhooks for the customer keep arriving. Rows of the read models are
//! exported whole (`to_jsonb` of the row), so a column added later is exported without touching
//! this file; the events are exported as stored, with their metadata, because they are the record
//! the read models are built from. What it holds:
//!
//! - `customer`: the customer row, and `identities`: the channel ids that lead to the customer;
//! - `conversations`: each conversation of the customer with its messages, drafts, escalations,
//!   the provider ids of replies sent, and its events;
//! - `leads`: the leads answered in those conversations or left with the customer's phone, with
//!   their events;
//! - `vehicle_lookups` (with the list of their evidence files) and `price_lookups` of those
//!   conversations;
//! - `media`: the stored files the customer sent (type, size and hash; the bytes are served by the
//!   media API).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// Name and version of the document's layout.
pub const FORMAT: &str = "aisales.customer-export.v1";

/// The export of `customer_id` of `tenant_id`, or `None` when the tenant has no such customer.
pub async fn customer_export(
    pool: &PgPool,
    tenant_id: Uuid,
    customer_id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<Value>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    let customer: Option<Value> =
        sqlx::query_scalar("SELECT to_jsonb(c) FROM rm_customers c WHERE tenant_id = $1 AND customer_id = $2")
            .bind(tenant_id)
            .bind(customer_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(customer) = customer else {
        return Ok(None);
    };
    let conversation_ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT conversation_id FROM rm_conversations WHERE tenant_id = $1 AND customer_id = $2 \
         UNION SELECT conversation_id FROM rm_customers WHERE tenant_id = $1 AND customer_id = $2",
    )
    .bind(tenant_id)
    .bind(customer_id)
    .fetch_all(&mut *tx)
    .await?;

    let identities = rows(
        &mut tx,
        "SELECT to_jsonb(i) FROM channel_identities i WHERE tenant_id = $1 AND customer_id = ANY($2) \
         ORDER BY created_at, external_id",
        tenant_id,
        &[customer_id],
    )
    .await?;

    let mut conversations = Vec::with_capacity(conversation_ids.len());
    for &id in &conversation_ids {
        conversations.push(conversation(&mut tx, tenant_id, id).await?);
    }

    let phones: Vec<String> = customer["phone"].as_str().map(str::to_string).into_iter().collect();
    let lead_ids = super::erase::leads_of(&mut *tx, tenant_id, &conversation_ids, &phones).await?;
    let mut leads = Vec::with_capacity(lead_ids.len());
    for &id in &lead_ids {
        let lead: Option<Value> =
            sqlx::query_scalar("SELECT to_jsonb(l) FROM rm_leads l WHERE tenant_id = $1 AND lead_id = $2")
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        leads.push(json!({"lead": lead, "events": events(&mut tx, tenant_id, "lead", id).await?}));
    }

    let lookups = rows(
        &mut tx,
        "SELECT to_jsonb(v) || jsonb_build_object('evidence', coalesce(( \
                 SELECT jsonb_agg(jsonb_build_object('id', e.id, 'kind', e.kind, 'content_type', e.content_type, \
                        'size_bytes', e.size_bytes, 'round', e.round, 'attempt', e.attempt, 'created_at', e.created_at) \
                        ORDER BY e.created_at, e.id) \
                   FROM lookup_evidence e WHERE e.tenant_id = v.tenant_id AND e.lookup_id = v.lookup_id), '[]'::jsonb)) \
           FROM rm_vehicle_lookups v WHERE tenant_id = $1 AND conversation_id = ANY($2) ORDER BY lookup_id",
        tenant_id,
        &conversation_ids,
    )
    .await?;
    let price_lookups = rows(
        &mut tx,
        "SELECT to_jsonb(p) FROM rm_price_lookups p WHERE tenant_id = $1 AND conversation_ids && $2 ORDER BY id",
        tenant_id,
        &conversation_ids,
    )
    .await?;
    let media = rows(
        &mut tx,
        "SELECT to_jsonb(m) FROM media_objects m WHERE m.tenant_id = $1 AND m.sha256 IN ( \
             SELECT e.payload->'AttachmentStored'->'media'->>'sha256' FROM events e \
              WHERE e.aggregate_type = 'conversation' AND e.aggregate_id = ANY($2::uuid[]::text[]) \
                AND e.event_type = 'AttachmentStored' AND e.tenant_id = $1) \
         ORDER BY created_at, sha256",
        tenant_id,
        &conversation_ids,
    )
    .await?;
    tx.commit().await?;

    Ok(Some(json!({
        "format": FORMAT,
        "exported_at": now,
        "tenant_id": tenant_id,
        "customer_id": customer_id,
        "customer": customer,
        "identities": identities,
        "conversations": conversations,
        "leads": leads,
        "vehicle_lookups": lookups,
        "price_lookups": price_lookups,
        "media": media,
    })))
}

/// One conversation with everything recorded in it.
async fn conversation(tx: &mut Transaction<'_, Postgres>, tenant_id: Uuid, id: Uuid) -> sqlx::Result<Value> {
    let row: Option<Value> =
        sqlx::query_scalar("SELECT to_jsonb(c) FROM rm_conversations c WHERE tenant_id = $1 AND conversation_id = $2")
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    let ids = [id];
    Ok(json!({
        "conversation": row,
        "messages": rows(tx,
            "SELECT to_jsonb(m) FROM rm_messages m WHERE tenant_id = $1 AND conversation_id = ANY($2) \
             ORDER BY created_at, message_id", tenant_id, &ids).await?,
        "suggestions": rows(tx,
            "SELECT to_jsonb(s) FROM rm_suggestions s WHERE tenant_id = $1 AND conversation_id = ANY($2) \
             ORDER BY created_at", tenant_id, &ids).await?,
        "escalations": rows(tx,
            "SELECT to_jsonb(e) FROM rm_escalations e WHERE tenant_id = $1 AND conversation_id = ANY($2) \
             ORDER BY sequence", tenant_id, &ids).await?,
        "sent_replies": rows(tx,
            "SELECT to_jsonb(o) FROM outbound_messages o WHERE tenant_id = $1 AND conversation_id = ANY($2) \
             ORDER BY created_at, provider_message_id", tenant_id, &ids).await?,
        "events": events(tx, tenant_id, "conversation", id).await?,
    }))
}

/// The events of one aggregate of the tenant, in order, with their customer data opened.
async fn events(
    tx: &mut Transaction<'_, Postgres>,
    tenant_id: Uuid,
    aggregate_type: &str,
    id: Uuid,
) -> sqlx::Result<Vec<Value>> {
    type Row = (i64, String, String, DateTime<Utc>, String, String);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT sequence, event_type, event_version, recorded_at, payload::text, metadata::text \
           FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND tenant_id = $3 ORDER BY sequence",
    )
    .bind(aggregate_type)
    .bind(id.to_string())
    .bind(tenant_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (sequence, event_type, version, recorded_at, payload, metadata) in rows {
        let payload = aisales_projections::pii::opened(&mut **tx, &event_type, payload)
            .await
            .map_err(|e| sqlx::Error::Decode(e.into()))?;
        out.push(json!({
            "sequence": sequence,
            "type": event_type,
            "version": version,
            "recorded_at": recorded_at,
            "payload": serde_json::from_str::<Value>(&payload).map_err(|e| sqlx::Error::Decode(e.into()))?,
            "metadata": serde_json::from_str::<Value>(&metadata).map_err(|e| sqlx::Error::Decode(e.into()))?,
        }));
    }
    Ok(out)
}

/// Rows of `query` (one JSON value per row), bound to the tenant and a list of ids.
async fn rows(
    tx: &mut Transaction<'_, Postgres>,
    query: &str,
    tenant_id: Uuid,
    ids: &[Uuid],
) -> sqlx::Result<Vec<Value>> {
    sqlx::query_scalar(query).bind(tenant_id).bind(ids).fetch_all(&mut **tx).await
}
