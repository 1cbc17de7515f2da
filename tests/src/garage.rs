//! A real S3-compatible store for the tests: Garage, a single node on loopback ports, with one
//! bucket and one access key, in a directory under `target/`. The binary is built once with
//! `cargo install` into the cache outside the clone (minutes, the first time only). Tests that
//! only need a namespace share one node, each with a bucket of its own ([`Garage::shared`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::{Result, cache_dir, error, free_port, spawn_supervised, target_dir};

pub const GARAGE_VERSION: &str = "2.5.0";
pub const BUCKET: &str = "etl-test";
/// Garage accepts any key id of 8+ characters; this one looks like its own ("GK" + hex).
pub const ACCESS_KEY: &str = "GK0123456789abcdef01234567";
pub const SECRET_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// The store's region; a real AWS name, so that one AWS_REGION also suits the Glue stand-in.
pub const REGION: &str = "us-east-1";

/// The build of Garage the tests use: only its SQLite metadata engine (with the library
/// bundled), none of LMDB, K2V or metrics, and optimized at level 1; a new machine compiles it
/// in about half the time of the default build, and it serves the tests' few hundred
/// megabytes as well.
const GARAGE_FEATURES: &str = "sqlite,bundled-libs";
const GARAGE_OPT_LEVEL: &str = "1";

/// The Garage binary, built with `cargo install` if it is not in the cache yet.
pub fn garage_binary() -> Result<PathBuf> {
    let root = cache_dir().join(format!(
        "garage-{GARAGE_VERSION}-sqlite-o{GARAGE_OPT_LEVEL}"
    ));
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
        "building Garage {GARAGE_VERSION} into {} (once, several minutes)",
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
            "--no-default-features",
            "--features",
            GARAGE_FEATURES,
            "--root",
        ])
        .arg(&root)
        // Its own target directory, so that it never touches the workspace's.
        .env("CARGO_TARGET_DIR", cache_dir().join("garage-build"))
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", GARAGE_OPT_LEVEL)
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

/// A Garage node's process and files.
struct Node {
    s3_port: u16,
    binary: PathBuf,
    dir: PathBuf,
    config: PathBuf,
    process: Option<(Child, ChildStdin)>,
}

/// One test's view of a Garage node: the node's ports and a bucket of the test's own. A node of
/// its own ([`Garage::start`]) can be stopped and resumed; the shared node
/// ([`Garage::shared`]) lives as long as the test process.
pub struct Garage {
    pub s3_port: u16,
    /// The bucket this test writes to.
    pub bucket: String,
    node: Owner,
}

enum Owner {
    Own(Node),
    Shared(&'static Node),
}

impl Garage {
    /// Starts a fresh node of this test's own with the bucket [`BUCKET`] and the key
    /// [`ACCESS_KEY`], for a test that stops the store.
    pub fn start() -> Result<Garage> {
        let mut node = Node::new()?;
        node.resume()?;
        Ok(Garage {
            s3_port: node.s3_port,
            bucket: BUCKET.to_string(),
            node: Owner::Own(node),
        })
    }

