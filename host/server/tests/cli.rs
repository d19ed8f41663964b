//! End-to-end tests of the `pipecat` binary: `pipecat serve` on `127.0.0.1:0` in a temporary data
//! directory, driven by the binary's own client commands, as a CI/CD job would.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_pipecat");
const ADMIN_KEY: &str = "pc_admin_cli-end-to-end-test";
/// Upper bound on the server's start-up, so a server that never prints its address fails the test
/// instead of hanging it (not used for synchronisation).
const START_TIMEOUT: Duration = Duration::from_secs(120);

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/workflows")
}

/// A running `pipecat serve`, killed on drop.
struct Server {
    child: Child,
    url: String,
    _data_dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir.path())
            .env("PIPECAT_ADMIN_KEY", ADMIN_KEY)
            .env("RUST_LOG", "warn")
            .env_remove("PIPECAT_LISTEN")
            .env_remove("PIPECAT_DATA_DIR")
            .env_remove("PIPECAT_CONFIG")
            .env_remove("PIPECAT_WITH_EXAMPLES")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start pipecat serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, receiver) = mpsc::channel();
        // Reads stdout until the bound address shows up, then keeps draining it so the server never
        // blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sender = Some(sender);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = bound_url(&line)
                    && let Some(sender) = sender.take()
                {
                    let _ = sender.send(url);
                }
            }
        });
        let url = match receiver.recv_timeout(START_TIMEOUT) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("pipecat serve printed no listening address on stdout (exit: {status:?})");
            }
        };
        Self {
            child,
            url,
            _data_dir: data_dir,
        }
    }

    /// Runs `pipecat <args>` against this server with the admin key and, if given, an API key.
    fn cli(&self, api_key: Option<&str>, args: &[&str]) -> Output {
        self.cli_with_stdin(api_key, args, None)
    }

    fn cli_with_stdin(&self, api_key: Option<&str>, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("PIPECAT_SERVER", &self.url)
            .env("PIPECAT_ADMIN_KEY", ADMIN_KEY)
            .env_remove("PIPECAT_API_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(key) = api_key {
            command.env("PIPECAT_API_KEY", key);
        }
        command.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = command.spawn().expect("run pipecat");
        if let Some(text) = stdin {
            use std::io::Write as _;
            let mut pipe = child.stdin.take().expect("piped stdin");
            pipe.write_all(text.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("pipecat output")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `http://127.0.0.1:<port>` in a line of the server's stdout, if any.
fn bound_url(line: &str) -> Option<String> {
    const HOST: &str = "127.0.0.1:";
    let start = line.find(HOST)? + HOST.len();
    let port: String = line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    match port.parse::<u16>() {
        Ok(port) if port != 0 => Some(format!("http://127.0.0.1:{port}")),
        _ => None,
    }
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts the command succeeded and parses its stdout as JSON.
fn json_ok(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "command failed: {}",
        describe(output)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", describe(output)))
}

fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string {key:?} in {value}"))
}

/// Creates an account and an API key for it with the admin commands.
fn account_and_key(server: &Server) -> String {
    let account = json_ok(&server.cli(None, &["account", "create", "acme", "--plan", "free"]));
    assert_eq!(str_field(&account, "name"), "acme");
    let account_id = str_field(&account, "id").to_owned();
    let key = json_ok(&server.cli(
        None,
        &["key", "create", &account_id, "--name", "ci", "--json"],
    ));
    assert_eq!(str_field(&key, "name"), "ci");
    str_field(&key, "key").to_owned()
}

/// Uploads a shipped plugin from a file and checks that it offers `tool`.
fn upload(server: &Server, key: &str, dir: &Path, name: &str, bytes: &[u8], tool: &str) {
    let wasm = dir.join(format!("{name}.wasm"));
    std::fs::write(&wasm, bytes).expect("write the component");
    let wasm = wasm.to_str().expect("utf-8 temp path");
    let plugin = json_ok(&server.cli(
        Some(key),
        &["plugin", "upload", wasm, "--name", name, "--json"],
    ));
    assert_eq!(str_field(&plugin, "name"), name);
    let tools: Vec<&str> = plugin["tools"]
        .as_array()
        .expect("tools array")
        .iter()
        .map(|t| str_field(t, "name"))
        .collect();
    assert!(tools.contains(&tool), "tools: {tools:?}");
}

/// Uploads the shipped calculator plugin from a file.
fn upload_calculator(server: &Server, key: &str, dir: &Path) {
    upload(
        server,
        key,
        dir,
        "calculator",
        pipecat_plugins::CALCULATOR,
        "calculate",
    );
}

#[test]
fn deploy_invoke_and_list_runs_through_the_cli() {
    let server = Server::start();
    let key = account_and_key(&server);
    let scratch = tempfile::tempdir().expect("temp dir");
    upload_calculator(&server, &key, scratch.path());

    let listed = server.cli(Some(&key), &["plugin", "list"]);
    assert!(listed.status.success(), "{}", describe(&listed));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("calculator"));

    // First deploy creates and publishes version 1; the second updates the draft and publishes version 2.
    let calculator = examples_dir().join("calculator.json");
    let calculator = calculator.to_str().expect("utf-8 path");
    let first = json_ok(&server.cli(Some(&key), &["workflow", "deploy", calculator, "--json"]));
    assert_eq!(first["created"], Value::Bool(true), "{first}");
    assert_eq!(first["version"], Value::from(1), "{first}");
    let workflow_id = str_field(&first, "id").to_owned();
    let second = json_ok(&server.cli(Some(&key), &["workflow", "deploy", calculator, "--json"]));
    assert_eq!(second["created"], Value::Bool(false), "{second}");
    assert_eq!(str_field(&second, "id"), workflow_id);
    assert_eq!(second["version"], Value::from(2), "{second}");

    let human = server.cli(Some(&key), &["workflow", "list"]);
    assert!(human.status.success(), "{}", describe(&human));
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(
        human.contains(&workflow_id) && human.contains("calculator"),
        "{human}"
    );

    // Invoke with --input, then with the input on stdin.
    let run = json_ok(&server.cli(
        Some(&key),
        &["invoke", &workflow_id, "--input", "(1 + 2) * 3"],
    ));
    assert_eq!(str_field(&run, "status"), "success", "{run}");
    assert_eq!(str_field(&run, "output"), "(1 + 2) * 3 = 9", "{run}");
    let tool_calls = run["tool_calls"].as_array().expect("tool_calls");
    assert_eq!(tool_calls.len(), 1, "{run}");
    assert_eq!(tool_calls[0]["input"]["expression"], "(1 + 2) * 3");
    let run_id = str_field(&run, "run_id").to_owned();

    let from_stdin =
        json_ok(&server.cli_with_stdin(Some(&key), &["invoke", &workflow_id], Some("2 ^ 10\n")));
    assert_eq!(
        str_field(&from_stdin, "output"),
        "2 ^ 10 = 1024",
        "{from_stdin}"
    );

    // The runs are recorded and listed newest first.
    let runs = json_ok(&server.cli(
        Some(&key),
        &[
            "runs",
            "list",
            &workflow_id,
            "--status",
            "success",
            "--json",
        ],
    ));
    let ids: Vec<&str> = runs["runs"]
        .as_array()
        .expect("runs array")
        .iter()
        .map(|r| str_field(r, "run_id"))
        .collect();
    assert_eq!(ids, [str_field(&from_stdin, "run_id"), run_id.as_str()]);

    let shown = json_ok(&server.cli(Some(&key), &["runs", "show", &run_id]));
    assert_eq!(str_field(&shown, "run_id"), run_id);
    assert_eq!(str_field(&shown, "status"), "success");
    assert_eq!(shown["version"], Value::from(2), "{shown}");
}

#[test]
fn failed_runs_exit_1_and_refused_requests_exit_3() {
    let server = Server::start();
    let key = account_and_key(&server);
    let scratch = tempfile::tempdir().expect("temp dir");
    upload_calculator(&server, &key, scratch.path());
    let calculator = examples_dir().join("calculator.json");
    let deployed = json_ok(&server.cli(
        Some(&key),
        &[
            "workflow",
            "deploy",
            calculator.to_str().expect("utf-8 path"),
            "--json",
        ],
    ));
    let workflow_id = str_field(&deployed, "id");

    // A run that fails in the tool is still answered (and printed), with exit code 1.
    let failed = server.cli(Some(&key), &["invoke", workflow_id, "--input", "1 +"]);
    assert_eq!(failed.status.code(), Some(1), "{}", describe(&failed));
    let answer: Value = serde_json::from_slice(&failed.stdout).expect("JSON answer");
    assert_eq!(str_field(&answer, "status"), "error", "{answer}");
    assert_eq!(str_field(&answer["error"], "node_id"), "calc", "{answer}");

    // An unknown workflow is a request-level error: code and message on stderr, exit code 3.
    let missing = server.cli(
        Some(&key),
        &[
            "invoke",
            "00000000-0000-0000-0000-000000000000",
            "--input",
            "1",
        ],
    );
    assert_eq!(missing.status.code(), Some(3), "{}", describe(&missing));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("not_found"), "{stderr}");

    // A bad key is refused before anything runs.
    let unauthorized = server.cli(Some("pc_live_nope"), &["workflow", "list"]);
    assert_eq!(
        unauthorized.status.code(),
        Some(3),
        "{}",
        describe(&unauthorized)
    );

    // Missing keys are reported without a request.
    let no_key = server.cli(None, &["workflow", "list"]);
    assert_eq!(no_key.status.code(), Some(4), "{}", describe(&no_key));
    assert!(String::from_utf8_lossy(&no_key.stderr).contains("PIPECAT_API_KEY"));
}

#[test]
fn deploying_an_invalid_workflow_prints_every_problem() {
    let server = Server::start();
    let key = account_and_key(&server);
    let scratch = tempfile::tempdir().expect("temp dir");
    let bad = scratch.path().join("bad.json");
    let document = serde_json::json!({
        "name": "broken",
        "nodes": [
            {"id": "a", "type": "template", "template": "{{ input }}"},
            {"id": "b", "type": "tool", "tool": "nosuchplugin.nosuchtool", "arguments": {}}
        ],
        "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "ghost"}],
        "output": "b"
    });
    std::fs::write(&bad, document.to_string()).expect("write bad.json");

    let output = server.cli(
        Some(&key),
        &["workflow", "deploy", bad.to_str().expect("utf-8 path")],
    );
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: invalid_workflow: "), "{stderr}");
    let problems: Vec<&str> = stderr
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("  "))
        .collect();
    assert!(
        problems.iter().any(|p| p.contains("ghost")),
        "the edge to an unknown node is listed: {stderr}"
    );
    assert!(
        problems.iter().any(|p| p.contains("nosuchplugin")),
        "the unresolved tool is listed: {stderr}"
    );
    assert!(output.stdout.is_empty(), "{}", describe(&output));
}

