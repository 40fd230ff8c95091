//! The operations the online servers offer, merged from their statuses
//! and descriptions, each description cross-checked with its server's
//! status (module docs of `describe`).

use std::collections::BTreeMap;

use super::DescribeError;
use crate::protocol::{Description, OpDescription, Status};

/// Retained payloads by server id (the last level of their topic).
pub type Payloads = BTreeMap<String, Vec<u8>>;

/// One operation and who offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The operation's name.
    pub name: String,
    /// Its distinct descriptions (servers may differ, e.g. in limits),
    /// the one published by most servers first.
    pub variants: Vec<Variant>,
    /// Online servers that offer it (by their status) but publish no
    /// description of it: older versions, or brokers that keep no
    /// retained messages.
    pub undescribed: Vec<String>,
}

/// One description of an operation and the servers that publish it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// The description.
    pub description: OpDescription,
    /// The ids of the servers publishing it, sorted.
    pub servers: Vec<String>,
}

impl Offer {
    /// Every server offering the operation, sorted.
    pub fn servers(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .variants
            .iter()
            .flat_map(|v| v.servers.iter().cloned())
            .chain(self.undescribed.iter().cloned())
            .collect();
        all.sort();
        all
    }

    /// The one-line summary of the most common description ("" when none).
    pub fn summary(&self) -> &str {
        self.variants
            .first()
            .map_or("", |v| v.description.summary.as_str())
    }
}

/// What the online servers under a prefix offer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// Ids of the servers whose status says online, sorted.
    pub online: Vec<String>,
    /// The operations offered, sorted by name.
    pub offers: Vec<Offer>,
}

impl Catalog {
    /// Merges retained statuses and descriptions (payloads by server id).
    /// A description counts only when its server's status is online with
    /// the same `instance`, and only for the operations that status lists.
    pub fn merge(statuses: &Payloads, descriptions: &Payloads) -> Catalog {
        let mut catalog = Catalog::default();
        let mut offers: BTreeMap<String, Offer> = BTreeMap::new();
        for (id, payload) in statuses {
            let Ok(status) = Status::decode(payload) else {
                continue;
            };
            if !status.is_online() {
                continue;
            }
            catalog.online.push(id.clone());
            let described = descriptions
                .get(id)
                .and_then(|p| Description::decode(p).ok())
                .filter(|d| d.instance.is_some() && d.instance == status.instance);
            for name in &status.ops {
                let offer = offers.entry(name.clone()).or_insert_with(|| Offer {
                    name: name.clone(),
                    variants: Vec::new(),
                    undescribed: Vec::new(),
                });
                match described.as_ref().and_then(|d| d.op(name)) {
                    Some(op) => add_variant(offer, op, id),
                    None => offer.undescribed.push(id.clone()),
                }
            }
        }
        catalog.offers = offers.into_values().collect();
        for offer in &mut catalog.offers {
            // Stable: equal counts keep the order of the first server's id.
            offer
                .variants
                .sort_by_key(|v| std::cmp::Reverse(v.servers.len()));
        }
        catalog
    }

    /// The names of the operations offered, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.offers.iter().map(|o| o.name.as_str()).collect()
    }

    /// The operation `name`, when a server offers it.
    pub fn offer(&self, name: &str) -> Option<&Offer> {
        self.offers.iter().find(|o| o.name == name)
    }

    /// True when no online server publishes a usable description (all
    /// older versions): the shell then keeps its built-in help.
    pub fn is_undescribed(&self) -> bool {
        self.offers.iter().all(|o| o.variants.is_empty())
    }

    /// The allowed values of field `field` of operation `op`, from every
    /// description of it (edit's actions, for completion).
    pub fn allowed(&self, op: &str, field: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .offer(op)
            .into_iter()
            .flat_map(|o| &o.variants)
            .flat_map(|v| &v.description.fields)
            .filter(|f| f.name == field)
            .flat_map(|f| f.allowed.iter().cloned())
            .collect();
        values.sort();
        values.dedup();
        values
    }

    /// Fails with "no server online" when none is.
    ///
    /// # Errors
    /// [`DescribeError::NoServer`].
    pub fn require_online(&self, prefix: &str) -> Result<(), DescribeError> {
        if self.online.is_empty() {
            return Err(DescribeError::NoServer {
                prefix: prefix.to_string(),
            });
        }
        Ok(())
    }
}

