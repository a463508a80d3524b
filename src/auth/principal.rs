//! The one authorization mechanism: a bearer-token `SecurityScheme` per access
//! level, all sharing [`authenticate`].
//!
//! Handlers declare what they need by the type of their first parameter
//! (`auth: ManagerAuth`). The check runs while poem-openapi extracts that
//! parameter, before the body is parsed, so a request without the right gets
//! 401/403 whatever its body. All types register the same `bearer` scheme, so
//! Swagger UI shows one Authorize button.
//!
//! A JWT is verified locally (once per token per process: `token::Keys`
//! remembers verified tokens); the user's role and active flag then come from a
//! small per-process cache (15 s) over the `users` table, so a deactivated or
//! demoted user loses access within 15 s on every replica, and at once on the
//! replica that made the change. The same holds for a password change: it bumps
//! the user's `token_generation`, and a token carrying an older `gen` is refused. Device keys are looked up by hash the same way.

use std::{sync::Arc, time::Duration};

use poem::Request;
use poem_openapi::{auth::Bearer, SecurityScheme};
use uuid::Uuid;

use super::{token, Role};
use crate::{cache::LocalCache, error::ApiError, state::AppState};

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    User {
        id: Uuid,
        role: Role,
    },
    Device {
        id: Uuid,
        warehouse_ids: Arc<Vec<Uuid>>,
    },
}

impl Principal {
    /// The id idempotency keys and audit rows are stored under.
    pub fn id(&self) -> Uuid {
        match self {
            Self::User { id, .. } | Self::Device { id, .. } => *id,
        }
    }

    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Self::User { id, .. } => Some(*id),
            Self::Device { .. } => None,
        }
    }

    pub fn device_id(&self) -> Option<Uuid> {
        match self {
            Self::Device { id, .. } => Some(*id),
            Self::User { .. } => None,
        }
    }

    pub fn role(&self) -> Option<Role> {
        match self {
            Self::User { role, .. } => Some(*role),
            Self::Device { .. } => None,
        }
    }
}

/// What an operation demands of its caller.
#[derive(Debug, Clone, Copy)]
enum Access {
    /// A user with at least this role.
    User(Role),
    /// A scanner device key.
    Device,
}

/// A user's current standing, cached briefly.
#[derive(Debug, Clone, Copy)]
struct UserStatus {
    role: Role,
    active: bool,
    /// Access tokens issued under an older generation are refused.
    token_generation: i32,
}

/// A device's id and the warehouses it may post for.
type DeviceGrant = (Uuid, Arc<Vec<Uuid>>);

/// How long a user's role/active flag or a device key is trusted without re-reading it.
const STATUS_TTL: Duration = Duration::from_secs(15);

/// Authentication state shared by all requests.
pub struct AuthState {
    pub keys: token::Keys,
    users: LocalCache<Uuid, Option<UserStatus>>,
    devices: LocalCache<Vec<u8>, Option<DeviceGrant>>,
    pub throttle: super::throttle::LoginThrottle,
    pub hashing: super::password::HashingGate,
}

impl AuthState {
    pub fn new(config: &crate::config::Config) -> Self {
        Self {
            keys: token::Keys::new(&config.jwt_secret),
            users: LocalCache::new(STATUS_TTL),
            devices: LocalCache::new(STATUS_TTL),
            throttle: super::throttle::LoginThrottle::default(),
            hashing: super::password::HashingGate::new(
                config.password_hash_concurrency,
                config.password_hash_queue_timeout,
            ),
        }
    }

    /// Drops the cached standing of a user after a change to it, so this replica
    /// applies the change at once.
    pub fn forget_user(&self, id: Uuid) {
        self.users.forget(&id);
    }

    /// Drops all cached device keys (after a revocation).
    pub fn forget_devices(&self) {
        self.devices.clear();
    }
}

