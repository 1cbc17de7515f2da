//! A TCP proxy in front of a real server that fails on cue, so that network faults happen at a
//! chosen point instead of after a sleep: refuse the first connections (a store restarting), or
//! cut every connection once a number of bytes went through (a store dying mid-upload).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::{Result, error};

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Forward everything (to watch what goes through).
    None,
    /// Close the first `n` connections as soon as they are accepted.
    DropFirstConnections(usize),
    /// Forward until `n` bytes went from client to server, then close every connection and
    /// every later one.
    CutAfterBytes(usize),
    /// Forward until `n` bytes came back from the server, then forward nothing more from the
    /// server while keeping every connection open (a server that hangs mid-answer).
    StallRepliesAfterBytes(usize),
    /// Forward until `n` bytes went from client to server, then forward nothing more on the
    /// connection whose request crossed that mark, keeping it open (a request that hangs
    /// mid-upload); every other connection goes through (a client's idle pooled connections
    /// and its new ones, as after one bad request).
    StallRequestsAfterBytes(usize),
    /// Forward until a request whose first bytes contain this text (`PUT /bucket/key`), then
    /// close every connection without forwarding it, and every later one (the store went away
    /// at that exact step).
    CutAtRequest(&'static str),
    /// Hold the first request whose first bytes contain this text until [`FaultyProxy::release`]
    /// (a client paused at that exact step), then forward it and everything else.
    HoldRequest(&'static str),
    /// Forward everything, each answer held this long after its request went through: a
    /// store tens of milliseconds away (S3 in a region) instead of one on loopback. Requests
    /// on different connections wait at the same time, as they would.
    Latency(Duration),
}

pub struct FaultyProxy {
    pub port: u16,
    in_flight: Arc<InFlight>,
    dead: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<u8>>>,
    stalled: Arc<(Mutex<bool>, Condvar)>,
    released: Arc<(Mutex<bool>, Condvar)>,
}

impl FaultyProxy {
    pub fn start(upstream_port: u16, fault: Fault) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| error(format!("cannot bind the proxy: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| error(format!("proxy address: {e}")))?
            .port();
        let dead = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let accepted = AtomicUsize::new(0);
        let dead_flag = Arc::clone(&dead);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let stalled = Arc::new((Mutex::new(false), Condvar::new()));
        let stall = Arc::clone(&stalled);
        let replied = Arc::new(AtomicUsize::new(0));
        let released = Arc::new((Mutex::new(false), Condvar::new()));
        let release = Arc::clone(&released);
        let in_flight = Arc::new(InFlight::default());
        let requests_in_flight = Arc::clone(&in_flight);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let n = accepted.fetch_add(1, Ordering::SeqCst);
                let refuse = match fault {
                    Fault::None => false,
                    Fault::DropFirstConnections(k) => n < k,
                    Fault::CutAfterBytes(_) | Fault::CutAtRequest(_) => {
                        dead_flag.load(Ordering::SeqCst)
                    }
                    Fault::StallRepliesAfterBytes(_)
                    | Fault::StallRequestsAfterBytes(_)
                    | Fault::HoldRequest(_)
                    | Fault::Latency(_) => false,
                };
                if refuse {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone())
                    && let Ok(mut open) = open.lock()
                {
                    open.push(c);
                    open.push(s);
                }
                let limit = match fault {
                    Fault::CutAfterBytes(n) => Some(n),
                    // Connections after the stall go through: they are how a client recovers.
                    Fault::StallRequestsAfterBytes(n) if !stall_flag(&stall) => Some(n),
                    _ => None,
                };
                let stall_requests = matches!(fault, Fault::StallRequestsAfterBytes(_));
                let cut_at = match fault {
                    Fault::CutAtRequest(needle) => Some(needle),
                    _ => None,
                };
                let hold = match fault {
                    Fault::HoldRequest(needle) => Some(Hold {
                        needle,
                        held: Arc::clone(&stall),
                        released: Arc::clone(&release),
                    }),
                    _ => None,
                };
                let reply_limit = match fault {
                    Fault::StallRepliesAfterBytes(n) => Some(n),
                    _ => None,
                };
                pump(
                    client,
                    server,
                    limit,
                    Arc::clone(&sent),
                    Arc::clone(&dead_flag),
                    Arc::clone(&open),
                    Arc::clone(&seen),
                    Stall {
                        limit: reply_limit,
                        requests: stall_requests,
                        replied: Arc::clone(&replied),
                        stalled: Arc::clone(&stall),
                    },
                    cut_at,
                    hold,
                    match fault {
                        Fault::Latency(latency) => Some(Latency {
                            latency,
                            waiting: Arc::new(AtomicBool::new(false)),
                            in_flight: Arc::clone(&requests_in_flight),
                        }),
                        _ => None,
                    },
                );
            }
        });
        Ok(Self {
            port,
            in_flight,
            dead,
            requests,
            stalled,
            released,
        })
    }

    /// Lets the held request ([`Fault::HoldRequest`]) and everything after it through.
    pub fn release(&self) {
        set_stalled(&self.released);
    }

    /// Waits until the stall happened ([`Fault::StallRepliesAfterBytes`],
    /// [`Fault::StallRequestsAfterBytes`]) or the request is held ([`Fault::HoldRequest`]);
    /// false if it did not within `timeout`.
    pub fn wait_stalled(&self, timeout: Duration) -> bool {
        let (flag, changed) = &*self.stalled;
        let Ok(guard) = flag.lock() else {
            return false;
        };
        changed
            .wait_timeout_while(guard, timeout, |stalled| !*stalled)
            .is_ok_and(|(stalled, _)| *stalled)
    }

    /// Whether any request's first bytes (its request line and headers) contained `needle`.
    pub fn saw(&self, needle: &str) -> bool {
        let needle = needle.to_ascii_lowercase();
        self.requests.lock().is_ok_and(|r| {
            String::from_utf8_lossy(&r)
                .to_ascii_lowercase()
                .contains(&needle)
        })
    }

    /// Whether the cut happened.
    pub fn cut(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    /// The most requests that waited for their answers at the same time
    /// ([`Fault::Latency`]).
    pub fn most_in_flight(&self) -> usize {
        self.in_flight.most.load(Ordering::SeqCst)
    }
}

