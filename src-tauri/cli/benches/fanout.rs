//! Alert fan-out benchmark: `POST /api/alerts` to receipt on every connected overlay socket.
//!
//! Run: `cargo bench -p stagehand --bench fanout` (release build; needs `ulimit -n` ≥ 2200 for
//! the 1,000-socket round, since this process and the server each hold one descriptor per
//! socket). It starts the real `stagehand serve`, creates an overlay, connects 1, 100 and 1,000
//! overlay sockets with the signed link, then:
//! - latency: sends alerts one at a time and times each from just before the POST to the moment
//!   the last socket has it (p50/p99), plus the per-socket receipt times;
//! - throughput: sends alerts back to back (8 in flight) and counts deliveries per second;
//! - memory: the server's RSS after the sockets connect, minus its RSS before, per socket.
//!
//! Receipt is the kernel's: each socket is read with `recvmsg` and `SO_TIMESTAMPNS`, which
//! stamps the moment the bytes reached that socket. That is what the server controls. With one
//! bench thread reading 1,000 sockets, the time it takes to get round to the last of them is the
//! bench's own (about 15 µs of CPU a socket), so it is printed separately as "read by bench".
//!
//! Targets (issue 3): p99 under 2 ms with 100 sockets and under 16 ms with 1,000; under 50 KB
//! per socket.

#![allow(missing_docs)]
#![allow(clippy::unwrap_used)]

#[cfg(target_os = "linux")]
mod common;

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the fanout bench reads kernel receive timestamps (SO_TIMESTAMPNS): Linux only");
}

#[cfg(target_os = "linux")]
#[tokio::main(flavor = "current_thread")]
async fn main() {
    linux::run().await;
}

#[cfg(target_os = "linux")]
mod linux {
    use std::sync::Arc;
    use std::time::{Duration, Instant, SystemTime};

    use tokio::sync::mpsc;

    use super::common;
    use common::pct;

    /// A minimal WebSocket client for overlay sockets, read with `recvmsg` so that each read
    /// carries the kernel's receive timestamp.
    mod raw_page {
        use std::io::{self, Read, Write};
        use std::net::TcpStream;
        use std::os::fd::AsRawFd;
        use std::time::{Duration, Instant, SystemTime};

        use nix::sys::socket::{
            ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt::ReceiveTimestampns,
        };
        use tokio::io::Interest;

        /// What one socket saw.
        pub enum Seen {
            /// The page's first `scene.full`.
            Ready,
            /// The alert whose message is `seq`: the kernel's time for it and when this bench read it.
            Alert {
                seq: u64,
                kernel: SystemTime,
                read: Instant,
            },
        }

        /// Opens `path` (the overlay socket with its signed query) on `port` and completes the
        /// handshake with plain blocking reads, one byte at a time so nothing after the headers is
        /// consumed.
        pub fn connect(port: u16, path: &str) -> tokio::net::TcpStream {
            let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
            socket.set_nodelay(true).unwrap();
            write!(
                socket,
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                 Sec-WebSocket-Version: 13\r\n\r\n"
            )
            .unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                socket.read_exact(&mut byte).unwrap();
                head.push(byte[0]);
            }
            assert!(
                head.starts_with(b"HTTP/1.1 101"),
                "{}",
                String::from_utf8_lossy(&head)
            );
            setsockopt(&socket, ReceiveTimestampns, &true).unwrap();
            socket.set_nonblocking(true).unwrap();
            tokio::net::TcpStream::from_std(socket).unwrap()
        }

