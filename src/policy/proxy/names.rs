//! The proxy's name table: which slot address its DNS handed out for which name. Stable for
//! the proxy's life (a name keeps its address; TTLs are short only so that a policy change
//! would be seen), so the transparent listener reads the name back from the local address a
//! client dialled.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use crate::policy::egress::slot::Slot;

pub struct Table {
    slot: Slot,
    by_name: HashMap<String, Ipv4Addr>,
    by_addr: HashMap<Ipv4Addr, String>,
    /// How many addresses may be handed out (the slot's 4093; smaller in tests).
    limit: usize,
}

impl Table {
    pub fn new(slot: Slot) -> Table {
        Table {
            slot,
            by_name: HashMap::new(),
            by_addr: HashMap::new(),
            limit: slot.names().count(),
        }
    }

    #[cfg(test)]
    pub fn with_limit(slot: Slot, limit: usize) -> Table {
        Table {
            limit,
            ..Table::new(slot)
        }
    }

    /// The address of `name` (normalised by the caller), handing out the next free one the
    /// first time; `None` when the slot is full. The flag says whether it is new.
    pub fn assign(&mut self, name: &str) -> Option<(Ipv4Addr, bool)> {
        if let Some(a) = self.by_name.get(name) {
            return Some((*a, false));
        }
        if self.by_name.len() >= self.limit {
            return None;
        }
        let a = self.slot.names().nth(self.by_name.len())?;
        self.by_name.insert(name.to_string(), a);
        self.by_addr.insert(a, name.to_string());
        Some((a, true))
    }

    pub fn name_of(&self, a: Ipv4Addr) -> Option<&str> {
        self.by_addr.get(&a).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_get_stable_addresses_in_order_until_full() {
        let slot = Slot { index: 1 };
        let mut t = Table::with_limit(slot, 2);
        let (a, new) = t.assign("a.test").unwrap();
        assert!(new);
        assert_eq!(a, Ipv4Addr::new(198, 18, 16, 2));
        assert_eq!(t.assign("b.test").unwrap().0, Ipv4Addr::new(198, 18, 16, 3));
        assert_eq!(t.assign("a.test"), Some((a, false)));
        assert_eq!(t.assign("c.test"), None);
        assert_eq!(t.name_of(a), Some("a.test"));
        assert_eq!(t.name_of(Ipv4Addr::new(198, 18, 16, 4)), None);
        assert_eq!(Table::new(slot).limit, 4093);
    }
}
