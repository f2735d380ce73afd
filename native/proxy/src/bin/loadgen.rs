//! An open-loop load generator: `microloop-loadgen URL RATE SECONDS [BODY_FILE]` sends POSTs at a
//! fixed rate (each on its own schedule, so a slow answer never delays the next request) and
//! prints p50/p90/p99/max latency; RATE 0 means as fast as 64 connections go (maximum throughput).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 3 {
        eprintln!("usage: microloop-loadgen URL RATE SECONDS [BODY_FILE]");
        std::process::exit(2);
    }
    let (url, rate, secs) = (a[0].clone(), a[1].parse::<u64>().unwrap(), a[2].parse::<u64>().unwrap());
    let body = match a.get(3) {
        Some(f) => std::fs::read(f).expect("body file"),
        None => br#"{"model":"m","messages":[{"role":"user","content":"Is Santa real?"}],"stream":false}"#.to_vec(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    microloop_proxy::server::install_crypto();
    rt.block_on(async move {
        let client = reqwest::Client::builder().tcp_nodelay(true).pool_max_idle_per_host(1024).build().unwrap();
        let lat = Arc::new(Mutex::new(Vec::<u32>::new()));
        let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let start = Instant::now();
        let end = start + Duration::from_secs(secs);
        let one = {
            let (client, url, body, lat, errors) = (client.clone(), url.clone(), body.clone(), lat.clone(), errors.clone());
            move || {
                let (client, url, body, lat, errors) = (client.clone(), url.clone(), body.clone(), lat.clone(), errors.clone());
                async move {
                    let t = Instant::now();
                    let ok = match client.post(&url).header("content-type", "application/json").body(body).send().await {
                        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    if ok {
                        lat.lock().unwrap().push(t.elapsed().as_micros() as u32);
                    } else {
                        errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        };
        let mut tasks = Vec::new();
        match 1_000_000_000u64.checked_div(rate) {
            // Rate 0: 64 connections, each sending its next request when the last is answered.
            None => {
                for _ in 0..64 {
                    let one = one.clone();
                    tasks.push(tokio::spawn(async move {
                        while Instant::now() < end {
                            one().await;
                        }
                    }));
                }
            }
            // A request every `ns` nanoseconds, whatever the answers.
            Some(ns) => {
                let period = Duration::from_nanos(ns);
                let mut next = start;
                while next < end {
                    tokio::time::sleep_until(next.into()).await;
                    tasks.push(tokio::spawn(one()));
                    next += period;
                }
            }
        }
        for t in tasks {
            let _ = t.await;
        }
        let elapsed = start.elapsed().as_secs_f64();
        let mut v = lat.lock().unwrap().clone();
        v.sort_unstable();
        let p = |q: f64| if v.is_empty() { 0.0 } else { v[((v.len() - 1) as f64 * q) as usize] as f64 / 1000.0 };
        println!(
            "requests={} errors={} rps={:.0} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} max_ms={:.3}",
            v.len(),
            errors.load(std::sync::atomic::Ordering::Relaxed),
            v.len() as f64 / elapsed,
            p(0.5),
            p(0.9),
            p(0.99),
            p(1.0)
        );
    });
}
