//! Retries, timeouts and broken answers, through the real client against the fake server.

mod common;

use std::time::Duration;

use pipecat_fake_llm::{FakeLlm, Fault, Reply};
use pipecat_llm::{HttpPolicy, LlmError, OpenAiProvider, Provider};

fn provider_with(fake: &FakeLlm, policy: HttpPolicy) -> OpenAiProvider {
    OpenAiProvider::new("fakeai", fake.openai_base_url(), Some("k".into())).with_policy(policy)
}

fn provider(fake: &FakeLlm) -> OpenAiProvider {
    provider_with(fake, common::policy())
}

async fn call(fake: &FakeLlm) -> Result<pipecat_llm::ChatResponse, LlmError> {
    provider(fake).chat(&common::ask("m", "hi"), None).await
}

#[tokio::test]
async fn rate_limited_with_retry_after_then_success() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::Fault(Fault::RateLimited {
        retry_after_secs: 1,
    }));
    fake.push(Reply::text("after the wait"));
    let res = call(&fake).await.expect("retried");
    assert_eq!(res.content.as_deref(), Some("after the wait"));
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn retry_after_beyond_the_cap_gives_up_at_once() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::Fault(Fault::RateLimited {
        retry_after_secs: 3600,
    }));
    let err = call(&fake).await.expect_err("rate limited");
    match &err {
        LlmError::RateLimited {
            provider,
            retry_after,
            message,
        } => {
            assert_eq!(provider, "fakeai");
            assert_eq!(*retry_after, Some(Duration::from_secs(3600)));
            assert!(message.contains("Rate limit"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(fake.request_count(), 1);
    assert!(err.should_fall_back());
}

#[tokio::test]
async fn server_error_then_success() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::Fault(Fault::Status(500, "boom".into())));
    fake.push(Reply::text("ok"));
    assert_eq!(
        call(&fake).await.expect("retried").content.as_deref(),
        Some("ok")
    );
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn server_errors_stop_after_max_attempts_with_the_provider_message() {
    let fake = FakeLlm::start().await;
    fake.set_default(Reply::Fault(Fault::Status(503, "upstream is down".into())));
    let err = call(&fake).await.expect_err("503");
    assert!(
        matches!(&err, LlmError::Status { status: 503, message, .. } if message.contains("upstream is down")),
        "{err:?}"
    );
    assert_eq!(fake.request_count(), 3);
    assert!(err.to_string().contains("fakeai"));
}

#[tokio::test]
async fn bad_request_is_not_retried() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::Fault(Fault::Status(
        400,
        "Unknown parameter: 'foo'".into(),
    )));
    let err = call(&fake).await.expect_err("400");
    assert!(
        matches!(&err, LlmError::Status { status: 400, message, .. } if message.contains("Unknown parameter")),
        "{err:?}"
    );
    assert_eq!(fake.request_count(), 1);
    assert!(!err.should_fall_back());
}

#[tokio::test]
async fn malformed_json_is_a_protocol_error() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::Fault(Fault::MalformedJson));
    fake.push(Reply::Fault(Fault::MalformedJson));
    let p = provider(&fake);
    let err = p
        .chat(&common::ask("m", "hi"), None)
        .await
        .expect_err("bad body");
    assert!(matches!(err, LlmError::Protocol { .. }), "{err:?}");
    let (res, _) = common::stream(&p, &common::ask("m", "hi")).await;
    assert!(matches!(res, Err(LlmError::Protocol { .. })), "{res:?}");
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn cut_stream_is_a_protocol_error() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::Fault(Fault::CutStream));
    fake.push(Reply::Fault(Fault::CutStream));
    let p = provider(&fake);
    let (res, deltas) = common::stream(&p, &common::ask("m", "hi")).await;
    match res {
        Err(LlmError::Protocol { message, .. }) => assert!(message.contains("[DONE]"), "{message}"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(!deltas.is_empty(), "the first part arrived before the cut");
    let err = p
        .chat(&common::ask("m", "hi"), None)
        .await
        .expect_err("cut body");
    assert!(matches!(err, LlmError::Protocol { .. }), "{err:?}");
}

#[tokio::test]
async fn slow_first_byte_times_out_without_retry() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::Fault(Fault::SlowFirstByte(Duration::from_secs(60))));
    let policy = HttpPolicy {
        first_byte_timeout: Duration::from_millis(300),
        ..common::policy()
    };
    let err = provider_with(&fake, policy)
        .chat(&common::ask("m", "hi"), None)
        .await
        .expect_err("slow");
    assert!(matches!(err, LlmError::Timeout { .. }), "{err:?}");
    assert_eq!(fake.request_count(), 1);
    assert!(err.should_fall_back());
}

