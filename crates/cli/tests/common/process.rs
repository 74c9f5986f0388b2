//! The `incasso` binary run as a child process by the CLI's tests: the
//! command, a server killed when its test ends, a scratch directory, a
//! free port and the wait for `/health`.

use std::process::Command;
use std::time::{Duration, Instant};

/// The binary, run from a directory of this test process's own: a command
/// given no `--data-dir` makes `./incasso-data` (its secret key), which
/// must not land in the source tree.
pub fn incasso() -> Command {
    static WORK_DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let dir = WORK_DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("incasso-cli-cwd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    });
    let mut c = Command::new(env!("CARGO_BIN_EXE_incasso"));
    c.current_dir(dir);
    c
}

/// A server the test started, killed when the test ends however it ends:
/// a failed assertion must not leave it running, holding its port and the
/// test binary's output open.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        // After a graceful stop it is already reaped, and this does nothing.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Running {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("incasso-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_for_health(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The database a server or a command is told about: none on SQLite (the
/// default file in the data dir, the path most users take), a fresh
/// PostgreSQL database otherwise.
pub fn database_for(backend: incasso_testkit::Backend) -> Option<String> {
    match backend {
        incasso_testkit::Backend::Sqlite => None,
        incasso_testkit::Backend::Postgres => Some(
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(incasso_testkit::fresh_database_url(backend)),
        ),
    }
}

/// `incasso bench {kind} --quick` on `database` (SQLite's own file when
/// `None`): it must succeed, and its last line must be JSON. That JSON,
/// the line as printed (for messages), and the whole output.
pub fn bench_output(kind: &str, database: Option<&str>) -> (serde_json::Value, String, String) {
    let out = incasso()
        .args(["bench", kind, "--quick"])
        .args(database.iter().flat_map(|url| ["--database-url", url]))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().unwrap().to_string();
    let v: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(v["bench"], kind, "{last}");
    (v, last, stdout)
}

/// [`bench_output`] on `backend`'s database (a fresh one for PostgreSQL),
/// its JSON naming the backend as DESIGN.md's benchmarks do.
pub fn bench_quick(
    kind: &str,
    backend: incasso_testkit::Backend,
) -> (serde_json::Value, String, String) {
    let db = database_for(backend);
    let (v, last, stdout) = bench_output(kind, db.as_deref());
    assert_eq!(
        v["backend"],
        if db.is_some() { "postgres" } else { "sqlite" },
        "{last}"
    );
    (v, last, stdout)
}

/// `incasso serve --database-url URL --bind 127.0.0.1:PORT --data-dir DIR`,
/// its output discarded (a test that reads it sets `.stderr(...)` again).
pub fn serve_command(url: &str, dir: &std::path::Path, port: u16) -> Command {
    let mut c = incasso();
    c.args(["serve", "--database-url", url, "--bind"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c
}

/// Spawns the server `command` and waits until it answers `/health`.
pub fn start_server(mut command: Command, port: u16) -> Running {
    let running = Running(command.spawn().unwrap());
    assert!(
        wait_for_health(port),
        "incasso did not start on port {port}"
    );
    running
}
