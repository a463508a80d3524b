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
        ("JWT_SECRET", "short"),
    ] {
        let err = load(&[DB, JWT, (var, value)]).unwrap_err();
        assert!(err.contains(var), "{var}={value}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
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
