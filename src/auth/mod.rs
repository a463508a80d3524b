//! Who is calling and what they may do: users, roles, passwords, tokens and
//! scanner device keys.

pub mod password;
pub mod repo;

use poem_openapi::Enum;

/// What a user may do. Ordered: each role includes the rights of those below it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Enum, serde::Serialize, serde::Deserialize,
)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Moves stock and counts, reads everything.
    Clerk,
    /// Catalog, warehouses, stock, devices and counts.
    Manager,
    /// Everything, including users.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Clerk => "clerk",
            Self::Manager => "manager",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Self::Viewer),
            "clerk" => Some(Self::Clerk),
            "manager" => Some(Self::Manager),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}
