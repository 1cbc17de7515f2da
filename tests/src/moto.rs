//! A real Glue API for the tests: moto's server (from the readers' venv) on a loopback port.

use std::process::{Child, ChildStdin};
use std::time::{Duration, Instant};

use crate::{Result, error, free_port, python, spawn_supervised};

pub struct MotoServer {
    pub port: u16,
    node: Option<(Child, ChildStdin)>,
}

impl MotoServer {
    pub fn start() -> Result<Self> {
        let python = python::python()?;
        let moto = python.with_file_name("moto_server");
        let port = free_port()?;
        let log = crate::target_dir().join(format!("moto-{}-{port}.log", std::process::id()));
        let args = [
            "-H".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string().into(),
        ];
        let (child, stdin) = spawn_supervised(false, &log, &moto, &args, &[])?;
        let mut server = MotoServer {
            port,
            node: Some((child, stdin)),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.post("/moto-api/reset", "").is_err() {
            if Instant::now() > deadline {
                server.stop();
                return Err(error("moto_server did not answer within 60 s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A POST to moto's own API (e.g. its state manager); returns the status line.
    pub fn post(&self, path: &str, body: &str) -> Result<String> {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let response = crate::http_exchange("moto", self.port, &request)?;
        let status = response.lines().next().unwrap_or_default().to_string();
        if status.contains(" 200 ") || status.contains(" 201 ") {
            Ok(status)
        } else {
            Err(error(format!("moto answered {status}")))
        }
    }

    pub fn stop(&mut self) {
        if let Some((mut child, stdin)) = self.node.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.stop();
    }
}
