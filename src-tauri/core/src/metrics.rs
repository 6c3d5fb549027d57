//! A small Prometheus registry: counters, gauges and histograms with labels, rendered in the
//! text exposition format for `GET /metrics`.
//!
//! Hand-written rather than a metrics framework because Stagehand needs a few dozen series and
//! every idle megabyte counts; series are keyed by name and sorted labels.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

/// Latency buckets in seconds (1 ms to 10 s).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

type Labels = Vec<(String, String)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Debug)]
struct Family {
    help: &'static str,
    kind: Kind,
    values: BTreeMap<Labels, f64>,
    histograms: BTreeMap<Labels, Histogram>,
}

/// The registry; a cheap handle, clones share it.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    families: Arc<Mutex<BTreeMap<&'static str, Family>>>,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    let mut v: Labels = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    v.sort();
    v
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render_labels(labels: &Labels, extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_family(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        f: impl FnOnce(&mut Family),
    ) {
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let family = families.entry(name).or_insert_with(|| Family {
            help,
            kind,
            values: BTreeMap::new(),
            histograms: BTreeMap::new(),
        });
        if family.kind == kind {
            f(family);
        } else {
            tracing::error!(metric = name, "metric used with two different kinds");
        }
    }

    /// Adds `by` to a counter.
    pub fn counter_add(
        &self,
        name: &'static str,
        help: &'static str,
        pairs: &[(&str, &str)],
        by: u64,
    ) {
        self.with_family(name, help, Kind::Counter, |f| {
            *f.values.entry(labels(pairs)).or_insert(0.0) += by as f64;
        });
    }

    /// Sets a gauge.
    pub fn gauge_set(
        &self,
        name: &'static str,
        help: &'static str,
        pairs: &[(&str, &str)],
        value: f64,
    ) {
        self.with_family(name, help, Kind::Gauge, |f| {
            f.values.insert(labels(pairs), value);
        });
    }

    /// Records one observation (in seconds for latencies) in a histogram.
    pub fn observe(
        &self,
        name: &'static str,
        help: &'static str,
        pairs: &[(&str, &str)],
        value: f64,
    ) {
        self.with_family(name, help, Kind::Histogram, |f| {
            let h = f
                .histograms
                .entry(labels(pairs))
                .or_insert_with(|| Histogram {
                    counts: vec![0; LATENCY_BUCKETS.len()],
                    ..Histogram::default()
                });
            for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                if value <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.sum += value;
            h.count += 1;
        });
    }

    /// The current value of a counter or gauge series (for tests and the UI).
    pub fn value(&self, name: &str, pairs: &[(&str, &str)]) -> Option<f64> {
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        families.get(name)?.values.get(&labels(pairs)).copied()
    }

    /// Everything, in the Prometheus text format.
    pub fn render(&self) -> String {
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for (name, family) in families.iter() {
            let kind = match family.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            let _ = writeln!(out, "# HELP {name} {}", family.help);
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in &family.values {
                let _ = writeln!(out, "{name}{} {value}", render_labels(labels, None));
            }
            for (labels, h) in &family.histograms {
                for (bound, count) in LATENCY_BUCKETS.iter().zip(&h.counts) {
                    let _ = writeln!(
                        out,
                        "{name}_bucket{} {count}",
                        render_labels(labels, Some(("le", bound.to_string())))
                    );
                }
                let _ = writeln!(
                    out,
                    "{name}_bucket{} {}",
                    render_labels(labels, Some(("le", "+Inf".into()))),
                    h.count
                );
                let _ = writeln!(out, "{name}_sum{} {}", render_labels(labels, None), h.sum);
                let _ = writeln!(
                    out,
                    "{name}_count{} {}",
                    render_labels(labels, None),
                    h.count
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_cumulative_histograms() {
        let m = Metrics::new();
        m.counter_add(
            "req_total",
            "Requests.",
            &[("route", "/a"), ("status", "200")],
            2,
        );
        m.gauge_set("up", "Up.", &[], 1.0);
        m.observe("lat_seconds", "Latency.", &[("route", "/a")], 0.003);
        m.observe("lat_seconds", "Latency.", &[("route", "/a")], 0.2);
        let text = m.render();
        assert!(text.contains("# TYPE req_total counter"), "{text}");
        assert!(
            text.contains("req_total{route=\"/a\",status=\"200\"} 2"),
            "{text}"
        );
        assert!(text.contains("up 1"), "{text}");
        assert!(
            text.contains("lat_seconds_bucket{route=\"/a\",le=\"0.001\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("lat_seconds_bucket{route=\"/a\",le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("lat_seconds_bucket{route=\"/a\",le=\"+Inf\"} 2"),
            "{text}"
        );
        assert!(text.contains("lat_seconds_count{route=\"/a\"} 2"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.counter_add("c", "C.", &[("path", "a\"b\\c")], 1);
        assert!(m.render().contains(r#"c{path="a\"b\\c"} 1"#));
    }
}
