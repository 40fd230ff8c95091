//! The operation mix of a benchmark: which request comes next.

use crate::protocol::{CalcRequest, EchoRequest, EditAction, EditRequest, Op, Request};

/// Weighted operations, e.g. `calc=8,echo=1,edit=1`, picked round-robin by
/// weight so a run is reproducible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    slots: Vec<Op>,
    payload_size: usize,
}

impl Mix {
    /// Parses `calc`, `calc,echo` or `calc=8,echo=1,edit=1`.
    ///
    /// # Errors
    /// A message naming the bad part.
    pub fn parse(spec: &str, payload_size: usize) -> Result<Mix, String> {
        let mut slots = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part.split_once('=').unwrap_or((part, "1"));
            let op = Op::parse(name.trim())
                .ok_or_else(|| format!("unknown operation {name:?} in --ops (calc, echo, edit)"))?;
            let weight: usize = weight
                .trim()
                .parse()
                .ok()
                .filter(|w| (1..=100).contains(w))
                .ok_or_else(|| {
                    format!("weight {weight:?} in --ops must be a whole number from 1 to 100")
                })?;
            slots.extend(std::iter::repeat_n(op, weight));
        }
        if slots.is_empty() {
            return Err("--ops names no operation".to_string());
        }
        Ok(Mix {
            slots,
            payload_size,
        })
    }

    /// The distinct operations in the mix.
    pub fn ops(&self) -> Vec<Op> {
        let mut ops = self.slots.clone();
        ops.dedup();
        ops.sort_by_key(|op| op.as_str());
        ops.dedup();
        ops
    }

    /// The `i`-th request of a worker. Calc expressions vary so no cache
    /// could answer them; edits replace one of 100 lines of `bench.txt`.
    pub fn request(&self, worker: usize, i: u64) -> Request {
        match self.slots[(i % self.slots.len() as u64) as usize] {
            Op::Calc => Request::Calc(CalcRequest {
                expr: format!("({i}+3)*4-{worker}^2/7"),
            }),
            Op::Echo => Request::Echo(EchoRequest {
                text: "x".repeat(self.payload_size),
            }),
            Op::Edit => Request::Edit(EditRequest {
                action: EditAction::Replace,
                line: Some(i % 100 + 1),
                text: Some(format!("worker {worker} request {i}")),
                file: Some("bench.txt".to_string()),
                expect_rev: None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse_with_weights() {
        let m = Mix::parse("calc=2,echo", 4).unwrap();
        assert_eq!(m.ops(), vec![Op::Calc, Op::Echo]);
        assert!(matches!(m.request(0, 0), Request::Calc(_)));
        assert!(matches!(m.request(0, 1), Request::Calc(_)));
        assert_eq!(
            m.request(0, 2),
            Request::Echo(EchoRequest {
                text: "xxxx".into()
            })
        );
        for bad in ["", "nope", "calc=0", "calc=x", "calc=1000"] {
            assert!(Mix::parse(bad, 1).is_err(), "{bad}");
        }
    }
}
