//! Numbers as temBoard's activity view shows them. Pure functions, so the
//! unit tests run natively with `cargo test`.

/// A rate in bytes per second in temBoard's human form: two decimals and a
/// power-of-1024 unit letter, e.g. `0.00B`, `1.20K`, `5.00M`.
pub fn rate(bytes_per_second: f64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    // A negative or NaN rate can only be a sampling glitch; show it as idle.
    let mut value = if bytes_per_second > 0.0 {
        bytes_per_second
    } else {
        0.0
    };
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2}{}", UNITS[unit])
}

/// `value` rounded to `decimals` places; JSON has no NaN or infinity, so
/// those become 0.
pub fn round(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    let rounded = (value * factor).round() / factor;
    if rounded.is_finite() { rounded } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::{rate, round};

    #[test]
    fn rates() {
        assert_eq!(rate(0.0), "0.00B");
        assert_eq!(rate(512.0), "512.00B");
        assert_eq!(rate(1023.0), "1023.00B");
        assert_eq!(rate(1024.0), "1.00K");
        assert_eq!(rate(1229.0), "1.20K");
        assert_eq!(rate(5.0 * 1024.0 * 1024.0), "5.00M");
        assert_eq!(rate(3.0 * 1024f64.powi(3)), "3.00G");
        assert_eq!(rate(2.5 * 1024f64.powi(4)), "2.50T");
        assert_eq!(rate(1024f64.powi(5)), "1.00P");
        // P is the largest unit: bigger rates stay in P.
        assert_eq!(rate(2048.0 * 1024f64.powi(5)), "2048.00P");
        assert_eq!(rate(-1.0), "0.00B");
        assert_eq!(rate(f64::NAN), "0.00B");
    }

    #[test]
    fn rounding() {
        assert_eq!(round(12.3456, 2), 12.35);
        assert_eq!(round(1.9004, 3), 1.9);
        assert_eq!(round(0.0, 2), 0.0);
        assert_eq!(round(f64::NAN, 2), 0.0);
        assert_eq!(round(f64::INFINITY, 3), 0.0);
    }
}
