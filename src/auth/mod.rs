//! Who is calling and what they may do: users, roles, passwords, tokens and
//! scanner device keys. `principal` holds the one authorization mechanism;
//! this file holds the `auth` and `users` APIs.

pub mod email;
pub mod model;
pub mod password;
pub mod principal;
pub mod repo;
pub mod throttle;
pub mod token;

use poem::{web::Data, Request};
use poem_openapi::{param::Header, param::Path, param::Query, payload::Json, Enum, OpenApi};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use self::{
    model::{CreateUser, LoginRequest, RefreshRequest, TokenPair, UpdateUser, User},
    principal::{AdminAuth, ViewerAuth},
    throttle::Subject,
};
use crate::{
    error::{ApiError, Result, Validation},
    idempotency::{self, Idempotent},
    pagination::{Page, PageRequest},
    responses::{Created, NoContent},
    state::AppState,
    telemetry, Tags,
};

/// What a user may do. Ordered: each role includes the rights of those below it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Enum,
    serde::Serialize,
    serde::Deserialize,
    sqlx::Type,
)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
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

/// The client address for throttling. `X-Forwarded-For` is believed only
/// from a peer in `TRUSTED_PROXIES`: then the right-most hop that is not a
/// trusted proxy is the client (hops further left are whatever the client
/// claimed). From anyone else the header is ignored and the peer address is
/// the client, so a caller cannot choose its own rate-limit key.
fn client_address(state: &AppState, req: &Request) -> String {
    let peer = req.remote_addr().as_socket_addr().map(|a| a.ip());
    client_ip(
        peer,
        req.headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok()),
        &state.config.trusted_proxies,
    )
    .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

fn client_ip(
    peer: Option<std::net::IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[ipnet::IpNet],
) -> Option<std::net::IpAddr> {
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer?;
    if !is_trusted(&client) {
        return Some(client);
    }
    for hop in forwarded_for.unwrap_or("").rsplit(',') {
        match hop.trim().parse::<std::net::IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // Garbage from a hop we cannot vouch for: stop at the last good one.
            Err(_) => break,
        }
    }
    Some(client)
}

fn login_outcome(outcome: &'static str) {
    telemetry::metrics()
        .logins
        .add(1, &[opentelemetry::KeyValue::new("outcome", outcome)]);
}

/// Issues an access token and a refresh token in `family_id`.
async fn issue_pair(
    state: &AppState,
    db: impl sqlx::PgExecutor<'_>,
    user_id: Uuid,
    role: Role,
    generation: i32,
    family_id: Uuid,
) -> Result<TokenPair> {
    let refresh = token::random_secret(token::REFRESH_TOKEN_PREFIX);
    let expires_at = OffsetDateTime::now_utc() + Duration::days(token::REFRESH_TOKEN_TTL_DAYS);
    repo::insert_refresh_token(db, user_id, family_id, &token::sha256(&refresh), expires_at)
        .await?;
    Ok(TokenPair {
        access_token: state.auth.keys.issue_access(user_id, role, generation)?,
        refresh_token: refresh,
        token_type: "Bearer".into(),
        expires_in: token::ACCESS_TOKEN_TTL_SECS,
    })
}

pub struct AuthApi;

