//! Human formatting of counts, sizes and times.

/// 568740352 -> "568,740,352".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// 568740352 -> "568.7M"; 1137480704 -> "1.14G".
pub fn si(n: u64) -> String {
    let x = n as f64;
    if x >= 1e9 {
        format!("{:.2}G", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        n.to_string()
    }
}

/// Bytes in binary-free decimal megabytes, as model zoos print sizes: "16.88 MB".
pub fn megabytes(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

/// Bytes in powers of 1024, as memory limits are given: "8.0 GiB", "196.6 MiB", "512 B".
pub fn bytes_binary(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A percentage with two decimals: "94.86%".
pub fn percent(p: f64) -> String {
    format!("{p:.2}%")
}

/// Milliseconds with precision suited to their size.
pub fn millis(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.1}")
    } else if ms >= 1.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes_binary(512), "512 B");
        assert_eq!(bytes_binary(8 << 30), "8.0 GiB");
        assert_eq!(bytes_binary(196_608_000_000), "183.1 GiB");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(568_740_352), "568,740,352");
        assert_eq!(si(568_740_352), "568.7M");
        assert_eq!(si(1_137_480_704), "1.14G");
        assert_eq!(si(864), "864");
        assert_eq!(megabytes(16_884_128), "16.88 MB");
        assert_eq!(percent(94.8612), "94.86%");
        assert_eq!(millis(24.04), "24.04");
    }
}
