//! FILL for INTERVAL windows, after execution: per partition, every window between the first
//! and last (or across the query's time range when WHERE bounds it) appears, and missing
//! windows take NULL, a constant, the previous or next value, or a linear interpolation.

use crate::lower::{FillPlan, Role, Slices};
use common::{Code, TaosError, TaosResult, Value};
use taos_sql::ast::Fill;

/// Most windows one query may generate (TDengine also refuses unbounded fills).
const MAX_WINDOWS: i64 = 10_000_000;

pub fn apply(plan: &FillPlan, rows: Vec<Vec<Value>>) -> TaosResult<Vec<Vec<Value>>> {
    // Partitions in order of appearance (rows arrive sorted by keys, then window start).
    let mut parts: Vec<(Vec<Value>, Vec<Vec<Value>>)> = Vec::new();
    for r in rows {
        let key: Vec<Value> = plan.keys.iter().map(|&k| r[k].clone()).collect();
        match parts.last_mut() {
            Some((k, v)) if *k == key => v.push(r),
            _ => parts.push((key, vec![r])),
        }
    }
    let iv = plan.interval;
    // Windows start every `sliding` (== interval without SLIDING).
    let step = plan.sliding.max(1);
    let mut groups = Vec::with_capacity(parts.len());
    for (_, prow) in parts {
        if matches!(plan.fill, Fill::None) {
            groups.push(
                prow.into_iter()
                    .map(|mut r| {
                        r.truncate(plan.visible);
                        r
                    })
                    .collect(),
            );
            continue;
        }
        let mut out = Vec::new();
        let ws = |r: &Vec<Value>| r[plan.wstart].as_i64().unwrap_or(0);
        let (Some(first), Some(last)) = (prow.first().map(ws), prow.last().map(ws)) else {
            continue;
        };
        let mut start = first;
        if plan.range.0 > i64::MIN && plan.range.0 < first {
            start = first - (first - plan.range.0) / step * step;
        }
        let mut end = last;
        if plan.range.1 < i64::MAX && plan.range.1 > last {
            end = last + (plan.range.1 - last) / step * step;
        }
        if (end - start) / step > MAX_WINDOWS {
            return Err(TaosError::new(
                Code::PAR_NOT_SUPPORTED,
                "Too many windows to fill; narrow the time range",
            ));
        }
        let template = prow[0].clone();
        let mut at = 0usize;
        let mut prev: Option<&Vec<Value>> = None;
        let mut t = start;
        while t <= end {
            if at < prow.len() && ws(&prow[at]) == t {
                prev = Some(&prow[at]);
                out.push(prow[at][..plan.visible].to_vec());
                at += 1;
            } else {
                let next = prow.get(at);
                let mut agg_i = 0;
                let mut row = Vec::with_capacity(plan.visible);
                for (c, role) in plan.roles.iter().enumerate() {
                    row.push(match role {
                        Role::WStart => Value::Timestamp(t),
                        Role::WEnd => Value::Timestamp(t + iv),
                        Role::WDuration => Value::BigInt(iv),
                        Role::Partition => template[c].clone(),
                        Role::Agg => {
                            let v = match &plan.fill {
                                Fill::Null | Fill::NullF | Fill::None => Value::Null,
                                Fill::Value(_) => {
                                    plan.values.get(agg_i).cloned().unwrap_or(Value::Null)
                                }
                                Fill::Prev => prev.map(|p| p[c].clone()).unwrap_or(Value::Null),
                                Fill::Next => next.map(|n| n[c].clone()).unwrap_or(Value::Null),
                                Fill::Near => {
                                    let dp = prev.map(|p| t - ws(p));
                                    let dn = next.map(|n| ws(n) - t);
                                    match (dp, dn) {
                                        (Some(a), Some(b)) if b < a => {
                                            next.map(|n| n[c].clone()).unwrap_or_default()
                                        }
                                        (Some(_), _) => {
                                            prev.map(|p| p[c].clone()).unwrap_or_default()
                                        }
                                        (None, Some(_)) => {
                                            next.map(|n| n[c].clone()).unwrap_or_default()
                                        }
                                        _ => Value::Null,
                                    }
                                }
                                Fill::Linear => match (prev, next) {
                                    (Some(p), Some(n)) => match (p[c].as_f64(), n[c].as_f64()) {
                                        (Some(a), Some(b)) => {
                                            let (x0, x1) = (ws(p) as f64, ws(n) as f64);
                                            Value::Double(a + (b - a) * (t as f64 - x0) / (x1 - x0))
                                        }
                                        _ => Value::Null,
                                    },
                                    _ => Value::Null,
                                },
                            };
                            agg_i += 1;
                            v
                        }
                    });
                }
                out.push(row);
            }
            t += step;
        }
        groups.push(out);
    }
    Ok(finish(&plan.slices, groups))
}

/// SOFFSET / SLIMIT over the partitions, then OFFSET / LIMIT per partition or overall.
fn finish(sl: &Slices, mut groups: Vec<Vec<Vec<Value>>>) -> Vec<Vec<Value>> {
    if sl.one_slice {
        groups = vec![groups.into_iter().flatten().collect()];
    }
    let (soffset, slimit) = sl.slimit.unwrap_or((0, i64::MAX));
    let groups = groups
        .into_iter()
        .skip(soffset as usize)
        .take(slimit.max(0) as usize);
    let take = |(offset, limit): (i64, i64)| (offset.max(0) as usize, limit.max(0) as usize);
    match sl.limit.map(take) {
        Some((offset, limit)) if sl.per_partition => groups
            .flat_map(|g| g.into_iter().skip(offset).take(limit))
            .collect(),
        Some((offset, limit)) => groups.flatten().skip(offset).take(limit).collect(),
        None => groups.flatten().collect(),
    }
}
