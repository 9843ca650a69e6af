//! `--name value` / `--name=value` flags, parsed by hand to keep the benchmarks dependency-free.

use std::collections::BTreeMap;
use std::str::FromStr;

#[derive(Debug, Default)]
pub struct Flags {
    values: BTreeMap<String, String>,
    switches: Vec<String>,
}

impl Flags {
    /// Parse arguments after the program name. `switches` names the flags that take no value.
    pub fn parse<I: IntoIterator<Item = String>>(
        args: I,
        switches: &[&str],
    ) -> Result<Flags, String> {
        let mut f = Flags::default();
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else {
                return Err(format!("unexpected argument '{a}'"));
            };
            if let Some((n, v)) = name.split_once('=') {
                f.values.insert(n.to_string(), v.to_string());
            } else if switches.contains(&name) {
                f.switches.push(name.to_string());
            } else {
                let v = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
                f.values.insert(name.to_string(), v);
            }
        }
        Ok(f)
    }

    /// The value of `--name`, or `default`; takes it out so [`Flags::finish`] can spot leftovers.
    pub fn get<T: FromStr>(&mut self, name: &str, default: T) -> Result<T, String> {
        match self.values.remove(name) {
            Some(v) => v
                .parse()
                .map_err(|_| format!("invalid value '{v}' for --{name}")),
            None => Ok(default),
        }
    }

    pub fn opt(&mut self, name: &str) -> Option<String> {
        self.values.remove(name)
    }

    pub fn switch(&mut self, name: &str) -> bool {
        let before = self.switches.len();
        self.switches.retain(|s| s != name);
        before != self.switches.len()
    }

    /// Fail on flags nobody asked for (typos should not silently run the default workload).
    pub fn finish(self) -> Result<(), String> {
        let unknown: Vec<String> = self
            .values
            .keys()
            .chain(self.switches.iter())
            .map(|k| format!("--{k}"))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(format!("unknown flag(s): {}", unknown.join(" ")))
        }
    }
}