        /// Reads frames until the socket ends, passing what it sees to `seen`. Answers pings.
        pub async fn read(socket: tokio::net::TcpStream, mut seen: impl FnMut(Seen)) {
            let mut buffer = Vec::with_capacity(64 * 1024);
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                if socket.readable().await.is_err() {
                    return;
                }
                let got = socket.try_io(Interest::READABLE, || {
                    let mut space = nix::cmsg_space!(nix::sys::time::TimeSpec);
                    let mut iov = [io::IoSliceMut::new(&mut chunk)];
                    let message = recvmsg::<()>(
                        socket.as_raw_fd(),
                        &mut iov,
                        Some(&mut space),
                        MsgFlags::empty(),
                    )
                    .map_err(io::Error::from)?;
                    let mut kernel = None;
                    for cmsg in message.cmsgs().map_err(io::Error::from)? {
                        if let ControlMessageOwned::ScmTimestampns(ts) = cmsg {
                            kernel = Some(
                                SystemTime::UNIX_EPOCH
                                    + Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32),
                            );
                        }
                    }
                    Ok((message.bytes, kernel))
                });
                let (n, kernel) = match got {
                    Ok((0, _)) => return,
                    Ok(read) => read,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(_) => return,
                };
                let read = Instant::now();
                buffer.extend_from_slice(&chunk[..n]);
                while let Some((opcode, payload, used)) = frame(&buffer) {
                    match opcode {
                        0x1 => {
                            let text = std::str::from_utf8(payload).unwrap_or_default();
                            if text.contains("\"scene.full\"") {
                                seen(Seen::Ready);
                            } else if let Some(rest) = text.split("\"message\":\"").nth(1) {
                                let seq = rest
                                    .split('"')
                                    .next()
                                    .and_then(|m| m.parse().ok())
                                    .unwrap_or(0);
                                let kernel =
                                    kernel.expect("SO_TIMESTAMPNS gives every read a time");
                                seen(Seen::Alert { seq, kernel, read });
                            }
                        }
                        0x8 => return,
                        0x9 => {
                            // A masked pong (mask key 0) carrying the ping's payload.
                            let mut pong = vec![0x8A, 0x80 | payload.len() as u8, 0, 0, 0, 0];
                            pong.extend_from_slice(payload);
                            let _ = socket.try_write(&pong);
                        }
                        _ => {}
                    }
                    buffer.drain(..used);
                }
            }
        }

        /// The first complete server frame in `buffer`: opcode, payload, bytes used. Server frames
        /// are never masked.
        fn frame(buffer: &[u8]) -> Option<(u8, &[u8], usize)> {
            let (&first, &second) = (buffer.first()?, buffer.get(1)?);
            let (length, header) = match second & 0x7F {
                126 => (
                    u16::from_be_bytes(buffer.get(2..4)?.try_into().ok()?) as usize,
                    4,
                ),
                127 => (
                    u64::from_be_bytes(buffer.get(2..10)?.try_into().ok()?) as usize,
                    10,
                ),
                short => (short as usize, 2),
            };
            let payload = buffer.get(header..header + length)?;
            Some((first & 0x0F, payload, header + length))
        }
    }

    fn rss_kib(pid: u32) -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }

    /// A process's user + system CPU time so far, in ms (from /proc, 100 Hz ticks).
    fn cpu_ms(pid: u32) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name (which is in parentheses and may hold spaces).
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (ticks(11) + ticks(12)) * 10.0
    }

    struct Round {
        sockets: usize,
        all_p50: f64,
        all_p99: f64,
        each_p50: f64,
        each_p99: f64,
        read_p50: f64,
        read_p99: f64,
        per_second: f64,
        kib_per_socket: f64,
        server_cpu_ms_per_alert: f64,
        client_cpu_ms_per_alert: f64,
    }

    /// One alert as a socket saw it: its sequence number, the kernel's time, the bench's read.
    type Receipt = (u64, SystemTime, Instant);

    async fn round(
        client: &reqwest::Client,
        base: &str,
        token: &str,
        overlay: &str,
        (port, path): (u16, &str),
        pid: u32,
        sockets: usize,
    ) -> Round {
        let before = rss_kib(pid);
        let (tx, mut rx) = mpsc::unbounded_channel::<Receipt>();
        let mut tasks = Vec::new();
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
        for _ in 0..sockets {
            let socket = raw_page::connect(port, path);
            let tx = tx.clone();
            let ready = ready_tx.clone();
            tasks.push(tokio::spawn(raw_page::read(
                socket,
                move |seen| match seen {
                    raw_page::Seen::Ready => {
                        let _ = ready.send(());
                    }
                    raw_page::Seen::Alert { seq, kernel, read } => {
                        let _ = tx.send((seq, kernel, read));
                    }
                },
            )));
        }
        for _ in 0..sockets {
            ready_rx.recv().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(500)).await; // settle before reading RSS
        let after = rss_kib(pid);

        let send = |seq: u64| {
            client
                .post(format!("{base}/api/alerts"))
                .header("x-streamer-token", token)
                .json(&serde_json::json!({ "overlayId": overlay, "kind": "bench", "title": "bench", "message": seq.to_string() }))
                .send()
        };

        // Latency: one alert at a time.
        let alerts = if sockets >= 1000 { 200 } else { 300 };
        let (mut all, mut each, mut read_all) = (Vec::new(), Vec::new(), Vec::new());
        let cpu_before = cpu_ms(pid);
        let client_cpu_before = cpu_ms(std::process::id());
        for seq in 1..=alerts {
            let (t0, t0_wall) = (Instant::now(), SystemTime::now());
            let response = send(seq).await.unwrap();
            assert_eq!(response.status(), 202);
            let (mut last, mut last_read) = (Duration::ZERO, Duration::ZERO);
            for _ in 0..sockets {
                let (s, kernel, read) = rx.recv().await.unwrap();
                assert_eq!(s, seq, "one alert at a time");
                let took = kernel.duration_since(t0_wall).unwrap_or_default();
                each.push(took);
                last = last.max(took);
                last_read = last_read.max(read - t0);
            }
            all.push(last);
            read_all.push(last_read);
        }
        let server_cpu_ms_per_alert = (cpu_ms(pid) - cpu_before) / alerts as f64;
        let client_cpu_ms_per_alert =
            (cpu_ms(std::process::id()) - client_cpu_before) / alerts as f64;
        all.sort();
        each.sort();
        read_all.sort();

        // Throughput: back to back, 8 requests in flight.
        let burst = if sockets >= 1000 { 200 } else { 1000 };
        let base_seq = 1_000_000;
        let started = Instant::now();
        let sender = {
            let client = client.clone();
            let base = base.to_owned();
            let token = token.to_owned();
            let overlay = overlay.to_owned();
            tokio::spawn(async move {
                let sem = Arc::new(tokio::sync::Semaphore::new(8));
                let mut handles = Vec::new();
                for i in 0..burst {
                    let permit = Arc::clone(&sem).acquire_owned().await.unwrap();
                    let request = client
                        .post(format!("{base}/api/alerts"))
                        .header("x-streamer-token", &token)
                        .json(&serde_json::json!({ "overlayId": overlay, "kind": "bench", "title": "bench", "message": (base_seq + i).to_string() }));
                    handles.push(tokio::spawn(async move {
                        let r = request.send().await.unwrap();
                        assert_eq!(r.status(), 202);
                        drop(permit);
                    }));
                }
                for h in handles {
                    h.await.unwrap();
                }
            })
        };
        let mut delivered = 0u64;
        let expected = burst * sockets as u64;
        while delivered < expected {
            rx.recv().await.unwrap();
            delivered += 1;
        }
        let elapsed = started.elapsed();
        sender.await.unwrap();
        for t in tasks {
            t.abort();
        }

        Round {
            sockets,
            all_p50: pct(&all, 0.5),
            all_p99: pct(&all, 0.99),
            each_p50: pct(&each, 0.5),
            each_p99: pct(&each, 0.99),
            read_p50: pct(&read_all, 0.5),
            read_p99: pct(&read_all, 0.99),
            per_second: delivered as f64 / elapsed.as_secs_f64(),
            kib_per_socket: after.saturating_sub(before) as f64 / sockets as f64,
            server_cpu_ms_per_alert,
            client_cpu_ms_per_alert,
        }
    }

    pub async fn run() {
        let served = common::Served::start(&[]);
        let (base, token) = (served.base.clone(), served.token.clone());
        let client = reqwest::Client::new();
        let overlay = common::create_overlay(&client, &base, &token, "bench").await;
        let id = overlay["overlayId"].as_str().unwrap().to_owned();
        let signed = overlay["signedUrl"].as_str().unwrap();
        let path = signed
            .split_once("/o/")
            .map(|(_, rest)| format!("/ws/overlay/{rest}"))
            .unwrap();

        println!("alert fan-out, POST /api/alerts -> overlay sockets (release, loopback)");
        println!(
            "{:>7} | {:>9} {:>9} | {:>9} {:>9} | {:>9} {:>9} | {:>12} {:>9} | {:>10} {:>10}",
            "sockets",
            "all p50",
            "all p99",
            "each p50",
            "each p99",
            "read p50",
            "read p99",
            "deliveries/s",
            "KB/socket",
            "server CPU",
            "bench CPU"
        );
        println!(
            "{:>7} | {:>19} | {:>19} | {:>19} | {:>22} | {:>21}",
            "", "kernel receipt, ms", "kernel receipt, ms", "read by bench, ms", "", "ms per alert"
        );
        for sockets in [1, 100, 1000] {
            let r = round(
                &client,
                &base,
                &token,
                &id,
                (served.port, &path),
                served.pid(),
                sockets,
            )
            .await;
            println!(
                "{:>7} | {:>9.3} {:>9.3} | {:>9.3} {:>9.3} | {:>9.3} {:>9.3} | {:>12.0} {:>9.1} | {:>10.2} {:>10.2}",
                r.sockets,
                r.all_p50,
                r.all_p99,
                r.each_p50,
                r.each_p99,
                r.read_p50,
                r.read_p99,
                r.per_second,
                r.kib_per_socket * 1.024,
                r.server_cpu_ms_per_alert,
                r.client_cpu_ms_per_alert
            );
        }
    }
}
