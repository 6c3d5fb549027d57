//! The names and origins this server answers to, and the throttle on logging refusals: the
//! data the guard (`guard`) checks requests against, built once when the server binds.

/// The names and origins this server answers to.
#[derive(Debug, Clone)]
pub struct Allowed {
    hosts: Vec<String>,
    origins: Vec<String>,
    /// Whether a browser write with no Origin at all is refused.
    pub(crate) strict_origin: bool,
}

impl Allowed {
    /// Builds the allow lists for a server on `port`.
    pub fn new(port: u16, extra_hosts: &[String], extra_origins: &[String], strict: bool) -> Self {
        let mut hosts: Vec<String> = ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .map(|h| format!("{h}:{port}"))
            .collect();
        for h in extra_hosts {
            let h = h.trim().to_ascii_lowercase();
            if h.is_empty() {
                continue;
            }
            if !h.contains(':') || h.ends_with(']') {
                hosts.push(format!("{h}:{port}"));
            }
            hosts.push(h);
        }
        let mut origins: Vec<String> = hosts.iter().map(|h| format!("http://{h}")).collect();
        origins.extend(
            extra_origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .filter(|o| !o.is_empty()),
        );
        Self {
            hosts,
            origins,
            strict_origin: strict,
        }
    }

    /// Whether `host` (the Host header value) is ours.
    pub fn host_ok(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.hosts.contains(&host)
    }

    /// Whether `origin` (the Origin header value) is ours or configured.
    pub fn origin_ok(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        self.origins.contains(&origin)
    }
}

/// Lets one refusal a minute reach the log: a hostile page can send thousands, and each would
/// otherwise be a line on disk.
#[derive(Debug, Default)]
pub struct RefusalLog(std::sync::atomic::AtomicI64);

impl RefusalLog {
    /// Whether to log a refusal at `now_ms`.
    pub fn allow(&self, now_ms: i64) -> bool {
        use std::sync::atomic::Ordering;
        let last = self.0.load(Ordering::Relaxed);
        (last == 0 || now_ms - last >= 60_000)
            && self
                .0
                .compare_exchange(last, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_names_with_our_port_only() {
        let a = Allowed::new(7420, &["Stream.LAN".into()], &[], false);
        assert!(a.host_ok("127.0.0.1:7420"));
        assert!(a.host_ok("LOCALHOST:7420"));
        assert!(a.host_ok("[::1]:7420"));
        assert!(a.host_ok("stream.lan:7420"));
        assert!(a.host_ok("stream.lan"));
        assert!(
            !a.host_ok("127.0.0.1:7421"),
            "another port is another server"
        );
        assert!(!a.host_ok("evil.example"));
        assert!(!a.host_ok("127.0.0.1.evil.example:7420"));
    }

    #[test]
    fn origins_are_ours_or_configured() {
        let a = Allowed::new(7420, &[], &["https://Panel.example/".into()], false);
        assert!(a.origin_ok("http://127.0.0.1:7420"));
        assert!(a.origin_ok("http://localhost:7420/"));
        assert!(a.origin_ok("https://panel.example"));
        assert!(!a.origin_ok("null"));
        assert!(!a.origin_ok("http://evil.example"));
        assert!(!a.origin_ok("http://127.0.0.1:7420.evil.example"));
    }
}
