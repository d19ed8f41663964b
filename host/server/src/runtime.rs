//! [`Runtime`]: the sandbox, the engine and the providers, plus the adapters between them and the store:
//! publish-time validation ([`Runtime::check_publish`]), the parsed-workflow cache and the tool runner.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pipecat_engine::{Engine, ProviderSource, ToolSpec, ValidationEnv, ValidationLimits, Workflow};
use pipecat_llm::{Provider, Providers};
use pipecat_sandbox::{Grant, Limits, Plugin, Sandbox};
use pipecat_store::{DynStore, PluginVersion, WorkflowVersion};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::state::AppState;
use crate::tools::SandboxTools;

/// Why publishing failed.
#[derive(Debug)]
pub enum PublishError {
    /// The document has problems (`422`).
    Invalid(Vec<pipecat_engine::Problem>),
    /// The store failed (`500`).
    Internal(anyhow::Error),
}

/// Execution machinery shared by all requests.
pub struct Runtime {
    /// The Wasm sandbox (compiled plugins cached by content hash).
    pub sandbox: Arc<Sandbox>,
    /// The workflow engine.
    pub engine: Arc<Engine>,
    /// The LLM providers by name.
    pub providers: Arc<Providers>,
    /// The operator's per-call tool limits (a workflow's grant may only lower them).
    pub tool_limits: Limits,
    workflows: Mutex<HashMap<(Uuid, u32), Arc<Workflow>>>,
}

struct ProvidersSource(Arc<Providers>);

impl ProviderSource for ProvidersSource {
    fn provider(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.0.get(name)
    }
}

/// The tools of a loaded plugin as the API shows them: `[{"name", "description", "parameters"}]`.
pub fn tools_json(plugin: &Plugin) -> Value {
    Value::Array(
        plugin
            .tools()
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "parameters": t.parameters}))
            .collect(),
    )
}

fn spec_from_json(plugin: &str, tools: &Value, tool: &str) -> Option<ToolSpec> {
    let t = tools.as_array()?.iter().find(|t| t["name"] == tool)?;
    Some(ToolSpec {
        plugin: plugin.to_string(),
        name: tool.to_string(),
        description: t["description"].as_str().unwrap_or_default().to_string(),
        parameters: t["parameters"].clone(),
    })
}

/// Validation against the account's plugins at publish time; remembers which plugin versions it resolved.
struct PublishEnv<'a> {
    latest: HashMap<&'a str, &'a PluginVersion>,
    providers: &'a Providers,
    pins: Mutex<BTreeMap<String, String>>,
}

impl ValidationEnv for PublishEnv<'_> {
    fn tool(&self, reference: &str) -> Option<ToolSpec> {
        let (plugin, tool) = reference.split_once('.')?;
        let version = self.latest.get(plugin)?;
        let spec = spec_from_json(plugin, &version.tools, tool)?;
        self.pins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(plugin.to_string(), version.id.clone());
        Some(spec)
    }

    fn has_provider(&self, name: &str) -> bool {
        self.providers.contains(name)
    }
}

impl Runtime {
    /// Builds the runtime.
    pub fn new(
        sandbox: Arc<Sandbox>,
        providers: Arc<Providers>,
        run_limits: pipecat_engine::RunLimits,
        tool_limits: Limits,
    ) -> Self {
        let engine = Arc::new(Engine::new(
            Arc::new(ProvidersSource(providers.clone())),
            run_limits,
        ));
        Self {
            sandbox,
            engine,
            providers,
            tool_limits,
            workflows: Mutex::new(HashMap::new()),
        }
    }

    /// Validates a draft against the account's plugins and the providers; returns the pins
    /// (plugin name → content hash of its latest version).
    pub async fn check_publish(
        &self,
        state: &AppState,
        account_id: Uuid,
        draft: &Value,
    ) -> Result<BTreeMap<String, String>, PublishError> {
        let versions = state
            .store
            .list_plugins(account_id)
            .await
            .map_err(|e| PublishError::Internal(e.into()))?;
        let mut latest: HashMap<&str, &PluginVersion> = HashMap::new();
        for v in &versions {
            let slot = latest.entry(v.name.as_str()).or_insert(v);
            if v.version > slot.version {
                *slot = v;
            }
        }
        let env = PublishEnv {
            latest,
            providers: &self.providers,
            pins: Mutex::new(BTreeMap::new()),
        };
        pipecat_engine::check(draft, &env, &ValidationLimits::default())
            .map_err(PublishError::Invalid)?;
        Ok(env.pins.into_inner().unwrap_or_else(|e| e.into_inner()))
    }

