use super::*;
use pipecat_plugin_sdk::PluginTools;
use pipecat_plugin_sdk::http::{self, Request, Response};
use std::cell::RefCell;
use std::rc::Rc;

fn ok(body: &str) -> Result<Response, http::Error> {
    Ok(Response {
        status: 200,
        headers: vec![],
        body: body.as_bytes().to_vec(),
    })
}

const TOKYO: &str = r#"{"results":[{"id":1850147,"name":"Tokyo","latitude":35.6895,"longitude":139.69171,"country":"Japan"}]}"#;
const SUNNY: &str = r#"{"current_units":{"temperature_2m":"°C"},"current":{"time":"2026-01-01T00:00","temperature_2m":22.0,"weather_code":0,"wind_speed_10m":5.0}}"#;

/// Answers like Open-Meteo at the configured base URLs and records the URLs asked for.
fn fake_open_meteo(geocoding: &'static str, forecast: &'static str) -> Rc<RefCell<Vec<String>>> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = Rc::clone(&seen);
    http::set_handler_for_tests(move |req: &Request| {
        log.borrow_mut().push(req.url.clone());
        if req.url.starts_with("http://geo.test/v1/search?") {
            ok(geocoding)
        } else if req.url.starts_with("http://forecast.test/v1/forecast?") {
            ok(forecast)
        } else {
            Err(http::Error::Denied(req.url.clone()))
        }
    });
    config::set_for_tests("geocoding_base_url", "http://geo.test");
    config::set_for_tests("forecast_base_url", "http://forecast.test/");
    seen
}

#[test]
fn reports_the_weather_of_a_place() {
    let seen = fake_open_meteo(TOKYO, SUNNY);
    let out = Plugin::call("get_weather", r#"{"location": "Tokyo"}"#).unwrap();
    assert_eq!(
        out,
        r#"{"location":"Tokyo, Japan","temperature":22.0,"unit":"°C","condition":"Sunny","wind_speed_kmh":5.0}"#
    );
    assert_eq!(
        *seen.borrow(),
        vec![
            "http://geo.test/v1/search?name=Tokyo&count=1".to_owned(),
            "http://forecast.test/v1/forecast?latitude=35.6895&longitude=139.69171&current=temperature_2m,weather_code,wind_speed_10m"
                .to_owned(),
        ]
    );
}

#[test]
fn encodes_the_place_name() {
    let seen = fake_open_meteo(TOKYO, SUNNY);
    get_weather(WeatherArgs {
        location: " São Paulo & co ".into(),
    })
    .unwrap();
    assert_eq!(
        seen.borrow()[0],
        "http://geo.test/v1/search?name=S%C3%A3o%20Paulo%20%26%20co&count=1"
    );
}

#[test]
fn an_unknown_place_fails_with_its_name() {
    fake_open_meteo(r#"{"generationtime_ms":0.1}"#, SUNNY);
    let err = get_weather(WeatherArgs {
        location: "Atlantis".into(),
    })
    .unwrap_err();
    assert_eq!(err, ToolError::failed("no place named \"Atlantis\""));
}

#[test]
fn service_errors_become_failures() {
    http::set_handler_for_tests(|_| {
        Ok(Response {
            status: 503,
            headers: vec![],
            body: vec![],
        })
    });
    let err = get_weather(WeatherArgs {
        location: "Tokyo".into(),
    })
    .unwrap_err();
    assert_eq!(
        err,
        ToolError::failed("the geocoding service answered HTTP 503")
    );

    http::set_handler_for_tests(|_| {
        Err(http::Error::Denied("geocoding-api.open-meteo.com".into()))
    });
    let err = get_weather(WeatherArgs {
        location: "Tokyo".into(),
    })
    .unwrap_err();
    assert!(err.message().contains("denied"), "{err}");

    fake_open_meteo(TOKYO, r#"{"current":{}}"#);
    let err = get_weather(WeatherArgs {
        location: "Tokyo".into(),
    })
    .unwrap_err();
    assert!(
        err.message().starts_with("unexpected forecast response"),
        "{err}"
    );
}

#[test]
fn uses_the_default_base_urls_without_configuration() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = Rc::clone(&seen);
    http::set_handler_for_tests(move |req: &Request| {
        log.borrow_mut().push(req.url.clone());
        Err(http::Error::Timeout)
    });
    assert!(
        get_weather(WeatherArgs {
            location: "Oslo".into()
        })
        .is_err()
    );
    assert!(
        seen.borrow()[0].starts_with("https://geocoding-api.open-meteo.com/v1/search?name=Oslo")
    );
}

#[test]
fn rejects_an_empty_location() {
    assert!(matches!(
        Plugin::call("get_weather", r#"{"location": "  "}"#),
        Err(ToolError::InvalidArguments(_))
    ));
    assert!(matches!(
        Plugin::call("get_weather", "{}"),
        Err(ToolError::InvalidArguments(_))
    ));
}
