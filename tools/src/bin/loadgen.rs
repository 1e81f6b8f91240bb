//! The HTTP load generator of `scripts/bench.sh` (issue #12), for what wrk
//! cannot do.
//!
//! **Open loop** (`--rate R`): POPBiLL does not wait for one answer before
//! sending the next delivery, so request `i` is due at `start + i / R`
//! whatever the answers before it did. Latency is measured from that
//! *intended* time, not from the moment a connection was free to send it:
//! a stall of the server shows as the queueing delay its senders would
//! really see (coordinated omission corrected). Keep-alive connections come
//! from a pool that grows only when a due request finds none idle (up to
//! `--max-connections`), so it is sized to need. tokio's timer has 1 ms
//! granularity: requests due within the same millisecond leave together,
//! but each is still timed from its own intended time.
//!
//! **Closed loop** (`--concurrency C`): C connections, each sending the
//! next request when its answer came — for a fixed `--count` of deliveries
//! (wrk runs for a time, not a count), as the callgrind phase needs.
//!
//! Every request carries the sample's headers and body (`--sample DIR`, as
//! written by `ceiling --dump-sample`) and a unique `Pb-Webhook-MID`
//! (`<mid-prefix>-<n>`). An answer other than 200, a connection or I/O
//! error, a timeout (`--timeout-ms`) or a request never sent by the end of
//! the run is an error. Prints one JSON line: requests, ok, the kinds of
//! errors, offered and achieved rate, p50/p90/p99/p99.9/max in ms, the
//! connections used.
//!
//!   cargo run --release -p popbill-bridge-tools --bin loadgen -- --addr 127.0.0.1:18080 \
//!     --sample /tmp/sample --rate 5000 --seconds 20 --mid-prefix run1
//!
//! Loopback only, and bounded: it stops by itself after `--seconds` or `--count`.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc};

#[derive(Parser, Clone)]
struct Args {
    /// host:port of the server.
    #[arg(long)]
    addr: String,
    #[arg(long, default_value = "/popbill/webhook")]
    path: String,
    /// Directory with `body` and `headers` (`Name<TAB>value` lines).
    #[arg(long)]
    sample: PathBuf,
    /// Prefix of the unique Pb-Webhook-MID of each request.
    #[arg(long)]
    mid_prefix: String,
    /// Open loop: requests per second on a fixed schedule.
    #[arg(
        long,
        conflicts_with = "concurrency",
        required_unless_present = "concurrency"
    )]
    rate: Option<f64>,
    /// Closed loop: connections, each waiting for its answer before the next request.
    #[arg(long)]
    concurrency: Option<usize>,
    /// How long to send (the schedule's length in open loop).
    #[arg(long, required_unless_present = "count")]
    seconds: Option<f64>,
    /// How many requests to send (instead of, or as well as, --seconds).
    #[arg(long)]
    count: Option<u64>,
    /// Open loop: connections at most.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Open loop: connections opened before the first request.
    #[arg(long, default_value_t = 8)]
    initial_connections: usize,
    /// Deadline of one request (connect, send, answer).
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// tokio worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// The request less its MID: `head` ends with `Pb-Webhook-MID: `, `tail`
/// is the blank line and the body.
struct Template {
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl Template {
    fn load(a: &Args) -> io::Result<Template> {
        let body = std::fs::read(a.sample.join("body"))?;
        let headers = std::fs::read_to_string(a.sample.join("headers"))?;
        let mut head = format!("POST {} HTTP/1.1\r\nHost: {}\r\n", a.path, a.addr);
        for line in headers.lines() {
            let Some((k, v)) = line.split_once('\t') else {
                continue;
            };
            let lower = k.to_ascii_lowercase();
            if !matches!(lower.as_str(), "host" | "content-length" | "pb-webhook-mid") {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nPb-Webhook-MID: ",
            body.len()
        ));
        let mut tail = b"\r\n\r\n".to_vec();
        tail.extend_from_slice(&body);
        Ok(Template {
            head: head.into_bytes(),
            tail,
        })
    }

    fn request(&self, mid: &str, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.head);
        out.extend_from_slice(mid.as_bytes());
        out.extend_from_slice(&self.tail);
    }
}

#[derive(Default)]
struct Tally {
    /// Latencies of the 200 answers, µs.
    ok_us: Vec<u32>,
    non200: u64,
    io_errors: u64,
    timeouts: u64,
    unfinished: u64,
    /// When the last answer came.
    last: Option<Instant>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.ok_us.extend(o.ok_us);
        self.non200 += o.non200;
        self.io_errors += o.io_errors;
        self.timeouts += o.timeouts;
        self.unfinished += o.unfinished;
        self.last = self.last.max(o.last);
    }
}

