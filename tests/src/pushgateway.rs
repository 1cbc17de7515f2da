//! A real Prometheus Pushgateway for the tests: Debian's `prometheus-pushgateway`, installed
//! with apt-get when missing (as root, which CI is), on a loopback port, in memory.

use std::path::PathBuf;
use std::process::{Child, ChildStdin};
use std::time::{Duration, Instant};

use crate::{Result, error, free_port, spawn_supervised};

const BINARY: &str = "/usr/bin/prometheus-pushgateway";

/// The Pushgateway binary, installed from Debian's packages if it is not there.
pub fn pushgateway_binary() -> Result<PathBuf> {
    let binary = PathBuf::from(BINARY);
    if binary.is_file() {
        return Ok(binary);
    }
    eprintln!("installing Debian's prometheus-pushgateway (once)");
    let installed = crate::apt_install("prometheus-pushgateway");
    if !installed || !binary.is_file() {
        return Err(error(
            "cannot install prometheus-pushgateway with apt-get (as root: apt-get install prometheus-pushgateway)",
        ));
    }
    Ok(binary)
}

/// A running Pushgateway. Stopped when dropped (and when this process exits).
pub struct Pushgateway {
    pub port: u16,
    node: Option<(Child, ChildStdin)>,
}

impl Pushgateway {
    pub fn start() -> Result<Self> {
        let binary = pushgateway_binary()?;
        let port = free_port()?;
        let log =
            crate::target_dir().join(format!("pushgateway-{}-{port}.log", std::process::id()));
        let args = [format!("--web.listen-address=127.0.0.1:{port}").into()];
        let (child, stdin) = spawn_supervised(false, &log, &binary, &args, &[])?;
        let mut server = Pushgateway {
            port,
            node: Some((child, stdin)),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.get("/-/ready").is_err() {
            if Instant::now() > deadline {
                server.stop();
                return Err(error("the Pushgateway did not answer within 60 s"));
            }
            // Polling a process that offers no readiness signal but its HTTP answer.
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The body of a GET (`/metrics`: what Prometheus would scrape).
    pub fn get(&self, path: &str) -> Result<String> {
        let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
        let response = crate::http_exchange("pushgateway", self.port, &request)?;
        let status = response.lines().next().unwrap_or_default();
        if !status.contains(" 200 ") {
            return Err(error(format!("pushgateway answered {status}")));
        }
        Ok(response
            .split_once("\r\n\r\n")
            .map_or(String::new(), |(_, body)| body.to_string()))
    }

    pub fn stop(&mut self) {
        if let Some((mut child, stdin)) = self.node.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        self.stop();
    }
}
