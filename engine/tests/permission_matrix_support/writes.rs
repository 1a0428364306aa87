//! The write operations: table rows, KV, accumulators, events.

use aedb::catalog::expr::col;
use aedb::catalog::types::Value;
use aedb::commit::validation::*;

use super::kinds::kind_of;
use super::ops::*;

pub(super) fn table_ops(b: &mut Builder) {
    for (p, s, t) in TABLE_PLACES {
        let (pid, sid, tname) = (p.to_string(), s.to_string(), t.to_string());
        let id = 100 + b.serial() as i64 * 2;
        let pk = |i: i64| vec![Value::Integer(i)];
        let muts = vec![
            Mutation::Insert {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: tname.clone(),
                primary_key: pk(id),
                row: row(id),
            },
            Mutation::InsertBatch {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: tname.clone(),
                rows: vec![row(id + 1_000), row(id + 1_001)],
            },
            Mutation::Upsert {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: tname.clone(),
                primary_key: pk(id + 2_000),
                row: row(id + 2_000),
            },
            Mutation::UpsertBatch {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: tname.clone(),
                rows: vec![row(id + 3_000), row(1)],
            },
            Mutation::UpsertOnConflict {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: tname.clone(),
                row: row(id + 4_000),
                conflict_target: ConflictTarget::PrimaryKey,
                conflict_action: ConflictAction::DoNothing,
            },
            Mutation::UpsertBatchOnConflict {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: tname.clone(),
                rows: vec![row(id + 5_000), row(2)],
                conflict_target: ConflictTarget::PrimaryKey,
                conflict_action: ConflictAction::DoMerge,
            },
            Mutation::Delete {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: tname.clone(),
                primary_key: pk(1),
            },
            Mutation::DeleteWhere {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: tname.clone(),
                predicate: col("id").eq(2i64),
                limit: None,
            },
            Mutation::UpdateWhere {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: tname.clone(),
                predicate: col("id").eq(3i64),
                updates: vec![("n".into(), Value::Integer(7))],
                limit: None,
            },
            Mutation::UpdateWhereExpr {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: tname.clone(),
                predicate: col("id").eq(4i64),
                updates: vec![("n".into(), TableUpdateExpr::AddI64(1))],
                limit: None,
            },
            Mutation::TableIncU256 {
                project_id: pid.clone(),
                scope_id: sid.clone(),
                table_name: tname.clone(),
                primary_key: pk(5),
                column: "u".into(),
                amount_be: u256(1),
            },
            Mutation::TableDecU256 {
                project_id: pid,
                scope_id: sid,
                table_name: tname,
                primary_key: pk(6),
                column: "u".into(),
                amount_be: u256(1),
            },
        ];
        for m in muts {
            let label = format!("{} on {p}.{s}.{t}", kind_of(&m));
            b.commit(label, vec![table_write(p, s, t)], m);
        }
    }
}