/// One keep-alive connection, opened when first needed and again after an error.
struct Conn {
    addr: String,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

fn find(h: &[u8], needle: &[u8]) -> Option<usize> {
    h.windows(needle.len()).position(|w| w == needle)
}

impl Conn {
    fn new(addr: &str) -> Conn {
        Conn {
            addr: addr.to_string(),
            stream: None,
            buf: Vec::with_capacity(1024),
        }
    }

    async fn connect(&mut self) -> io::Result<&mut TcpStream> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
        }
        Ok(self.stream.as_mut().expect("just connected"))
    }

    /// Sends one request and reads its answer: the status.
    async fn exchange(&mut self, req: &[u8]) -> io::Result<u16> {
        let r = self.exchange_inner(req).await;
        if !matches!(r, Ok((_, false))) {
            self.stream = None; // error or `Connection: close`: a new one next time
        }
        r.map(|(status, _)| status)
    }

    async fn exchange_inner(&mut self, req: &[u8]) -> io::Result<(u16, bool)> {
        let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
        self.connect().await?;
        let (s, buf) = (self.stream.as_mut().expect("connected"), &mut self.buf);
        s.write_all(req).await?;
        buf.clear();
        let head_end = loop {
            if let Some(p) = find(buf, b"\r\n\r\n") {
                break p + 4;
            }
            if buf.len() > 65536 {
                return Err(bad("answer head too long"));
            }
            if s.read_buf(buf).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| bad("no status"))?;
        let (mut length, mut chunked, mut close) = (0usize, false, false);
        for (k, v) in head.split("\r\n").skip(1).filter_map(|l| l.split_once(':')) {
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                length = v.parse().map_err(|_| bad("bad content-length"))?;
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.eq_ignore_ascii_case("chunked");
            } else if k.eq_ignore_ascii_case("connection") {
                close = v.eq_ignore_ascii_case("close");
            }
        }
        loop {
            let done = if chunked {
                buf[head_end..].ends_with(b"0\r\n\r\n")
            } else {
                buf.len() >= head_end + length
            };
            if done {
                return Ok((status, close));
            }
            if s.read_buf(buf).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

/// Sends request `n` (due at `intended`) and books its outcome.
async fn one(
    conn: &mut Conn,
    t: &Template,
    a: &Args,
    n: u64,
    intended: Instant,
    req: &mut Vec<u8>,
    tally: &mut Tally,
) {
    t.request(&format!("{}-{n}", a.mid_prefix), req);
    let r = tokio::time::timeout(Duration::from_millis(a.timeout_ms), conn.exchange(req)).await;
    let now = Instant::now();
    tally.last = Some(now);
    match r {
        Ok(Ok(200)) => {
            let us = now.saturating_duration_since(intended).as_micros();
            tally.ok_us.push(us.min(u32::MAX as u128) as u32);
        }
        Ok(Ok(_)) => tally.non200 += 1,
        Ok(Err(_)) => tally.io_errors += 1,
        Err(_) => {
            conn.stream = None; // the answer may still come: not on this socket
            tally.timeouts += 1;
        }
    }
}

/// Shared by the open-loop dispatcher and its workers.
struct Pool {
    jobs: Mutex<mpsc::UnboundedReceiver<(u64, Instant)>>,
    idle: AtomicUsize,
    picked: AtomicU64,
    /// Set at the run's hard end: jobs still queued are not sent.
    stop: AtomicBool,
}

async fn open_worker(pool: Arc<Pool>, t: Arc<Template>, a: Arc<Args>) -> Tally {
    let mut tally = Tally::default();
    let mut conn = Conn::new(&a.addr);
    let _ = conn.connect().await; // ready before its first job; retried there
    let mut req = Vec::with_capacity(t.head.len() + t.tail.len() + 64);
    loop {
        pool.idle.fetch_add(1, Ordering::SeqCst);
        let job = pool.jobs.lock().await.recv().await;
        pool.idle.fetch_sub(1, Ordering::SeqCst);
        let Some((n, intended)) = job else { break };
        pool.picked.fetch_add(1, Ordering::SeqCst);
        if pool.stop.load(Ordering::SeqCst) {
            tally.unfinished += 1;
            continue;
        }
        one(&mut conn, &t, &a, n, intended, &mut req, &mut tally).await;
    }
    tally
}

async fn open_loop(a: Arc<Args>, t: Arc<Template>, rate: f64, n: u64) -> (Tally, Instant, usize) {
    let (tx, rx) = mpsc::unbounded_channel();
    let pool = Arc::new(Pool {
        jobs: Mutex::new(rx),
        idle: AtomicUsize::new(0),
        picked: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let spawn = |workers: &mut Vec<tokio::task::JoinHandle<Tally>>| {
        workers.push(tokio::spawn(open_worker(
            pool.clone(),
            t.clone(),
            a.clone(),
        )));
    };
    let mut workers = Vec::new();
    for _ in 0..a.initial_connections.clamp(1, a.max_connections) {
        spawn(&mut workers);
    }
    // Let the first connections open before the clock starts.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    for i in 0..n {
        let intended = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(intended.into()).await;
        let _ = tx.send((i, intended));
        // Grow the pool when the queue holds more than the idle connections take.
        let waiting = (i + 1).saturating_sub(pool.picked.load(Ordering::SeqCst));
        if waiting > pool.idle.load(Ordering::SeqCst) as u64 && workers.len() < a.max_connections {
            spawn(&mut workers);
        }
    }
    drop(tx);
    // The queue drains for at most one request deadline after the schedule;
    // what is still queued then is counted as unfinished.
    let timeout = Duration::from_millis(a.timeout_ms);
    let hard_end = Instant::now() + timeout;
    let stopper = {
        let pool = pool.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(hard_end.into()).await;
            pool.stop.store(true, Ordering::SeqCst);
        })
    };
    let connections = workers.len();
    let mut tally = Tally::default();
    for w in workers {
        match tokio::time::timeout_at((hard_end + timeout * 2).into(), w).await {
            Ok(Ok(t)) => tally.merge(t),
            _ => tally.unfinished += 1,
        }
    }
    stopper.abort();
    let taken = pool.picked.load(Ordering::SeqCst);
    tally.unfinished += n.saturating_sub(taken);
    (tally, start, connections)
}

