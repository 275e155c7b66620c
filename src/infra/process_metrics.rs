//! Process metrics read from `/proc/self` (Linux): memory, CPU, file descriptors, threads.

use std::sync::OnceLock;

static START: OnceLock<f64> = OnceLock::new();

fn clock_ticks() -> f64 {
    // Linux reports times in USER_HZ, which is 100 on every supported architecture.
    100.0
}

fn page_size() -> f64 {
    4096.0
}

/// Updates the `process_*` metrics. Silently does nothing where `/proc` is unavailable.
pub fn collect() {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name, which is in parentheses and may contain spaces.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    // Indices relative to field 3 (state): utime=14, stime=15, num_threads=20, starttime=22, vsize=23, rss=24.
    let utime = num(14 - 3);
    let stime = num(15 - 3);
    let threads = num(20 - 3);
    let starttime = num(22 - 3);
    let vsize = num(23 - 3);
    let rss = num(24 - 3);
    metrics::counter!("process_cpu_seconds_total").absolute(((utime + stime) / clock_ticks()) as u64);
    metrics::gauge!("process_threads").set(threads);
    metrics::gauge!("process_virtual_memory_bytes").set(vsize);
    metrics::gauge!("process_resident_memory_bytes").set(rss * page_size());
    let start = *START.get_or_init(|| {
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<f64>().ok())))
            .unwrap_or(0.0);
        boot + starttime / clock_ticks()
    });
    metrics::gauge!("process_start_time_seconds").set(start);
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!("process_open_fds").set(dir.count() as f64);
    }
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits")
        && let Some(line) = limits.lines().find(|l| l.starts_with("Max open files"))
        && let Some(v) = line.split_whitespace().nth(3).and_then(|s| s.parse::<f64>().ok())
    {
        metrics::gauge!("process_max_fds").set(v);
    }
}

/// Resident memory of this process in bytes (for logs and benchmarks).
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .map_or(0, |pages| pages * page_size() as u64)
}