#[test]
fn the_text_pipeline_example_branches_without_an_llm() {
    let server = Server::start();
    let key = account_and_key(&server);
    let scratch = tempfile::tempdir().expect("temp dir");
    upload(
        &server,
        &key,
        scratch.path(),
        "text",
        pipecat_plugins::TEXT,
        "word_count",
    );
    let file = examples_dir().join("text-pipeline.json");
    let deployed = json_ok(&server.cli(
        Some(&key),
        &[
            "workflow",
            "deploy",
            file.to_str().expect("utf-8 path"),
            "--json",
        ],
    ));
    let workflow_id = str_field(&deployed, "id");

    // Short texts take the default branch: shouted.
    let short = json_ok(&server.cli(
        Some(&key),
        &["invoke", workflow_id, "--input", "  hello pipecat world  "],
    ));
    assert_eq!(str_field(&short, "status"), "success", "{short}");
    assert_eq!(
        str_field(&short, "output"),
        "HELLO PIPECAT WORLD (3 words)",
        "{short}"
    );

    // Long texts take the conditional branch: shortened, and the shouting node is skipped.
    let long = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen";
    let run = json_ok(&server.cli(Some(&key), &["invoke", workflow_id, "--input", long]));
    assert_eq!(str_field(&run, "status"), "success", "{run}");
    let output = str_field(&run, "output");
    assert!(output.ends_with("… (14 words)"), "{run}");
    assert!(output.chars().count() < long.chars().count(), "{run}");
    let shown = json_ok(&server.cli(Some(&key), &["runs", "show", str_field(&run, "run_id")]));
    let shout = shown["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["node_id"] == "shout")
        .unwrap_or_else(|| panic!("no shout node in {shown}"));
    assert_eq!(shout["status"], "skipped", "{shown}");
}

#[test]
fn every_example_workflow_parses() {
    let mut checked = 0;
    for entry in std::fs::read_dir(examples_dir()).expect("examples/workflows") {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read example");
        let document: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        if let Err(problems) = pipecat_engine::parse(&document) {
            panic!("{} does not parse: {problems:#?}", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} example workflows found");
}
