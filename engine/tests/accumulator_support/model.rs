//! The reference model: one accumulator's state, and the accumulators with the calls
//! random operations resolve to and what each call must return.

use std::collections::BTreeMap;

use super::{
    AccDef, Call, Class, Op, OrderPick, BPS, ID_POOL, KEY_POOL, MAX_ID_BYTES, MISSING, NAMES,
    UPKEEP_BATCH,
};

/// One accumulator's state as the model sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccModel {
    /// The value: every accepted delta, folded in its own commit.
    pub value: i64,
    pub latest_order: Option<u64>,
    pub last_applied: u64,
    /// Commit of the newest accepted delta (and of the newest fold: the same).
    pub latest_seq: u64,
    /// Folded deltas still in the delta log (compacted once `snapshot_every` gather).
    pub applied_in_log: u64,
    /// dedupe key → (order key, delta, commit): the records stored (remembered or not).
    pub dedupe: BTreeMap<String, (u64, i64, u64)>,
    /// exposure id → (amount, opening commit)
    pub exposures: BTreeMap<String, (i64, u64)>,
    pub total_exposure: i64,
    pub rejections: u64,
}

impl AccModel {
    /// floor(value × (10 000 − margin) / 10 000), clamped to i64.
    pub fn limit(&self, margin_bps: u32) -> i64 {
        let keep = BPS - i128::from(margin_bps);
        (i128::from(self.value) * keep)
            .div_euclid(BPS)
            .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// The value less the open exposure, clamped to i64.
    pub fn available(&self) -> i64 {
        (i128::from(self.value) - i128::from(self.total_exposure))
            .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// Rows of the accumulator's tree: the state, the folded deltas not compacted yet, two
    /// per dedupe record and two per open exposure.
    pub fn stored_entries(&self) -> u64 {
        1 + self.applied_in_log + 2 * self.dedupe.len() as u64 + 2 * self.exposures.len() as u64
    }

    /// Close the exposures past their TTL at commit `now`, oldest first, a batch at most.
    fn expire(&mut self, def: &AccDef, now: u64) {
        let Some(before) = def.ttl.and_then(|ttl| now.checked_sub(ttl)) else {
            return;
        };
        let mut due: Vec<(u64, String)> = self
            .exposures
            .iter()
            .filter(|(_, (_, opened))| *opened < before)
            .map(|(id, (_, opened))| (*opened, id.clone()))
            .collect();
        due.sort();
        for (_, id) in due.into_iter().take(UPKEEP_BATCH) {
            if let Some((amount, _)) = self.exposures.remove(&id) {
                self.total_exposure -= amount;
            }
        }
    }

    /// Forget the dedupe records past their retention at commit `now`, oldest first, a batch
    /// at most; compact the delta log.
    fn clean_up(&mut self, def: &AccDef, now: u64) {
        if let Some(before) = def.retain.and_then(|retain| now.checked_sub(retain)) {
            let mut due: Vec<(u64, String)> = self
                .dedupe
                .iter()
                .filter(|(_, (_, _, seq))| *seq < before)
                .map(|(key, (_, _, seq))| (*seq, key.clone()))
                .collect();
            due.sort();
            for (_, key) in due.into_iter().take(UPKEEP_BATCH) {
                self.dedupe.remove(&key);
            }
        }
        if self.applied_in_log >= def.snapshot_every {
            self.applied_in_log -= self.applied_in_log.min(256);
        }
    }
}

fn pool_id(id: u8) -> String {
    // The last id of the pool is blank and the one before too long: refused wherever an id
    // is given. The one before that is as long as an id may be.
    match ID_POOL - id {
        1 => " ".into(),
        2 => "e".repeat(MAX_ID_BYTES + 1),
        3 => "e".repeat(MAX_ID_BYTES),
        _ => format!("e{id}"),
    }
}

fn pool_key(key: u8) -> String {
    // The last key is too long, the one before as long as a key may be.
    match KEY_POOL - key {
        1 => "d".repeat(MAX_ID_BYTES + 1),
        2 => "d".repeat(MAX_ID_BYTES),
        _ => format!("d{key}"),
    }
}

/// `Blank` or `TooLong` for an id the engine refuses to store.
fn bad_id(id: &str) -> Option<Class> {
    if id.trim().is_empty() {
        Some(Class::Blank)
    } else if id.len() > MAX_ID_BYTES {
        Some(Class::TooLong)
    } else {
        None
    }
}

/// The accumulators (by index into [`NAMES`]) and what they hold.
#[derive(Debug, Clone)]
pub struct Model {
    pub defs: Vec<AccDef>,
    pub accs: BTreeMap<String, AccModel>,
    fresh: u64,
}

impl Model {
    /// Every accumulator of `defs` created and empty.
    pub fn new(defs: Vec<AccDef>) -> Self {
        let accs = NAMES
            .iter()
            .take(defs.len())
            .map(|n| (n.to_string(), AccModel::default()))
            .collect();
        Model {
            defs,
            accs,
            fresh: 0,
        }
    }

    pub fn def_of(&self, name: &str) -> Option<AccDef> {
        NAMES
            .iter()
            .position(|n| *n == name)
            .and_then(|i| self.defs.get(i).copied())
    }

    /// The exposure id `id` names on accumulator `name`: one of the pool, or an open one.
    fn id_name(&self, name: &str, id: u8) -> String {
        if id < ID_POOL {
            return pool_id(id);
        }
        match self.accs.get(name) {
            Some(acc) if !acc.exposures.is_empty() => {
                let n = usize::from(id - ID_POOL) % acc.exposures.len();
                acc.exposures.keys().nth(n).cloned().unwrap_or_default()
            }
            _ => pool_id(0),
        }
    }

    /// The calls `op` makes (none for `Reopen`; two for `Recreate`).
    pub fn resolve(&mut self, op: &Op) -> Vec<Call> {
        let name = |acc: usize| NAMES[acc % NAMES.len()].to_string();
        match op {
            Op::Accumulate {
                acc,
                delta,
                key,
                order,
                release,
            } => {
                let name = name(*acc);
                let latest = self.accs.get(&name).and_then(|a| a.latest_order);
                let order = match (order, latest) {
                    (OrderPick::After(n), Some(l)) => l.saturating_add(*n),
                    (OrderPick::After(n), None) => *n,
                    (OrderPick::Stale(n), Some(l)) => l.saturating_sub(*n),
                    (OrderPick::Stale(n), None) => *n,
                };
                let key = match key {
                    Some(k) => pool_key(*k),
                    None => {
                        self.fresh += 1;
                        format!("fresh{}", self.fresh)
                    }
                };
                vec![Call::Accumulate {
                    delta: *delta,
                    key,
                    order,
                    release: release.map(|id| self.id_name(&name, id)),
                    name,
                }]
            }
            Op::Retry { acc, key, release } => {
                let release = release.map(|id| self.id_name(&name(*acc), id));
                let name = name(*acc);
                let acc = self.accs.get(&name);
                // A stored record (the n-th, remembered or not) repeated exactly; with none, a
                // new delta under a pool key.
                let stored = acc
                    .filter(|a| !a.dedupe.is_empty())
                    .and_then(|a| a.dedupe.iter().nth(usize::from(*key) % a.dedupe.len()))
                    .map(|(k, (o, d, _))| (k.clone(), *o, *d));
                let (key, order, delta) = stored.unwrap_or_else(|| {
                    let next = acc.and_then(|a| a.latest_order).map_or(0, |l| l + 1);
                    (pool_key(*key % KEY_POOL), next, 7)
                });
                vec![Call::Accumulate {
                    name,
                    delta,
                    key,
                    order,
                    release,
                }]
            }
            Op::Expose {
                acc,
                amount,
                id,
                preflight,
            } => vec![Call::Expose {
                name: name(*acc),
                amount: *amount,
                id: self.id_name(&name(*acc), *id),
                preflight: *preflight,
            }],
            Op::ExposeAgain { acc, pick } => {
                let name = name(*acc);
                let open = self
                    .accs
                    .get(&name)
                    .filter(|a| !a.exposures.is_empty())
                    .map(|a| {
                        let n = usize::from(*pick) % a.exposures.len();
                        a.exposures
                            .iter()
                            .nth(n)
                            .map(|(id, (amount, _))| (id.clone(), *amount))
                    });
                let (id, amount) = open.flatten().unwrap_or_else(|| (pool_id(0), 50));
                vec![Call::Expose {
                    name,
                    amount,
                    id,
                    preflight: false,
                }]
            }
            Op::ExposeBatch { acc, items } => vec![Call::ExposeBatch {
                name: name(*acc),
                items: items
                    .iter()
                    .map(|(a, id)| (*a, self.id_name(&name(*acc), *id)))
                    .collect(),
            }],
            Op::Release { acc, id } => vec![Call::Release {
                name: name(*acc),
                id: self.id_name(&name(*acc), *id),
            }],
            Op::Recreate { acc } => {
                let def = self.defs[*acc % self.defs.len()];
                vec![
                    Call::Drop { name: name(*acc) },
                    Call::Create {
                        name: name(*acc),
                        def,
                    },
                ]
            }
            Op::Drop { acc } => vec![Call::Drop { name: name(*acc) }],
            Op::Create { acc } => {
                let def = self.defs[*acc % self.defs.len()];
                vec![Call::Create {
                    name: name(*acc),
                    def,
                }]
            }
            Op::OnMissing { delta } => {
                self.fresh += 1;
                vec![Call::Accumulate {
                    name: MISSING.into(),
                    delta: *delta,
                    key: format!("fresh{}", self.fresh),
                    order: 1,
                    release: None,
                }]
            }
            Op::Reopen => vec![],
        }
    }

    /// What `call` must return, applying its effect; `now` is the sequence its commit gets
    /// (the one after the visible head).
    pub fn apply(&mut self, call: &Call, now: u64) -> Class {
        match call {
            Call::Create { name, .. } => {
                if self.accs.contains_key(name) {
                    return Class::AlreadyExists;
                }
                self.accs.insert(name.clone(), AccModel::default());
                Class::Ok
            }
            Call::Drop { name } => {
                self.accs.remove(name);
                Class::Ok
            }
            Call::Accumulate {
                name,
                delta,
                key,
                order,
                release,
            } => {
                if let Some(bad) = bad_id(key).or_else(|| release.as_deref().and_then(bad_id)) {
                    return bad;
                }
                let def = self.def_of(name);
                let (Some(acc), Some(def)) = (self.accs.get_mut(name), def) else {
                    return Class::Missing;
                };
                // What the commit does, kept only if it commits.
                let mut next = acc.clone();
                next.expire(&def, now);
                if let Some(&(o, d, seq)) = next.dedupe.get(key) {
                    let remembered = def.retain.is_none_or(|r| now.saturating_sub(seq) <= r);
                    if remembered {
                        if (o, d) != (*order, *delta) {
                            return Class::DedupeConflict;
                        }
                        // An exact retry: nothing but expiry, the release skipped.
                        *acc = next;
                        return Class::Ok;
                    }
                    next.dedupe.remove(key);
                }
                if let Some(latest) = next.latest_order {
                    if *order <= latest {
                        return Class::OrderKey {
                            latest,
                            got: *order,
                        };
                    }
                }
                // The release is looked up before the delta is folded.
                if let Some(id) = release {
                    match next.exposures.remove(id) {
                        Some((amount, _)) => next.total_exposure -= amount,
                        None => return Class::UnknownExposure,
                    }
                }
                let Some(value) = next.value.checked_add(*delta) else {
                    return Class::Overflow;
                };
                next.dedupe.insert(key.clone(), (*order, *delta, now));
                next.value = value;
                next.latest_order = Some(*order);
                next.last_applied = *order;
                next.latest_seq = now;
                next.applied_in_log += 1;
                next.clean_up(&def, now);
                *acc = next;
                Class::Ok
            }
            Call::Expose {
                name, amount, id, ..
            } => self.expose(name, &[(*amount, id.clone())], now),
            Call::ExposeBatch { name, items } => {
                if items.is_empty() {
                    // Refused at the API, before anything else.
                    return Class::Other(
                        "expose_accumulator_many_atomic requires at least one exposure".into(),
                    );
                }
                self.expose(name, items, now)
            }
            Call::Release { name, id } => {
                let def = self.def_of(name);
                let (Some(acc), Some(def)) = (self.accs.get_mut(name), def) else {
                    return Class::Missing;
                };
                let mut next = acc.clone();
                next.expire(&def, now);
                match next.exposures.remove(id) {
                    Some((amount, _)) => {
                        next.total_exposure -= amount;
                        *acc = next;
                        Class::Ok
                    }
                    None => Class::UnknownExposure,
                }
            }
        }
    }

    fn expose(&mut self, name: &str, items: &[(i64, String)], now: u64) -> Class {
        for (amount, id) in items {
            if *amount <= 0 {
                return Class::AmountNotPositive;
            }
            if let Some(bad) = bad_id(id) {
                return bad;
            }
        }
        let def = self.def_of(name);
        let (Some(acc), Some(def)) = (self.accs.get_mut(name), def) else {
            return Class::Missing;
        };
        let mut next = acc.clone();
        next.expire(&def, now);
        let limit = next.limit(def.margin_bps);
        let mut seen: BTreeMap<&str, i64> = BTreeMap::new();
        for (amount, id) in items {
            if let Some(earlier) = seen.insert(id, *amount) {
                if earlier != *amount {
                    return Class::BatchDuplicate;
                }
                continue;
            }
            if let Some((open, _)) = next.exposures.get(id) {
                if open != amount {
                    return Class::ExposureIdDifferent;
                }
                continue;
            }
            let Some(total) = next.total_exposure.checked_add(*amount) else {
                return Class::Overflow;
            };
            if total > limit {
                // Counted in a commit of its own, which changes nothing else.
                acc.rejections += 1;
                return Class::Margin {
                    total,
                    allowed: limit,
                };
            }
            next.total_exposure = total;
            next.exposures.insert(id.clone(), (*amount, now));
        }
        *acc = next;
        Class::Ok
    }
}
