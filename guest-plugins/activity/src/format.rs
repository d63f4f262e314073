/// A rate in bytes per second in temBoard's human form: two decimals and a
/// power-of-1024 unit letter, e.g. `0.00B`, `1.20K`, `5.00M`.
pub fn rate(bytes_per_second: f64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    let mut value = bytes_per_second.max(0.0);
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::rate;

    #[test]
    fn rates() {
        assert_eq!(rate(0.0), "0.00B");
        assert_eq!(rate(512.0), "512.00B");
        assert_eq!(rate(1229.0), "1.20K");
        assert_eq!(rate(5.0 * 1024.0 * 1024.0), "5.00M");
        assert_eq!(rate(3.0 * 1024f64.powi(3)), "3.00G");
        assert_eq!(rate(-1.0), "0.00B");
    }
}
