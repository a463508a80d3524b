//! Typed configuration, read once at start-up from environment variables.
//!
//! This is the only module that reads the environment. Every variable may also
//! be given as `NAME_FILE` (a path whose contents are the value), which is how
//! Docker secrets arrive. A missing or malformed value stops start-up with one
//! line naming the variable; nothing here guesses.

use std::{net::SocketAddr, time::Duration};

use secrecy::{ExposeSecret, SecretString};

use crate::db::SessionLimits;

/// Where log lines go and in which shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (production; what log shippers parse).
    Json,
    /// Human-readable, coloured (development).
    Pretty,
}

/// `APP_ENV`: production refuses what development only warns about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Production,
    Development,
}

#[derive(Debug, Clone)]
pub struct BootstrapAdmin {
    pub email: String,
    pub password: SecretString,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: SecretString,
    /// A streaming replica for heavy read-only work (see `AppState::read_db`);
    /// None sends that work to the primary too.
    pub database_read_url: Option<SecretString>,
    /// PostgreSQL itself, for migrations, when `DATABASE_URL` goes through a
    /// transaction pooler (PgBouncer): sqlx's migration lock is a session-level
    /// advisory lock, which such a pooler would leave held on a server
    /// connection other sessions then share. None migrates on `DATABASE_URL`.
    pub database_migration_url: Option<SecretString>,
    /// None disables Redis: caching and the event stream are off, rate limits are
    /// kept in process. The API itself keeps working.
    pub redis_url: Option<SecretString>,
    pub jwt_secret: SecretString,
    pub bind_addr: SocketAddr,
    pub log_format: LogFormat,
    pub bootstrap_admin: Option<BootstrapAdmin>,
    pub database_max_connections: u32,
    pub cache_ttl: Duration,
    /// Largest request body accepted, except by the CSV import.
    pub max_body_bytes: usize,
    /// Largest body `POST /api/v1/products/import` accepts (a file of
    /// 100,000 products is 10-20 MB); no other endpoint takes more than
    /// `max_body_bytes`.
    pub max_import_bytes: usize,
    pub webhooks: WebhookConfig,
    pub app_env: AppEnv,
    /// A request still running after this is dropped (its transaction rolled
    /// back) and answered 503.
    pub request_timeout: Duration,
    /// statement/lock/idle-in-transaction timeouts on every API connection;
    /// each below `request_timeout`.
    pub session_limits: SessionLimits,
    /// Password hashes computed at once (argon2 takes 19 MiB and a core each).
    pub password_hash_concurrency: usize,
    /// How long a login waits for a hashing slot before 503.
    pub password_hash_queue_timeout: Duration,
    /// Peers whose `X-Forwarded-For` is believed (empty: nobody's).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// How webhooks are delivered (`WEBHOOK_*`).
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Allow targets on private, loopback and link-local addresses
    /// (`WEBHOOK_ALLOW_PRIVATE_TARGETS=true`); refused by default (SSRF).
    pub allow_private_targets: bool,
    /// Per-request timeout (`WEBHOOK_TIMEOUT_SECONDS`, default 10).
    pub timeout: Duration,
    /// First retry delay before jitter (`WEBHOOK_RETRY_BASE_MS`, default 5000);
    /// each later one is 3 times longer, capped at 6 hours.
    pub retry_base: Duration,
    /// How long a delivery is retried before it is marked failed
    /// (`WEBHOOK_RETRY_FOR_SECONDS`, default 24 hours).
    pub retry_for: Duration,
    /// An endpoint failing for this long without a success is disabled
    /// (`WEBHOOK_DISABLE_AFTER_SECONDS`, default 3 days).
    pub disable_after: Duration,
    /// Deliveries in flight per replica (`WEBHOOK_CONCURRENCY`, default 8);
    /// each holds a database connection while its request runs.
    pub concurrency: usize,
}

/// A configuration problem, phrased for the person starting the service.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {name}: {message}")]
pub struct ConfigError {
    pub name: String,
    pub message: String,
}

impl ConfigError {
    fn new(name: &str, message: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            message: message.into(),
        }
    }
}

/// Minimum HS256 key length: shorter secrets can be brute-forced offline from
/// any token a client holds.
const MIN_JWT_SECRET_BYTES: usize = 32;

