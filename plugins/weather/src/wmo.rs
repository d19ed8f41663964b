//! WMO weather interpretation codes (as Open-Meteo reports them) in words.

/// The weather code `code` in words; unknown codes are `Unknown`.
pub fn describe(code: u32) -> &'static str {
    match code {
        0 => "Sunny",
        1 => "Mainly clear",
        2 => "Partly cloudy",
        3 => "Overcast",
        45 | 48 => "Fog",
        51 => "Light drizzle",
        53 => "Drizzle",
        55 => "Dense drizzle",
        56 | 57 => "Freezing drizzle",
        61 => "Light rain",
        63 => "Rain",
        65 => "Heavy rain",
        66 | 67 => "Freezing rain",
        71 => "Light snow",
        73 => "Snow",
        75 => "Heavy snow",
        77 => "Snow grains",
        80 => "Light rain showers",
        81 => "Rain showers",
        82 => "Violent rain showers",
        85 | 86 => "Snow showers",
        95 => "Thunderstorm",
        96 | 99 => "Thunderstorm with hail",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn names_codes() {
        assert_eq!(describe(0), "Sunny");
        assert_eq!(describe(3), "Overcast");
        assert_eq!(describe(63), "Rain");
        assert_eq!(describe(99), "Thunderstorm with hail");
        assert_eq!(describe(42), "Unknown");
    }
}
