//! Which live node should own each work unit: a pure function of the unit and node lists, so
//! every node computes the same answer from the same lists without talking to the others.
//!
//! Rendezvous hashing (each unit ranks the nodes by `hash(unit, node)` and prefers the first)
//! keeps most units where they are when a node joins or leaves; a cap of
//! `ceil(units / nodes)` per node keeps the spread even (plain rendezvous hashing leaves one
//! node with 6 of 12 units about one time in six on 3 nodes). Units are placed in name order,
//! each on its best-ranked node still under the cap.

use std::collections::BTreeMap;

fn rank(unit: &str, node: &str) -> u64 {
    let mut key = Vec::with_capacity(unit.len() + node.len() + 1);
    key.extend_from_slice(unit.as_bytes());
    key.push(0);
    key.extend_from_slice(node.as_bytes());
    // FNV-1a mixes poorly in its high bits for short keys; a final avalanche fixes that.
    let mut h = crate::wire::hash(&key);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The owner of every unit among `nodes` (empty when there are no nodes). Order and duplicates
/// of the inputs do not matter.
pub fn assign(units: &[String], nodes: &[String]) -> BTreeMap<String, String> {
    let mut nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let mut units: Vec<&str> = units.iter().map(String::as_str).collect();
    units.sort_unstable();
    units.dedup();
    let mut out = BTreeMap::new();
    if nodes.is_empty() {
        return out;
    }
    let cap = units.len().div_ceil(nodes.len());
    let mut load: BTreeMap<&str, usize> = nodes.iter().map(|n| (*n, 0)).collect();
    for u in units {
        let mut ranked: Vec<(u64, &str)> = nodes.iter().map(|n| (rank(u, n), *n)).collect();
        // Highest rank first; the name breaks (astronomically unlikely) ties the same way
        // everywhere.
        ranked.sort_unstable_by(|a, b| b.cmp(a));
        let pick = ranked
            .iter()
            .map(|(_, n)| *n)
            .find(|n| load.get(n).copied().unwrap_or(0) < cap)
            .unwrap_or(ranked[0].1);
        *load.entry(pick).or_default() += 1;
        out.insert(u.to_string(), pick.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn names(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    #[test]
    fn twelve_pipelines_on_three_nodes_spread_four_each() {
        let units = names("pipeline.p", 12);
        let nodes = names("node-", 3);
        let a = assign(&units, &nodes);
        for n in &nodes {
            assert_eq!(a.values().filter(|o| *o == n).count(), 4, "{a:?}");
        }
    }

    proptest! {
        #[test]
        fn every_unit_gets_one_live_node_within_the_cap(
            nu in 0usize..40, nn in 1usize..7, seed in 0u32..1000,
        ) {
            let units = names(&format!("u{seed}-"), nu);
            let nodes = names(&format!("n{seed}-"), nn);
            let a = assign(&units, &nodes);
            prop_assert_eq!(a.len(), nu);
            let cap = nu.div_ceil(nn);
            for n in &nodes {
                prop_assert!(a.values().filter(|o| *o == n).count() <= cap);
            }
            // Same answer whatever the input order.
            let mut rev_units = units.clone();
            rev_units.reverse();
            let mut rev_nodes = nodes.clone();
            rev_nodes.reverse();
            prop_assert_eq!(assign(&rev_units, &rev_nodes), a);
        }

        #[test]
        fn a_node_leaving_moves_its_units_and_few_others(seed in 0u32..500) {
            let units = names(&format!("u{seed}-"), 12);
            let nodes = names(&format!("n{seed}-"), 3);
            let before = assign(&units, &nodes);
            let gone = &nodes[(seed % 3) as usize];
            let rest: Vec<String> = nodes.iter().filter(|n| *n != gone).cloned().collect();
            let after = assign(&units, &rest);
            let moved = units.iter().filter(|u| before[*u] != after[*u]).count();
            let had = before.values().filter(|o| *o == gone).count();
            // Its own units must move; the cap may move a few more, never most of the rest.
            prop_assert!(moved >= had);
            prop_assert!(moved <= had + 4, "moved {} of 12, {} were on the node", moved, had);
        }
    }
}
