//! Who may do what: roles, permissions, the authenticated caller, and the credentials that prove it
//! (API tokens, dashboard sessions, passwords).

pub mod attempts;
pub mod passwords;
pub mod sessions;
pub mod tokens;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A user's or token's role within its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Operator,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Operator, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    /// Whether this role grants `p` (the permission matrix).
    pub fn allows(self, p: Permission) -> bool {
        PERMISSIONS.iter().find(|(perm, _)| *perm == p).is_some_and(|(_, roles)| roles.contains(&self))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an unknown role name.
#[derive(Debug, thiserror::Error)]
#[error("unknown role `{0}`; use owner, admin, operator or viewer")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s.trim().to_ascii_lowercase()).ok_or_else(|| UnknownRole(s.into()))
    }
}

/// A named capability that an `/api` route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Permission {
    ViewConversations,
    ManageConversations,
    ViewCustomers,
    ManageCustomers,
    DeleteCustomerData,
    ViewAnalytics,
    ManageProducts,
    ManageKnowledgeBase,
    ManageAutosend,
    ManagePolicies,
    ManageTraining,
    ExportTrainingData,
    ManageChannels,
    ManageTenantSettings,
    ManageUsers,
    ViewAuditLogs,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ViewConversations => "VIEW_CONVERSATIONS",
            Permission::ManageConversations => "MANAGE_CONVERSATIONS",
            Permission::ViewCustomers => "VIEW_CUSTOMERS",
            Permission::ManageCustomers => "MANAGE_CUSTOMERS",
            Permission::DeleteCustomerData => "DELETE_CUSTOMER_DATA",
            Permission::ViewAnalytics => "VIEW_ANALYTICS",
            Permission::ManageProducts => "MANAGE_PRODUCTS",
            Permission::ManageKnowledgeBase => "MANAGE_KNOWLEDGE_BASE",
            Permission::ManageAutosend => "MANAGE_AUTOSEND",
            Permission::ManagePolicies => "MANAGE_POLICIES",
            Permission::ManageTraining => "MANAGE_TRAINING",
            Permission::ExportTrainingData => "EXPORT_TRAINING_DATA",
            Permission::ManageChannels => "MANAGE_CHANNELS",
            Permission::ManageTenantSettings => "MANAGE_TENANT_SETTINGS",
            Permission::ManageUsers => "MANAGE_USERS",
            Permission::ViewAuditLogs => "VIEW_AUDIT_LOGS",
        }
    }
}

use Role::{Admin as A, Operator as Op, Owner as O, Viewer as V};

/// The permission matrix: every permission and the roles that have it. This table is the single
/// source of truth; `docs/security.md` shows the same table.
pub const PERMISSIONS: &[(Permission, &[Role])] = &[
    (Permission::ViewConversations, &[O, A, Op, V]),
    (Permission::ManageConversations, &[O, A, Op]),
    (Permission::ViewCustomers, &[O, A, Op, V]),
    (Permission::ManageCustomers, &[O, A, Op]),
    (Permission::DeleteCustomerData, &[O, A]),
    (Permission::ViewAnalytics, &[O, A, Op]),
    (Permission::ManageProducts, &[O, A, Op]),
    (Permission::ManageKnowledgeBase, &[O, A, Op]),
    (Permission::ManageAutosend, &[O, A]),
    (Permission::ManagePolicies, &[O, A]),
    (Permission::ManageTraining, &[O, A]),
    (Permission::ExportTrainingData, &[O, A]),
    (Permission::ManageChannels, &[O, A]),
    (Permission::ManageTenantSettings, &[O, A]),
    (Permission::ManageUsers, &[O]),
    (Permission::ViewAuditLogs, &[O, A]),
];

/// Who is acting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum Actor {
    User(Uuid),
    Token(Uuid),
}

impl Actor {
    /// The form stored in event metadata: `user:<id>` or `token:<id>`.
    pub fn metadata_value(&self) -> String {
        match self {
            Actor::User(id) => format!("user:{id}"),
            Actor::Token(id) => format!("token:{id}"),
        }
    }
}

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    Token,
    Session,
}

/// The authenticated caller of an `/api` request.
#[derive(Debug, Clone, Serialize)]
pub struct Caller {
    pub tenant_id: Uuid,
    pub role: Role,
    pub actor: Actor,
    pub method: AuthMethod,
    /// A dashboard user who still has to replace a one-time password.
    pub must_change_password: bool,
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_counts_match_the_old_system() {
        let count = |r: Role| PERMISSIONS.iter().filter(|(p, _)| r.allows(*p)).count();
        assert_eq!(count(Role::Owner), 16);
        assert_eq!(count(Role::Admin), 15);
        assert_eq!(count(Role::Operator), 7);
        assert_eq!(count(Role::Viewer), 2);
    }

    #[test]
    fn roles_parse() {
        assert_eq!("Operator".parse::<Role>().unwrap(), Role::Operator);
        assert!("guest".parse::<Role>().is_err());
    }
}
