//! A real S3-compatible store for the tests: Garage, a single node on loopback ports, with one
//! bucket and one access key, in a directory under `target/`. The binary is built once with
//! `cargo install` into the cache outside the clone (about ten minutes, the first time only).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command};
use std::time::{Duration, Instant};

use crate::{Result, cache_dir, error, free_port, spawn_supervised, target_dir};

pub const GARAGE_VERSION: &str = "2.5.0";
pub const BUCKET: &str = "etl-test";
/// Garage accepts any key id of 8+ characters; this one looks like its own ("GK" + hex).
pub const ACCESS_KEY: &str = "GK0123456789abcdef01234567";
pub const SECRET_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// The store's region; a real AWS name, so that one AWS_REGION also suits the Glue stand-in.
pub const REGION: &str = "us-east-1";

/// The Garage binary, built with `cargo install` if it is not in the cache yet.
pub fn garage_binary() -> Result<PathBuf> {
    let root = cache_dir().join(format!("garage-{GARAGE_VERSION}"));
    let binary = root.join("bin").join("garage");
    if binary.is_file() {
        return Ok(binary);
    }
    fs::create_dir_all(cache_dir()).map_err(|e| error(format!("cannot create the cache: {e}")))?;
    let lock = fs::File::create(cache_dir().join("garage.lock"))
        .map_err(|e| error(format!("cannot create the garage lock: {e}")))?;
    lock.lock()
        .map_err(|e| error(format!("cannot lock the garage install: {e}")))?;
    if binary.is_file() {
        return Ok(binary);
    }
    eprintln!(
        "building Garage {GARAGE_VERSION} into {} (once, ~10 min)",
        root.display()
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "install",
            "garage",
            "--locked",
            "--version",
            GARAGE_VERSION,
            "--root",
        ])
        .arg(&root)
        // Its own target directory, so that it never touches the workspace's.
        .env("CARGO_TARGET_DIR", cache_dir().join("garage-build"))
        .status()
        .map_err(|e| error(format!("cannot run cargo install garage: {e}")))?;
    if !status.success() || !binary.is_file() {
        return Err(error(format!(
            "cargo install garage {GARAGE_VERSION} failed ({status})"
        )));
    }
    let _ = fs::remove_dir_all(cache_dir().join("garage-build"));
    Ok(binary)
}

/// A running Garage node. Stopped when dropped (and when this process exits).
pub struct Garage {
    pub s3_port: u16,
    binary: PathBuf,
    dir: PathBuf,
    config: PathBuf,
    node: Option<(Child, ChildStdin)>,
}

impl Garage {
    /// Starts a fresh node with the bucket [`BUCKET`] and the key [`ACCESS_KEY`].
    pub fn start() -> Result<Garage> {
        let binary = garage_binary()?;
        crate::remove_stale(&target_dir().join("garage-harness"));
        let dir = target_dir().join("garage-harness").join(format!(
            "{}-{}",
            std::process::id(),
            crate::unique()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)
            .map_err(|e| error(format!("cannot create {}: {e}", dir.display())))?;
        let (s3_port, rpc_port, admin_port) = (free_port()?, free_port()?, free_port()?);
        let config = dir.join("garage.toml");
        let text = format!(
            r#"metadata_dir = "{dir}/meta"
data_dir = "{dir}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin_port}"
"#,
            dir = dir.display(),
            secret = SECRET_KEY,
        );
        fs::write(&config, text)
            .map_err(|e| error(format!("cannot write the Garage config: {e}")))?;
        let mut garage = Garage {
            s3_port,
            binary,
            dir,
            config,
            node: None,
        };
        garage.resume()?;
        Ok(garage)
    }

    /// Starts the node again after [`Self::stop`], with its data.
    pub fn resume(&mut self) -> Result<()> {
        let log = self.dir.join("garage.log");
        let args = [
            "-c".into(),
            self.config.clone().into_os_string(),
            "server".into(),
            "--single-node".into(),
            "--default-bucket".into(),
        ];
        let (child, stdin) = spawn_supervised(
            false,
            &log,
            &self.binary,
            &args,
            &[
                ("GARAGE_DEFAULT_BUCKET", BUCKET),
                ("GARAGE_DEFAULT_ACCESS_KEY", ACCESS_KEY),
                ("GARAGE_DEFAULT_SECRET_KEY", SECRET_KEY),
            ],
        )?;
        self.node = Some((child, stdin));
        self.wait_ready(&log)
    }

    /// Stops the node and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some((mut child, stdin)) = self.node.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }

    /// Ready when the CLI, over RPC, sees the bucket, and the S3 port accepts connections.
    fn wait_ready(&mut self, log: &Path) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let bucket = Command::new(&self.binary)
                .args(["-c"])
                .arg(&self.config)
                .args(["bucket", "info", BUCKET])
                .output();
            let s3 = std::net::TcpStream::connect(("127.0.0.1", self.s3_port));
            if bucket.is_ok_and(|o| o.status.success()) && s3.is_ok() {
                return Ok(());
            }
            if let Some((child, _)) = &mut self.node
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(error(format!(
                    "garage exited ({status}): {}",
                    fs::read_to_string(log).unwrap_or_default()
                )));
            }
            if Instant::now() > deadline {
                return Err(error(format!(
                    "garage was not ready within 60 s: {}",
                    fs::read_to_string(log).unwrap_or_default()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The environment an S3 client needs to reach this node through `endpoint` (the node
    /// itself or a proxy in front of it).
    pub fn env_for(&self, endpoint: &str) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_REGION", REGION),
            ("AWS_ENDPOINT_URL", endpoint),
            ("ETL_S3_PATH_STYLE", "1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
