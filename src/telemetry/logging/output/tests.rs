use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::Output;

/// A stdout whose bytes the test reads; `stuck` holds every write until
/// it is cleared, as a full pipe would.
#[derive(Clone, Default)]
struct Stdout {
    bytes: Arc<Mutex<Vec<u8>>>,
    stuck: Arc<(Mutex<bool>, Condvar)>,
    fail: bool,
}

impl Stdout {
    fn text(&self) -> String {
        String::from_utf8(self.bytes.lock().expect("bytes").clone()).expect("utf-8")
    }
    fn set_stuck(&self, stuck: bool) {
        *self.stuck.0.lock().expect("stuck") = stuck;
        self.stuck.1.notify_all();
    }
}

impl Write for Stdout {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let (lock, cv) = &*self.stuck;
        let mut stuck = lock.lock().expect("stuck");
        while *stuck {
            stuck = cv.wait(stuck).expect("stuck");
        }
        if self.fail {
            return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        }
        self.bytes.lock().expect("bytes").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A started output for the test's lifetime (the writer thread holds it
/// to the process's end, as in the bridge).
fn started(stdout: &Stdout, interval: Duration) -> &'static Output {
    let output: &'static Output =
        Box::leak(Box::new(Output::new(Box::new(stdout.clone()), interval)));
    Output::start(output).expect("writer thread");
    output
}

/// Waits up to `limit` for `stdout` to hold `text`; how long it took.
fn wait_for(stdout: &Stdout, text: &str, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if stdout.text().contains(text) {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

#[test]
fn info_lines_are_written_together_in_order_within_the_interval() {
    let stdout = Stdout::default();
    let output = started(&stdout, Duration::from_millis(50));
    let lines: String = (0..1_000).map(|i| format!("line {i}\n")).collect();
    for line in lines.lines() {
        output.append(format!("{line}\n").as_bytes(), false);
    }
    assert!(
        wait_for(&stdout, "line 999\n", Duration::from_secs(5)).is_some(),
        "the lines were not written: {:?}",
        stdout.text().len()
    );
    assert_eq!(stdout.text(), lines);
    assert_eq!(output.dropped(), 0);
}

#[test]
fn an_info_line_waits_for_the_interval_and_a_warning_does_not() {
    let stdout = Stdout::default();
    let output = started(&stdout, Duration::from_secs(30));
    // Let the writer go idle first.
    std::thread::sleep(Duration::from_millis(50));
    output.append(b"an info line\n", false);
    assert_eq!(
        wait_for(&stdout, "an info line", Duration::from_millis(300)),
        None,
        "an info line was written before the interval"
    );
    output.append(b"a warning\n", true);
    let took = wait_for(&stdout, "a warning", Duration::from_secs(5));
    assert!(took.is_some(), "a warning waited for the 30 s interval");
    // Order holds: the info line went out with it, first.
    assert_eq!(stdout.text(), "an info line\na warning\n");
}

#[test]
fn flush_writes_what_is_pending_at_once() {
    let stdout = Stdout::default();
    let output = started(&stdout, Duration::from_secs(30));
    output.append(b"the last line before exit\n", false);
    output.flush();
    assert_eq!(stdout.text(), "the last line before exit\n");
}

#[test]
fn a_stuck_stdout_drops_lines_and_counts_them_instead_of_holding_a_delivery() {
    let stdout = Stdout::default();
    stdout.set_stuck(true);
    let output = started(&stdout, Duration::from_millis(1));
    let line = [b'x'; 1023]
        .iter()
        .copied()
        .chain([b'\n'])
        .collect::<Vec<u8>>();
    let lines = Output::MAX_PENDING_BYTES / line.len() * 3;
    let start = Instant::now();
    for _ in 0..lines {
        output.append(&line, false);
    }
    // Appending never waited for the stuck stdout.
    assert!(start.elapsed() < Duration::from_secs(10));
    let dropped = output.dropped();
    assert!(
        dropped as usize >= lines / 3,
        "{dropped} of {lines} lines dropped while stdout was stuck"
    );
    stdout.set_stuck(false);
    // What was kept is written once stdout moves again, whole lines only.
    let kept = lines - dropped as usize;
    let start = Instant::now();
    while stdout.text().len() < kept * line.len() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(stdout.text().len(), kept * line.len());
}

#[test]
fn lines_stdout_refused_are_counted_as_dropped() {
    let stdout = Stdout {
        fail: true,
        ..Stdout::default()
    };
    let output = started(&stdout, Duration::from_secs(30));
    output.append(b"one\ntwo\n", false);
    output.append(b"three\n", false);
    output.flush();
    assert_eq!(output.dropped(), 3);
}

/// Before, `flush` waited for the writer's own write without end: a
/// stdout stuck in that write hung the exit and any panic.
#[test]
fn flush_gives_up_on_a_stdout_stuck_in_a_write_and_counts_what_it_held() {
    let stdout = Stdout::default();
    stdout.set_stuck(true);
    let output = started(&stdout, Duration::from_millis(1));
    output.append(b"taken by the writer, stuck in its write\n", true);
    // Let the writer take that line and block in its write.
    std::thread::sleep(Duration::from_millis(100));
    output.append(b"pending at exit\n", false);
    let start = Instant::now();
    output.flush();
    let took = start.elapsed();
    assert!(
        took >= Output::FLUSH_WAIT && took < Output::FLUSH_WAIT * 5,
        "flush took {took:?}"
    );
    assert_eq!(
        output.dropped(),
        1,
        "the pending line is counted as dropped"
    );
    stdout.set_stuck(false);
}
