//! The HTTP load generator of `scripts/bench.sh` (issue #12), for what wrk
//! cannot do.
//!
//! **Open loop** (`--rate R`): POPBiLL does not wait for one answer before
//! sending the next delivery, so request `i` is due at `start + i / R`
//! whatever the answers before it did. Latency is measured from that
//! *intended* time, not from the moment a connection was free to send it:
//! a stall of the server shows as the queueing delay its senders would
//! really see (coordinated omission corrected). Keep-alive connections come
//! from a pool sized to need: it starts with what the rate needs at 10 ms a
//! request (Little's law, at least 8), and a due request that finds no idle
//! connection waits for the first one to free up while another is opened
//! (at most `--max-connections`, at most `--max-connecting` at once, so a
//! stall does not become a flood of new connections). tokio's timer has
//! 1 ms granularity: requests due within the same millisecond leave
//! together, but each is still timed from its own intended time.
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
//! errors (non-200 answers by status), offered and achieved rate (200
//! answers over the time to the last answer), p50/p90/p99/p99.9/max in ms
//! of the 200 answers, the connections used, and in open loop how late the
//! generator itself handed requests out (`schedule_lag_*`: when that is
//! more than a millisecond or two, the generator was starved of CPU and the
//! figures say as much about the machine as about the server).
//!
//!   cargo run --release -p popbill-bridge-tools --bin loadgen -- --addr 127.0.0.1:18080 \
//!     --sample /tmp/sample --rate 5000 --seconds 20 --mid-prefix run1
//!
//! Loopback only, and bounded: it stops by itself after `--seconds` or `--count`.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

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
    /// Open loop: connections opened before the first request (0: the
    /// rate's need at 10 ms a request, at least 8).
    #[arg(long, default_value_t = 0)]
    initial_connections: usize,
    /// Open loop: connections being opened at once, at most.
    #[arg(long, default_value_t = 16)]
    max_connecting: usize,
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
    /// The non-200 answers by status.
    statuses: std::collections::BTreeMap<u16, u64>,
    io_errors: u64,
    timeouts: u64,
    unfinished: u64,
    /// When the last answer came.
    last: Option<Instant>,
    /// Open loop: the dispatcher's lateness per request, µs, sorted.
    lag_us: Vec<u32>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.ok_us.extend(o.ok_us);
        self.non200 += o.non200;
        for (status, n) in o.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
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
        Ok(Ok(status)) => {
            tally.non200 += 1;
            *tally.statuses.entry(status).or_default() += 1;
        }
        Ok(Err(_)) => tally.io_errors += 1,
        Err(_) => {
            conn.stream = None; // the answer may still come: not on this socket
            tally.timeouts += 1;
        }
    }
}

/// A request of the open-loop schedule: its number and when it was due.
struct Job {
    n: u64,
    intended: Instant,
}

/// One connection of the open-loop pool: connects, says it is free, then
/// takes jobs one at a time and says when it is free again.
async fn open_worker(
    id: usize,
    mut jobs: mpsc::Receiver<Job>,
    free: mpsc::UnboundedSender<usize>,
    t: Arc<Template>,
    a: Arc<Args>,
) -> Tally {
    let mut tally = Tally::default();
    let mut conn = Conn::new(&a.addr);
    let _ = conn.connect().await; // on failure, retried with the first job
    let mut req = Vec::with_capacity(t.head.len() + t.tail.len() + 64);
    if free.send(id).is_err() {
        return tally;
    }
    while let Some(job) = jobs.recv().await {
        one(&mut conn, &t, &a, job.n, job.intended, &mut req, &mut tally).await;
        if free.send(id).is_err() {
            break;
        }
    }
    tally
}

/// The pool, held by the dispatcher alone. A due request goes to an idle
/// connection, else waits in the backlog for the first one that frees up;
/// while the backlog is longer than the connections being opened, one more
/// is opened (at most --max-connections, at most --max-connecting at once,
/// so a stall does not turn into a flood of SYNs).
struct Pool {
    senders: Vec<mpsc::Sender<Job>>,
    workers: Vec<tokio::task::JoinHandle<Tally>>,
    /// Whether each worker has reported once (its connect is over).
    ready: Vec<bool>,
    connecting: usize,
    idle: Vec<usize>,
    backlog: std::collections::VecDeque<Job>,
    free: mpsc::UnboundedSender<usize>,
}

