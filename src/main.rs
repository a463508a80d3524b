//! The `inventory-api` binary: parse the command line, load configuration, run.

use std::{io::Read, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use inventory_api::{
    app,
    auth::{self, Role},
    cache::Cache,
    config::{self, Config},
    db,
    state::AppState,
    telemetry,
};
use poem::{listener::TcpAcceptor, Server};
use secrecy::ExposeSecret;

#[derive(Parser)]
#[command(name = "inventory-api", version, about = "Inventory system of record")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations, then serve HTTP until SIGTERM/SIGINT.
    Serve,
    /// Apply pending migrations and exit; with --revert-to VERSION, undo the
    /// applied migrations newer than VERSION (their .down.sql, newest first)
    /// instead (0 undoes them all).
    Migrate {
        #[arg(long)]
        revert_to: Option<i64>,
    },
    /// Print the OpenAPI document.
    Openapi {
        #[arg(long, value_enum, default_value_t = SpecFormat::Yaml)]
        format: SpecFormat,
    },
    /// Load benchmark/demo data: N products with barcodes and stock (not for production).
    Seed {
        #[arg(long, default_value_t = 1000)]
        products: i64,
        #[arg(long, default_value_t = 3)]
        warehouses: i64,
    },
    /// Rebuild the product search's GIN indexes without blocking reads or
    /// writes (REINDEX CONCURRENTLY): after bulk edits and on a schedule, as
    /// VACUUM leaves them estimating their commonest entries wrongly.
    ReindexSearch,
    /// Create a user. The password is read from --password-file, else from stdin.
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Defaults to the part of the email before '@'.
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum SpecFormat {
    Yaml,
    Json,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| "must be one of admin, manager, clerk, viewer".to_owned())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    auth::password::return_hash_memory_to_os();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One clear line for configuration mistakes; the chain for everything else.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Openapi { format } => {
            let spec = match format {
                SpecFormat::Yaml => app::spec_yaml(),
                SpecFormat::Json => app::spec_json(),
            };
            println!("{spec}");
            Ok(())
        }
        Command::Migrate { revert_to } => {
            let (url, max) = config::database_from_env()?;
            let pool = db::pool_from_url(url.expose_secret(), max, db::SessionLimits::NONE)?;
            match revert_to {
                None => {
                    db::migrate(&pool).await?;
                    println!("migrations applied");
                }
                Some(version) => {
                    db::revert(&pool, version).await?;
                    println!("migrations after {version} reverted");
                }
            }
            Ok(())
        }
        Command::CreateUser {
            email,
            role,
            display_name,
            password_file,
        } => create_user(email, role, display_name, password_file).await,
        Command::Serve => serve().await,
        Command::ReindexSearch => reindex_search().await,
        Command::Seed {
            products,
            warehouses,
        } => {
            let (url, max) = config::database_from_env()?;
            let pool = db::pool_from_url(url.expose_secret(), max, db::SessionLimits::NONE)?;
            db::migrate(&pool).await?;
            let started = std::time::Instant::now();
            let seeded = inventory_api::seed::seed(&pool, products, warehouses).await?;
            println!(
                "seeded {} products in {} warehouses in {:.1} s",
                seeded.products,
                seeded.warehouses.len(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

async fn create_user(
    email: String,
    role: Role,
    display_name: Option<String>,
    password_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let (url, max) = config::database_from_env()?;
    let password = match password_file {
        Some(path) => std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read the password from stdin")?;
            s
        }
    };
    let password = password.trim_end_matches(['\n', '\r']).to_owned();
    if let Some(why) = auth::password::policy_violation(&password) {
        anyhow::bail!("password {why}");
    }
    let display_name =
        display_name.unwrap_or_else(|| email.split('@').next().unwrap_or(&email).to_owned());
    let pool = db::pool_from_url(url.expose_secret(), max, db::SessionLimits::NONE)?;
    db::migrate(&pool).await?;
    let hash = auth::password::hash(password).await?;
    match auth::repo::insert_user(&pool, &email, &display_name, role, &hash).await {
        Ok(id) => {
            println!("created {} user {email} ({id})", role.as_str());
            Ok(())
        }
        Err(e)
            if matches!(
                e.as_database_error().and_then(|d| d.constraint()),
                Some("users_email_key" | "users_email_normalized_key")
            ) =>
        {
            anyhow::bail!("a user with email {email} already exists")
        }
        Err(e) => Err(e).context("Failed to create the user"),
    }
}

async fn reindex_search() -> anyhow::Result<()> {
    use inventory_api::catalog::search_indexes;
    let (url, _) = config::database_from_env()?;
    // No statement timeout: a rebuild over millions of products takes minutes.
    let pool = db::pool_from_url(url.expose_secret(), 1, db::SessionLimits::NONE)?;
    let indexes = search_indexes::list(&pool)
        .await
        .context("Failed to list the search indexes")?;
    let total = std::time::Instant::now();
    for (n, index) in indexes.iter().enumerate() {
        let started = std::time::Instant::now();
        search_indexes::rebuild(&pool, index)
            .await
            .with_context(|| format!("Failed to rebuild {index}"))?;
        println!(
            "[{}/{}] rebuilt {index} in {:.1} s",
            n + 1,
            indexes.len(),
            started.elapsed().as_secs_f64()
        );
    }
    println!(
        "{} search indexes rebuilt in {:.1} s",
        indexes.len(),
        total.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn serve() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    telemetry::init_logging(config.log_format);
    let started = std::time::Instant::now();

    db::migrate_url(config.migration_url()).await?;
    let pool = db::pool(&config)?;
    auth::repo::renormalize_emails(&pool).await?;
    if let Some(admin) = &config.bootstrap_admin {
        let hash = auth::password::hash(admin.password.expose_secret().to_owned()).await?;
        if auth::repo::bootstrap_admin(&pool, &admin.email, &hash).await? {
            tracing::info!(email = %admin.email, "created the bootstrap admin");
        }
    }
    let cache = match &config.redis_url {
        Some(url) => Cache::connect(url.expose_secret(), "inv:")?,
        None => Cache::disabled(),
    };
    let bind_addr = config.bind_addr;
    let read_pool = db::read_pool(&config, &pool)?;
    let state = AppState::new(pool.clone(), cache, config).with_read_pool(read_pool);
    let jobs = inventory_api::jobs::spawn(&state);
    let stopping = state.clone();
    let app = app::build(state);

    // Bind first, so that "listening" is only logged once connections are
    // accepted, and a taken port is reported as such before anything is served.
    let listener = tokio::net::TcpListener::bind(bind_addr)
        .await
        .with_context(|| {
            format!("cannot listen on {bind_addr} (BIND_ADDR): is another process using that port?")
        })?;
    let acceptor =
        TcpAcceptor::from_tokio(listener).context("cannot accept on the bound socket")?;
    tracing::info!(
        %bind_addr,
        startup_ms = started.elapsed().as_millis() as u64,
        "listening; Swagger UI at /docs"
    );
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(
            app,
            async move {
                shutdown_signal().await;
                stopping.begin_shutdown();
            },
            Some(Duration::from_secs(30)),
        )
        .await
        .context("HTTP server failed")?;
    for job in jobs {
        job.abort();
    }
    pool.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM; in-flight requests then get up to 30 s to finish.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