fn kv_mutations(p: &str, s: &str, prefix: &str) -> Vec<Mutation> {
    let (pid, sid) = (p.to_string(), s.to_string());
    let key = |kind: &str| kv_key(prefix, kind);
    let eight = 1u64.to_be_bytes();
    vec![
        Mutation::KvSet {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("set"),
            value: b"v".to_vec(),
        },
        Mutation::KvDel {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("del"),
        },
        Mutation::KvIncU256 {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("inc"),
            amount_be: u256(1),
        },
        Mutation::KvDecU256 {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("dec"),
            amount_be: u256(1),
        },
        Mutation::KvAddU256Ex {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("add256"),
            amount_be: u256(1),
            on_missing: KvU256MissingPolicy::TreatAsZero,
            on_overflow: KvU256OverflowPolicy::Saturate,
        },
        Mutation::KvSubU256Ex {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("dec"),
            amount_be: u256(1),
            on_missing: KvU256MissingPolicy::TreatAsZero,
            on_underflow: KvU256UnderflowPolicy::NoOp,
        },
        Mutation::KvMaxU256 {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("max256"),
            candidate_be: u256(9),
            on_missing: KvU256MissingPolicy::TreatAsZero,
        },
        Mutation::KvMinU256 {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("dec"),
            candidate_be: u256(3),
            on_missing: KvU256MissingPolicy::TreatAsZero,
        },
        Mutation::KvMutateU256 {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("mut256"),
            op: KvU256MutatorOp::Set,
            operand_be: u256(5),
            expected_seq: None,
        },
        Mutation::KvAddU64Ex {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("u64"),
            amount_be: eight,
            on_missing: KvU64MissingPolicy::TreatAsZero,
            on_overflow: KvU64OverflowPolicy::Saturate,
        },
        Mutation::KvSubU64Ex {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("u64"),
            amount_be: eight,
            on_missing: KvU64MissingPolicy::TreatAsZero,
            on_underflow: KvU64UnderflowPolicy::NoOp,
        },
        Mutation::KvMaxU64 {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("max64"),
            candidate_be: 9u64.to_be_bytes(),
            on_missing: KvU64MissingPolicy::TreatAsZero,
        },
        Mutation::KvMinU64 {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("min64"),
            candidate_be: 3u64.to_be_bytes(),
            on_missing: KvU64MissingPolicy::TreatAsZero,
        },
        Mutation::KvMutateU64 {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("mut64"),
            op: KvU64MutatorOp::Add,
            operand_be: eight,
            expected_seq: None,
        },
        // On the seeded u256 (the u64 key is back at zero by now).
        Mutation::KvSubIntEx {
            project_id: pid.clone(),
            scope_id: sid.clone(),
            key: key("dec"),
            amount: KvIntegerAmount::U256(u256(1)),
            on_missing: KvIntegerMissingPolicy::TreatAsZero,
            on_underflow: KvIntegerUnderflowPolicy::NoOp,
        },
        Mutation::CounterAdd {
            project_id: pid,
            scope_id: sid,
            key: key("counter"),
            amount_be: eight,
            shard_count: 4,
            shard_hint: 1,
        },
    ]
}

fn kv_key_of(m: &Mutation) -> Vec<u8> {
    use Mutation as M;
    match m {
        M::KvSet { key, .. }
        | M::KvDel { key, .. }
        | M::KvIncU256 { key, .. }
        | M::KvDecU256 { key, .. }
        | M::KvAddU256Ex { key, .. }
        | M::KvSubU256Ex { key, .. }
        | M::KvMaxU256 { key, .. }
        | M::KvMinU256 { key, .. }
        | M::KvMutateU256 { key, .. }
        | M::KvAddU64Ex { key, .. }
        | M::KvSubU64Ex { key, .. }
        | M::KvMaxU64 { key, .. }
        | M::KvMinU64 { key, .. }
        | M::KvMutateU64 { key, .. }
        | M::KvSubIntEx { key, .. }
        | M::CounterAdd { key, .. } => key.clone(),
        other => panic!("not a KV mutation: {other:?}"),
    }
}

pub(super) fn kv_ops(b: &mut Builder) {
    for (p, s, prefix) in KV_PLACES {
        for m in kv_mutations(p, s, prefix) {
            let key = kv_key_of(&m);
            let label = format!(
                "{} on {p}.{s} {:?}",
                kind_of(&m),
                String::from_utf8_lossy(&key)
            );
            b.commit(label, vec![kv_write(p, s, &key)], m);
        }
        let key = kv_key(prefix, "set_as");
        let needs = vec![kv_write(p, s, &key)];
        let action = Action::KvSetAs {
            place: place(p, s),
            key,
        };
        b.push(
            "KvSet",
            format!("kv_set_as on {p}.{s} {prefix}"),
            needs,
            action,
        );
        let key = kv_key(prefix, "del_as");
        let needs = vec![kv_write(p, s, &key)];
        let action = Action::KvDelAs {
            place: place(p, s),
            key,
        };
        b.push(
            "KvDel",
            format!("kv_del_as on {p}.{s} {prefix}"),
            needs,
            action,
        );
    }
}

