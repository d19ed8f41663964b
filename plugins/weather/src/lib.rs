//! Pipecat plugin `weather`: `get_weather(location)` answers the current weather of a place from
//! [Open-Meteo](https://open-meteo.com): a geocoding request finds the place, a forecast request reads its
//! current temperature, weather code and wind.
//!
//! Plugin configuration (granted by the workflow; defaults shown):
//! - `geocoding_base_url` = `https://geocoding-api.open-meteo.com`
//! - `forecast_base_url` = `https://api.open-meteo.com`
//!
//! The workflow must also grant outbound HTTP to both hosts.
//!
//! [`open_meteo`] holds the two requests and their response types, [`wmo`] the weather-code names.

use pipecat_plugin_sdk::{ToolError, config, log, plugin, tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub mod open_meteo;
pub mod wmo;

/// Default of the `geocoding_base_url` configuration key.
pub const DEFAULT_GEOCODING_BASE_URL: &str = "https://geocoding-api.open-meteo.com";
/// Default of the `forecast_base_url` configuration key.
pub const DEFAULT_FORECAST_BASE_URL: &str = "https://api.open-meteo.com";

/// Arguments of `get_weather`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct WeatherArgs {
    /// A place name, e.g. `Tokyo` or `Paris`.
    pub location: String,
}

/// The current weather of a place.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Weather {
    /// The place found, e.g. `Tokyo, Japan`.
    pub location: String,
    /// Air temperature at 2 m.
    pub temperature: f64,
    /// Unit of `temperature`, e.g. `°C`.
    pub unit: String,
    /// The weather in words, e.g. `Sunny`.
    pub condition: String,
    /// Wind speed at 10 m in km/h.
    pub wind_speed_kmh: f64,
}

/// Gets the current weather (temperature in °C, conditions, wind speed in km/h) for a place given by name.
#[tool]
pub fn get_weather(args: WeatherArgs) -> Result<Weather, ToolError> {
    let location = args.location.trim();
    if location.is_empty() {
        return Err(ToolError::invalid_arguments("`location` must not be empty"));
    }
    if location.chars().count() > 200 {
        return Err(ToolError::invalid_arguments(
            "`location` is longer than 200 characters",
        ));
    }
    let geocoding = config::get_or("geocoding_base_url", DEFAULT_GEOCODING_BASE_URL);
    let forecast = config::get_or("forecast_base_url", DEFAULT_FORECAST_BASE_URL);
    let place = open_meteo::geocode(&geocoding, location)?
        .ok_or_else(|| ToolError::failed(format!("no place named {location:?}")))?;
    log::debug(&format!(
        "{location} is at {}, {}",
        place.latitude, place.longitude
    ));
    let current = open_meteo::current(&forecast, place.latitude, place.longitude)?;
    Ok(Weather {
        location: place.display_name(),
        temperature: current.temperature,
        unit: current.unit,
        condition: wmo::describe(current.weather_code).to_owned(),
        wind_speed_kmh: current.wind_speed,
    })
}

plugin!(get_weather);

#[cfg(test)]
mod tests;
