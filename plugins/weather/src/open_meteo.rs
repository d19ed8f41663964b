//! The two Open-Meteo requests: geocoding a name, and the current conditions at a point.

use pipecat_plugin_sdk::{ToolError, http};
use serde::Deserialize;

/// One geocoding result.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Place {
    /// The place's name, e.g. `Tokyo`.
    pub name: String,
    /// Latitude in degrees.
    pub latitude: f64,
    /// Longitude in degrees.
    pub longitude: f64,
    /// The country, when known.
    #[serde(default)]
    pub country: Option<String>,
}

impl Place {
    /// `Name, Country`, or just the name.
    pub fn display_name(&self) -> String {
        match &self.country {
            Some(country) if !country.is_empty() => format!("{}, {country}", self.name),
            _ => self.name.clone(),
        }
    }
}

#[derive(Deserialize)]
struct GeocodingResponse {
    #[serde(default)]
    results: Vec<Place>,
}

/// Current conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    /// Air temperature at 2 m.
    pub temperature: f64,
    /// Unit of `temperature`.
    pub unit: String,
    /// WMO weather code.
    pub weather_code: u32,
    /// Wind speed at 10 m (km/h, Open-Meteo's default unit).
    pub wind_speed: f64,
}

#[derive(Deserialize)]
struct ForecastResponse {
    current: CurrentValues,
    #[serde(default)]
    current_units: Option<CurrentUnits>,
}

#[derive(Deserialize)]
struct CurrentValues {
    temperature_2m: f64,
    weather_code: u32,
    wind_speed_10m: f64,
}

#[derive(Deserialize)]
struct CurrentUnits {
    #[serde(default)]
    temperature_2m: Option<String>,
}

/// `{base}/v1/search?name=…&count=1`.
pub fn geocoding_url(base: &str, name: &str) -> String {
    format!(
        "{}/v1/search?name={}&count=1",
        base.trim_end_matches('/'),
        http::encode_component(name)
    )
}

/// `{base}/v1/forecast?latitude=…&longitude=…&current=temperature_2m,weather_code,wind_speed_10m`.
pub fn forecast_url(base: &str, latitude: f64, longitude: f64) -> String {
    format!(
        "{}/v1/forecast?latitude={latitude}&longitude={longitude}&current=temperature_2m,weather_code,wind_speed_10m",
        base.trim_end_matches('/')
    )
}

/// The best match for `name`, or `None` when Open-Meteo knows no such place.
pub fn geocode(base: &str, name: &str) -> Result<Option<Place>, ToolError> {
    let body: GeocodingResponse = fetch(&geocoding_url(base, name), "geocoding")?;
    Ok(body.results.into_iter().next())
}

/// The current conditions at a point.
pub fn current(base: &str, latitude: f64, longitude: f64) -> Result<Current, ToolError> {
    let body: ForecastResponse = fetch(&forecast_url(base, latitude, longitude), "forecast")?;
    let unit = body
        .current_units
        .and_then(|u| u.temperature_2m)
        .unwrap_or_else(|| "°C".into());
    Ok(Current {
        temperature: body.current.temperature_2m,
        unit,
        weather_code: body.current.weather_code,
        wind_speed: body.current.wind_speed_10m,
    })
}

fn fetch<T: serde::de::DeserializeOwned>(url: &str, what: &str) -> Result<T, ToolError> {
    let response =
        http::get(url).map_err(|e| ToolError::failed(format!("{what} request failed: {e}")))?;
    if !response.is_success() {
        return Err(ToolError::failed(format!(
            "the {what} service answered HTTP {}",
            response.status
        )));
    }
    response
        .json()
        .map_err(|e| ToolError::failed(format!("unexpected {what} response: {e}")))
}
