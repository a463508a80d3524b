//! Configuration: every mistake stops start-up with one line naming the variable.

use std::{collections::HashMap, process::Command};

use inventory_api::config::{Config, LogFormat};

fn load(vars: &[(&str, &str)]) -> Result<Config, String> {
    let env: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    Config::from_lookup(|name| env.get(name).cloned()).map_err(|e| e.to_string())
}

const DB: (&str, &str) = ("DATABASE_URL", "postgres://u@localhost/db");
const JWT: (&str, &str) = ("JWT_SECRET", "0123456789abcdef0123456789abcdef");

#[test]
fn defaults_apply_when_only_required_values_are_set() {
    let c = load(&[DB, JWT]).unwrap();
    assert_eq!(c.bind_addr.to_string(), "0.0.0.0:8080");
    assert_eq!(c.log_format, LogFormat::Json);
    assert!(c.redis_url.is_none());
    assert_eq!(c.database_max_connections, 20);
    assert_eq!(c.cache_ttl.as_secs(), 60);
}

#[test]
fn missing_required_values_name_the_variable() {
    let err = load(&[JWT]).unwrap_err();
    assert!(
        err.contains("DATABASE_URL") && err.contains("required"),
        "{err}"
    );
    let err = load(&[DB]).unwrap_err();
    assert!(err.contains("JWT_SECRET"), "{err}");
}

#[test]
fn malformed_values_name_the_variable() {
    for (var, value) in [
        ("BIND_ADDR", "not-an-address"),
        ("LOG_FORMAT", "xml"),
        ("DATABASE_MAX_CONNECTIONS", "many"),
        ("DATABASE_MAX_CONNECTIONS", "0"),
        ("CACHE_TTL_SECONDS", "-1"),
        ("REDIS_URL", "http://localhost"),
        ("DATABASE_URL", "mysql://localhost/db"),
        ("DATABASE_MIGRATION_URL", "mysql://localhost/db"),
        ("JWT_SECRET", "short"),
    ] {
        let err = load(&[DB, JWT, (var, value)]).unwrap_err();
        assert!(err.contains(var), "{var}={value}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
}

#[test]
fn migrations_run_on_database_migration_url_when_set_else_on_database_url() {
    let c = load(&[DB, JWT]).unwrap();
    assert_eq!(c.migration_url(), "postgres://u@localhost/db");
    let direct = "postgres://u@postgres-itself/db";
    let c = load(&[DB, JWT, ("DATABASE_MIGRATION_URL", direct)]).unwrap();
    assert_eq!(c.migration_url(), direct);
    assert_eq!(
        c.database_url(),
        "postgres://u@localhost/db",
        "requests keep DATABASE_URL"
    );
}

#[test]
fn bootstrap_admin_needs_both_values() {
    let err = load(&[DB, JWT, ("BOOTSTRAP_ADMIN_EMAIL", "a@b.c")]).unwrap_err();
    assert!(err.contains("BOOTSTRAP_ADMIN_PASSWORD"), "{err}");
}

#[test]
fn values_can_come_from_files() {
    let dir = std::env::temp_dir().join(format!("cfg-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("jwt");
    std::fs::write(&secret, "from-a-file-from-a-file-from-a-file!!\n").unwrap();
    let path = secret.to_str().unwrap();
    let c = load(&[DB, ("JWT_SECRET_FILE", path)]).unwrap();
    use secrecy::ExposeSecret;
    assert_eq!(
        c.jwt_secret.expose_secret(),
        "from-a-file-from-a-file-from-a-file!!"
    );

    let err = load(&[DB, ("JWT_SECRET_FILE", "/nonexistent/secret")]).unwrap_err();
    assert!(err.contains("JWT_SECRET_FILE"), "{err}");
}

#[test]
fn secrets_never_print() {
    let c = load(&[DB, JWT]).unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("0123456789abcdef"), "{debug}");
    assert!(!debug.contains("postgres://u@localhost"), "{debug}");
}

#[test]
fn the_binary_refuses_to_start_with_one_clear_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_inventory-api"))
        .arg("serve")
        .env_clear()
        .env("JWT_SECRET", "0123456789abcdef0123456789abcdef")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}

#[test]
fn production_refuses_documented_example_secrets_and_development_accepts_them() {
    let example = ("JWT_SECRET", "change-me-change-me-change-me-change-me");
    let err = load(&[DB, example, ("APP_ENV", "production")]).unwrap_err();
    assert!(
        err.contains("JWT_SECRET") && err.contains("example"),
        "{err}"
    );
    let compose_dev = (
        "JWT_SECRET",
        "dev-only-insecure-jwt-secret-0123456789abcdef",
    );
    assert!(load(&[DB, compose_dev, ("APP_ENV", "production")]).is_err());
    assert!(load(&[DB, example]).is_ok(), "development only warns");
    assert!(load(&[DB, JWT, ("APP_ENV", "production")]).is_ok());
    let err = load(&[DB, ("JWT_SECRET", "short"), ("APP_ENV", "production")]).unwrap_err();
    assert!(err.contains("32 bytes"), "{err}");
    assert!(load(&[DB, JWT, ("APP_ENV", "staging")]).is_err());
}

#[test]
fn the_documented_example_env_is_refused_in_production() {
    // .env.example is what people copy: its secret must be on the refused list.
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example")).unwrap();
    let secret = example
        .lines()
        .find_map(|l| l.strip_prefix("JWT_SECRET="))
        .expect(".env.example sets JWT_SECRET");
    let err = load(&[DB, ("JWT_SECRET", secret), ("APP_ENV", "production")]).unwrap_err();
    assert!(err.contains("example"), "{err}");
}

#[test]
fn database_timeouts_default_below_the_request_timeout_and_must_stay_there() {
    let c = load(&[DB, JWT]).unwrap();
    let limits = c.session_limits;
    for limit in [
        limits.statement_timeout,
        limits.lock_timeout,
        limits.idle_in_transaction_timeout,
    ] {
        assert!(limit.unwrap() < c.request_timeout, "{limits:?}");
    }
    let err = load(&[
        DB,
        JWT,
        ("REQUEST_TIMEOUT_SECONDS", "12"),
        ("DATABASE_LOCK_TIMEOUT_MS", "12000"),
    ])
    .unwrap_err();
    assert!(err.contains("DATABASE_LOCK_TIMEOUT_MS"), "{err}");
    let c = load(&[DB, JWT, ("DATABASE_STATEMENT_TIMEOUT_MS", "0")]).unwrap();
    assert_eq!(c.session_limits.statement_timeout, None, "0 disables");
}

#[test]
fn trusted_proxies_take_cidrs_and_addresses() {
    let c = load(&[DB, JWT, ("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7,::1")]).unwrap();
    assert_eq!(c.trusted_proxies.len(), 3);
    assert!(load(&[DB, JWT]).unwrap().trusted_proxies.is_empty());
    let err = load(&[DB, JWT, ("TRUSTED_PROXIES", "10.0.0.0/99")]).unwrap_err();
    assert!(err.contains("TRUSTED_PROXIES"), "{err}");
}
