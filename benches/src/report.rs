//! Results: one table per workload, a row per measurement, a column per engine, the median of the
//! rounds, and ratios oriented so that > 1 means the first engine (aedb) is better.

use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
    /// Context for the other rows (no ratio).
    Neither,
}

#[derive(Debug, Clone, Copy)]
pub enum Unit {
    /// Operations (or keys, entries) per second.
    PerSecond,
    /// Megabytes (10^6) per second.
    MegabytesPerSecond,
    Bytes,
    /// A plain number, such as a ratio of sizes.
    Plain,
    /// A whole number, with thousands separators.
    Count,
    /// Microseconds (latencies).
    Micros,
    /// Microseconds with two decimals (per-call API times).
    MicrosFine,
    Seconds,
}

pub struct Row {
    pub label: String,
    unit: Unit,
    better: Better,
    /// Per engine, one sample per round.
    samples: Vec<Vec<f64>>,
}

impl Row {
    pub fn record(&mut self, engine: usize, value: f64) {
        self.samples[engine].push(value);
    }

    fn median(&self, engine: usize) -> Option<f64> {
        median(&self.samples[engine])
    }

    /// Half the spread of the samples, relative to their median.
    fn spread(&self, engine: usize) -> Option<f64> {
        let samples = &self.samples[engine];
        let median = self.median(engine)?;
        let (min, max) = samples
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        (samples.len() > 1 && median > 0.0).then(|| (max - min) / 2.0 / median)
    }
}

pub struct Table {
    pub title: String,
    engines: Vec<String>,
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Table {
    pub fn new(title: impl Into<String>, engines: Vec<String>) -> Self {
        Table {
            title: title.into(),
            engines,
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Add a row and return its index for `record`.
    pub fn add_row(&mut self, label: impl Into<String>, unit: Unit, better: Better) -> usize {
        self.rows.push(Row {
            label: label.into(),
            unit,
            better,
            samples: vec![Vec::new(); self.engines.len()],
        });
        self.rows.len() - 1
    }

    pub fn record(&mut self, row: usize, engine: usize, value: f64) {
        self.rows[row].record(engine, value);
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "### {}\n", self.title);
        let reference = &self.engines[0];
        let mut header = String::from("| measure |");
        let mut rule = String::from("|---|");
        for engine in &self.engines {
            let _ = write!(header, " {engine} |");
            rule.push_str("---:|");
        }
        for other in &self.engines[1..] {
            let _ = write!(header, " {reference} vs {other} |");
            rule.push_str("---:|");
        }
        let _ = writeln!(out, "{header}\n{rule}");
        for row in &self.rows {
            let _ = write!(out, "| {} |", row.label);
            for engine in 0..self.engines.len() {
                let cell = match row.median(engine) {
                    Some(value) => format!(
                        "{}{}",
                        format_value(value, row.unit),
                        format_spread(row.spread(engine))
                    ),
                    None => "–".to_string(),
                };
                let _ = write!(out, " {cell} |");
            }
            for other in 1..self.engines.len() {
                let ratio = match (row.median(0), row.median(other)) {
                    (Some(ours), Some(theirs)) if ours > 0.0 && theirs > 0.0 => match row.better {
                        Better::Higher => format!("{:.2}×", ours / theirs),
                        Better::Lower => format!("{:.2}×", theirs / ours),
                        Better::Neither => "–".to_string(),
                    },
                    _ => "–".to_string(),
                };
                let _ = write!(out, " {ratio} |");
            }
            out.push('\n');
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }
}

pub fn median(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

fn format_spread(spread: Option<f64>) -> String {
    match spread {
        Some(s) if s >= 0.005 => format!(" ±{:.0}%", s * 100.0),
        _ => String::new(),
    }
}

fn format_value(value: f64, unit: Unit) -> String {
    match unit {
        Unit::PerSecond => format!("{}/s", si(value)),
        Unit::MegabytesPerSecond => format!("{value:.0} MB/s"),
        Unit::Bytes => format!("{:.1} MiB", value / (1u64 << 20) as f64),
        Unit::Plain => format!("{value:.2}"),
        Unit::Count => count(value.round() as usize),
        Unit::Micros => format!("{value:.0} µs"),
        Unit::MicrosFine if value >= 100.0 => format!("{value:.0} µs"),
        Unit::MicrosFine => format!("{value:.2} µs"),
        Unit::Seconds => format!("{value:.2} s"),
    }
}

/// 1234567 → "1,234,567": sizes in labels.
pub fn count(value: usize) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// 1234567 → "1.23 M".
pub fn si(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2} M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1} K", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn ratios_favour_the_first_engine_when_above_one() {
        let mut table = Table::new("t", vec!["aedb".into(), "peer".into()]);
        let speed = table.add_row("speed", Unit::PerSecond, Better::Higher);
        let size = table.add_row("size", Unit::Bytes, Better::Lower);
        table.record(speed, 0, 200.0);
        table.record(speed, 1, 100.0);
        table.record(size, 0, 100.0);
        table.record(size, 1, 300.0);
        let text = table.to_markdown();
        assert!(text.contains("| 2.00× |"), "{text}");
        assert!(text.contains("| 3.00× |"), "{text}");
    }
}