impl Pool {
    fn spawn(&mut self, t: &Arc<Template>, a: &Arc<Args>) {
        let id = self.senders.len();
        let (tx, rx) = mpsc::channel(1);
        self.senders.push(tx);
        self.ready.push(false);
        self.connecting += 1;
        let w = open_worker(id, rx, self.free.clone(), t.clone(), a.clone());
        self.workers.push(tokio::spawn(w));
    }

    fn assign(&mut self, job: Job, t: &Arc<Template>, a: &Arc<Args>) {
        match self.idle.pop() {
            // An idle worker's channel is empty: this cannot fail.
            Some(id) => drop(self.senders[id].try_send(job)),
            None => {
                self.backlog.push_back(job);
                if self.backlog.len() > self.connecting
                    && self.connecting < a.max_connecting.max(1)
                    && self.senders.len() < a.max_connections
                {
                    self.spawn(t, a);
                }
            }
        }
    }

    /// Worker `id` is free: the oldest waiting job, or the idle stack.
    fn freed(&mut self, id: usize) {
        if !std::mem::replace(&mut self.ready[id], true) {
            self.connecting -= 1;
        }
        match self.backlog.pop_front() {
            Some(job) => drop(self.senders[id].try_send(job)),
            None => self.idle.push(id),
        }
    }
}

async fn open_loop(a: Arc<Args>, t: Arc<Template>, rate: f64, n: u64) -> (Tally, Instant, usize) {
    let (free, mut freed) = mpsc::unbounded_channel();
    let mut pool = Pool {
        senders: Vec::new(),
        workers: Vec::new(),
        ready: Vec::new(),
        connecting: 0,
        idle: Vec::new(),
        backlog: Default::default(),
        free,
    };
    // Before the clock starts: the connections the rate needs at 10 ms a
    // request (Little's law), at least 8, all connected.
    let initial = match a.initial_connections {
        0 => ((rate * 0.010).ceil() as usize).max(8),
        n => n,
    };
    for _ in 0..initial.min(a.max_connections) {
        pool.spawn(&t, &a);
    }
    let settle = Instant::now() + Duration::from_secs(5);
    while pool.connecting > 0 {
        match tokio::time::timeout_at(settle.into(), freed.recv()).await {
            Ok(Some(id)) => pool.freed(id),
            _ => break,
        }
    }
    let start = Instant::now();
    let due = |i: u64| start + Duration::from_secs_f64(i as f64 / rate);
    let timeout = Duration::from_millis(a.timeout_ms);
    // Past the schedule's end, the backlog drains for one request deadline;
    // what is still in it then is counted as unfinished.
    let hard_end = due(n) + timeout;
    let mut unfinished = 0;
    let mut i = 0u64;
    // How late the dispatcher handed each request out (µs): the generator's
    // own lag, apart from waiting for a free connection.
    let mut lag_us = Vec::with_capacity(n.min(1 << 24) as usize);
    loop {
        let now = Instant::now();
        while i < n && due(i) <= now {
            lag_us.push(
                now.saturating_duration_since(due(i))
                    .as_micros()
                    .min(u32::MAX as u128) as u32,
            );
            let job = Job {
                n: i,
                intended: due(i),
            };
            pool.assign(job, &t, &a);
            i += 1;
        }
        if i == n && pool.backlog.is_empty() && pool.idle.len() == pool.senders.len() {
            break;
        }
        let next = if i < n { due(i) } else { hard_end };
        tokio::select! {
            Some(id) = freed.recv() => pool.freed(id),
            _ = tokio::time::sleep_until(next.into()) => {
                if i == n {
                    unfinished = pool.backlog.len() as u64;
                    break;
                }
            }
        }
    }
    // Closing the channels ends each worker after its request in flight.
    let connections = pool.senders.len();
    pool.senders.clear();
    let mut tally = Tally::default();
    let bound = Instant::now() + timeout + Duration::from_secs(2);
    for w in pool.workers {
        match tokio::time::timeout_at(bound.into(), w).await {
            Ok(Ok(t)) => tally.merge(t),
            _ => tally.unfinished += 1,
        }
    }
    tally.unfinished += unfinished;
    lag_us.sort_unstable();
    tally.lag_us = lag_us;
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
        "non200_by_status": tally.statuses.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect::<serde_json::Map<_, _>>(),
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
        "schedule_lag_p99_ms": pct(&tally.lag_us, 99.0),
        "schedule_lag_max_ms": tally.lag_us.last().map(|&u| u as f64 / 1000.0).unwrap_or(0.0),
    });
    println!("{line}");
    std::process::ExitCode::SUCCESS
}