/// Secrets shown in our documentation (.env.example, README, compose files):
/// anyone can read them, so production refuses them.
const EXAMPLE_JWT_SECRETS: &[&str] = &[
    "change-me-change-me-change-me-change-me",
    "dev-only-insecure-jwt-secret-0123456789abcdef",
];

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests can supply a map instead
    /// of mutating the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env { lookup: &lookup };

        let database_url = env.required("DATABASE_URL")?;
        check_postgres_url("DATABASE_URL", &database_url, "")?;
        let database_read_url = env.optional("DATABASE_READ_URL")?;
        if let Some(url) = &database_read_url {
            check_postgres_url(
                "DATABASE_READ_URL",
                url,
                " (leave unset to read from DATABASE_URL)",
            )?;
        }
        let database_migration_url = database_migration_url(&env)?;
        let redis_url = env.optional("REDIS_URL")?;
        if let Some(url) = &redis_url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(ConfigError::new(
                    "REDIS_URL",
                    "must be a redis:// or rediss:// URL (leave unset to run without Redis)",
                ));
            }
        }
        let app_env = match env.optional("APP_ENV")?.as_deref() {
            None | Some("development") => AppEnv::Development,
            Some("production") => AppEnv::Production,
            Some(other) => {
                return Err(ConfigError::new(
                    "APP_ENV",
                    format!("must be production or development, not {other:?}"),
                ))
            }
        };
        let jwt_secret = env.required("JWT_SECRET")?;
        check_jwt_secret(&jwt_secret, app_env)?;
        let bind_addr = env.parsed("BIND_ADDR", "0.0.0.0:8080".parse().expect("valid default"))?;
        let log_format = match env.optional("LOG_FORMAT")?.as_deref() {
            None | Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                return Err(ConfigError::new(
                    "LOG_FORMAT",
                    format!("must be json or pretty, not {other:?}"),
                ))
            }
        };
        let bootstrap_admin = match (
            env.optional("BOOTSTRAP_ADMIN_EMAIL")?,
            env.optional("BOOTSTRAP_ADMIN_PASSWORD")?,
        ) {
            (Some(email), Some(password)) => Some(BootstrapAdmin {
                email,
                password: password.into(),
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "BOOTSTRAP_ADMIN_PASSWORD",
                    "must be set when BOOTSTRAP_ADMIN_EMAIL is",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "BOOTSTRAP_ADMIN_EMAIL",
                    "must be set when BOOTSTRAP_ADMIN_PASSWORD is",
                ))
            }
        };
        let database_max_connections: u32 = env.parsed("DATABASE_MAX_CONNECTIONS", 20)?;
        if database_max_connections == 0 {
            return Err(ConfigError::new(
                "DATABASE_MAX_CONNECTIONS",
                "must be at least 1",
            ));
        }
        let cache_ttl = Duration::from_secs(env.parsed("CACHE_TTL_SECONDS", 60)?);
        let max_body_bytes = env.parsed("MAX_BODY_BYTES", 8 * 1024 * 1024)?;
        let max_import_bytes: usize = env.parsed("MAX_IMPORT_BYTES", 32 * 1024 * 1024)?;
        let webhooks = WebhookConfig {
            allow_private_targets: env.parsed("WEBHOOK_ALLOW_PRIVATE_TARGETS", false)?,
            timeout: Duration::from_secs(env.parsed("WEBHOOK_TIMEOUT_SECONDS", 10)?),
            retry_base: Duration::from_millis(env.parsed("WEBHOOK_RETRY_BASE_MS", 5000)?),
            retry_for: Duration::from_secs(env.parsed("WEBHOOK_RETRY_FOR_SECONDS", 86_400)?),
            disable_after: Duration::from_secs(
                env.parsed("WEBHOOK_DISABLE_AFTER_SECONDS", 3 * 86_400)?,
            ),
            concurrency: env.parsed("WEBHOOK_CONCURRENCY", 8)?,
        };
        if webhooks.concurrency == 0 || webhooks.timeout.is_zero() {
            return Err(ConfigError::new(
                "WEBHOOK_CONCURRENCY",
                "WEBHOOK_CONCURRENCY and WEBHOOK_TIMEOUT_SECONDS must be at least 1",
            ));
        }
        let request_timeout = Duration::from_secs(env.parsed("REQUEST_TIMEOUT_SECONDS", 30)?);
        if request_timeout.is_zero() {
            return Err(ConfigError::new(
                "REQUEST_TIMEOUT_SECONDS",
                "must be at least 1",
            ));
        }
        let below_request =
            |name: &str, default_ms: u64| -> Result<Option<Duration>, ConfigError> {
                let ms: u64 = env.parsed(name, default_ms)?;
                let limit = Duration::from_millis(ms);
                if limit >= request_timeout {
                    return Err(ConfigError::new(
                        name,
                        "must be below REQUEST_TIMEOUT_SECONDS, so PostgreSQL gives up first",
                    ));
                }
                Ok(Some(limit).filter(|d| !d.is_zero()))
            };
        let session_limits = SessionLimits {
            statement_timeout: below_request("DATABASE_STATEMENT_TIMEOUT_MS", 10_000)?,
            lock_timeout: below_request("DATABASE_LOCK_TIMEOUT_MS", 5_000)?,
            idle_in_transaction_timeout: below_request(
                "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS",
                15_000,
            )?,
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let password_hash_concurrency: usize = env.parsed("PASSWORD_HASH_CONCURRENCY", cores)?;
        if password_hash_concurrency == 0 {
            return Err(ConfigError::new(
                "PASSWORD_HASH_CONCURRENCY",
                "must be at least 1",
            ));
        }
        let password_hash_queue_timeout =
            Duration::from_millis(env.parsed("PASSWORD_HASH_QUEUE_MS", 2_000)?);
        let trusted_proxies = match env.optional("TRUSTED_PROXIES")? {
            None => Vec::new(),
            Some(list) => parse_cidrs(&list)
                .map_err(|message| ConfigError::new("TRUSTED_PROXIES", message))?,
        };

        Ok(Self {
            database_url: database_url.into(),
            database_read_url: database_read_url.map(Into::into),
            database_migration_url: database_migration_url.map(Into::into),
            redis_url: redis_url.map(Into::into),
            jwt_secret: jwt_secret.into(),
            bind_addr,
            log_format,
            bootstrap_admin,
            database_max_connections,
            cache_ttl,
            max_body_bytes,
            max_import_bytes: max_import_bytes.max(max_body_bytes),
            webhooks,
            app_env,
            request_timeout,
            session_limits,
            password_hash_concurrency,
            password_hash_queue_timeout,
            trusted_proxies,
        })
    }

    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }

    /// Where migrations run: `DATABASE_MIGRATION_URL`, else `DATABASE_URL`.
    pub fn migration_url(&self) -> &str {
        self.database_migration_url
            .as_ref()
            .unwrap_or(&self.database_url)
            .expose_secret()
    }
}