async fn closed_loop(
    a: Arc<Args>,
    t: Arc<Template>,
    c: usize,
    n: u64,
    until: Option<Duration>,
) -> (Tally, Instant) {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = until.map(|d| start + d);
    let workers: Vec<_> = (0..c.max(1))
        .map(|_| {
            let (a, t, next) = (a.clone(), t.clone(), next.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut conn = Conn::new(&a.addr);
                let mut req = Vec::with_capacity(t.head.len() + t.tail.len() + 64);
                loop {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= n {
                        break;
                    }
                    one(&mut conn, &t, &a, i, Instant::now(), &mut req, &mut tally).await;
                }
                tally
            })
        })
        .collect();
    let mut tally = Tally::default();
    for w in workers {
        if let Ok(t) = w.await {
            tally.merge(t);
        }
    }
    (tally, start)
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn main() -> std::process::ExitCode {
    let a = Args::parse();
    let t = match Template::load(&a) {
        Ok(t) => Arc::new(t),
        Err(e) => {
            eprintln!("loadgen: {}: {e}", a.sample.display());
            return std::process::ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    let a = Arc::new(a);
    let until = a.seconds.map(Duration::from_secs_f64);
    let (mode, mut tally, start, connections, requests, offered) = match (a.rate, a.concurrency) {
        (Some(rate), _) if rate > 0.0 => {
            let n = match (a.count, until) {
                (Some(c), _) => c,
                (None, Some(d)) => (rate * d.as_secs_f64()).round() as u64,
                (None, None) => unreachable!("clap requires --seconds or --count"),
            };
            let (tally, start, conns) = rt.block_on(open_loop(a.clone(), t, rate, n));
            ("open", tally, start, conns, n, rate)
        }
        (None, Some(c)) => {
            let n = a.count.unwrap_or(u64::MAX);
            let (tally, start) = rt.block_on(closed_loop(a.clone(), t, c, n, until));
            let sent = tally.ok_us.len() as u64 + tally.non200 + tally.io_errors + tally.timeouts;
            ("closed", tally, start, c, sent, 0.0)
        }
        _ => {
            eprintln!("loadgen: --rate must be above 0");
            return std::process::ExitCode::from(2);
        }
    };
    tally.ok_us.sort_unstable();
    let ok = tally.ok_us.len() as u64;
    let elapsed = tally
        .last
        .map(|l| l.saturating_duration_since(start).as_secs_f64())
        .unwrap_or(0.0);
    let errors = tally.non200 + tally.io_errors + tally.timeouts + tally.unfinished;
    let line = serde_json::json!({
        "loadgen": mode,
        "offered_rate": offered,
        "requests": requests,
        "ok": ok,
        "errors": errors,
        "non200": tally.non200,
        "io_errors": tally.io_errors,
        "timeouts": tally.timeouts,
        "unfinished": tally.unfinished,
        "seconds": elapsed,
        "achieved_rate": if elapsed > 0.0 { ok as f64 / elapsed } else { 0.0 },
        "p50_ms": pct(&tally.ok_us, 50.0),
        "p90_ms": pct(&tally.ok_us, 90.0),
        "p99_ms": pct(&tally.ok_us, 99.0),
        "p999_ms": pct(&tally.ok_us, 99.9),
        "max_ms": tally.ok_us.last().map(|&u| u as f64 / 1000.0).unwrap_or(0.0),
        "connections": connections,
    });
    println!("{line}");
    std::process::ExitCode::SUCCESS
}
