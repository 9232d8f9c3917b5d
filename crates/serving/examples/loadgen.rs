//! A small HTTP/1.1 load generator for `cargo xtask bench serving`: N
//! keep-alive connections (one thread each) POST the same payload in a
//! closed loop for a fixed time; prints one JSON line with throughput and
//! latency percentiles. Standard library only.
//!
//! ```text
//! loadgen --url http://127.0.0.1:5000/endpoints/adult/invocations \
//!         --content-type text/csv --body rows.csv --connections 32 --seconds 10
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

struct Args {
    host: String,
    port: u16,
    path: String,
    content_type: String,
    body: Vec<u8>,
    connections: usize,
    seconds: f64,
    warmup: f64,
}

fn parse() -> Result<Args, String> {
    let mut url = None;
    let mut ct = "application/json".to_string();
    let mut body = None;
    let mut connections = 1;
    let mut seconds = 10.0;
    let mut warmup = 1.0;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--url" => url = Some(val()?),
            "--content-type" => ct = val()?,
            "--body" => {
                let p = val()?;
                body = Some(std::fs::read(&p).map_err(|e| format!("{p}: {e}"))?);
            }
            "--connections" => connections = val()?.parse().map_err(|_| "--connections N")?,
            "--seconds" => seconds = val()?.parse().map_err(|_| "--seconds S")?,
            "--warmup" => warmup = val()?.parse().map_err(|_| "--warmup S")?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let url = url.ok_or("--url is required")?;
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "80"));
    Ok(Args {
        host: host.to_string(),
        port: port.parse().map_err(|_| "bad port")?,
        path: format!("/{path}"),
        content_type: ct,
        body: body.ok_or("--body FILE is required")?,
        connections,
        seconds,
        warmup,
    })
}

/// Read one response; returns its status.
fn read_response(r: &mut BufReader<TcpStream>, line: &mut String) -> std::io::Result<u16> {
    line.clear();
    r.read_line(line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut len = None;
    let mut chunked = false;
    loop {
        line.clear();
        if r.read_line(line)? == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim();
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse::<usize>().ok();
            } else if k.eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
            {
                chunked = true;
            }
        }
    }
    let mut sink = [0u8; 8192];
    if chunked {
        loop {
            line.clear();
            r.read_line(line)?;
            let n = usize::from_str_radix(line.trim(), 16)
                .map_err(|_| std::io::Error::other("bad chunk size"))?;
            let mut left = n + 2; // data + CRLF
            while left > 0 {
                let k = r.read(&mut sink[..left.min(8192)])?;
                if k == 0 {
                    return Err(std::io::Error::other("connection closed"));
                }
                left -= k;
            }
            if n == 0 {
                break;
            }
        }
    } else {
        let mut left = len.unwrap_or(0);
        while left > 0 {
            let k = r.read(&mut sink[..left.min(8192)])?;
            if k == 0 {
                return Err(std::io::Error::other("connection closed"));
            }
            left -= k;
        }
    }
    Ok(status)
}

fn main() {
    let a = match parse() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    };
    let mut req = format!(
        "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
        a.path,
        a.host,
        a.port,
        a.content_type,
        a.body.len()
    )
    .into_bytes();
    req.extend_from_slice(&a.body);
    let req = Arc::new(req);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..a.connections)
        .map(|_| {
            let (a, req, measuring, stop) =
                (a.clone(), req.clone(), measuring.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut lat: Vec<u32> = Vec::with_capacity(1 << 16);
                let mut errors = 0u64;
                let connect = || -> std::io::Result<(TcpStream, BufReader<TcpStream>)> {
                    let s = TcpStream::connect((a.host.as_str(), a.port))?;
                    s.set_nodelay(true)?;
                    s.set_read_timeout(Some(Duration::from_secs(30)))?;
                    let r = BufReader::new(s.try_clone()?);
                    Ok((s, r))
                };
                let mut conn = connect().ok();
                let mut line = String::new();
                while !stop.load(Ordering::Relaxed) {
                    let Some((s, r)) = conn.as_mut() else {
                        errors += 1;
                        std::thread::sleep(Duration::from_millis(10));
                        conn = connect().ok();
                        continue;
                    };
                    let t = Instant::now();
                    let res = s.write_all(&req).and_then(|_| read_response(r, &mut line));
                    let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    let on = measuring.load(Ordering::Relaxed);
                    match res {
                        Ok(st) if (200..300).contains(&st) => {
                            if on {
                                lat.push(us);
                            }
                        }
                        Ok(_) => {
                            if on {
                                errors += 1;
                            }
                        }
                        Err(_) => {
                            if on {
                                errors += 1;
                            }
                            conn = connect().ok();
                        }
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(a.warmup));
    measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(a.seconds));
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<u32> = Vec::new();
    let mut errors = 0;
    for h in handles {
        if let Ok((l, e)) = h.join() {
            all.extend(l);
            errors += e;
        }
    }
    all.sort_unstable();
    let pct = |q: f64| -> f64 {
        if all.is_empty() {
            return f64::NAN;
        }
        let i = ((q * all.len() as f64).ceil() as usize).clamp(1, all.len()) - 1;
        all[i] as f64 / 1000.0
    };
    println!(
        "{{\"requests\":{},\"errors\":{},\"seconds\":{:.3},\"rps\":{:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
        all.len(),
        errors,
        elapsed,
        all.len() as f64 / elapsed,
        pct(0.5),
        pct(0.99)
    );
}
