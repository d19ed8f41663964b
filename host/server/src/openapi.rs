//! `/openapi.json`: the OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations.

use serde_json::Value;
use utoipa::OpenApi;

use crate::error::ApiJson;
use crate::routes::{
    accounts, control, health, invoke, plugins, runs, stats, stream, workflows, ws,
};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Pipecat Host API", description = "AI workflows as REST APIs. Authenticate with `X-API-Key`."),
    paths(
        health::healthz, health::readyz, serve_openapi,
        accounts::create_account, accounts::list_accounts, accounts::get_account, accounts::patch_account,
        accounts::create_key, accounts::list_keys, accounts::revoke_key,
        plugins::upload_plugin, plugins::list_plugins, plugins::get_plugin, plugins::delete_plugin,
        workflows::create_workflow, workflows::list_workflows, workflows::get_workflow,
        workflows::replace_workflow, workflows::delete_workflow, workflows::publish_workflow,
        workflows::list_versions,
        runs::get_run, runs::list_workflow_runs, runs::list_runs, stats::workflow_stats, stats::metrics,
        invoke::invoke, ws::ws, control::cancel_run, stream::run_events,
    ),
    components(schemas(crate::error::Problem, invoke::InvokeRequest)),
    modifiers(&ApiKeyScheme),
)]
pub struct ApiDoc;

struct ApiKeyScheme;

impl utoipa::Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// The document as JSON.
pub fn document() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null)
}

/// Serves the OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn serve_openapi() -> ApiJson<Value> {
    ApiJson(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented() {
        let doc = document();
        for (method, path) in crate::routes::ROUTES {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} missing from /openapi.json"
            );
        }
    }
}