fn add_variant(offer: &mut Offer, op: &OpDescription, id: &str) {
    match offer.variants.iter_mut().find(|v| v.description == *op) {
        Some(variant) => variant.servers.push(id.to_string()),
        None => offer.variants.push(Variant {
            description: op.clone(),
            servers: vec![id.to_string()],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::describe::builder::Builder;
    use crate::limits::Limits;
    use crate::protocol::Op;

    fn status(state: &str, ops: &[&str], instance: &str) -> Vec<u8> {
        Status {
            state: state.into(),
            ops: ops.iter().map(|s| s.to_string()).collect(),
            version: "1".into(),
            since: 1,
            group: None,
            instance: Some(instance.into()),
            data_dir: None,
        }
        .encode()
    }

    fn description(instance: &str, ops: &[Op], limits: &Limits) -> Vec<u8> {
        Builder::new(Some(instance.into()))
            .builtins(ops, limits)
            .build()
            .encode()
    }

    type Entry<'a> = (&'a str, Vec<u8>, Option<Vec<u8>>);

    fn maps(entries: &[Entry]) -> (Payloads, Payloads) {
        let mut statuses = BTreeMap::new();
        let mut descriptions = BTreeMap::new();
        for (id, s, d) in entries {
            statuses.insert(id.to_string(), s.clone());
            if let Some(d) = d {
                descriptions.insert(id.to_string(), d.clone());
            }
        }
        (statuses, descriptions)
    }

    #[test]
    fn operations_are_merged_over_servers_and_differing_descriptions_kept_apart() {
        let small = Limits {
            max_payload: 1000,
            ..Limits::default()
        };
        let (s, d) = maps(&[
            (
                "a",
                status("online", &["calc", "echo", "edit"], "ia"),
                Some(description("ia", &Op::ALL, &Limits::default())),
            ),
            (
                "b",
                status("online", &["calc", "echo"], "ib"),
                Some(description("ib", &[Op::Calc, Op::Echo], &Limits::default())),
            ),
            (
                "c",
                status("online", &["calc", "echo"], "ic"),
                Some(description("ic", &[Op::Calc, Op::Echo], &small)),
            ),
        ]);
        let catalog = Catalog::merge(&s, &d);
        assert_eq!(catalog.online, ["a", "b", "c"]);
        assert_eq!(catalog.names(), ["calc", "echo", "edit"]);
        let calc = catalog.offer("calc").unwrap();
        assert_eq!(calc.servers(), ["a", "b", "c"]);
        assert_eq!(calc.variants.len(), 2);
        assert_eq!(calc.variants[0].servers, ["a", "b"]);
        assert_eq!(calc.variants[1].servers, ["c"]);
        assert_eq!(catalog.offer("edit").unwrap().servers(), ["a"]);
        assert_eq!(catalog.allowed("edit", "action").len(), 5);
        assert!(!catalog.is_undescribed());
    }

    #[test]
    fn descriptions_without_a_matching_online_status_are_not_shown() {
        let limits = Limits::default();
        let (s, mut d) = maps(&[
            // Stale: another process's description.
            (
                "old",
                status("online", &["calc"], "new-instance"),
                Some(description("old-instance", &[Op::Calc], &limits)),
            ),
            // Offline: a crashed server's description stays retained.
            (
                "dead",
                status("offline", &["calc"], "i"),
                Some(description("i", &[Op::Calc], &limits)),
            ),
            // Lists edit, but the status does not.
            (
                "narrow",
                status("online", &["calc"], "n"),
                Some(description("n", &Op::ALL, &limits)),
            ),
        ]);
        // A description for an id that has no status at all.
        d.insert("ghost".into(), description("g", &Op::ALL, &limits));
        let catalog = Catalog::merge(&s, &d);
        assert_eq!(catalog.online, ["narrow", "old"]);
        assert_eq!(catalog.names(), ["calc"]);
        let calc = catalog.offer("calc").unwrap();
        assert_eq!(calc.undescribed, ["old"]);
        assert_eq!(calc.variants[0].servers, ["narrow"]);
    }

    #[test]
    fn old_servers_without_descriptions_still_list_their_operations() {
        let (s, d) = maps(&[("old", status("online", &["calc", "echo"], "i"), None)]);
        let catalog = Catalog::merge(&s, &d);
        assert_eq!(catalog.names(), ["calc", "echo"]);
        assert!(catalog.is_undescribed());
        assert_eq!(catalog.offer("echo").unwrap().summary(), "");
        let (s, d) = maps(&[("gone", status("offline", &["calc"], "i"), None)]);
        assert!(Catalog::merge(&s, &d).require_online("p").is_err());
    }
}