#[OpenApi(prefix_path = "/api/v1/auth", tag = "Tags::Auth")]
impl AuthApi {
    /// Sign in with email and password.
    ///
    /// Wrong email and wrong password get the same 401, in the same time. After 5
    /// failures for one email (or 20 from one address) in 15 minutes: 429 with
    /// `Retry-After`.
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Json<LoginRequest>,
    ) -> Result<Json<TokenPair>> {
        body.check()?;
        let email = email::normalize(&body.email);
        let subject = Subject::new(&email, &client_address(&state, req));
        // The attempt is counted before the password is checked, so concurrent
        // guesses cannot all get in before the first failure is recorded.
        let reservation = match state.auth.throttle.reserve(&state.cache, &subject).await {
            Ok(reservation) => reservation,
            Err(retry_after_secs) => {
                login_outcome("throttled");
                return Err(ApiError::TooManyRequests { retry_after_secs });
            }
        };
        let found = repo::credentials(&state.db, &email).await?;
        // Verify against a dummy hash when the email is unknown, so both cases
        // cost one argon2 verification and cannot be told apart by timing.
        let hash = found
            .as_ref()
            .map(|c| c.password_hash.clone())
            .unwrap_or_else(|| password::dummy_hash().to_owned());
        let password_ok = match state.auth.hashing.verify(body.password.clone(), hash).await {
            Ok(ok) => ok,
            Err(busy) => {
                state
                    .auth
                    .throttle
                    .cancel(&state.cache, &subject, reservation)
                    .await;
                return Err(busy);
            }
        };
        let user = match found {
            Some(c) if password_ok && c.active => c,
            _ => {
                login_outcome("failure");
                return Err(ApiError::InvalidCredentials);
            }
        };
        state
            .auth
            .throttle
            .succeeded(&state.cache, &subject, reservation)
            .await;
        login_outcome("success");
        let pair = issue_pair(
            &state,
            &state.db,
            user.id,
            user.role,
            user.token_generation,
            Uuid::new_v4(),
        )
        .await?;
        Ok(Json(pair))
    }

    /// Exchange a refresh token for a new pair.
    ///
    /// Each refresh token works once. Presenting one that was already used
    /// revokes its whole family (every token descended from the same login),
    /// because it means the token was copied.
    #[oai(path = "/refresh", method = "post", operation_id = "refreshToken")]
    async fn refresh(
        &self,
        state: Data<&AppState>,
        body: Json<RefreshRequest>,
    ) -> Result<Json<TokenPair>> {
        body.check()?;
        let hash = token::sha256(body.refresh_token.trim());
        let mut tx = crate::db::begin(&state.db).await?;
        let Some(stored) = repo::lock_refresh_token(&mut tx, &hash).await? else {
            return Err(ApiError::Unauthorized);
        };
        if stored.revoked_at.is_some() {
            return Err(ApiError::Unauthorized);
        }
        if stored.used_at.is_some() {
            tracing::warn!(family = %stored.family_id, user = %stored.user_id,
                "refresh token reused: revoking its family");
            repo::revoke_family(&mut *tx, stored.family_id).await?;
            tx.commit().await?;
            return Err(ApiError::Unauthorized);
        }
        if stored.expires_at <= OffsetDateTime::now_utc() || !stored.active {
            return Err(ApiError::Unauthorized);
        }
        repo::mark_refresh_used(&mut tx, stored.id).await?;
        let pair = issue_pair(
            &state,
            &mut *tx,
            stored.user_id,
            stored.role,
            stored.token_generation,
            stored.family_id,
        )
        .await?;
        tx.commit().await?;
        Ok(Json(pair))
    }

    /// Sign out: revokes the refresh token's family. Access tokens expire on their own (15 min).
    #[oai(path = "/logout", method = "post", operation_id = "logout")]
    async fn logout(
        &self,
        auth: ViewerAuth,
        state: Data<&AppState>,
        body: Json<RefreshRequest>,
    ) -> Result<NoContent> {
        body.check()?;
        let user_id = auth.0.user_id().expect("ViewerAuth is a user");
        let hash = token::sha256(body.refresh_token.trim());
        if let Some(family) = repo::family_of(&state.db, &hash, user_id).await? {
            repo::revoke_family(&state.db, family).await?;
        }
        Ok(NoContent::NoContent)
    }

    /// The signed-in user.
    #[oai(path = "/me", method = "get", operation_id = "getCurrentUser")]
    async fn me(&self, auth: ViewerAuth, state: Data<&AppState>) -> Result<Json<User>> {
        let id = auth.0.user_id().expect("ViewerAuth is a user");
        let user = repo::user(&state.db, id)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        Ok(Json(user))
    }
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    (3..=254).contains(&email.len())
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn check_display_name(v: &mut Validation, name: &str) {
    v.check(
        (1..=100).contains(&name.trim().chars().count()),
        "display_name",
        "must be 1-100 characters",
    );
}

pub struct UsersApi;

/// Requires: admin.
#[OpenApi(prefix_path = "/api/v1/users", tag = "Tags::Users")]
impl UsersApi {
    /// List users (admin), oldest first.
    #[oai(path = "/", method = "get", operation_id = "listUsers")]
    async fn list(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
        /// Page size, 1-500 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<User>>> {
        let page = PageRequest::<(OffsetDateTime, Uuid)>::new(limit.0, cursor.0.as_deref())?;
        let rows = repo::list_users(&state.db, page.after, page.fetch()).await?;
        Ok(Json(page.page(rows, |u| (u.created_at, u.id), |u| u)))
    }

