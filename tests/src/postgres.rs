//! A private PostgreSQL cluster for tests and the demo, or the server `DATABASE_URL` names.
//!
//! Without `DATABASE_URL`, the first call to [`server`] runs `initdb` into
//! `$TMPDIR/etl-pg-harness/<pid>` and starts `postgres` on a free loopback port with trust
//! authentication (as the `postgres` OS user when running as root). The server lives exactly
//! as long as this process: it is started under a small shell that waits on a pipe from us and
//! shuts the server down when the pipe closes, which the kernel does when we exit, however we
//! exit. Each test then takes a [`fresh_database`] of its own, so tests run in parallel.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::{Result, error, free_port, spawn_supervised, target_dir};

/// A running PostgreSQL server.
pub struct PgServer {
    /// URL of the server's `postgres` database, for administration.
    pub url: String,
    /// Whether this process started the server (and will stop it).
    pub owned: bool,
    /// The CA that signed the server's certificate, for a server started with TLS.
    pub ca: Option<PathBuf>,
    /// Kept open for the life of the process: its closing stops the server.
    _lifeline: Option<Mutex<Option<(Child, ChildStdin)>>>,
}

static SERVER: OnceLock<std::result::Result<PgServer, String>> = OnceLock::new();

/// The shared server of this process: `DATABASE_URL`'s, or a throwaway cluster.
pub fn server() -> Result<&'static PgServer> {
    SERVER
        .get_or_init(|| start_or_connect().map_err(|e| e.0))
        .as_ref()
        .map_err(|e| error(e.clone()))
}

fn start_or_connect() -> Result<PgServer> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Ok(PgServer {
            url,
            owned: false,
            ca: None,
            _lifeline: None,
        }),
        _ => start_cluster(false),
    }
}

/// A database created for one test (dropped again at the end of the test).
pub struct TestDb {
    pub url: String,
    pub name: String,
    admin_url: String,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let _ = psql(&self.admin_url, &sql);
    }
}

static DB_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Creates an empty database named after `label` on the shared server.
pub fn fresh_database(label: &str) -> Result<TestDb> {
    fresh_database_from(label, None)
}

fn fresh_database_from(label: &str, template: Option<&str>) -> Result<TestDb> {
    let server = server()?;
    let n = DB_COUNTER.fetch_add(1, Ordering::Relaxed);
    let label = crate::name_part(label, '_', 30);
    let name = format!("etl_{label}_{}_{n}", std::process::id());
    psql(
        &server.url,
        &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    )?;
    let template = template.map_or_else(String::new, |t| format!(" TEMPLATE \"{t}\""));
    psql(
        &server.url,
        &format!("CREATE DATABASE \"{name}\"{template}"),
    )?;
    Ok(TestDb {
        url: with_database(&server.url, &name),
        name,
        admin_url: server.url.clone(),
    })
}

/// A database for one test holding what the SQL file `sql` creates (see [`database_with`]);
/// files it includes with `\\ir` are read from beside it.
pub fn database_from_file(label: &str, sql: &Path) -> Result<TestDb> {
    let read = |path: &Path| {
        fs::read_to_string(path).map_err(|e| error(format!("cannot read {}: {e}", path.display())))
    };
    // The template's name follows the file and what it includes.
    let mut key = read(sql)?;
    for line in key.clone().lines() {
        if let Some(included) = line.trim().strip_prefix("\\ir ")
            && let Some(dir) = sql.parent()
        {
            key.push_str(&read(&dir.join(included.trim()))?);
        }
    }
    let template = template_of(&key, &|url| psql_file(url, sql, &[]))?;
    fresh_database_from(label, Some(&template))
}

/// A database with the demo's tables (`xtask/sql/demo.sql`), the ones the committed demo
/// models were generated from.
pub fn demo_database(label: &str) -> Result<TestDb> {
    database_from_file(label, &crate::workspace_root().join("xtask/sql/demo.sql"))
}

/// A database for one test holding what the SQL script `sql` creates. The script runs once
/// per server, into a template database; each test's database is a copy of it
/// (`CREATE DATABASE ... TEMPLATE`), a file copy instead of a psql session per test.
pub fn database_with(label: &str, sql: &str) -> Result<TestDb> {
    let load = |url: &str| {
        let dir = target_dir().join("pg-templates");
        fs::create_dir_all(&dir)
            .map_err(|e| error(format!("cannot create {}: {e}", dir.display())))?;
        let file = dir.join(format!("{}-{}.sql", std::process::id(), crate::unique()));
        fs::write(&file, format!("SET client_min_messages = warning;\n{sql}"))
            .map_err(|e| error(format!("cannot write {}: {e}", file.display())))?;
        let loaded = psql_file(url, &file, &[]);
        let _ = fs::remove_file(&file);
        loaded
    };
    let template = template_of(sql, &load)?;
    fresh_database_from(label, Some(&template))
}