#[tokio::test]
async fn hang_times_out() {
    let fake = FakeLlm::start().await;
    fake.set_default(Reply::Fault(Fault::Hang));
    let policy = HttpPolicy {
        first_byte_timeout: Duration::from_millis(300),
        ..common::policy()
    };
    let p = provider_with(&fake, policy);
    let (res, _) = common::stream(&p, &common::ask("m", "hi")).await;
    assert!(matches!(res, Err(LlmError::Timeout { .. })), "{res:?}");
}

#[tokio::test]
async fn stalled_stream_hits_the_idle_timeout() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::Fault(Fault::StallStream));
    let policy = HttpPolicy {
        idle_timeout: Duration::from_millis(300),
        ..common::policy()
    };
    let p = provider_with(&fake, policy);
    let (res, deltas) = common::stream(&p, &common::ask("m", "hi")).await;
    assert!(
        matches!(&res, Err(LlmError::Timeout { message, .. }) if message.contains("no data")),
        "{res:?}"
    );
    assert!(!deltas.is_empty());
}

#[tokio::test]
async fn total_timeout_bounds_the_whole_call() {
    let fake = FakeLlm::start().await;
    fake.set_default(Reply::Fault(Fault::Hang));
    let policy = HttpPolicy {
        total_timeout: Duration::from_millis(300),
        ..common::policy()
    };
    let err = provider_with(&fake, policy)
        .chat(&common::ask("m", "hi"), None)
        .await
        .expect_err("hang");
    assert!(
        matches!(&err, LlmError::Timeout { message, .. } if message.contains("complete answer")),
        "{err:?}"
    );
}

#[tokio::test]
async fn html_error_page_is_summarised() {
    let fake = FakeLlm::start().await;
    fake.set_default(Reply::Fault(Fault::Html));
    let err = call(&fake).await.expect_err("502");
    match &err {
        LlmError::Status {
            status: 502,
            message,
            ..
        } => {
            assert!(message.contains("502 Bad Gateway"), "{message}");
            assert!(message.len() < 120, "summarised, not dumped: {message}");
            assert!(!message.contains("<html"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(fake.request_count(), 3, "502 is retried");
}

#[tokio::test]
async fn body_over_the_size_cap_is_refused() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::text("word ".repeat(1000)));
    let policy = HttpPolicy {
        max_body_bytes: 1000,
        ..common::policy()
    };
    let err = provider_with(&fake, policy)
        .chat(&common::ask("m", "hi"), None)
        .await
        .expect_err("too big");
    assert!(
        matches!(&err, LlmError::Protocol { message, .. } if message.contains("exceeds")),
        "{err:?}"
    );
}

#[tokio::test]
async fn refused_connection_is_a_connection_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let p = OpenAiProvider::new("gone", format!("http://127.0.0.1:{port}/v1"), None)
        .with_policy(common::policy());
    let err = p
        .chat(&common::ask("m", "hi"), None)
        .await
        .expect_err("refused");
    assert!(matches!(err, LlmError::Connection { .. }), "{err:?}");
    assert_eq!(err.code(), "llm_unavailable");
    assert!(err.should_fall_back());
}

#[test]
fn fallback_decision() {
    let status = |status| LlmError::Status {
        provider: "p".into(),
        status,
        message: String::new(),
    };
    let timeout = LlmError::Timeout {
        provider: "p".into(),
        message: String::new(),
    };
    let limited = LlmError::RateLimited {
        provider: "p".into(),
        retry_after: None,
        message: String::new(),
    };
    let broken = LlmError::Protocol {
        provider: "p".into(),
        message: String::new(),
    };
    assert!(status(500).should_fall_back());
    assert!(status(529).should_fall_back());
    assert!(status(408).should_fall_back());
    assert!(timeout.should_fall_back());
    assert!(limited.should_fall_back());
    assert!(broken.should_fall_back());
    assert!(!status(400).should_fall_back());
    assert!(!status(401).should_fall_back());
    assert!(!status(404).should_fall_back());
}