    /// Create a user (admin).
    #[oai(path = "/", method = "post", operation_id = "createUser")]
    async fn create(
        &self,
        auth: AdminAuth,
        state: Data<&AppState>,
        /// Any unique string (a UUID); a retry with it returns the first answer.
        /// The password is not part of what a retry must repeat: keys are
        /// kept 24 hours and even a hash of it is not stored there.
        #[oai(name = "Idempotency-Key")]
        key: Header<Option<String>>,
        body: Json<CreateUser>,
    ) -> Result<Created<User>> {
        let fingerprint = serde_json::json!({
            "email": body.email,
            "role": body.role,
            "display_name": body.display_name,
        });
        let idem = Idempotent::new(
            auth.0.id(),
            key.0.as_deref(),
            "POST /api/v1/users",
            &fingerprint,
        )?;
        let email = body.email.trim();
        let display_name = body
            .display_name
            .clone()
            .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
        let mut v = Validation::new();
        v.check(valid_email(email), "email", "must be an email address");
        check_display_name(&mut v, &display_name);
        if let Some(why) = password::policy_violation(&body.password) {
            v.push("password", why);
        }
        v.finish()?;
        // Hashed before the transaction: no connection is held while it runs.
        let hash = state.auth.hashing.hash(body.password.clone()).await?;
        let mut tx = crate::db::begin(&state.db).await?;
        if let Some(first) = idempotency::claim(&idem, &mut tx).await? {
            return Ok(Created::new(first));
        }
        let id = repo::insert_user(&mut *tx, email, display_name.trim(), body.role, &hash).await?;
        let user = repo::user(&mut *tx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
        idempotency::store(&idem, &mut tx, 201, &user).await?;
        tx.commit().await?;
        Ok(Created::new(user))
    }

    /// One user (admin).
    #[oai(path = "/:id", method = "get", operation_id = "getUser")]
    async fn get(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<Json<User>> {
        let user = repo::user(&state.db, id.0)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("user {}", id.0)))?;
        Ok(Json(user))
    }

    /// Change a user's name, role, active flag or password (admin).
    ///
    /// Deactivating a user or changing their password signs them out
    /// everywhere. The last active admin cannot be demoted or deactivated (409).
    #[oai(path = "/:id", method = "patch", operation_id = "updateUser")]
    async fn update(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<UpdateUser>,
    ) -> Result<Json<User>> {
        let mut v = Validation::new();
        if let Some(name) = &body.display_name {
            check_display_name(&mut v, name);
        }
        if let Some(pw) = &body.password {
            if let Some(why) = password::policy_violation(pw) {
                v.push("password", why);
            }
        }
        v.finish()?;
        let hash = match &body.password {
            Some(pw) => Some(state.auth.hashing.hash(pw.clone()).await?),
            None => None,
        };
        let user = change_user(
            &state,
            id.0,
            body.display_name.as_deref().map(str::trim),
            body.role,
            body.active,
            hash.as_deref(),
        )
        .await?;
        Ok(Json(user))
    }

    /// Deactivate a user (admin). Their tokens stop working; history keeps their name.
    #[oai(path = "/:id", method = "delete", operation_id = "deleteUser")]
    async fn deactivate(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> Result<NoContent> {
        change_user(&state, id.0, None, None, Some(false), None).await?;
        Ok(NoContent::NoContent)
    }
}

/// Applies a change to a user in one transaction, enforcing the last-admin rule.
async fn change_user(
    state: &AppState,
    id: Uuid,
    display_name: Option<&str>,
    role: Option<Role>,
    active: Option<bool>,
    password_hash: Option<&str>,
) -> Result<User> {
    let mut tx = crate::db::begin(&state.db).await?;
    let (current_role, current_active, other_admins) = repo::lock_for_admin_change(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {id}")))?;
    let stays_admin =
        role.unwrap_or(current_role) == Role::Admin && active.unwrap_or(current_active);
    if current_role == Role::Admin && current_active && !stays_admin && !other_admins {
        return Err(ApiError::conflict(
            "last-admin",
            "This is the last active admin: make another user admin first.",
        ));
    }
    let user = repo::update_user(&mut tx, id, display_name, role, active, password_hash).await?;
    if active == Some(false) || password_hash.is_some() {
        repo::revoke_user_tokens(&mut tx, id).await?;
    }
    tx.commit().await?;
    state.auth.forget_user(id);
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::client_ip;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| Some(s.parse().unwrap());
        // Untrusted peer: the header is the caller's own invention.
        assert_eq!(
            client_ip(ip("203.0.113.9"), Some("1.2.3.4"), &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("203.0.113.9"), Some("1.2.3.4"), &[]),
            ip("203.0.113.9")
        );
        // Trusted proxy: the right-most untrusted hop, not the client's claim on the left.
        assert_eq!(
            client_ip(
                ip("10.0.0.2"),
                Some("6.6.6.6, 198.51.100.7, 10.0.0.5"),
                &trusted
            ),
            ip("198.51.100.7")
        );
        assert_eq!(client_ip(ip("10.0.0.2"), None, &trusted), ip("10.0.0.2"));
        assert_eq!(
            client_ip(ip("10.0.0.2"), Some("junk"), &trusted),
            ip("10.0.0.2")
        );
    }
}
