//! `cargo xtask image`: the container image of your etl-app, built from Debian's packages alone
//! (this machine, like many CI runners, cannot pull base images): `mmdebstrap` makes the
//! runtime's root filesystem (Debian 12's essential packages, `ca-certificates`, and `libpq5`,
//! which Diesel's connection for the tasks' lookups links), the release binary goes in as
//! `/usr/local/bin/etl-app`, run as user 10001, and `umoci` packs it as an OCI image layout
//! that podman, skopeo or containerd load (`skopeo copy oci:DIR:etl-app docker://REGISTRY/...`).
//! The root `Dockerfile` builds the same image where a registry is at hand.
//!
//! Every shared library the binary links is checked to be in the image (`ldd` inside it), and
//! `cargo xtask ci` runs the image of etl-demo in a container (podman) against the test
//! PostgreSQL and reads what it wrote to a mounted directory back with pyarrow and DuckDB.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::demo::cargo;

#[derive(Debug, Args)]
pub struct ImageArgs {
    /// The binary to put in the image: `etl-app` (your models) or `etl-demo` (the demo's).
    #[arg(long, default_value = "etl-app")]
    pub bin: String,
    /// Where the image goes (default: target/image/<bin>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// What `image` made.
pub struct Image {
    /// The root filesystem, as the container sees it.
    pub rootfs: PathBuf,
    /// The OCI image layout (`oci:<layout>:etl-app`).
    pub layout: PathBuf,
    /// The same as one OCI archive (`podman load -i`, `skopeo copy oci-archive:...`).
    pub archive: PathBuf,
}

/// The user the image runs as.
const USER: u32 = 10001;
/// What the runtime needs besides Debian's essential packages.
const PACKAGES: &str = "ca-certificates,libpq5";

pub fn run(args: ImageArgs) -> Result<std::process::ExitCode> {
    let image = build(&args.bin, args.out)?;
    println!(
        "image: {} (an OCI layout; as one archive {}; root filesystem {}, {} MB)",
        image.layout.display(),
        image.archive.display(),
        image.rootfs.display(),
        dir_bytes(&image.rootfs) / 1_000_000
    );
    println!(
        "push it: skopeo copy oci-archive:{} docker://registry.example.com/etl-app:1.0\n\
         or run it: podman load -i {}",
        image.archive.display(),
        image.archive.display()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// Builds the image of `bin` into `out` (default `target/image/<bin>/`).
pub fn build(bin: &str, out: Option<PathBuf>) -> Result<Image> {
    for (tool, package) in [("mmdebstrap", "mmdebstrap"), ("umoci", "umoci")] {
        if etl_tests::on_path(tool).is_none() && !etl_tests::apt_install(package) {
            bail!("{tool} is missing and `apt-get install {package}` failed");
        }
    }
    let out = out.unwrap_or_else(|| etl_tests::target_dir().join("image").join(bin));
    let rootfs = out.join("rootfs");
    let layout = out.join("oci");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;

    cargo(&["build", "--release", "-p", "etl-app", "--bin", bin])?;
    let binary = etl_tests::target_dir().join("release").join(bin);

    // Debian 12, as the build machine, from the machine's own apt sources.
    run_tool(
        Command::new("mmdebstrap")
            .args(["--variant=essential", "--quiet"])
            .arg(format!("--include={PACKAGES}"))
            .args(["--dpkgopt=path-exclude=/usr/share/{doc,man,locale,info}/*"])
            .arg("bookworm")
            .arg(&rootfs),
    )?;
    let installed = rootfs.join("usr/local/bin/etl-app");
    std::fs::copy(&binary, &installed)
        .with_context(|| format!("cannot copy {}", binary.display()))?;
    // The release profile keeps line tables for readable backtraces; the image does without.
    run_tool(Command::new("strip").arg(&installed))?;
    add_user(&rootfs)?;
    check_libraries(&rootfs)?;

    run_tool(
        Command::new("umoci")
            .args(["init", "--layout"])
            .arg(&layout),
    )?;
    let tag = format!("{}:etl-app", layout.display());
    run_tool(Command::new("umoci").args(["new", "--image", &tag]))?;
    let bundle = out.join("bundle");
    run_tool(
        Command::new("umoci")
            .args(["unpack", "--image", &tag])
            .arg(&bundle),
    )?;
    // The bundle's empty root filesystem becomes ours, then one layer of it.
    std::fs::remove_dir_all(bundle.join("rootfs"))?;
    run_tool(
        Command::new("cp")
            .args(["-a"])
            .arg(&rootfs)
            .arg(bundle.join("rootfs")),
    )?;
    run_tool(
        Command::new("umoci")
            .args(["repack", "--image", &tag])
            .arg(&bundle),
    )?;
    run_tool(Command::new("umoci").args([
        "config",
        "--image",
        &tag,
        "--config.entrypoint=/usr/local/bin/etl-app",
        &format!("--config.user={USER}:{USER}"),
        "--config.workingdir=/data",
        "--config.env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--config.env=ETL_STAGING_DIR=/tmp",
    ]))?;
    run_tool(Command::new("umoci").args(["gc", "--layout"]).arg(&layout))?;
    let _ = std::fs::remove_dir_all(&bundle);
    let archive = out.join("etl-app.oci.tar");
    run_tool(
        Command::new("tar")
            .arg("-C")
            .arg(&layout)
            .arg("-cf")
            .arg(&archive)
            .arg("."),
    )?;
    Ok(Image {
        rootfs,
        layout,
        archive,
    })
}

/// User `etl` (10001) and its working directory `/data`.
fn add_user(rootfs: &Path) -> Result<()> {
    use std::io::Write;
    let append = |file: &str, line: String| -> Result<()> {
        let path = rootfs.join(file);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        writeln!(f, "{line}")?;
        Ok(())
    };
    append(
        "etc/passwd",
        format!("etl:x:{USER}:{USER}:etl-app:/data:/usr/sbin/nologin"),
    )?;
    append("etc/group", format!("etl:x:{USER}:"))?;
    let data = rootfs.join("data");
    std::fs::create_dir_all(&data)?;
    run_tool(
        Command::new("chown")
            .arg(format!("{USER}:{USER}"))
            .arg(&data),
    )?;
    Ok(())
}

/// Every shared library the binary links resolves inside the image (`ldd` run there).
fn check_libraries(rootfs: &Path) -> Result<()> {
    let output = Command::new("chroot")
        .arg(rootfs)
        .args(["/usr/bin/ldd", "/usr/local/bin/etl-app"])
        .output()
        .context("cannot run ldd in the image (chroot needs root)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || text.contains("not found") {
        bail!(
            "the image lacks libraries the binary links:\n{text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    eprintln!("the binary's libraries, all in the image:\n{text}");
    Ok(())
}

/// Runs the image in a container (podman, with runc: Debian 12's crun refuses this
/// machine's hybrid cgroups) on the host's network, so that the test PostgreSQL on 127.0.0.1 is
/// reachable, with `args` and `env`, and `out` mounted as `/data/out` (made writable for the
/// image's user). Returns its output.
pub fn run_container(
    image: &Image,
    args: &[&str],
    env: &[(&str, &str)],
    out: &Path,
) -> Result<std::process::Output> {
    for package in ["podman", "runc"] {
        if etl_tests::on_path(package).is_none() && !etl_tests::apt_install(package) {
            bail!("{package} is missing and `apt-get install {package}` failed");
        }
    }
    // The archive, not the layout directory: podman names an image loaded from a directory
    // after its path, which is no valid name under ~/.cache; the archive carries `etl-app`.
    let loaded = Command::new("podman")
        .args(["load", "--input"])
        .arg(&image.archive)
        .output()
        .context("cannot run podman load")?;
    let text = String::from_utf8_lossy(&loaded.stdout).to_string();
    let Some(name) = text
        .lines()
        .filter_map(|l| l.strip_prefix("Loaded image: "))
        .next_back()
        .map(str::trim)
        .map(str::to_string)
    else {
        bail!(
            "podman load named no image: {text}{}",
            String::from_utf8_lossy(&loaded.stderr)
        );
    };
    std::fs::create_dir_all(out)?;
    run_tool(Command::new("chown").arg(format!("{USER}:{USER}")).arg(out))?;
    let mut command = Command::new("podman");
    command
        .args(["--runtime", "runc", "run", "--rm", "--network", "host"])
        // podman's default limits are above what this machine lets a container raise them to
        // (setrlimit: EPERM); these are within the host's and ample for etl-app.
        .args([
            "--ulimit",
            &format!("nofile={0}:{0}", limit("Max open files")?.min(65_536)),
        ])
        .args([
            "--ulimit",
            &format!("nproc={0}:{0}", limit("Max processes")?.min(4096)),
        ])
        .arg("--volume")
        .arg(format!("{}:/data/out", out.display()));
    for (key, value) in env {
        command.args(["--env", &format!("{key}={value}")]);
    }
    let output = command
        .arg(&name)
        .args(args)
        .output()
        .context("cannot run podman run")?;
    let _ = Command::new("podman")
        .args(["rmi", "--force", &name])
        .output();
    Ok(output)
}

/// This process's hard limit named `name` in /proc/self/limits.
fn limit(name: &str) -> Result<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    limits
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|hard| hard.parse().ok())
        .with_context(|| format!("no {name} in /proc/self/limits"))
}

fn run_tool(command: &mut Command) -> Result<()> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {:?}", command.get_program()))?;
    if !output.status.success() {
        bail!(
            "{:?} failed ({}): {}{}",
            command.get_program(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            total += dir_bytes(&entry.path());
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    total
}
