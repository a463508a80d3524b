// sqlx::migrate! embeds migrations/ at compile time; without this a new migration
// file would not trigger a rebuild on stable Rust.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    // The git sha is reported by the build-info metric; a source tarball has none.
    let sha = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=GIT_SHA={sha}");
    // Where HEAD is: `.git/HEAD` in a clone, elsewhere in a worktree (where
    // `.git` is a file, and naming a path that does not exist would make
    // cargo rebuild the crate on every call).
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--git-path", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|p| std::path::Path::new(p).exists());
    if let Some(head) = head {
        println!("cargo:rerun-if-changed={head}");
    }
}