    /// The parsed form of a published version (parsed once, then cached).
    pub fn workflow(
        &self,
        version: &WorkflowVersion,
    ) -> Result<Arc<Workflow>, Vec<pipecat_engine::Problem>> {
        let key = (version.workflow_id, version.version);
        if let Some(w) = self
            .workflows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(w.clone());
        }
        let parsed = Arc::new(pipecat_engine::parse(&version.document)?);
        let mut cache = self.workflows.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(key, parsed.clone());
        Ok(parsed)
    }

    /// Drops cached versions of a deleted workflow.
    pub fn forget_workflow(&self, workflow_id: Uuid) {
        self.workflows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(id, _), _| *id != workflow_id);
    }

    /// The compiled plugin with this content hash: from the sandbox's cache, else loaded from the store.
    pub async fn plugin(&self, store: &DynStore, id: &str) -> Result<Arc<Plugin>, String> {
        if let Some(plugin) = self.sandbox.get(id) {
            return Ok(plugin);
        }
        let bytes = store
            .get_plugin_blob(id)
            .await
            .map_err(|e| format!("reading plugin {id}: {e}"))?
            .ok_or_else(|| format!("plugin {id} is missing from the store"))?;
        self.sandbox
            .load(&bytes)
            .await
            .map_err(|e| format!("loading plugin {id}: {e}"))
    }

    /// The tool runner of one run: the version's pinned plugins with the document's grants.
    pub async fn tools_for(
        &self,
        store: &DynStore,
        workflow: &Workflow,
        version: &WorkflowVersion,
    ) -> SandboxTools {
        let mut plugins = HashMap::new();
        for (name, id) in &version.pins {
            let loaded = self.plugin(store, id).await;
            if let Err(e) = &loaded {
                tracing::error!(plugin = %name, error = %e, "pinned plugin unavailable");
            }
            let grant = self.grant_for(workflow, name);
            plugins.insert(name.clone(), (loaded, grant));
        }
        SandboxTools::new(plugins)
    }

    /// The sandbox grant of `plugin` in `workflow`: its config and hosts, limits no higher than the
    /// operator's.
    fn grant_for(&self, workflow: &Workflow, plugin: &str) -> Grant {
        let Some(doc) = workflow.doc.plugins.get(plugin) else {
            return Grant {
                limits: Some(self.tool_limits.clone()),
                ..Grant::default()
            };
        };
        let mut limits = self.tool_limits.clone();
        if let Some(l) = &doc.limits {
            if let Some(ms) = l.timeout_ms {
                limits.timeout = limits.timeout.min(Duration::from_millis(ms));
            }
            if let Some(fuel) = l.fuel {
                limits.fuel = limits.fuel.min(fuel);
            }
            if let Some(mb) = l.memory_mb {
                let bytes = usize::try_from(mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
                limits.memory_bytes = limits.memory_bytes.min(bytes);
            }
        }
        Grant {
            config: doc.config.clone(),
            allowed_hosts: doc.allowed_hosts.clone(),
            limits: Some(limits),
        }
    }

    /// Loads, in the background, every plugin pinned by a published version (so first calls are fast).
    pub fn preload_published(self: &Arc<Self>, store: DynStore) {
        let runtime = self.clone();
        tokio::spawn(async move {
            let mut ids = std::collections::BTreeSet::new();
            let Ok(accounts) = store.list_accounts().await else {
                return;
            };
            for account in accounts {
                let Ok(workflows) = store.list_workflows(account.id).await else {
                    continue;
                };
                for w in workflows.iter().filter(|w| w.published_version.is_some()) {
                    if let Ok(versions) = store.list_workflow_versions(account.id, w.id).await {
                        ids.extend(versions.into_iter().flat_map(|v| v.pins.into_values()));
                    }
                }
            }
            for id in ids {
                if let Err(e) = runtime.plugin(&store, &id).await {
                    tracing::warn!(plugin_id = %id, error = %e, "preloading plugin failed");
                }
            }
            tracing::debug!("published plugins preloaded");
        });
    }
}
