//! Commands on vehicle lookups: an operator asks for one in a conversation, retries one, corrects
//! its identifier or confirms the gearbox from a photo of its tag.

use aisales_domain::conversation::ConversationCommand as C;
use aisales_domain::vehicle_lookup::{self as vl, VehicleId, VehicleLookup, VehicleLookupCommand};
use uuid::Uuid;

use super::conversations::{self, Done, owner_of};
use super::{CommandError, Context};
use crate::store::{EventMetadata, Outcome};

/// A lookup asked for in a conversation: its id, and whether this request started it (a lookup
/// of the identifier already running or answered is not asked for again).
#[derive(Debug, Clone)]
pub struct Requested {
    pub done: Done,
    pub lookup_id: Uuid,
    pub requested: bool,
}

/// Asks for a lookup of `id` in `conversation`.
pub async fn request(
    ctx: &Context,
    tenant: Uuid,
    conversation: Uuid,
    id: &VehicleId,
    meta: &EventMetadata,
) -> Result<Requested, CommandError> {
    let lookup_id = vl::lookup_id(tenant, Some(conversation), id);
    let cmd = C::RequestVehicleLookup {
        lookup_id,
        request_id: Uuid::now_v7(),
        id: id.clone(),
        requested_by: meta.actor.clone(),
    };
    let out = conversations::execute(ctx, tenant, conversation, cmd, meta).await?;
    let requested = out.committed.is_some();
    Ok(Requested {
        done: Done {
            conversation_id: conversation,
            status: out.state.status,
            sequence: out.sequence,
            position: out.committed.map(|c| c.position),
        },
        lookup_id,
        requested,
    })
}

/// Whether a lookup of `tenant` has been asked for (its read-model row exists) though the worker
/// has not recorded it yet.
async fn being_set_up(ctx: &Context, tenant: Uuid, id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM rm_vehicle_lookups WHERE tenant_id = $1 AND lookup_id = $2)")
        .bind(tenant)
        .bind(id)
        .fetch_one(&ctx.pool)
        .await
}

/// Runs an operator's command on a lookup of `tenant` (another tenant's id is "not found").
pub async fn execute(
    ctx: &Context,
    tenant: Uuid,
    id: Uuid,
    cmd: VehicleLookupCommand,
    meta: &EventMetadata,
) -> Result<Outcome<VehicleLookup>, CommandError> {
    if owner_of(&ctx.pool, "vehicle_lookup", id).await? != Some(tenant) {
        // Asked for but not recorded by the worker yet: it exists, it cannot be acted on yet.
        return Err(if being_set_up(ctx, tenant, id).await? {
            CommandError::Conflict("the lookup is being set up; try again in a moment".into())
        } else {
            CommandError::NotFound("vehicle lookup")
        });
    }
    Ok(ctx.store.execute::<VehicleLookup>(&id.to_string(), cmd, &(), meta).await?)
}