fn check_postgres_url(name: &str, url: &str, hint: &str) -> Result<(), ConfigError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(());
    }
    Err(ConfigError::new(
        name,
        format!("must be a postgres:// or postgresql:// URL{hint}"),
    ))
}

/// `DATABASE_MIGRATION_URL`, checked; see [`Config::database_migration_url`].
fn database_migration_url(env: &Env<'_>) -> Result<Option<String>, ConfigError> {
    let url = env.optional("DATABASE_MIGRATION_URL")?;
    if let Some(url) = &url {
        check_postgres_url(
            "DATABASE_MIGRATION_URL",
            url,
            " (leave unset to migrate on DATABASE_URL)",
        )?;
    }
    Ok(url)
}

/// A secret shorter than 32 bytes is always refused (it can be brute-forced
/// from any token). One of the documented examples is refused in production
/// and only warned about in development, so a fresh checkout starts with the
/// example `.env`.
fn check_jwt_secret(secret: &str, app_env: AppEnv) -> Result<(), ConfigError> {
    if secret.len() < MIN_JWT_SECRET_BYTES {
        return Err(ConfigError::new(
            "JWT_SECRET",
            format!("must be at least {MIN_JWT_SECRET_BYTES} bytes (try: openssl rand -hex 32)"),
        ));
    }
    if !EXAMPLE_JWT_SECRETS.contains(&secret) {
        return Ok(());
    }
    let problem =
        "is an example value from the documentation; generate one with: openssl rand -hex 32";
    match app_env {
        AppEnv::Production => Err(ConfigError::new("JWT_SECRET", problem)),
        AppEnv::Development => {
            // Logging is not set up yet at this point; stderr reaches the operator.
            eprintln!("warning: JWT_SECRET {problem} (refused when APP_ENV=production)");
            Ok(())
        }
    }
}

/// `10.0.0.0/8, 192.168.1.7`: CIDRs or single addresses, comma or space separated.
fn parse_cidrs(list: &str) -> Result<Vec<ipnet::IpNet>, String> {
    list.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("{item:?} is not an address or CIDR (e.g. 10.0.0.0/8)"))
        })
        .collect()
}

/// Just the database (and its pool size), for the subcommands that only touch
/// it (`migrate`, `seed`, `create-user`, `reindex-search`), so they do not
/// demand a JWT secret. They apply migrations first or, `reindex-search`, run
/// `REINDEX CONCURRENTLY` for minutes outside a transaction block: both need
/// PostgreSQL directly, so `DATABASE_MIGRATION_URL` comes first when set, else
/// `DATABASE_URL`.
pub fn database_from_env() -> Result<(SecretString, u32), ConfigError> {
    let lookup = |name: &str| std::env::var(name).ok();
    let env = Env { lookup: &lookup };
    let url = match database_migration_url(&env)? {
        Some(url) => url,
        None => env.required("DATABASE_URL")?,
    };
    let max = env.parsed("DATABASE_MAX_CONNECTIONS", 5)?;
    Ok((url.into(), max))
}

struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Env<'_> {
    /// `NAME`, else the contents of the file named by `NAME_FILE`; empty counts as unset.
    fn optional(&self, name: &str) -> Result<Option<String>, ConfigError> {
        if let Some(value) = (self.lookup)(name).filter(|v| !v.is_empty()) {
            return Ok(Some(value));
        }
        let file_var = format!("{name}_FILE");
        match (self.lookup)(&file_var).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(path) => {
                let contents = std::fs::read_to_string(&path)
                    .map_err(|e| ConfigError::new(&file_var, format!("cannot read {path}: {e}")))?;
                // Secret files usually end with a newline that is not part of the value.
                let value = contents.trim_end_matches(['\n', '\r']).to_owned();
                Ok(Some(value).filter(|v| !v.is_empty()))
            }
        }
    }

    fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.optional(name)?.ok_or_else(|| {
            ConfigError::new(name, format!("is required (set {name} or {name}_FILE)"))
        })
    }

    fn parsed<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        match self.optional(name)? {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|e| ConfigError::new(name, format!("cannot parse {raw:?}: {e}"))),
        }
    }
}