pub(super) fn accumulator_ops(b: &mut Builder) {
    for (p, s, prefix) in KV_PLACES {
        let name = accumulator_name(prefix);
        let needs = vec![kv_write(p, s, name.as_bytes())];
        let acc = |b: &mut Builder, release: Option<&str>| {
            let n = b.serial();
            Mutation::Accumulate {
                project_id: p.into(),
                scope_id: s.into(),
                accumulator_name: name.clone(),
                delta: 1,
                dedupe_key: format!("d{n}"),
                order_key: 10 + n,
                release_exposure_id: release.map(Into::into),
            }
        };
        let n = b.serial();
        let muts = vec![
            acc(b, None),
            acc(b, Some("rel1")),
            Mutation::ExposeAccumulator {
                project_id: p.into(),
                scope_id: s.into(),
                accumulator_name: name.clone(),
                amount: 1,
                exposure_id: format!("e{n}"),
            },
            Mutation::ExposeAccumulatorBatch {
                project_id: p.into(),
                scope_id: s.into(),
                accumulator_name: name.clone(),
                exposures: vec![(1, format!("e{n}a")), (2, format!("e{n}b"))],
            },
            Mutation::ReleaseAccumulatorExposure {
                project_id: p.into(),
                scope_id: s.into(),
                accumulator_name: name.clone(),
                exposure_id: "rel2".into(),
            },
        ];
        for m in muts {
            b.commit(
                format!("{} on {p}.{s}.{name}", kind_of(&m)),
                needs.clone(),
                m,
            );
        }
        for release in [None, Some("rel3".to_string())] {
            let order_key = 10 + b.serial();
            let action = Action::AccumulateAs {
                place: place(p, s),
                name: name.clone(),
                order_key,
                release: release.clone(),
            };
            let label = format!("accumulate_as on {p}.{s}.{name} releasing {release:?}");
            b.push("Accumulate", label, needs.clone(), action);
        }
        let action = Action::ExposeAs {
            place: place(p, s),
            name: name.clone(),
            exposure_id: format!("x{}", b.serial()),
        };
        let label = format!("expose_accumulator_as on {p}.{s}.{name}");
        b.push("ExposeAccumulator", label, needs.clone(), action);
        let n = b.serial();
        let action = Action::ExposeManyAs {
            place: place(p, s),
            name: name.clone(),
            ids: vec![format!("m{n}a"), format!("m{n}b")],
        };
        let label = format!("expose_accumulator_many_atomic_as on {p}.{s}.{name}");
        b.push("ExposeAccumulatorBatch", label, needs.clone(), action);
        let action = Action::ReleaseAs {
            place: place(p, s),
            name: name.clone(),
            exposure_id: "rel4".into(),
        };
        let label = format!("release_accumulator_exposure_as on {p}.{s}.{name}");
        b.push("ReleaseAccumulatorExposure", label, needs, action);
    }
}

pub(super) fn event_ops(b: &mut Builder) {
    for (p, s, prefix) in KV_PLACES {
        let topic = topic(prefix);
        let needs = vec![kv_write(p, s, topic.as_bytes())];
        let m = Mutation::EmitEvent {
            project_id: p.into(),
            scope_id: s.into(),
            topic: topic.clone(),
            event_key: format!("k{}", b.serial()),
            payload_json: "{\"n\":1}".into(),
        };
        b.commit(format!("EmitEvent on {p}.{s}.{topic}"), needs.clone(), m);
        let action = Action::EmitAs {
            place: place(p, s),
            topic: topic.clone(),
            event_key: format!("k{}", b.serial()),
        };
        b.push(
            "EmitEvent",
            format!("emit_event_as on {p}.{s}.{topic}"),
            needs,
            action,
        );
    }
}