async fn user_status(state: &AppState, id: Uuid) -> Result<Option<UserStatus>, ApiError> {
    if let Some(status) = state.auth.users.get(&id) {
        return Ok(status);
    }
    let row: Option<(String, bool, i32)> =
        sqlx::query_as("SELECT role, active, token_generation FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&state.db)
            .await?;
    let status = row.and_then(|(role, active, token_generation)| {
        Some(UserStatus {
            role: Role::parse(&role)?,
            active,
            token_generation,
        })
    });
    state.auth.users.put(id, status);
    Ok(status)
}

async fn device(state: &AppState, key: &str) -> Result<Option<DeviceGrant>, ApiError> {
    let hash = token::sha256(key);
    if let Some(found) = state.auth.devices.get(&hash) {
        return Ok(found);
    }
    let row: Option<(Uuid, Vec<Uuid>)> = sqlx::query_as(
        "SELECT d.id, COALESCE(array_agg(dw.warehouse_id) FILTER (WHERE dw.warehouse_id IS NOT NULL), '{}')
         FROM devices d LEFT JOIN device_warehouses dw ON dw.device_id = d.id
         WHERE d.key_hash = $1 AND d.revoked_at IS NULL
         GROUP BY d.id",
    )
    .bind(&hash)
    .fetch_optional(&state.db)
    .await?;
    let found = row.map(|(id, warehouses)| (id, Arc::new(warehouses)));
    state.auth.devices.put(hash, found.clone());
    Ok(found)
}

fn forbidden_for_role(need: Role) -> ApiError {
    ApiError::Forbidden(format!(
        "This operation needs the {} role or higher.",
        need.as_str()
    ))
}

async fn authenticate(req: &Request, bearer: Bearer, access: Access) -> poem::Result<Principal> {
    let state = req
        .data::<AppState>()
        .expect("AppState is attached to every route");
    let token = bearer.token.trim();
    let principal = if token.starts_with(token::DEVICE_KEY_PREFIX) {
        let Some((id, warehouse_ids)) = device(state, token).await? else {
            return Err(ApiError::Unauthorized.into());
        };
        Principal::Device { id, warehouse_ids }
    } else {
        let Some(claims) = state.auth.keys.verify(token) else {
            return Err(ApiError::Unauthorized.into());
        };
        match user_status(state, claims.sub).await? {
            Some(UserStatus {
                role,
                active: true,
                token_generation,
            }) if claims.gen >= token_generation => Principal::User {
                id: claims.sub,
                role,
            },
            _ => return Err(ApiError::Unauthorized.into()),
        }
    };
    if let Some(slot) = req.data::<crate::telemetry::RequestPrincipal>() {
        slot.set(match &principal {
            Principal::User { id, .. } => format!("user:{id}"),
            Principal::Device { id, .. } => format!("device:{id}"),
        });
    }
    match (access, &principal) {
        (Access::User(need), Principal::User { role, .. }) if *role >= need => Ok(principal),
        (Access::User(need), Principal::User { .. }) => Err(forbidden_for_role(need).into()),
        (Access::User(_), Principal::Device { .. }) => Err(ApiError::Forbidden(
            "Device keys may only call the scanner endpoints.".into(),
        )
        .into()),
        (Access::Device, Principal::Device { .. }) => Ok(principal),
        (Access::Device, Principal::User { .. }) => Err(ApiError::Forbidden(
            "This endpoint is for scanner devices: authenticate with a device key.".into(),
        )
        .into()),
    }
}

// Every type carries the same doc comment: it becomes the description of the
// one `bearer` scheme in the spec, whichever type registers it first.
macro_rules! bearer_scheme {
    ($name:ident, $checker:ident, $checker_name:literal, $access:expr) => {
        /// `Authorization: Bearer <token>`: a JWT access token from
        /// `POST /api/v1/auth/login`, or a scanner device key (`invd_...`) for the
        /// scanner endpoints. Each operation's description names the role it needs.
        #[derive(SecurityScheme)]
        #[oai(
                            rename = "bearer",
                            ty = "bearer",
                            bearer_format = "JWT access token, or a scanner device key (invd_...)",
                            checker = $checker_name
                        )]
        pub struct $name(pub Principal);

        async fn $checker(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
            authenticate(req, bearer, $access).await
        }
    };
}

bearer_scheme!(
    ViewerAuth,
    check_viewer,
    "check_viewer",
    Access::User(Role::Viewer)
);
bearer_scheme!(
    ClerkAuth,
    check_clerk,
    "check_clerk",
    Access::User(Role::Clerk)
);
bearer_scheme!(
    ManagerAuth,
    check_manager,
    "check_manager",
    Access::User(Role::Manager)
);
bearer_scheme!(
    AdminAuth,
    check_admin,
    "check_admin",
    Access::User(Role::Admin)
);
bearer_scheme!(DeviceAuth, check_device, "check_device", Access::Device);