    /// A new bucket named after `label`, writable with [`ACCESS_KEY`], on the node that this
    /// process's tests share (started on first use): tests that only need a namespace of their
    /// own do not each start a node.
    pub fn shared(label: &str) -> Result<Garage> {
        let node = shared_node()?;
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let label = crate::name_part(label, '-', 36);
        // Unique across the test processes sharing the node.
        let bucket = format!(
            "{}-{}-{}",
            label.trim_end_matches('-'),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        node.cli(&["bucket", "create", &bucket])?;
        node.cli(&[
            "bucket", "allow", "--read", "--write", "--owner", &bucket, "--key", ACCESS_KEY,
        ])?;
        Ok(Garage {
            s3_port: node.s3_port,
            bucket,
            node: Owner::Shared(node),
        })
    }

    /// Stops this test's own node and waits for it to exit. The shared node cannot be
    /// stopped: other tests are using it.
    pub fn stop(&mut self) {
        match &mut self.node {
            Owner::Own(node) => node.stop(),
            Owner::Shared(_) => panic!("the shared Garage node cannot be stopped by one test"),
        }
    }

    /// Starts this test's own node again after [`Self::stop`], with its data.
    pub fn resume(&mut self) -> Result<()> {
        match &mut self.node {
            Owner::Own(node) => node.resume(),
            Owner::Shared(_) => Err(error("the shared Garage node is never stopped")),
        }
    }

    /// The value of [`SHARED_NODE_ENV`] that hands this node to child processes.
    pub fn handed_down(&self) -> String {
        let node = match &self.node {
            Owner::Own(node) => node,
            Owner::Shared(node) => node,
        };
        format!("{} {}", node.s3_port, node.config.display())
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

/// The environment variable through which a parent process (`cargo xtask ci`) hands the node
/// it started to the test processes: `<S3 port> <config path>`.
pub const SHARED_NODE_ENV: &str = "ETL_TEST_GARAGE";

/// The node this process's tests share: the one [`SHARED_NODE_ENV`] names, or one started on
/// first use and stopped when this process exits (its supervisor sees the pipe close).
fn shared_node() -> Result<&'static Node> {
    static SHARED: OnceLock<std::result::Result<Node, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| match std::env::var(SHARED_NODE_ENV) {
            Ok(handed) if !handed.is_empty() => Node::from_handed_down(&handed).map_err(|e| e.0),
            _ => {
                let mut node = Node::new().map_err(|e| e.0)?;
                node.resume().map_err(|e| e.0)?;
                Ok(node)
            }
        })
        .as_ref()
        .map_err(|e| error(e.clone()))
}

impl Node {
    /// A node's directory and configuration on free ports; not started yet.
    fn new() -> Result<Node> {
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
        Ok(Node {
            s3_port,
            binary,
            dir,
            config,
            process: None,
        })
    }

    /// The node a parent process started, from [`SHARED_NODE_ENV`]'s value.
    fn from_handed_down(value: &str) -> Result<Node> {
        let bad = || {
            error(format!(
                "{SHARED_NODE_ENV}={value:?} is not `<S3 port> <config>`"
            ))
        };
        let (port, config) = value.split_once(' ').ok_or_else(bad)?;
        let config = PathBuf::from(config);
        Ok(Node {
            s3_port: port.parse().map_err(|_| bad())?,
            binary: garage_binary()?,
            dir: config.parent().ok_or_else(bad)?.to_path_buf(),
            config,
            process: None,
        })
    }

    /// Starts the node (again, with its data).
    fn resume(&mut self) -> Result<()> {
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
        self.process = Some((child, stdin));
        self.wait_ready(&log)
    }

    /// Stops the node and waits for it to exit.
    fn stop(&mut self) {
        if let Some((mut child, stdin)) = self.process.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }

    /// One command of Garage's CLI against this node, over RPC.
    fn cli(&self, args: &[&str]) -> Result<()> {
        let output = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .map_err(|e| error(format!("cannot run garage {}: {e}", args.join(" "))))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(error(format!(
                "garage {} failed: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }

    /// Ready when the CLI, over RPC, sees the bucket, and the S3 port accepts connections.
    fn wait_ready(&mut self, log: &Path) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let bucket = self.cli(&["bucket", "info", BUCKET]);
            let s3 = std::net::TcpStream::connect(("127.0.0.1", self.s3_port));
            if bucket.is_ok() && s3.is_ok() {
                return Ok(());
            }
            if let Some((child, _)) = &mut self.process
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
}

impl Drop for Garage {
    fn drop(&mut self) {
        if let Owner::Own(node) = &mut self.node {
            node.stop();
            let _ = fs::remove_dir_all(&node.dir);
        }
    }
}