/// The template database that `load` fills, named after a hash of `key` (the script) and made
/// on first use by whichever test process gets there first (each loads under a name of its
/// own, then renames it; the loser drops its copy), so that the processes of a test run share
/// it. Nobody connects to a template once it is loaded: PostgreSQL copies a database only while
/// no session is in it. Templates live as long as the server.
fn template_of(key: &str, load: &dyn Fn(&str) -> Result<()>) -> Result<String> {
    static TEMPLATES: OnceLock<Mutex<std::collections::HashMap<u64, String>>> = OnceLock::new();
    let hash = crate::fnv1a(key.as_bytes());
    // Held while a template loads, so that this process's tests wait for it instead of loading
    // their own.
    let mut templates = TEMPLATES
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| error("a test panicked while loading a template database"))?;
    if let Some(name) = templates.get(&hash) {
        return Ok(name.clone());
    }
    let server = server()?;
    let name = format!("etl_template_{hash:016x}");
    let exists = format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'");
    if psql(&server.url, &exists)? == "0" {
        let loading = format!("{name}_{}", std::process::id());
        let drop_loading = format!("DROP DATABASE IF EXISTS \"{loading}\" WITH (FORCE)");
        psql(&server.url, &drop_loading)?;
        psql(&server.url, &format!("CREATE DATABASE \"{loading}\""))?;
        load(&with_database(&server.url, &loading))?;
        let rename = format!("ALTER DATABASE \"{loading}\" RENAME TO \"{name}\"");
        if let Err(e) = psql(&server.url, &rename) {
            // Another process published the same template meanwhile: use theirs.
            psql(&server.url, &drop_loading)?;
            if psql(&server.url, &exists)? == "0" {
                return Err(e);
            }
        }
    }
    templates.insert(hash, name.clone());
    Ok(name)
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// Runs one SQL command with `psql`, failing with psql's message.
pub fn psql(url: &str, sql: &str) -> Result<String> {
    let output = Command::new("psql")
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .output()
        .map_err(|e| error(format!("cannot run psql ({e}); install the PostgreSQL client: apt-get install postgresql-client")))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(error(format!(
            "psql failed on `{sql}`: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Runs a SQL file with `psql`.
pub fn psql_file(url: &str, path: &Path, vars: &[(&str, &str)]) -> Result<()> {
    let mut command = Command::new("psql");
    command.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f"]);
    command.arg(path);
    for (name, value) in vars {
        command.arg("-v").arg(format!("{name}={value}"));
    }
    let output = command
        .output()
        .map_err(|e| error(format!("cannot run psql: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(error(format!(
            "psql failed on {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// `pgbench` of the server's installation, for workloads of concurrent writers.
pub fn pgbench() -> Result<Command> {
    Ok(Command::new(server_program(&pg_bin_dir()?, "pgbench")))
}

fn pg_bin_dir() -> Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    for dir in on_path {
        if dir.join("initdb").is_file() && dir.join("postgres").is_file() {
            return Ok(dir);
        }
    }
    // Debian keeps the server binaries off PATH.
    let mut versions: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop().ok_or_else(|| {
        error(
            "PostgreSQL server binaries (initdb, postgres) not found: install them \
             (Debian: `apt-get install postgresql`) or set DATABASE_URL to a server you can create databases on",
        )
    })
}

/// A program of the server's installation: beside `postgres`, or beside the file it links to
/// (PATH may hold links to `initdb` and `postgres` only), or on PATH.
fn server_program(bin: &Path, name: &str) -> PathBuf {
    let beside = bin.join(name);
    if beside.is_file() {
        return beside;
    }
    fs::canonicalize(bin.join("postgres"))
        .ok()
        .and_then(|real| real.parent().map(|dir| dir.join(name)))
        .filter(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command run as the `postgres` OS user when we are root (PostgreSQL refuses root).
fn as_server_user(program: &Path, root: bool) -> Command {
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn start_cluster(tls: bool) -> Result<PgServer> {
    start_cluster_with(tls, false)
}

/// `passwords`: connections over TCP as any role but `postgres` must give the role's password
/// (scram-sha-256), as a managed database asks; the harness's own `postgres` is trusted.
fn start_cluster_with(tls: bool, passwords: bool) -> Result<PgServer> {
    let bin = pg_bin_dir()?;
    let root = running_as_root();
    let dir = cluster_dir(root)?;
    let data = dir.join("data");
    let output = as_server_user(&bin.join("initdb"), root)
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "-D",
        ])
        .arg(&data)
        .output()
        .map_err(|e| error(format!("cannot run initdb: {e}")))?;
    if !output.status.success() {
        return Err(error(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    if passwords {
        // Rewritten in place, so that the file keeps its owner (the server's user).
        let hba = data.join("pg_hba.conf");
        fs::write(
            &hba,
            "local all all trust\n\
             host all postgres 127.0.0.1/32 trust\n\
             host all all 127.0.0.1/32 scram-sha-256\n",
        )
        .map_err(|e| error(format!("cannot write {}: {e}", hba.display())))?;
    }
    start_server(&bin, root, &dir, tls)
}

static PASSWORD_SERVER: OnceLock<std::result::Result<PgServer, String>> = OnceLock::new();

/// A cluster of this process's own where every role but `postgres` logs in over TCP with its
/// password (scram-sha-256), whatever `DATABASE_URL` says: what a password must get right.
pub fn password_server() -> Result<&'static PgServer> {
    PASSWORD_SERVER
        .get_or_init(|| start_cluster_with(false, true).map_err(|e| e.0))
        .as_ref()
        .map_err(|e| error(e.clone()))
}

/// A new directory for a cluster under `$TMPDIR/etl-pg-harness/` (not under `target/`, which
/// may sit in a home directory the server's OS user cannot enter), owned by that user.
fn cluster_dir(root: bool) -> Result<PathBuf> {
    let harness = std::env::temp_dir().join("etl-pg-harness");
    fs::create_dir_all(&harness)
        .map_err(|e| error(format!("cannot create {}: {e}", harness.display())))?;
    crate::remove_stale(&harness);
    let dir = harness.join(format!("{}-{}", std::process::id(), crate::unique()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| error(format!("cannot create {}: {e}", dir.display())))?;
    if root {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .map_err(|e| error(format!("cannot chown the cluster directory: {e}")))?;
        if !status.success() {
            return Err(error(
                "cannot give the cluster directory to the `postgres` user (does the user exist? it comes with Debian's postgresql package)",
            ));
        }
    }
    Ok(dir)
}

/// Starts the server of the cluster in `dir/data` on a free port, supervised (see [`server`]),
/// and waits until it accepts connections.
fn start_server(bin: &Path, root: bool, dir: &Path, tls: bool) -> Result<PgServer> {
    let dir = dir.to_path_buf();
    let data = dir.join("data");
    let port = free_port()?;
    let log = dir.join("server.log");
    let certificates = if tls {
        Some(make_certificates(&dir, root)?)
    } else {
        None
    };
    let args: Vec<std::ffi::OsString> = vec![
        "-D".into(),
        data.clone().into_os_string(),
        "-p".into(),
        port.to_string().into(),
        "-k".into(),
        dir.clone().into_os_string(),
        "-c".into(),
        "listen_addresses=127.0.0.1".into(),
        // A throwaway cluster: durability buys nothing here.
        "-c".into(),
        "fsync=off".into(),
        "-c".into(),
        "synchronous_commit=off".into(),
        "-c".into(),
        "full_page_writes=off".into(),
        "-c".into(),
        "max_connections=200".into(),
        "-c".into(),
        "shared_buffers=256MB".into(),
    ];
    let mut args = args;
    if let Some(certs) = &certificates {
        for setting in [
            "ssl=on".to_string(),
            format!("ssl_cert_file={}", certs.server_cert.display()),
            format!("ssl_key_file={}", certs.server_key.display()),
        ] {
            args.push("-c".into());
            args.push(setting.into());
        }
    }
    let (mut child, stdin) = spawn_supervised(root, &log, &bin.join("postgres"), &args, &[])?;
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");

    // Wait until the server accepts connections (or has died).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if psql(&url, "SELECT 1").is_ok() {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(error(format!(
                "postgres exited ({status}) before accepting connections: {}",
                read_tail(&log)
            )));
        }
        if Instant::now() > deadline {
            return Err(error(format!(
                "postgres did not accept connections within 60 s: {}",
                read_tail(&log)
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(PgServer {
        url,
        owned: true,
        ca: certificates.map(|c| c.ca),
        _lifeline: Some(Mutex::new(Some((child, stdin)))),
    })
}

struct Certificates {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

/// A throwaway CA and a server certificate for 127.0.0.1 and localhost, made with openssl.
fn make_certificates(dir: &Path, root: bool) -> Result<Certificates> {
    let run = |args: &[&str]| -> Result<()> {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| {
                error(format!(
                    "cannot run openssl ({e}); install it: apt-get install openssl"
                ))
            })?;
        if output.status.success() {
            Ok(())
        } else {
            Err(error(format!(
                "openssl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            )))
        }
    };
    fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| error(format!("cannot write the certificate extensions: {e}")))?;
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=etl-test-ca",
    ])?;
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ])?;
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ])?;
    let key = dir.join("server.key");
    // PostgreSQL refuses a key others can read, and must own it.
    let _ = Command::new("chmod").arg("600").arg(&key).status();
    if root {
        let _ = Command::new("chown")
            .arg("postgres:postgres")
            .arg(&key)
            .arg(dir.join("server.pem"))
            .status();
    }
    Ok(Certificates {
        ca: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: key,
    })
}

/// A primary of this process's own and a hot standby streaming from it.
pub struct ReplicatedPair {
    pub primary: PgServer,
    pub standby: PgServer,
}

static REPLICATED: OnceLock<std::result::Result<ReplicatedPair, String>> = OnceLock::new();

/// A primary and a hot standby made from it by `pg_basebackup -R` (streaming replication),
/// whatever `DATABASE_URL` says: for what a run does on a server in recovery.
pub fn replicated_pair() -> Result<&'static ReplicatedPair> {
    REPLICATED
        .get_or_init(|| start_replicated_pair().map_err(|e| e.0))
        .as_ref()
        .map_err(|e| error(e.clone()))
}

fn start_replicated_pair() -> Result<ReplicatedPair> {
    let primary = start_cluster(false)?;
    let bin = pg_bin_dir()?;
    let root = running_as_root();
    let dir = cluster_dir(root)?;
    // initdb's trust rules admit replication connections from 127.0.0.1.
    let output = as_server_user(&server_program(&bin, "pg_basebackup"), root)
        .args(["-d", &primary.url, "-X", "stream", "-R", "--no-sync", "-D"])
        .arg(dir.join("data"))
        .output()
        .map_err(|e| error(format!("cannot run pg_basebackup: {e}")))?;
    if !output.status.success() {
        return Err(error(format!(
            "pg_basebackup failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let standby = start_server(&bin, root, &dir, false)?;
    Ok(ReplicatedPair { primary, standby })
}

impl ReplicatedPair {
    /// Waits until the standby has replayed everything the primary wrote so far.
    pub fn wait_for_replay(&self) -> Result<()> {
        let lsn = psql(&self.primary.url, "SELECT pg_current_wal_lsn()")?;
        let caught_up = format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn");
        let deadline = Instant::now() + Duration::from_secs(60);
        while psql(&self.standby.url, &caught_up)? != "t" {
            if Instant::now() > deadline {
                return Err(error(format!(
                    "the standby did not replay {lsn} within 60 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

static TLS_SERVER: OnceLock<std::result::Result<PgServer, String>> = OnceLock::new();

/// A cluster of this process's own that speaks TLS with a certificate signed by a throwaway CA
/// ([`PgServer::ca`]), whatever `DATABASE_URL` says.
pub fn tls_server() -> Result<&'static PgServer> {
    TLS_SERVER
        .get_or_init(|| start_cluster(true).map_err(|e| e.0))
        .as_ref()
        .map_err(|e| error(e.clone()))
}

fn read_tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    let start = text.len().saturating_sub(2000);
    text[text.floor_char_boundary(start)..].to_string()
}

impl PgServer {
    /// Stops a server this process started and waits for it to exit. Without this call the
    /// server still stops when the process exits.
    pub fn stop(&self) {
        if let Some(lifeline) = &self._lifeline
            && let Ok(mut guard) = lifeline.lock()
            && let Some((mut child, stdin)) = guard.take()
        {
            // Closing our end of the pipe is what the supervisor waits for.
            drop(stdin);
            let _ = child.wait();
        }
    }
}
