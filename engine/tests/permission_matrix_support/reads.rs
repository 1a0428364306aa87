//! The caller-bearing reads: queries, KV reads and scans, accumulator and event reads.

use aedb::query::plan::Query;

use super::model::Need;
use super::ops::*;

fn query(b: &mut Builder, (p, s): (&str, &str), query: Query, needs: Vec<Need>) {
    let paths = [
        (QueryPath::WithOptions, "query"),
        (QueryPath::ReadTx, "query in read tx"),
        (QueryPath::Explain, "explain"),
    ];
    for (path, kind) in paths {
        // Explain is checked against the query's own table only; joins are left to the
        // reads that run them.
        if matches!(path, QueryPath::Explain) && !query.joins.is_empty() {
            continue;
        }
        let action = Action::Query {
            place: place(p, s),
            query: Box::new(query.clone()),
            path,
        };
        let joined: String = query
            .joins
            .iter()
            .map(|j| format!(" join {}", j.table))
            .collect();
        let label = format!("{kind} {p}.{s}.{}{joined}", query.table);
        b.push(kind, label, needs.clone(), action);
    }
}

pub(super) fn read_ops(b: &mut Builder) {
    for (p, s, t) in TABLE_PLACES {
        let q = Query::select(&["*"]).from(t).limit(100);
        query(b, (p, s), q, vec![table_read(p, s, t)]);
    }
    // A join needs reading every table it names.
    for (p, s) in [("p0", "s0"), ("p0", "s1")] {
        let q = Query::select(&["*"])
            .from("t0")
            .inner_join("t1", "t0.id", "t1.id")
            .limit(100);
        query(
            b,
            (p, s),
            q,
            vec![table_read(p, s, "t0"), table_read(p, s, "t1")],
        );
    }
    kv_reads(b);
    // The outbox is the engine's own table: only a grant on it (or GlobalAdmin) reads it.
    let outbox = Need::TableRead {
        project: "_system".into(),
        scope: "app".into(),
        table: "event_outbox".into(),
    };
    b.push(
        "event stream",
        "read_event_stream_as".into(),
        vec![outbox],
        Action::EventStream,
    );
}

fn kv_reads(b: &mut Builder) {
    for (p, s, prefix) in KV_PLACES {
        let key = kv_key(prefix, "read");
        for in_read_tx in [false, true] {
            let kind = if in_read_tx {
                "kv_get in read tx"
            } else {
                "kv_get"
            };
            let action = Action::KvGet {
                place: place(p, s),
                key: key.clone(),
                in_read_tx,
            };
            let needs = vec![kv_read(p, s, &key)];
            b.push(kind, format!("{kind} {p}.{s} {prefix}"), needs, action);
        }
        let key = kv_key(prefix, "counter");
        let needs = vec![kv_read(p, s, &key)];
        let action = Action::CounterRead {
            place: place(p, s),
            key,
        };
        b.push(
            "counter read",
            format!("counter_read_sharded_as {p}.{s} {prefix}"),
            needs,
            action,
        );
        let name = accumulator_name(prefix);
        let needs = vec![kv_read(p, s, name.as_bytes())];
        let action = Action::AccumulatorRead {
            place: place(p, s),
            name: name.clone(),
        };
        b.push(
            "accumulator read",
            format!("accumulator reads {p}.{s}.{name}"),
            needs,
            action,
        );
    }
    // Scans of a place's prefix, and wider ones that mix keys the caller may and may not read.
    let mut scans: Vec<(&str, &str, &str)> = KV_PLACES.to_vec();
    for (p, s) in SCOPE_PLACES {
        scans.push((p, s, ""));
        scans.push((p, s, "a"));
    }
    for (p, s, prefix) in scans {
        let needs = vec![Need::KvScan {
            project: p.into(),
            scope: s.into(),
        }];
        let action = Action::KvScan {
            place: place(p, s),
            prefix: prefix.as_bytes().to_vec(),
        };
        b.push(
            "kv_scan",
            format!("kv_scan_prefix {p}.{s} {prefix:?}"),
            needs,
            action,
        );
    }
}