/// Requests sent and not yet answered, over every connection, and the most there were.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    most: AtomicUsize,
}

/// One connection's latency: set when the client sent bytes that have had no answer yet.
#[derive(Clone)]
struct Latency {
    latency: Duration,
    waiting: Arc<AtomicBool>,
    in_flight: Arc<InFlight>,
}

impl Latency {
    /// The client sent (part of) a request.
    fn sent(&self) {
        if !self.waiting.swap(true, Ordering::SeqCst) {
            let now = self.in_flight.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.in_flight.most.fetch_max(now, Ordering::SeqCst);
        }
    }

    /// The server's answer starts: held for the latency, once per request.
    fn answering(&self) {
        if self.waiting.swap(false, Ordering::SeqCst) {
            std::thread::sleep(self.latency);
            self.in_flight.now.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Where forwarding stops: replies after `limit` bytes from the server over every connection,
/// or, with `requests`, requests once the client-to-server limit is reached.
struct Stall {
    limit: Option<usize>,
    requests: bool,
    replied: Arc<AtomicUsize>,
    stalled: Arc<(Mutex<bool>, Condvar)>,
}

/// A request held until the test releases it.
struct Hold {
    needle: &'static str,
    held: Arc<(Mutex<bool>, Condvar)>,
    released: Arc<(Mutex<bool>, Condvar)>,
}

impl Hold {
    /// If `bytes` start the held request: says so, and waits for the release.
    fn wait_if_held(&self, bytes: &[u8]) {
        let needle = self.needle.as_bytes();
        if stall_flag(&self.released) || !bytes.windows(needle.len()).any(|w| w == needle) {
            return;
        }
        set_stalled(&self.held);
        let (flag, changed) = &*self.released;
        if let Ok(guard) = flag.lock() {
            // The guard is dropped at once: only the wait matters.
            drop(changed.wait_while(guard, |released| !*released));
        }
    }
}

fn stall_flag(stalled: &Arc<(Mutex<bool>, Condvar)>) -> bool {
    stalled.0.lock().is_ok_and(|s| *s)
}

fn set_stalled(stalled: &Arc<(Mutex<bool>, Condvar)>) {
    let (flag, changed) = &**stalled;
    if let Ok(mut stalled) = flag.lock() {
        *stalled = true;
        changed.notify_all();
    }
}

#[allow(clippy::too_many_arguments)]
fn pump(
    client: TcpStream,
    server: TcpStream,
    limit: Option<usize>,
    sent: Arc<AtomicUsize>,
    dead: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    requests: Arc<Mutex<Vec<u8>>>,
    stall: Stall,
    cut_at: Option<&'static str>,
    hold: Option<Hold>,
    latency: Option<Latency>,
) {
    let (Ok(mut client_read), Ok(mut server_write)) = (client.try_clone(), server.try_clone())
    else {
        return;
    };
    let (mut server_read, mut client_write) = (server, client);
    let stall_requests = stall.requests.then(|| Arc::clone(&stall.stalled));
    // Both directions of the connection share its state.
    let answer_latency = latency.clone();
    // client -> server, counting bytes against the limit
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match client_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // Keep the start of each read (headers arrive first): enough to check a header.
            if let Ok(mut r) = requests.lock() {
                r.extend_from_slice(&buf[..n.min(2048)]);
            }
            if let Some(hold) = &hold {
                hold.wait_if_held(&buf[..n]);
            }
            let cut_here = cut_at.is_some_and(|needle| {
                buf[..n]
                    .windows(needle.len())
                    .any(|w| w == needle.as_bytes())
            });
            let before = sent.fetch_add(n, Ordering::SeqCst);
            let total = before + n;
            if let (Some(stalled), Some(limit)) = (&stall_requests, limit)
                && before <= limit
                && total > limit
            {
                // Hang: nothing more goes to the server; the proxy keeps the connection open.
                set_stalled(stalled);
                return;
            }
            // (A stall's limit stalls one request; it cuts nothing.)
            if cut_here || (stall_requests.is_none() && limit.is_some_and(|limit| total > limit)) {
                dead.store(true, Ordering::SeqCst);
                if let Ok(open) = open.lock() {
                    for stream in open.iter() {
                        let _ = stream.shutdown(Shutdown::Both);
                    }
                }
                break;
            }
            if let Some(latency) = &latency {
                latency.sent();
            }
            if server_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = server_write.shutdown(Shutdown::Write);
    });
    // server -> client, stalling after the reply limit
    std::thread::spawn(move || {
        if let Some(latency) = answer_latency {
            let mut buf = [0u8; 16 * 1024];
            loop {
                let n = match server_read.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                latency.answering();
                if client_write.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = client_write.shutdown(Shutdown::Write);
            return;
        }
        let Some(reply_limit) = stall.limit else {
            let _ = std::io::copy(&mut server_read, &mut client_write);
            let _ = client_write.shutdown(Shutdown::Write);
            return;
        };
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match server_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let before = stall.replied.fetch_add(n, Ordering::SeqCst);
            let allowed = reply_limit.saturating_sub(before).min(n);
            if client_write.write_all(&buf[..allowed]).is_err() {
                break;
            }
            if allowed < n {
                // Hang: the connection stays open (the proxy holds it) and nothing more comes.
                set_stalled(&stall.stalled);
                return;
            }
        }
        let _ = client_write.shutdown(Shutdown::Write);
    });
}
