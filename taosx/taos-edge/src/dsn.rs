//! Helpers shared by the DSN parsers of every source (MQTT, PI, OPC-UA): percent-decoding and
//! durations. Apart from [`crate::task`], which names the sources, so the sources need not
//! import it back.

/// Percent-decoding for DSN user, password and values.
pub(crate) fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        // `+` stays `+`: it is MQTT's single-level wildcard, not a space.
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `10s`, `500ms`, `1m`, or a bare number of seconds.
pub fn parse_duration_ms(v: &str) -> Result<u64, String> {
    let v = v.trim();
    let (num, mult) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        (v, 1000.0)
    };
    match num.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 && n * mult < 1e12 => Ok((n * mult) as u64),
        _ => Err(format!("invalid duration '{v}' (e.g. 10s, 500ms, 1m)")),
    }
}
