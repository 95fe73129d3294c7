//! Stored device tokens of push notifications (spec §9.3): the value of the
//! private METADATA key `devicetoken`, one `token\tunix_ts` line per device.

/// Push tokens expire 90 days after their last registration (spec §9.3).
pub const TTL: i64 = 90 * 86400;
pub const MAX_TOKENS: usize = 16;
pub const MAX_TOKEN_LEN: usize = 4096;

/// Stored form: one `token\tunix_ts` per line.
pub fn parse(v: &[u8]) -> Vec<(String, i64)> {
    String::from_utf8_lossy(v)
        .lines()
        .filter_map(|l| {
            let (t, ts) = l.split_once('\t')?;
            Some((t.to_string(), ts.parse().ok()?))
        })
        .collect()
}

pub fn valid(v: &[u8], now: i64) -> Vec<String> {
    parse(v)
        .into_iter()
        .filter(|(_, ts)| *ts <= now + 60 && now - *ts < TTL)
        .map(|(t, _)| t)
        .collect()
}

pub fn encode(t: &[(String, i64)]) -> Vec<u8> {
    t.iter()
        .map(|(t, ts)| format!("{t}\t{ts}\n"))
        .collect::<String>()
        .into_bytes()
}
